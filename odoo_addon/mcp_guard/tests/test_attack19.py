"""Outside round 19 (live Odoo 18 and 19, as the administrator over XML-RPC): removing the
external id ``mcp_guard.group_mcp_agent`` switched off "the agent keeps its connections" (the
check finds the group by that id), so the agent group could then be taken from the agent; the
contact-merge wizard re-pointed the author of trail messages to another contact by SQL; deleting
a commenter's contact blanked the author of their trail messages."""

import json

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import new_test_user, tagged

from .common import McpGuardCase

# context keys a client can send; none of them makes a client the module loader
CONTEXTS = [{}, {"_force_unlink": True, "install_mode": True, "module": "mcp_guard"}]


@tagged("post_install", "-at_install")
class TestAttack19(McpGuardCase):
    def setUp(self):
        super().setUp()
        self.sys = self.env(user=self.admin)  # an administrator, as over RPC
        self.groups_field = "groups_id" if "groups_id" in self.env["res.users"]._fields else "group_ids"

    def _xmlid(self, name):
        return self.sys["ir.model.data"].search([("module", "=", "mcp_guard"), ("name", "=", name)])

    def test_the_add_on_group_ids_cannot_be_removed_or_repointed(self):
        for name in ("group_mcp_agent", "group_mcp_approver", "group_mcp_manager", "group_mcp_user"):
            xmlid = self._xmlid(name)
            self.assertEqual(len(xmlid), 1, name)
            for ctx in CONTEXTS:
                with self.subTest(name=name, ctx=ctx):
                    with self.assertRaises(UserError):
                        xmlid.with_context(**ctx).unlink()
                    with self.assertRaises(UserError):
                        xmlid.with_context(**ctx).write({"res_id": self.env.ref("base.group_user").id})
                    with self.assertRaises(UserError):
                        xmlid.with_context(**ctx).write({"name": name + "_old"})
        # nor the group itself (its unlink removes its id), nor a new id in the add-on's namespace
        with self.assertRaises(UserError):
            self.env.ref("mcp_guard.group_mcp_agent").with_user(self.admin).unlink()
        with self.assertRaises(UserError):
            self.sys["ir.model.data"].create({
                "module": "mcp_guard", "name": "group_mcp_spare", "model": "res.groups",
                "res_id": self.env.ref("base.group_user").id})
        other = self.sys["ir.model.data"].create({
            "module": "__export__", "name": "spare_group", "model": "res.groups",
            "res_id": self.env.ref("base.group_user").id})
        with self.assertRaises(UserError):
            other.write({"module": "mcp_guard"})
        # so the check still finds the agent group: the agent keeps its connections
        with self.assertRaisesRegex(UserError, "uses connection"):
            self.agent.with_user(self.admin).write(
                {self.groups_field: [Command.unlink(self.env.ref("mcp_guard.group_mcp_agent").id)]})
        self.assertIn(self.prod, self.Connection.with_user(self.agent).search([]))

    def test_other_modules_ids_stay_editable(self):
        other = self.sys["ir.model.data"].create({
            "module": "__export__", "name": "spare_group", "model": "res.groups",
            "res_id": self.env.ref("base.group_user").id})
        other.write({"name": "spare_group_2"})
        other.unlink()
        self.assertFalse(other.exists())

    def _comment(self, author):
        conn = self.Connection.with_user(author).create({
            "alias": f"t19-{author.login}", "url": "https://erp.example.com", "db": "x", "login": "u"})
        return conn.with_user(author).message_post(
            body="I object.", message_type="comment", subtype_xmlid="mail.mt_note")

    def test_the_merge_wizard_cannot_move_a_trail_author(self):
        comment = self._comment(self.user)
        mallory = self.sys["res.partner"].create({"name": "Mallory", "email": self.user.email})
        for dst in (mallory, None):
            wizard = self.sys["base.partner.merge.automatic.wizard"].create({
                "partner_ids": [Command.set([self.user.partner_id.id, mallory.id])],
                "dst_partner_id": dst.id if dst else False,
            })
            with self.subTest(dst=dst and dst.name), self.assertRaisesRegex(UserError, "trail"):
                if dst:
                    wizard.action_merge()
                else:
                    wizard._merge([self.user.partner_id.id, mallory.id])
        self.assertEqual(comment.sudo().author_id, self.user.partner_id)
        self.assertTrue(mallory.exists())
        # the trail author kept, another contact merged into it: that is Odoo's business
        self.sys["base.partner.merge.automatic.wizard"].create({
            "partner_ids": [Command.set([self.user.partner_id.id, mallory.id])],
            "dst_partner_id": self.user.partner_id.id,
        }).action_merge()
        self.assertFalse(mallory.exists())
        self.assertEqual(comment.sudo().author_id, self.user.partner_id)

    def test_a_trail_author_contact_cannot_be_deleted(self):
        walt = new_test_user(self.env, "walt_writer", "mcp_guard.group_mcp_user", email="walt@example.com")
        comment = self._comment(walt)
        writer = walt.partner_id  # checked before Odoo's own refusal of a user's contact
        for ctx in CONTEXTS:
            with self.subTest(ctx=ctx), self.assertRaisesRegex(UserError, "trail"):
                writer.with_user(self.admin).with_context(**ctx).unlink()
        self.assertEqual(comment.sudo().author_id, writer)
        bystander = self.sys["res.partner"].create({"name": "Bystander"})
        bystander.unlink()
        self.assertFalse(bystander.exists())


@tagged("post_install", "-at_install")
class TestAttack19Arguments(McpGuardCase):
    """An ``odoo_connect`` replacing a connection with ``db`` and the reason repeating its
    password: approvers read the password in the request. The call's own secrets are hidden by
    value in its other arguments and in the reason."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gate_test_tools()

    def test_the_call_s_own_password_is_hidden_in_its_other_fields(self):
        secret = "Zq7vWk3pLx9TrB2m"
        args = {"alias": "prod", "url": "https://erp.example.com", "db": secret,
                "username": f"bot-{secret}", "password": secret, "nested": {"api_key": "k-77xq-4"},
                "note": "key k-77xq-4 here"}
        res = self.file(self.agent, tool="odoo_connect", arguments=args, reason=f"the db is {secret}")
        req = self.Request.with_user(self.approver).browse(res["id"])
        shown = json.dumps(req.read(["arguments", "reason", "display_name"])[0])
        self.assertNotIn(secret, shown)
        self.assertNotIn("k-77xq-4", shown)
        stored = json.loads(req.arguments)
        self.assertEqual(stored["url"], "https://erp.example.com")  # the rest stays readable
        self.assertEqual(req.sudo().arguments_hash, self.digest(args))  # bound to the real call
