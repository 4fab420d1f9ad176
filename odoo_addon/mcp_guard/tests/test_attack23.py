"""Outside security tester, round 23, LOW: an approval request's actions (and the reject wizard)
on ids that are no ids, and an odoo_disconnect filed for an alias with a NUL, answered with a
traceback (PostgreSQL's error, a TypeError) instead of one line. Over real JSON-RPC."""

import json

from odoo.tests import HttpCase, new_test_user, tagged

from .common import SERVER

BAD_IDS = ([True], ["x"], [{"a": 1}], [None], [[1]])


@tagged("post_install", "-at_install")
class TestMalformedIdsOneLine(HttpCase):
    def setUp(self):
        super().setUp()
        ctx = {"no_reset_password": True}
        self.approver = new_test_user(self.env, "r23_approver", "mcp_guard.group_mcp_approver", context=ctx)
        self.agent = new_test_user(self.env, "r23_agent", "mcp_guard.group_mcp_agent", context=ctx)

    def rpc(self, user, model, method, args, kwargs=None):
        """The JSON-RPC error's exception name and message, or None when the call succeeds."""
        payload = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "object", "method": "execute_kw",
            "args": [self.env.cr.dbname, user.id, user.login, model, method, args, kwargs or {}]}}
        response = self.url_open("/jsonrpc", data=json.dumps(payload), headers={"Content-Type": "application/json"})
        error = response.json().get("error")
        return (error["data"]["name"], error["data"]["message"]) if error else None

    def assertOneLine(self, answer):  # noqa: N802 (unittest naming)
        self.assertIsNotNone(answer)
        name, message = answer
        self.assertEqual(name, "odoo.exceptions.UserError", message)
        self.assertNotIn("\n", message)
        return message

    def test_request_actions_on_ids_that_are_no_ids(self):
        for bad in BAD_IDS:
            for method, args in (("action_approve", [bad]), ("action_reject", [bad, "no"])):
                with self.subTest(method=method, ids=bad):
                    message = self.assertOneLine(self.rpc(self.approver, "mcp.approval.request", method, args))
                    self.assertIn("takes ids of", message)

    def test_reject_wizard_on_ids_that_are_no_ids(self):
        for bad in ("x", True, None, [1], {"a": 1}):
            with self.subTest(id=bad):
                message = self.assertOneLine(self.rpc(self.approver, "mcp.approval.reject.wizard", "create",
                                                      [{"request_ids": [(6, 0, [bad])], "note": "n"}]))
                self.assertIn("request_ids must hold record ids", message)
        for bad in BAD_IDS:
            with self.subTest(wizard_ids=bad):
                self.assertOneLine(self.rpc(self.approver, "mcp.approval.reject.wizard", "action_confirm", [bad]))

    def test_disconnect_alias_with_nul(self):
        for alias in ("a\x00", "a b", "a\u200bb"):
            with self.subTest(alias=alias):
                message = self.assertOneLine(self.rpc(
                    self.agent, "mcp.approval.request", "file_request",
                    ["odoo_disconnect", {"alias": alias}, "agent-ci", "r", SERVER]))
                self.assertIn("alias must be", message)
