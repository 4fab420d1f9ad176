from odoo.tests import tagged

from .common import SERVER, McpGuardCase


@tagged("post_install", "-at_install")
class TestNotifications(McpGuardCase):
    """People are told in Odoo; the technical Agent user, which has no mailbox, never is."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # as in production: the technical user has no address (a mail to it only fails)
        cls.agent.partner_id.email = False
        cls.conn = cls.Connection.with_user(cls.user).create({
            "alias": "crm", "url": "https://crm.example.com", "db": "crm", "login": "bot",
            "new_password": "pw-crm", "agent_user_ids": [(4, cls.agent.id)],
        })

    def assertNoMailFailure(self):  # noqa: N802 (unittest naming)
        agent = self.agent.partner_id
        notifications = self.env["mail.notification"].sudo().search([("res_partner_id", "=", agent.id)])
        self.assertFalse(notifications, "a notification for the Agent user")
        failed = self.env["mail.notification"].sudo().search(
            [("notification_status", "in", ("exception", "bounce"))])
        self.assertFalse(failed, [(n.res_partner_id.name, n.failure_type) for n in failed])
        self.assertFalse(self.env["mail.mail"].sudo().search([("state", "=", "exception")]))
        mails = self.env["mail.mail"].sudo().search([("recipient_ids", "in", agent.ids)])
        self.assertFalse(mails, "an email to the Agent user")

    def end_transaction(self):
        """What a commit does to the chatter: the tracking of the changes made so far."""
        self.env.flush_all()
        self.env.cr.flush()

    def messages(self, record):
        record.invalidate_recordset(["message_ids"])  # a message's res_id is no inverse: reread
        return record.sudo().message_ids

    def bodies(self, record):
        return " | ".join(self.messages(record).mapped("body"))

    def test_agent_disconnect_tells_owner_and_approvers_never_the_agent(self):
        res = self.file(self.agent, arguments={"alias": "crm"})
        req = self.Request.browse(res["id"])
        # filing, approving and consuming are three transactions: Odoo tracks no change of a
        # record created in the same transaction
        self.end_transaction()
        # approvers: an activity each; the owner: a message in their inbox
        self.assertIn(self.approver, req.activity_ids.user_id)
        self.assertNotIn(self.agent, req.activity_ids.user_id)
        # the to-do says what is asked in words, not a tool name
        todo = req.sudo().activity_ids.filtered(lambda t: t.user_id == self.approver)
        self.assertEqual(todo.summary, f"Approve {req.name}: {req.summary}")
        self.assertIn("remove connection crm", todo.summary)
        self.assertTrue(req.rule_terms.endswith(", 1 approval"), req.rule_terms)
        filed = self.messages(req).filtered(lambda m: self.user.partner_id in m.notified_partner_ids)
        self.assertTrue(filed, "the owner was not told of the request")
        req.with_user(self.approver).action_approve()
        self.end_transaction()
        self.assertIn(self.user.partner_id, self.messages(req).notified_partner_ids)
        out = self.Request.with_user(self.agent).consume(req.id, "odoo_disconnect", self.digest({"alias": "crm"}), server=SERVER)
        self.assertTrue(out["ok"], out)
        self.assertEnded(self.conn)
        # the chatter has every state change, and which connection was ended
        tracked = self.messages(req).tracking_value_ids.filtered(lambda t: t.field_id.name == "state")
        self.assertIn("Approved", tracked.mapped("new_value_char"))
        bodies = self.bodies(req)
        self.assertIn("Approved → Done", bodies)
        self.assertIn("Connection crm (https://crm.example.com, db crm) was disconnected", bodies)
        # the owner is told that their connection was ended
        ended = self.messages(req).filtered(lambda m: "was disconnected" in (m.body or ""))
        self.assertIn(self.user.partner_id, ended.notified_partner_ids)
        self.assertNoMailFailure()

    def test_person_disconnect_and_rejection_make_no_mail_failure(self):
        req = self.Request.browse(self.conn.with_user(self.user).action_request_disconnect()["res_id"])
        req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "done")
        self.assertIn("was approved by", self.bodies(req))
        self.assertIn("Approved → Done", self.bodies(req))
        other = self.Connection.with_user(self.user).create({
            "alias": "crm2", "url": "https://crm2.example.com", "db": "crm2", "login": "bot",
            "agent_user_ids": [(4, self.agent.id)],
        })
        rejected = self.Request.browse(self.file(self.agent, arguments={"alias": "crm2"})["id"])
        rejected.with_user(self.approver).action_reject("not now")
        self.assertIn(self.user.partner_id, self.messages(rejected).notified_partner_ids)
        self.assertEqual(other.state, "connected")
        self.assertNoMailFailure()

    def test_expiry_at_consumption_is_in_the_chatter(self):
        res = self.approved(arguments={"alias": "crm"})
        req = self.Request.browse(res["id"])
        req.env.cr.execute("UPDATE mcp_approval_request SET expires_at = now() - interval '1 minute' WHERE id = %s",
                           (req.id,))
        req.invalidate_recordset()
        out = self.Request.with_user(self.agent).consume(req.id, "odoo_disconnect", self.digest({"alias": "crm"}), server=SERVER)
        self.assertEqual(out["state"], "expired")
        self.assertIn("Approved → Expired", self.bodies(req))
        self.assertNoMailFailure()
