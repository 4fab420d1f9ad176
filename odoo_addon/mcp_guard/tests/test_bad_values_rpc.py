"""Outside security tester, values of the wrong kind over RPC: an integer field given text, a
list or a dict, a many2one given a dict, a NUL character in a text field (PostgreSQL refuses
it), a many2many given no list of ids, and ids that are no ids (1.5, True) given to a button's
method answered with a server traceback (TypeError, ValueError, psycopg's error). Each is
refused with one line naming the field (or the ids), nothing stored. Over real JSON-RPC, as a
Manager, one parametrised loop."""

import json

from odoo.tests import HttpCase, new_test_user, tagged

CTX = {"no_reset_password": True}
BAD_INTEGERS = ("x", [1], {"a": 1}, True, 1.5, 2**40)
ONE_LINE_ERRORS = ("odoo.exceptions.UserError", "odoo.exceptions.ValidationError")


@tagged("post_install", "-at_install")
class TestBadValuesOverRpc(HttpCase):
    def setUp(self):
        super().setUp()
        self.manager = new_test_user(self.env, "bv_manager", "mcp_guard.group_mcp_manager", context=CTX,
                                     email="bv.manager@example.org")
        self.agent = new_test_user(self.env, "bv_agent", "mcp_guard.group_mcp_agent", context=CTX,
                                   email="bv.agent@example.org")
        self.rule_id = self.rpc("mcp.tool.rule", "create", [{"name": "bv_tool", "action": "require_approval"}])
        self.conn_id = self.rpc("mcp.connection", "create", [{
            "alias": "bv", "url": "https://erp.example.com", "db": "d", "login": "l"}])

    def rpc(self, model, method, args, kwargs=None):
        """The call's result; an error is returned as ("error", exception name, message)."""
        payload = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "object", "method": "execute_kw",
            "args": [self.env.cr.dbname, self.manager.id, self.manager.login, model, method, args, kwargs or {}]}}
        response = self.url_open("/jsonrpc", data=json.dumps(payload), headers={"Content-Type": "application/json"})
        body = response.json()
        if "error" in body:
            return ("error", body["error"]["data"]["name"], body["error"]["data"]["message"])
        return body["result"]

    def cases(self):
        """(model, method, args, the text the one-line message must name)."""
        rule = {"name": "bv_other", "action": "require_approval"}
        for name in ("approval_quorum", "rate_limit_max"):
            for bad in BAD_INTEGERS:
                yield "mcp.tool.rule", "create", [dict(rule, **{name: bad})], name
                yield "mcp.tool.rule", "write", [[self.rule_id], {name: bad}], name
        for bad in ({"a": 1}, "x", [1], 1.5, -1, 2**40, 999999):
            yield "mcp.tool.rule", "create", [dict(rule, approver_group_id=bad)], "approver_group_id"
            yield "mcp.tool.rule", "write", [[self.rule_id], {"approver_group_id": bad}], "approver_group_id"
        yield "mcp.tool.rule", "create", [dict(rule, name="bv\x00x")], "name"
        yield "mcp.tool.rule", "write", [[self.rule_id], {"name": "bv\x00x"}], "name"
        yield "mcp.tool.rule", "write", [[self.rule_id], {"reason": "r\x00"}], "reason"
        yield "mcp.policy.wizard", "create", [{"document": '{"version": "1"}\x00'}], "document"
        for name in ("rate_limit_max", "rate_limit_window"):
            for bad in BAD_INTEGERS:
                yield "mcp.tool.rate.limit.wizard", "create", [{name: bad}], name
        for bad in ("x", {}, -1, 1.5, [(6, 0, [-1])], [(6, 0, [999999])], [(4, "x")]):
            yield "mcp.connection", "create", [{
                "alias": "bv2", "url": "https://erp.example.com", "db": "d", "login": "l",
                "agent_user_ids": bad}], "agent_user_ids"
        for bad in (1.5, True, "x", {"a": 1}, [True], [1.5]):
            yield "mcp.approval.request", "action_approve", [bad], "ids"
            yield "mcp.approval.request", "action_reject", [bad, "no"], "ids"
            yield "mcp.connection", "action_request_disconnect", [bad], "ids"
            yield "mcp.tool.rule", "write", [bad, {"reason": "r"}], "ids"
        yield "mcp.tool.rule", "write", [[self.rule_id], {"no_such_field": 1}], "no_such_field"
        yield "mcp.tool.rule", "write", [[self.rule_id], "x"], "values"

    def test_bad_values_answer_one_line_naming_the_field(self):
        for model, method, args, named in self.cases():
            with self.subTest(model=model, method=method, args=repr(args)):
                answer = self.rpc(model, method, args)
                self.assertIsInstance(answer, tuple, "the call succeeded")
                _error, name, message = answer
                self.assertIn(name, ONE_LINE_ERRORS, message)
                self.assertNotIn("\n", message.strip())
                self.assertNotIn("Traceback", message)
                self.assertIn(named, message)
        # nothing stored
        self.assertFalse(self.env["mcp.tool.rule"].search([("name", "=", "bv_other")]))
        self.assertFalse(self.env["mcp.connection"].search([("alias", "=", "bv2")]))
        rule = self.env["mcp.tool.rule"].browse(self.rule_id)
        self.assertEqual((rule.name, rule.approval_quorum, rule.rate_limit_max, rule.reason),
                         ("bv_tool", 1, 0, False))

    def test_good_values_still_pass(self):
        """The checks refuse only what is wrong: the same calls with right values succeed."""
        group = self.env.ref("mcp_guard.group_mcp_approver").id
        self.assertTrue(self.rpc("mcp.tool.rule", "write", [[self.rule_id], {
            "approval_quorum": 2, "rate_limit_max": 5, "rate_limit_window": 60, "approver_group_id": group,
            "reason": "fine"}]))
        self.assertIs(self.rpc("mcp.tool.rule", "write", [self.rule_id, {"reason": "a bare id"}]), True)
        wizard = self.rpc("mcp.tool.rate.limit.wizard", "create", [{"rate_limit_max": 3, "rate_limit_window": 9}])
        self.assertIsInstance(wizard, int)
        conn = self.rpc("mcp.connection", "create", [{
            "alias": "bv3", "url": "https://erp.example.com", "db": "d", "login": "l",
            "agent_user_ids": [(6, 0, [self.agent.id])]}])
        self.assertIsInstance(conn, int)
        self.assertEqual(self.env["mcp.connection"].browse(conn).agent_user_ids, self.agent)
