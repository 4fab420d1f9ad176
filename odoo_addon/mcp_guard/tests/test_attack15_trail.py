"""Outside round 15: the trail of a request or a connection forged through mail.message
itself (create, write, tracking values, unlink), around message_post's checks."""

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.mcp_guard.models.identity import find_unsafe
from odoo.addons.mcp_guard.models.mcp_guard_common import TRAIL_MODELS

from .common import SERVER, McpGuardCase
from .test_audit import event
from .test_catalog import entry

APPROVED = "mcp_guard.mt_mcp_request_approved"


@tagged("post_install", "-at_install")
class TestTrailCannotBeForged(McpGuardCase):

    def setUp(self):
        super().setUp()
        self.conn = self.Connection.with_user(self.user).create({
            "alias": "t15", "url": "https://erp.example.com", "db": "x", "login": "u"})
        self.req = self.Request.browse(self.file(self.agent, principal="agent-t15")["id"])
        self.state_field = self.env["ir.model.fields"]._get(self.req._name, "state")
        self.env.flush_all()
        self.env.cr.precommit.run()  # as at the end of the filing's transaction

    def forged(self, record, **extra):
        return dict({
            "model": record._name, "res_id": record.id, "message_type": "notification",
            "author_id": self.approver.partner_id.id, "subtype_id": self.env.ref(APPROVED).id,
            "body": "Request approved by Alice Approver.",
        }, **extra)

    def test_every_trail_model_is_guarded(self):
        self.assertEqual(set(self.env["mcp.guard.chatter"]._inherit_children), TRAIL_MODELS)

    def test_a_message_cannot_be_created_on_a_trail_directly(self):
        tracking = [(0, 0, {"field_id": self.state_field.id, "old_value_char": "Pending",
                            "new_value_char": "Approved"})]
        for user in (self.user, self.agent, self.manager, self.admin):
            Message = self.env["mail.message"].with_user(user)
            for values in (self.forged(self.req), self.forged(self.req, tracking_value_ids=tracking),
                           self.forged(self.conn, author_id=self.admin.partner_id.id, subtype_id=False,
                                       body="Connection t15 was disconnected by request MCPR-1.")):
                before = self.env["mail.message"].sudo().search_count([("model", "=", values["model"])])
                with self.assertRaises(AccessError, msg=f"{user.login} {values}"):
                    Message.create([values])
                after = self.env["mail.message"].sudo().search_count([("model", "=", values["model"])])
                self.assertEqual(after, before)
        self.assertEqual(self.req.state, "pending")

    def test_a_comment_cannot_be_turned_into_a_trail_entry(self):
        comment = self.conn.with_user(self.user).message_post(body="please look")
        self.assertEqual(comment.sudo().author_id, self.user.partner_id)
        elsewhere = self.env["mail.message"].sudo().create({
            "model": "res.partner", "res_id": self.user.partner_id.id, "body": "Request approved",
            "author_id": self.user.partner_id.id, "message_type": "comment"})
        for user in (self.user, self.admin):
            for message, values in (
                (comment, {"author_id": self.admin.partner_id.id}),
                (comment, {"subtype_id": self.env.ref(APPROVED).id, "message_type": "notification"}),
                (comment, {"body": "Connection t15 was disconnected."}),
                (elsewhere, {"model": self.req._name, "res_id": self.req.id}),
            ):
                with self.assertRaises(AccessError, msg=f"{user.login} {values}"):
                    message.with_user(user).write(values)
        self.assertEqual(comment.sudo().author_id, self.user.partner_id)

    def test_tracking_values_and_the_trail_itself_stay_as_written(self):
        self.req.with_user(self.approver).action_approve()
        self.env.flush_all()
        self.env.cr.precommit.run()  # the tracking of the decision
        self.env.invalidate_all()
        self.assertEqual(self.req.state, "approved")
        trail = self.req.sudo().message_ids
        self.assertIn(self.env.ref(APPROVED), trail.subtype_id, [  # the add-on's own trail is written
            (m.subtype_id.name, m.message_type, str(m.body)[:80], m.tracking_value_ids.mapped("new_value_char"))
            for m in trail])
        Tracking = self.env["mail.tracking.value"].with_user(self.admin)
        with self.assertRaises(AccessError):
            Tracking.create([{"field_id": self.state_field.id, "old_value_char": "Rejected",
                              "new_value_char": "Approved", "mail_message_id": trail[0].id}])
        if trail.tracking_value_ids:
            with self.assertRaises(AccessError):
                trail.tracking_value_ids[:1].with_user(self.admin).write({"new_value_char": "Rejected"})
            with self.assertRaises(AccessError):
                trail.tracking_value_ids[:1].with_user(self.admin).unlink()
        with self.assertRaises(AccessError):
            trail.with_user(self.admin).unlink()
        self.assertEqual(self.req.sudo().message_ids, trail)

    def test_people_still_comment_but_do_not_edit_a_comment(self):
        for record in (self.req, self.conn):
            message = record.with_user(self.user).sudo().message_post(body="a question")
            self.assertEqual(message.author_id, self.user.partner_id)
            self.assertEqual(message.message_type, "comment")
        message = self.conn.with_user(self.user).message_post(body="first")
        # not even their own (attack 17, finding 3: test_attack17_trail)
        with self.assertRaises(UserError):
            self.conn.with_user(self.user)._message_update_content(message, body="second")
        self.assertIn("first", str(message.sudo().body))


