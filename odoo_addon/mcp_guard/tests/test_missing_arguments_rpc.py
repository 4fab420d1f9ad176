"""Outside security tester, LOW: a call of one of the add-on's public methods without its
arguments (``execute_kw(db, uid, pw, "mcp.approval.request", "consume", [[1]])``) answered with
the dispatcher's TypeError traceback ("missing 2 required positional arguments"); over JSON-2
(19.0) with the dispatcher's 422. Each such call is refused with one line (a UserError) naming
the method and the arguments it lacks. Over real XML-RPC (both series) and JSON-2 (19.0), as
the role each method is for."""

import json
import xmlrpc.client

from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.mcp_guard.models.compat import SERIES

CTX = {"no_reset_password": True}
# (model, method, who calls it, {argument: value} of a full call, the arguments it cannot go without)
METHODS = (
    ("mcp.approval.request", "consume", "agent",
     {"request_id": 1, "tool": "odoo_disconnect", "arguments_hash": "0" * 64}, ("request_id", "tool", "arguments_hash")),
    ("mcp.approval.request", "report_failure", "agent", {"request_id": 1, "note": "x"}, ("request_id", "note")),
    ("mcp.approval.request", "file_request", "agent",
     {"tool": "odoo_disconnect", "arguments": {"alias": "x"}, "principal": "p", "reason": "r"},
     ("tool", "arguments", "principal", "reason")),
    ("mcp.approval.request", "get_states", "agent", {"request_ids": [1]}, ("request_ids",)),
    ("mcp.audit.log", "record_batch", "agent", {"events": []}, ("events",)),
    ("mcp.connection", "upsert_from_agent", "agent", {"values": {}}, ("values",)),
    ("mcp.tool", "report_catalog", "agent", {"server": "s", "tools": []}, ("server", "tools")),
    ("mcp.tool.rule", "import_policy_document", "mia", {"document": {}}, ("document",)),
)


@tagged("post_install", "-at_install")
class TestMissingArgumentsOverRpc(HttpCase):
    def setUp(self):
        super().setUp()
        self.users = {
            "agent": new_test_user(self.env, "ma_agent", "mcp_guard.group_mcp_agent", context=CTX,
                                   email="ma.agent@example.org"),
            "mia": new_test_user(self.env, "ma_mia", "mcp_guard.group_mcp_manager", context=CTX,
                                 email="ma.mia@example.org"),
        }
        # API keys, as the front-end calls (JSON-2 takes nothing else)
        self.keys = {who: self.env["res.users.apikeys"].with_user(user).sudo()._generate("rpc", "ma", None)
                     for who, user in self.users.items()}
        self.db = self.env.cr.dbname

    def xmlrpc(self, who, model, method, args, kwargs=None):
        """The call's result, or ("fault", its text)."""
        proxy = xmlrpc.client.ServerProxy(self.xmlrpc_url + "object", transport=self.xmlrpc_object("transport"),
                                          allow_none=True)
        try:
            return proxy.execute_kw(self.db, self.users[who].id, self.keys[who], model, method, args, kwargs or {})
        except xmlrpc.client.Fault as fault:
            return ("fault", fault.faultString)

    def json2(self, who, model, method, kwargs):
        """The call's result, or ("error", exception name, message)."""
        response = self.url_open(f"/json/2/{model}/{method}", data=json.dumps(kwargs), headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {self.keys[who]}",
            "X-Odoo-Database": self.db})
        body = response.json()
        if response.status_code >= 400:
            return ("error", body.get("name"), body.get("message"))
        return body

    def assertNamesMissing(self, answer, model, method, missing):  # noqa: N802 (unittest naming)
        self.assertIsInstance(answer, tuple, f"the call answered {answer!r}")
        if answer[0] == "error":  # JSON-2: Odoo's own refusal, not the dispatcher's 422
            self.assertEqual(answer[1], "odoo.exceptions.UserError", answer)
        message = answer[-1]
        self.assertNotIn("Traceback", message)
        self.assertNotIn("\n", message.strip())
        self.assertNotIn("positional argument", message)
        self.assertIn(f"{model}.{method}", message)
        for name in missing:
            self.assertIn(name, message)

    def test_without_arguments(self):
        for model, method, who, full, required in METHODS:
            # nothing at all; then the first argument only (consume [[1]]: request_id is [1])
            for given in (0, 1) if len(required) > 1 else (0,):
                args = [list(full.values())[0]] if given else []
                with self.subTest(model=model, method=method, args=args):
                    self.assertNamesMissing(self.xmlrpc(who, model, method, args), model, method, required[given:])
            if SERIES >= 19:
                with self.subTest(model=model, method=method, over="JSON-2"):
                    self.assertNamesMissing(self.json2(who, model, method, {}), model, method, required)
        # the tester's very call
        answer = self.xmlrpc("agent", "mcp.approval.request", "consume", [[1]])
        self.assertEqual(answer[0], "fault")
        self.assertIn("tool, arguments_hash", answer[1])

    def test_an_argument_left_out_by_name(self):
        for model, method, who, full, required in METHODS:
            for name in required:
                kwargs = {key: value for key, value in full.items() if key != name}
                with self.subTest(model=model, method=method, missing=name):
                    self.assertNamesMissing(self.xmlrpc(who, model, method, [], kwargs), model, method, (name,))
                if SERIES >= 19:
                    with self.subTest(model=model, method=method, missing=name, over="JSON-2"):
                        self.assertNamesMissing(self.json2(who, model, method, kwargs), model, method, (name,))

    def test_full_calls_still_answer(self):
        """Given its arguments, each method answers as before (its own refusal or result)."""
        self.assertEqual(self.xmlrpc("agent", "mcp.approval.request", "get_states", [[1]]), [])
        self.assertEqual(self.xmlrpc("agent", "mcp.audit.log", "record_batch", [[]]), 0)
        answer = self.xmlrpc("agent", "mcp.approval.request", "consume", [1, "odoo_disconnect", "0" * 64])
        self.assertEqual(answer["ok"], False)
        # None given, as before: report_failure's note None is no note
        self.assertIs(self.xmlrpc("agent", "mcp.approval.request", "report_failure", [1, None]), False)
