"""Outside security tester, LOW: an administrator duplicating a connection (copy() over RPC, the
form's Duplicate, a server action calling copy) got PostgreSQL's IntegrityError text (the alias
is unique per owner among the connections in use). Duplicate now gives the copy a free alias
(prod-copy, prod-copy-2, ...; within the alias rule), shares it with no agent and carries no
secret; a copy, create or write with an alias in use is refused in one line naming the alias.
Over real JSON-RPC."""

import json

from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.mcp_guard.models.policy_core import alias_problem

CTX = {"no_reset_password": True}
ONE_LINE_ERRORS = ("odoo.exceptions.ValidationError", "odoo.exceptions.UserError")


@tagged("post_install", "-at_install")
class TestDuplicateConnectionOverRpc(HttpCase):
    def setUp(self):
        super().setUp()
        self.agent = new_test_user(self.env, "dup_agent", "mcp_guard.group_mcp_agent", context=CTX,
                                   email="dup.agent@example.org")
        self.olga = new_test_user(self.env, "dup_olga", "mcp_guard.group_mcp_user", context=CTX,
                                  email="dup.olga@example.org")
        self.admin = self.env.ref("base.user_admin")
        self.admin.password = "admin-dup"
        self.passwords = {self.admin: "admin-dup", self.olga: "dup_olga", self.agent: "dup_agent"}
        # an administrator's connection, with both secrets, shared with the agent
        self.prod = self.rpc(self.admin, "mcp.connection", "create", [{
            "alias": "prod", "url": "https://erp.example.com", "db": "d", "login": "l",
            "new_password": "s3cret-pw", "new_api_key": "k-123",
            "agent_user_ids": [(6, 0, [self.agent.id])]}])
        self.assertIsInstance(self.prod, int)
        self.Connection = self.env["mcp.connection"].sudo()

    def rpc(self, user, model, method, args, kwargs=None):
        """The call's result; an error is returned as ("error", exception name, message)."""
        payload = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "object", "method": "execute_kw",
            "args": [self.env.cr.dbname, user.id, self.passwords[user], model, method, args, kwargs or {}]}}
        response = self.url_open("/jsonrpc", data=json.dumps(payload), headers={"Content-Type": "application/json"})
        body = response.json()
        if "error" in body:
            return ("error", body["error"]["data"]["name"], body["error"]["data"]["message"])
        return body["result"]

    def assertRefusedNaming(self, answer, alias):
        self.assertIsInstance(answer, tuple, f"the call answered {answer!r}")
        _error, name, message = answer
        self.assertIn(name, ONE_LINE_ERRORS, message)
        self.assertNotIn("\n", message.strip())
        self.assertNotIn("duplicate key", message)
        self.assertIn(alias, message)

    def test_duplicate_gets_a_free_alias_no_agent_no_secret(self):
        first = self.rpc(self.admin, "mcp.connection", "copy", [self.prod])
        self.assertIsInstance(first, list, first)
        second = self.rpc(self.admin, "mcp.connection", "copy", [self.prod])
        self.assertIsInstance(second, list, second)
        copies = self.Connection.browse(first + second)
        self.assertEqual(copies.mapped("alias"), ["prod-copy", "prod-copy-2"])
        for copy in copies:
            self.assertEqual((copy.url, copy.db, copy.login, copy.owner_id), ("https://erp.example.com", "d", "l",
                                                                              self.admin))
            self.assertFalse(copy.agent_user_ids, "the copy is shared with no agent")
            self.assertFalse(copy.agent_bound)
            self.assertFalse(copy.password or copy.api_key, "the copy carries no secret")
            self.assertEqual((copy.state, copy.active), ("connected", True))
        # the agent's list is unchanged: only the original
        agent_list = self.rpc(self.agent, "mcp.connection", "list_for_agent", [])
        self.assertEqual([item["alias"] for item in agent_list], ["prod"])

    def test_duplicate_of_a_long_alias_stays_within_the_rule(self):
        alias = "a" * 64
        conn = self.rpc(self.admin, "mcp.connection", "create", [{
            "alias": alias, "url": "https://erp.example.com", "db": "d", "login": "l"}])
        aliases = []
        for _ in range(2):
            copied = self.rpc(self.admin, "mcp.connection", "copy", [conn])
            self.assertIsInstance(copied, list, copied)
            aliases.append(self.Connection.browse(copied).alias)
        self.assertEqual(len(set(aliases)), 2)
        for new in aliases:
            self.assertIsNone(alias_problem(new), new)

    def test_duplicate_by_a_server_action(self):
        action = self.env["ir.actions.server"].create({
            "name": "Duplicate a connection", "model_id": self.env["ir.model"]._get_id("mcp.connection"),
            "state": "code", "code": "record.copy()"})
        self.rpc(self.admin, "ir.actions.server", "run", [[action.id]],
                 {"context": {"active_model": "mcp.connection", "active_id": self.prod,
                              "active_ids": [self.prod]}})
        self.assertTrue(self.Connection.search([("alias", "=", "prod-copy")]))

    def test_alias_in_use_refused_in_one_line(self):
        other = self.rpc(self.admin, "mcp.connection", "create", [{
            "alias": "other", "url": "https://erp.example.com", "db": "d", "login": "l"}])
        self.assertIsInstance(other, int, other)
        self.assertRefusedNaming(self.rpc(self.admin, "mcp.connection", "copy", [self.prod], {
            "default": {"alias": "prod"}}), "prod")
        self.assertRefusedNaming(self.rpc(self.admin, "mcp.connection", "create", [{
            "alias": "prod", "url": "https://erp.example.com", "db": "d", "login": "l"}]), "prod")
        self.assertRefusedNaming(self.rpc(self.admin, "mcp.connection", "write", [[other], {"alias": "prod"}]),
                                 "prod")
        self.assertEqual(self.Connection.search_count([("alias", "=", "prod")]), 1)
        # another owner may use the same alias (unique per owner): olga's own prod
        self.assertIsInstance(self.rpc(self.olga, "mcp.connection", "create", [{
            "alias": "prod", "url": "https://erp.example.com", "db": "d", "login": "l"}]), int)
        # and her Duplicate is hers, with a free alias of her own
        olga_prod = self.Connection.search([("alias", "=", "prod"), ("owner_id", "=", self.olga.id)])
        copied = self.rpc(self.olga, "mcp.connection", "copy", [olga_prod.id])
        self.assertIsInstance(copied, list, copied)
        self.assertEqual(self.Connection.browse(copied).alias, "prod-copy")
