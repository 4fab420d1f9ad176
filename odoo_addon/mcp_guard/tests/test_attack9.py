"""Breaks an outside tester found over XML-RPC (attack 9), one test each, one user per role."""

from datetime import timedelta

from freezegun import freeze_time

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .common import McpGuardCase


@tagged("post_install", "-at_install")
class TestAttack9(McpGuardCase):
    def person_request(self):
        conn = self.Connection.with_user(self.user).create({
            "alias": "b9", "url": "https://erp.example.com", "db": "x", "login": "u"})
        action = conn.with_user(self.user).action_request_disconnect()
        return conn, self.Request.browse(action["res_id"])

    # 05 (A): a pending request past its deadline (the cron has not run) is not decided
    def test_05_expired_pending_request_is_not_approvable(self):
        req = self.Request.browse(self.file(self.agent)["id"])
        with freeze_time(req.expires_at + timedelta(seconds=1)):  # the cron has not run
            with self.assertRaisesRegex(UserError, "expired before anybody decided"):
                req.with_user(self.approver).action_approve()
            with self.assertRaisesRegex(UserError, "expired before anybody decided"):
                req.with_user(self.approver).action_reject()
        self.assertEqual(req.state, "pending")
        self.assertFalse(req.vote_ids)

    # 01 (B): a person's request carried out at approval is bound to its rule
    def test_01_person_request_refused_when_rule_changed(self):
        conn, req = self.person_request()
        self.Rule.search([("name", "=", "odoo_disconnect")]).approval_quorum = 2  # tightened before a decision
        req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "expired")
        self.assertNotEqual(conn.state, "disconnected")
        self.assertTrue(conn.active)
        self.assertIn("has changed since", req.message_ids[0].body)

    # 02 (B): a vote of someone who has left the approver group does not count to the quorum
    def test_02_vote_of_former_approver_does_not_count(self):
        self.Rule.search([("name", "=", "odoo_disconnect")]).approval_quorum = 2
        conn, req = self.person_request()
        req.with_user(self.approver).action_approve()
        group = self.env.ref("mcp_guard.group_mcp_approver")
        field = "group_ids" if "group_ids" in self.approver._fields else "groups_id"
        self.approver.write({field: [(3, group.id)]})
        third = new_test_user(self.env, "mcp_approver3", "mcp_guard.group_mcp_approver",
                              email="mcp_approver3@example.com")
        req.with_user(third).action_approve()
        self.assertEqual(req.state, "pending")
        self.assertNotEqual(conn.state, "disconnected")

    # 03 (C): two accounts that read as one person give one vote
    def test_03_quorum_counts_people_not_accounts(self):
        self.Rule.search([("name", "=", "odoo_disconnect")]).approval_quorum = 2
        req = self.Request.browse(self.file(self.agent)["id"])
        twin = new_test_user(self.env, "mcp_approver_twin", "mcp_guard.group_mcp_approver",
                             name=self.approver.name, email="twin@example.org")
        req.with_user(self.approver).action_approve()
        with self.assertRaisesRegex(UserError, "reads as you has already approved"):
            req.with_user(twin).action_approve()
        self.assertEqual(req.state, "pending")

    # 09 (D): a person filing with file_request under a made-up principal is still the requester;
    # since review 9 (finding 09) a person does not file with file_request at all
    def test_09_person_filing_as_agent_principal_is_compared_as_person(self):
        twin = new_test_user(self.env, "mcp_user_twin", "mcp_guard.group_mcp_approver",
                             name=self.user.name, email="twin9@example.org")
        with self.assertRaisesRegex(AccessError, "MCP Agent user only"):
            self.file(self.user, tool="odoo_x", arguments={}, principal="http:nobody")
        # the person's own request, from the connection's form: compared as that person
        conn, req = self.person_request()
        with self.assertRaisesRegex(AccessError, "reads as you"):
            req.with_user(twin).action_approve()
        self.assertEqual(req.state, "pending")
        self.assertEqual(conn.state, "disconnect_pending")

    # 06 (E): an approver whose name cannot be compared at filing reads as the requester for good
    def test_06_incomparable_name_at_filing_fails_closed(self):
        twin = new_test_user(self.env, "mcp_second6", "mcp_guard.group_mcp_approver",
                             name="Alice\u200bApprover", email="alice6@example.com")
        req = self.Request.browse(self.file(self.agent, principal="http:alice6")["id"])
        twin.write({"name": "Some One", "email": "someone6@example.com"})
        with self.assertRaisesRegex(AccessError, "reads as you"):
            req.with_user(twin).action_approve()
        self.assertEqual(req.state, "pending")