@tagged("post_install", "-at_install")
class TestApproversReadWhatIsStored(McpGuardCase):
    """A bidi override, a zero-width space or a control character in what an approver reads
    (a connection's url, database or login; a reason) would show other text than the stored
    one: refused wherever it comes in, with the front-end's rule and message."""

    UNSAFE = {
        "url": "https://\u202emoc.elpmaxe.dorp\u202c.attacker.example",
        "db": "d\nowned by Mia Manager",
        "login": "l\u200b",
    }

    def test_a_connection_refuses_unsafe_text(self):
        base = {"alias": "t15u", "url": "https://erp.example.com", "db": "x", "login": "u"}
        for name, value in self.UNSAFE.items():
            with self.assertRaisesRegex(UserError, f"{name} contains"):
                self.Connection.with_user(self.user).create(dict(base, **{name: value}))
        conn = self.Connection.with_user(self.user).create(base)
        for name, value in self.UNSAFE.items():
            with self.assertRaisesRegex(UserError, f"{name} contains"):
                conn.with_user(self.user).write({name: value})
        self.assertEqual((conn.url, conn.db, conn.login), ("https://erp.example.com", "x", "u"))

    def test_a_change_request_refuses_unsafe_text(self):
        Wizard = self.env["mcp.connection.change.wizard"].with_user(self.manager)
        good = {"url": "https://other.example.com", "db": "x", "login": "u", "protocol": "xmlrpc"}
        for name, value in [*self.UNSAFE.items(), ("reason", "ok\u202ex")]:
            wizard = Wizard.create(dict(good, connection_id=self.prod.id, **{name: value}))
            with self.assertRaisesRegex(UserError, f"{name} contains"):
                wizard.action_confirm()
        self.assertFalse(self.Request.search([("connection_id", "=", self.prod.id), ("tool", "=", "odoo_connect")]))

    def test_an_agents_request_refuses_unsafe_text(self):
        with self.assertRaisesRegex(UserError, "reason contains"):
            self.file(self.agent, principal="agent-t15", reason="ok\u202ex\nApproved by Alice Approver")
        connect = {"alias": "new15", "url": "https://n.example.com", "db": "n", "username": "u\x1b[2K"}
        with self.assertRaisesRegex(UserError, "username contains"):
            self.file(self.agent, tool="odoo_connect", arguments=connect, principal="agent-t15")
        # a reason over several lines is still a reason
        request = self.file(self.agent, principal="agent-t15", reason="end it:\n\tno longer used")
        self.assertEqual(self.Request.browse(request["id"]).reason, "end it:\n\tno longer used")


