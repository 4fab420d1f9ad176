"""Outside round 17: an approval holds only while the rule in force asks for it.

F8: a request for a tool the policy denies, hides or allows is not filed, approved or used
(an agent's file_request and a person's Request disconnect alike). F7: hiding the tool voids an
approval given before (its rule binding covers ``hidden`` and the approval lifetime). F5/F6: a
replacement (an odoo_connect of an existing alias, also its odoo_disconnect: invariant 11) is
decided by approvers of both rules' groups, the larger quorum, the shorter lifetime. F11: the
failure of a removal Odoo itself carried out cannot be reported by the agent."""

from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from odoo.addons.mcp_guard.models.mcp_guard_common import internal_write

from .common import SERVER, McpGuardCase
from .test_catalog import entry

CTX = {"mail_create_nolog": True, "no_reset_password": True}


@tagged("post_install", "-at_install")
class TestAttack17Binding(McpGuardCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.disconnect_rule = cls.env.ref("mcp_guard.rule_odoo_disconnect")
        cls.connect_rule = cls.env.ref("mcp_guard.rule_odoo_connect")
        cls.senior = new_test_user(cls.env, "senior17", "mcp_guard.group_mcp_approver", context=CTX,
                                   name="Senior Seventeen", email="senior17@example.org")
        cls.seniors = cls.env["res.groups"].create({"name": "MCP Seniors 17"})
        cls.seniors.sudo().write({cls._members_field(): [(4, cls.senior.id)]})

    @classmethod
    def _members_field(cls):
        return "user_ids" if "user_ids" in cls.env["res.groups"]._fields else "users"

    def set_rule(self, rule, **values):
        rule.with_user(self.manager).write(values)

    def consume(self, res, tool="odoo_disconnect", arguments=None):
        req = self.Request.browse(res["id"])
        return self.Request.with_user(self.agent).consume(
            res["id"], tool, req.sudo().arguments_hash, arguments, server=SERVER)

    # --- F8: the rule in force must ask for an approval -------------------------------------
    def test_no_request_is_filed_for_a_denied_hidden_or_allowed_tool(self):
        for values, why in (
            ({"action": "deny", "approval_expires_in": 0}, "denies"),
            ({"action": "require_approval", "hidden": True}, "hidden"),
            ({"action": "allow", "approval_expires_in": 0, "hidden": False}, "without approval"),
        ):
            self.set_rule(self.disconnect_rule, **values)
            with self.assertRaisesRegex(UserError, why, msg=values):
                self.file(self.agent)
            self.assertFalse(self.Request.sudo().search([("tool", "=", "odoo_disconnect")]))
            self.assertEqual(self.prod.state, "connected")

    def test_a_tool_its_risk_class_gates_is_filed_as_the_front_end_gates_it(self):
        """A glob's allow that a served tool's risk class raises to require_approval (the
        front-end's decision) still files: Odoo decides with the catalog's class."""
        self.Rule.with_user(self.manager).create({"name": "fs17_*", "action": "allow"})
        with self.assertRaisesRegex(UserError, "without approval"):
            self.file(self.agent, tool="fs17_delete", arguments={"path": "/tmp/x"})
        self.env["mcp.tool"].with_user(self.agent).report_catalog(
            "fs17", [entry("fs17_delete", description="Deletes a file", risk="destructive")])
        res = self.file(self.agent, tool="fs17_delete", arguments={"path": "/tmp/x"})
        self.assertEqual(res["state"], "pending")

    def test_an_approval_is_neither_given_nor_used_once_the_tool_is_denied(self):
        res = self.file(self.agent)
        req = self.Request.browse(res["id"])
        self.set_rule(self.disconnect_rule, action="deny", approval_expires_in=0)
        self.assertIn("denies", req.cannot_approve_reason)
        with self.assertRaisesRegex(UserError, "denies"):
            req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "pending")
        # approved while it asked for approval, then denied: not used, and spent
        self.set_rule(self.disconnect_rule, action="require_approval")
        req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "approved")
        self.set_rule(self.disconnect_rule, action="deny", approval_expires_in=0)
        # as a request filed under the deny rule itself carries it (before this fix): its
        # binding unchanged, the rule in force still refuses it
        with internal_write():
            req.sudo().write({"rule_binding": self.Rule._rule_bindings(["odoo_disconnect"])[0]})
        out = self.consume(res)
        self.assertFalse(out["ok"])
        self.assertEqual(out["state"], "expired")
        self.assertIn("denies", out["message"])
        self.assertTrue(self.prod.active)
        self.assertEqual(self.prod.state, "connected")

    def test_a_persons_disconnect_under_a_denying_rule(self):
        conn = self.Connection.with_user(self.user).create({
            "alias": "p17", "url": "https://erp.example.com", "db": "x", "login": "u"})
        self.set_rule(self.disconnect_rule, action="deny", approval_expires_in=0, hidden=True)
        with self.assertRaisesRegex(UserError, "hidden"):
            conn.with_user(self.user).action_request_disconnect()
        self.set_rule(self.disconnect_rule, action="require_approval", hidden=False)
        req = self.Request.browse(conn.with_user(self.user).action_request_disconnect()["res_id"])
        self.set_rule(self.disconnect_rule, action="deny", approval_expires_in=0, hidden=True)
        with self.assertRaisesRegex(UserError, "hidden"):
            req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "pending")
        self.assertTrue(conn.active)

    # --- F7: hiding the tool voids an approval -----------------------------------------------
    def test_hiding_the_tool_voids_an_approval(self):
        res = self.approved()
        req = self.Request.browse(res["id"])
        before = req.rule_binding
        self.set_rule(self.disconnect_rule, hidden=True)
        self.assertIn("odoo_disconnect", self.Rule.get_policy_document()["policy"]["hide"])
        self.assertNotEqual(self.Rule._rule_bindings(["odoo_disconnect"])[0], before)
        out = self.consume(res)
        self.assertFalse(out["ok"])
        self.assertEqual(out["state"], "expired")
        self.assertTrue(self.prod.active)

    def test_a_changed_approval_lifetime_voids_an_approval(self):
        res = self.approved()
        self.set_rule(self.disconnect_rule, approval_expires_in=60)
        out = self.consume(res)
        self.assertFalse(out["ok"])
        self.assertIn("changed", out["message"])
        self.assertTrue(self.prod.active)

    # --- F5, F6: a replacement is decided under both rules -----------------------------------
    def replacement(self):
        args = {"alias": "prod", "url": "https://evil.example.com", "db": "evil", "username": "mallory"}
        return self.file(self.agent, tool="odoo_connect", arguments=args), args

    def test_a_replacement_needs_approvers_of_both_rules(self):
        self.set_rule(self.disconnect_rule, approver_group_id=self.seniors.id, approval_quorum=2)
        self.set_rule(self.connect_rule, action="require_approval")
        # the control: a removal is the seniors'
        self.assertIn(self.seniors.name, self.Request.browse(self.file(self.agent)["id"]).rule_terms)
        res, args = self.replacement()
        req = self.Request.browse(res["id"])
        self.assertEqual(req.quorum, 2)
        self.assertIn(self.seniors, req._approver_groups())
        self.assertNotIn(self.approver, req._approvers())
        with self.assertRaisesRegex(AccessError, "not in"):
            req.with_user(self.approver).action_approve()
        self.assertFalse(req.vote_ids)
        other = new_test_user(self.env, "senior17b", "mcp_guard.group_mcp_approver", context=CTX,
                              name="Senior Two", email="senior17b@example.org")
        self.seniors.sudo().write({self._members_field(): [(4, other.id)]})
        req.with_user(self.senior).action_approve()
        self.assertEqual(req.state, "pending")
        req.with_user(other).action_approve()
        self.assertEqual(req.state, "approved")
        out = self.consume(res, "odoo_connect", args)
        self.assertTrue(out["ok"], out)

    def test_a_replacement_nobody_may_decide_is_not_filed(self):
        juniors = self.env["res.groups"].create({"name": "MCP Juniors 17"})
        juniors.sudo().write({self._members_field(): [(4, self.approver.id)]})
        self.set_rule(self.disconnect_rule, approver_group_id=self.seniors.id)
        self.set_rule(self.connect_rule, action="require_approval", approver_group_id=juniors.id)
        with self.assertRaisesRegex(UserError, "in each of"):
            self.replacement()
        self.assertFalse(self.Request.sudo().search([("tool", "=", "odoo_connect")]))

    def test_a_replacement_approval_lives_as_long_as_the_shorter_rule_says(self):
        self.set_rule(self.disconnect_rule, approval_expires_in=60)
        self.set_rule(self.connect_rule, action="require_approval", approval_expires_in=2678400)
        res, _args = self.replacement()
        req = self.Request.browse(res["id"])
        self.assertLessEqual(req.expires_at, fields.Datetime.now() + timedelta(seconds=60))
        req.with_user(self.approver).action_approve()
        self.assertLessEqual(req.approval_valid_until - req.decision_date, timedelta(seconds=60))
        self.assertEqual(req.with_user(self.agent)._agent_view()["expires_in"], 60)

    # --- F11: a removal Odoo carried out ------------------------------------------------------
    def test_the_failure_of_a_removal_odoo_carried_out_is_not_reported(self):
        res = self.approved()
        self.assertTrue(self.consume(res)["ok"])
        self.assertEnded(self.prod)
        with self.assertRaisesRegex(UserError, "carried out by Odoo"):
            self.Request.with_user(self.agent).report_failure(res["id"], "nothing was removed")
        req = self.Request.browse(res["id"])
        req.invalidate_recordset()
        self.assertEqual(req.state, "done")
