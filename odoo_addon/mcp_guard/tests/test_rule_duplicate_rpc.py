"""Outside security tester, LOW: a second tool rule for a tool that already has one (create, a
rename, the form's Duplicate) answered with the unique constraint's generic text, which names
no tool. It is refused in one line naming the tool (and saying when the rule in the way is
archived: an import archives the rules it drops). Over real JSON-RPC, as a manager."""

import json

from odoo.tests import HttpCase, new_test_user, tagged

CTX = {"no_reset_password": True}
ONE_LINE_ERRORS = ("odoo.exceptions.ValidationError", "odoo.exceptions.UserError")


@tagged("post_install", "-at_install")
class TestRuleDuplicateOverRpc(HttpCase):
    def setUp(self):
        super().setUp()
        self.mia = new_test_user(self.env, "rd_mia", "mcp_guard.group_mcp_manager", context=CTX,
                                 email="rd.mia@example.org")
        self.Rule = self.env["mcp.tool.rule"].with_context(active_test=False)
        self.first = self.rpc("mcp.tool.rule", "create", [{"name": "odoo_dup_tool", "action": "allow"}])
        self.assertIsInstance(self.first, int, self.first)

    def rpc(self, model, method, args, kwargs=None):
        """The call's result; an error is returned as ("error", exception name, message)."""
        payload = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "object", "method": "execute_kw",
            "args": [self.env.cr.dbname, self.mia.id, "rd_miaxx", model, method, args, kwargs or {}]}}
        response = self.url_open("/jsonrpc", data=json.dumps(payload), headers={"Content-Type": "application/json"})
        body = response.json()
        if "error" in body:
            return ("error", body["error"]["data"]["name"], body["error"]["data"]["message"])
        return body["result"]

    def assertRefusedNaming(self, answer, tool, archived=False):  # noqa: N802 (unittest naming)
        self.assertIsInstance(answer, tuple, f"the call answered {answer!r}")
        _error, name, message = answer
        self.assertIn(name, ONE_LINE_ERRORS, message)
        self.assertNotIn("\n", message.strip())
        self.assertNotIn("duplicate key", message)
        self.assertNotEqual(message.strip(), "There is already a rule for this tool.")
        self.assertIn(tool, message)
        self.assertEqual("archived" in message, archived, message)

    def test_second_rule_for_a_tool_refused_naming_it(self):
        self.assertRefusedNaming(self.rpc("mcp.tool.rule", "create", [{"name": "odoo_dup_tool", "action": "deny"}]),
                                 "odoo_dup_tool")
        # two of them in one create
        self.assertRefusedNaming(self.rpc("mcp.tool.rule", "create", [[
            {"name": "odoo_dup_other", "action": "deny"}, {"name": "odoo_dup_other", "action": "allow"}]]),
            "odoo_dup_other")
        # a rename onto it
        other = self.rpc("mcp.tool.rule", "create", [{"name": "odoo_dup_glob_*", "action": "deny"}])
        self.assertIsInstance(other, int, other)
        self.assertRefusedNaming(self.rpc("mcp.tool.rule", "write", [[other], {"name": "odoo_dup_tool"}]),
                                 "odoo_dup_tool")
        # the form's Duplicate
        self.assertRefusedNaming(self.rpc("mcp.tool.rule", "copy", [self.first]), "odoo_dup_tool")
        self.assertEqual(self.Rule.search_count([("name", "=", "odoo_dup_tool")]), 1)
        self.assertFalse(self.Rule.search([("name", "=", "odoo_dup_other")]))

    def test_an_archived_rule_in_the_way_is_said_so(self):
        self.assertIs(self.rpc("mcp.tool.rule", "write", [[self.first], {"active": False}]), True)
        self.assertRefusedNaming(self.rpc("mcp.tool.rule", "create", [{"name": "odoo_dup_tool", "action": "deny"}]),
                                 "odoo_dup_tool", archived=True)

    def test_other_writes_unaffected(self):
        # a rule's own name, written again, and another field
        self.assertIs(self.rpc("mcp.tool.rule", "write", [[self.first], {"name": "odoo_dup_tool",
                                                                         "reason": "kept"}]), True)
        self.assertIsInstance(self.rpc("mcp.tool.rule", "create", [{"name": "odoo_dup_new", "action": "deny"}]), int)
        # a copy given a name of its own
        copied = self.rpc("mcp.tool.rule", "copy", [self.first], {"default": {"name": "odoo_dup_copy"}})
        self.assertIsInstance(copied, list, copied)