@tagged("post_install", "-at_install")
class TestTrailIsKeptAndReadAsIs(McpGuardCase):
    """Outside round 15c: an administrator who grants himself delete rights erases votes, audit
    rows, requests or pins with ``_force_unlink``; self-chosen names, an audit event's fields and
    a failure note reach approvers with bidi overrides, zero-width spaces or control characters."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gate_test_tools()

    BIDI = "Mia Manager\u202e\u2066 (ok)"

    def grant_unlink(self, model):
        self.env["ir.model.access"].create({
            "name": f"unlink {model}", "model_id": self.env["ir.model"]._get(model).id,
            "group_id": False, "perm_read": True, "perm_unlink": True})

    def test_nothing_of_the_trail_is_deleted_even_with_rights_and_context_keys(self):
        res = self.approved()
        req = self.Request.browse(res["id"])
        self.Audit.with_user(self.agent).record_batch([event()])
        self.env["mcp.tool"].with_user(self.agent).report_catalog("srv15", [entry("read_file")])
        records = {
            "mcp.approval.vote": req.sudo().vote_ids,
            "mcp.audit.log": self.Audit.sudo().search([], limit=1),
            "mcp.approval.request": req,
            "mcp.tool": self.env["mcp.tool"].sudo().search([("server", "=", "srv15")]),
        }
        for model, record in records.items():
            self.assertTrue(record, model)
            self.grant_unlink(model)
            for context in ({}, {"_force_unlink": True}, {"install_mode": True, "module_uninstall": True}):
                with self.assertRaises(AccessError, msg=f"{model} {context}"):
                    record.with_user(self.admin).with_context(**context).unlink()
            self.assertTrue(record.exists(), model)

    def test_audit_rows_are_stored_escaped(self):
        sent = event(principal="olga-bot\u202e\u200b", tool="odoo_disconnect\u202etoh",
                     request_ref="MCPR-1\u200b\u2066", detail="ok\x1b[2K\rApproved by Alice\u202e\nsecond line")
        self.assertEqual(self.Audit.with_user(self.agent).record_batch([sent]), 1)
        row = self.Audit.sudo().search([("uuid", "=", sent["uuid"])])
        for name in ("principal", "tool", "request_ref", "detail"):
            self.assertFalse(find_unsafe(row[name].replace("\n", "")), name)
        self.assertEqual(row.principal, "olga-bot\\u202e\\u200b")
        self.assertEqual(row.detail.split("\n")[1], "second line")
        for uuid in ("\u202e" + "x" * 10, "x" * 20000):
            with self.assertRaisesRegex(UserError, "uuid"):
                self.Audit.with_user(self.agent).record_batch([event(uuid=uuid)])

    def test_a_failure_note_is_shown_escaped(self):
        # a call the front-end runs after consuming (a connection's removal is Odoo's own: F11)
        res = self.approved(tool="odoo_x", arguments={"n": 15})
        self.assertTrue(self.Request.with_user(self.agent).consume(res["id"], "odoo_x", self.digest({"n": 15}), server=SERVER)["ok"])
        note = "timeout\u202e\u200b -- Rejected by Mia Manager"
        self.assertTrue(self.Request.with_user(self.agent).report_failure(res["id"], note))
        bodies = self.Request.browse(res["id"]).sudo().message_ids.mapped("body")
        self.assertTrue(any("timeout\\u202e\\u200b" in str(body) for body in bodies), bodies)
        self.assertFalse(any("\u202e" in str(body) for body in bodies))

    # Odoo's own mail refuses to send as "Olga\nOwner" (a newline in a From header) and logs it
    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_a_self_chosen_name_is_shown_escaped_and_does_not_block_filing(self):
        for name in (self.BIDI, "Olga\nOwner"):
            self.user.with_user(self.user).write({"name": name})
            conn = self.Connection.with_user(self.user).create({
                "alias": f"t15n{len(name)}", "url": "https://erp.example.com", "db": "x", "login": "u"})
            req = self.Request.browse(conn.with_user(self.user).action_request_disconnect()["res_id"])
            self.assertFalse(find_unsafe(req.summary), req.summary)

    def test_a_comment_is_mailed_to_followers(self):
        self.approver.notification_type = "email"
        req = self.Request.browse(self.file(self.agent)["id"])
        req.sudo().message_subscribe(partner_ids=self.approver.partner_id.ids)
        conn = self.Connection.with_user(self.user).create({
            "alias": "t15m", "url": "https://erp.example.com", "db": "x", "login": "u"})
        conn.sudo().message_subscribe(partner_ids=self.approver.partner_id.ids)
        for record in (req.with_user(self.manager), conn.with_user(self.user)):
            message = record.message_post(body="a question", subject="About this", message_type="comment",
                                          subtype_xmlid="mail.mt_comment")
            self.assertEqual(message.sudo().author_id, record.env.user.partner_id)
