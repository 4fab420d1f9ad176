"""Outside security tester, LOW: a search, a read_group (formatted_read_group on 19.0) or an
``order`` on a write-only secret field (mcp.connection's new_password and new_api_key,
computed and not stored) answered with the ORM's traceback ("not stored", ValueError). The
stored secrets (mcp.connection's password and api_key, a change request's new secrets) must
not act as an oracle either: a domain ``[("password", "=", guess)]`` would tell a guess right.
Each such query is refused, for every role, with one line naming the field, before any SQL:
the answer is the same whatever the secrets are. Over real JSON-RPC, as each role."""

import json

from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.mcp_guard.models.compat import SERIES

CTX = {"no_reset_password": True}
ONE_LINE_ERRORS = ("odoo.exceptions.UserError", "odoo.exceptions.AccessError")
SECRETS = {
    "mcp.connection": ("new_password", "new_api_key", "password", "api_key"),
    "mcp.approval.request": ("new_password", "new_api_key", "new_url", "new_db", "new_login"),
}


@tagged("post_install", "-at_install")
class TestSecretQueriesOverRpc(HttpCase):
    def setUp(self):
        super().setUp()
        self.users = {
            "agent": new_test_user(self.env, "sq_agent", "mcp_guard.group_mcp_agent", context=CTX,
                                   email="sq.agent@example.org"),
            "alice": new_test_user(self.env, "sq_alice", "mcp_guard.group_mcp_approver", context=CTX,
                                   email="sq.alice@example.org"),
            "olga": new_test_user(self.env, "sq_olga", "mcp_guard.group_mcp_user", context=CTX,
                                  email="sq.olga@example.org"),
            "mia": new_test_user(self.env, "sq_mia", "mcp_guard.group_mcp_manager", context=CTX,
                                 email="sq.mia@example.org"),
        }
        # new_test_user's password: the login, padded to 8 characters with x
        self.passwords = {name: user.login.ljust(8, "x") for name, user in self.users.items()}
        admin = self.env.ref("base.user_admin")
        admin.password = "admin-sq"
        self.users["admin"], self.passwords["admin"] = admin, "admin-sq"
        # olga's connection, with both secrets set (write-only, as the form sets them)
        self.conn_id = self.rpc("olga", "mcp.connection", "create", [{
            "alias": "sq", "url": "https://erp.example.com", "db": "d", "login": "l",
            "new_password": "s3cret-pw", "new_api_key": "k-123"}])
        self.assertIsInstance(self.conn_id, int)

    def rpc(self, who, model, method, args, kwargs=None):
        """The call's result; an error is returned as ("error", exception name, message)."""
        user = self.users[who]
        payload = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "object", "method": "execute_kw",
            "args": [self.env.cr.dbname, user.id, self.passwords[who], model, method, args, kwargs or {}]}}
        response = self.url_open("/jsonrpc", data=json.dumps(payload), headers={"Content-Type": "application/json"})
        body = response.json()
        if "error" in body:
            return ("error", body["error"]["data"]["name"], body["error"]["data"]["message"])
        return body["result"]

    def queries(self, model, field):
        """(method, args, kwargs) of each query that searches, groups or sorts by ``field``."""
        yield "search", [[(field, "=", "s3cret-pw")]], {}
        yield "search_count", [[(field, "!=", False)]], {}
        yield "search_read", [[(field, "=like", "s3%")]], {"fields": ["id"]}
        yield "search_read", [["|", ("id", "=", 0), "!", (field, "=", False)]], {"fields": ["id"]}
        yield "search", [[]], {"order": field}
        yield "search", [[]], {"order": f"id, {field} desc"}
        yield "read_group", [[], ["id:count"], [field]], {}
        yield "read_group", [[], [f"{field}:count_distinct"], ["id"]], {}
        yield "read_group", [[], ["id:count"], ["id"]], {"orderby": field}
        if SERIES >= 19:
            yield "formatted_read_group", [[]], {"groupby": [field]}
            yield "formatted_read_group", [[]], {"groupby": ["id"], "aggregates": [f"{field}:count_distinct"]}
        if model == "mcp.connection" and field == "password":
            # from the connection to its requests' secrets
            yield "search", [[("request_ids.new_password", "=", "s3cret-pw")]], {}
        if model == "mcp.approval.request":
            # through the request's link to the connection
            yield "search", [[(f"connection_id.{SECRETS['mcp.connection'][2]}", "=", "s3cret-pw")]], {}
            yield "search", [[("connection_id", "any", [("new_password", "=", "x")])]], {}

    def test_secret_fields_refused_in_one_line(self):
        for who in self.users:
            for model, fields in SECRETS.items():
                for field in fields:
                    for method, args, kwargs in self.queries(model, field):
                        with self.subTest(who=who, model=model, method=method, args=repr(args), kwargs=kwargs):
                            answer = self.rpc(who, model, method, args, kwargs)
                            self.assertIsInstance(answer, tuple, f"the query answered {answer!r}")
                            _error, name, message = answer
                            self.assertIn(name, ONE_LINE_ERRORS, message)
                            self.assertNotIn("\n", message.strip())
                            self.assertNotIn("Traceback", message)
                            self.assertIn("cannot be searched, grouped or sorted", message)

    def test_other_fields_still_searched(self):
        """The check refuses only the secrets: the same queries on other fields succeed."""
        self.assertEqual(self.rpc("olga", "mcp.connection", "search", [[("alias", "=", "sq")]]), [self.conn_id])
        self.assertEqual(self.rpc("mia", "mcp.connection", "search", [[("alias", "=", "sq")]],
                                  {"order": "alias desc, id"}), [self.conn_id])
        self.assertEqual(self.rpc("olga", "mcp.connection", "search_read", [[("login", "=", "l")]],
                                  {"fields": ["alias"]})[0]["alias"], "sq")
        groups = self.rpc("mia", "mcp.connection", "read_group", [[], ["id:count"], ["owner_id"]])
        self.assertIsInstance(groups, list)
        self.assertIsInstance(self.rpc("alice", "mcp.approval.request", "search",
                                       [[("connection_id.alias", "=", "sq")]]), list)
        if SERIES >= 19:
            self.assertIsInstance(self.rpc("mia", "mcp.connection", "formatted_read_group", [[]],
                                           {"groupby": ["owner_id"]}), list)
        # the add-on's own reading of the secrets is untouched: the agent lists them
        self.assertEqual(self.rpc("agent", "mcp.connection", "list_for_agent", []), [])
