"""Regression tests of an outside tester's black-box findings, over XML-RPC as each role."""

from datetime import datetime, timedelta, timezone
from xmlrpc.client import Fault

from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.mcp_guard.models.mcp_guard_common import URL_CREDENTIALS_MESSAGE, arguments_hash

from .common import SERVER


def iso(moment):
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@tagged("post_install", "-at_install")
class TestRpcAttacks(HttpCase):

    def setUp(self):
        super().setUp()
        ctx = {"no_reset_password": True}
        self.agent_user = new_test_user(self.env, "atk_agent", "mcp_guard.group_mcp_agent", context=ctx)
        self.approver = new_test_user(self.env, "atk_approver", "mcp_guard.group_mcp_approver", context=ctx)
        self.approver2 = new_test_user(self.env, "atk_approver2", "mcp_guard.group_mcp_approver", context=ctx)
        self.manager = new_test_user(self.env, "atk_manager", "mcp_guard.group_mcp_manager", context=ctx)
        self.user = new_test_user(self.env, "atk_user", "mcp_guard.group_mcp_user", context=ctx)
        # the person the agent's principals act for (a request nobody's principal cannot be approved)
        new_test_user(self.env, "atk_person", "mcp_guard.group_mcp_user", context=ctx,
                      email="atk.person@example.org", mcp_principals="agent, uma")
        self.db = self.env.cr.dbname

    def call_as(self, login, model, method, *args, **kwargs):
        uid = self.xmlrpc_common.authenticate(self.db, login, login, {})
        return self.xmlrpc_object.execute_kw(self.db, uid, login, model, method, list(args), kwargs)

    def as_agent(self, model, method, *args, **kwargs):
        return self.call_as("atk_agent", model, method, *args, **kwargs)

    def urls(self, alias):
        """The URLs of the connections in use under ``alias`` (an ended one is archived)."""
        return self.env["mcp.connection"].sudo().search([("alias", "=", alias)]).mapped("url")

    def approved_request(self, tool, arguments, requester="atk_agent"):
        filed = self.call_as(requester, "mcp.approval.request", "file_request", tool, arguments, "agent", "r", server=SERVER)
        self.call_as("atk_approver", "mcp.approval.request", "action_approve", [filed["id"]])
        return filed

    # --- 05: a replacement is one operation bound to the approved values -------------------

    def test_05_replacement_bound_to_approved_values(self):
        base = {"alias": "r05", "db": "erp", "login": "bot", "protocol": "xmlrpc"}
        self.as_agent("mcp.connection", "upsert_from_agent", dict(base, url="https://prod.example.com", password="p"))
        approved = {"alias": "r05", "url": "https://approved.example.com", "db": "erp", "username": "bot",
                    "password": "new-pw"}
        filed = self.approved_request("odoo_connect", approved)
        digest = arguments_hash(approved)
        # consuming without the call's values (the old two-step) or with other values: refused
        forged = dict(approved, url="https://attacker.example.net")
        for extra in ((), (forged,), ({"alias": "r05"},)):
            answer = self.as_agent("mcp.approval.request", "consume", filed["id"], "odoo_connect", digest, *extra, server=SERVER)
            self.assertFalse(answer["ok"], extra)
        self.assertEqual(self.urls("r05"), ["https://prod.example.com"])
        answer = self.as_agent("mcp.approval.request", "consume", filed["id"], "odoo_connect", digest, approved, server=SERVER)
        self.assertTrue(answer["ok"], answer)
        self.assertEqual(self.urls("r05"), ["https://approved.example.com"])
        # the old one ended in the same consumption: archived, disconnected, its secrets wiped
        ended = self.env["mcp.connection"].sudo().with_context(active_test=False).search(
            [("alias", "=", "r05"), ("active", "=", False)])
        self.assertEqual([(c.url, c.state, c.password) for c in ended],
                         [("https://prod.example.com", "disconnected", False)])
        listed = self.as_agent("mcp.connection", "list_for_agent")
        self.assertEqual([(c["url"], c["password"]) for c in listed if c["alias"] == "r05"],
                         [("https://approved.example.com", "new-pw")])
        # the attacker's upsert that used to follow finds the alias taken
        with self.assertRaises(Fault):
            self.as_agent("mcp.connection", "upsert_from_agent", dict(base, url="https://attacker.example.net"))
        self.assertEqual(self.urls("r05"), ["https://approved.example.com"])

    # --- 02: server-action code and the ORM's private _write ------------------------------

    def run_code(self, code, record_id):
        model_id = self.env["ir.model"]._get_id("mcp.connection")
        action = self.call_as("admin", "ir.actions.server", "create",
                              {"name": "f02", "model_id": model_id, "state": "code", "code": code})
        ctx = {"active_model": "mcp.connection", "active_id": record_id, "active_ids": [record_id]}
        return self.call_as("admin", "ir.actions.server", "run", [action], context=ctx)

    def test_02_private_write_cannot_end_or_self_approve(self):
        conn_id = self.call_as("admin", "mcp.connection", "create",
                               {"alias": "f02", "url": "https://erp.example.com", "db": "e", "login": "l"})
        for code in ('records._write({"active": False})', 'records._write({"state": "disconnect_pending"})',
                     'records._write_multi([{"active": False}])'):
            with self.assertRaises(Fault, msg=code):
                self.run_code(code, conn_id)
        conn = self.env["mcp.connection"].browse(conn_id)
        self.assertEqual((conn.active, conn.state), (True, "connected"))

        # file_request is the agent's alone, administrators included (review 9, finding 09):
        # the administrator asks from the connection's form
        with self.assertRaises(Fault) as refused:
            self.call_as("admin", "mcp.approval.request", "file_request", "odoo_disconnect",
                         {"alias": "f02"}, "admin", "mine", server=SERVER)
        self.assertIn("file_request is for the MCP Agent user only", refused.exception.faultString)
        self.assertNotIn("Traceback", refused.exception.faultString)
        action = self.call_as("admin", "mcp.connection", "action_request_disconnect", [conn_id])
        filed = {"id": action["res_id"]}
        forge = ('env["mcp.approval.request"].browse(%d).sudo()._write({"state": "approved", "approver_id": %d})'
                 % (filed["id"], self.approver.id))
        with self.assertRaises(Fault):
            self.run_code(forge, conn_id)
        self.assertEqual(self.env["mcp.approval.request"].browse(filed["id"]).state, "pending")
        answer = self.call_as("admin", "mcp.approval.request", "consume", filed["id"], "odoo_disconnect",
                              arguments_hash({"alias": "f02"}), server=SERVER)
        self.assertFalse(answer["ok"])
        self.assertTrue(conn.exists())

    def test_02_consume_rechecks_four_eyes(self):
        for alias, spoil in (
            ("f02b", "UPDATE mcp_approval_request SET approver_id = requester_id WHERE id = %s"),
            ("f02c", None),  # the approver is archived between approval and consumption
        ):
            self.as_agent("mcp.connection", "upsert_from_agent",
                       {"alias": alias, "url": "https://erp.example.com", "db": "e", "login": "l"})
            filed = self.approved_request("odoo_disconnect", {"alias": alias})
            if spoil:
                self.env.cr.execute(spoil, (filed["id"],))
            else:
                self.approver.sudo().active = False
            self.env.invalidate_all()
            answer = self.as_agent("mcp.approval.request", "consume", filed["id"], "odoo_disconnect",
                                arguments_hash({"alias": alias}), server=SERVER)
            self.assertFalse(answer["ok"], alias)
            self.assertEqual(self.urls(alias), ["https://erp.example.com"])

    # --- 03: no credentials in a URL; the reason is redacted ------------------------------

    def test_03_url_credentials_refused_and_reason_redacted(self):
        secret_url = "https://bot:S3cr3t-pw@erp.example.com"
        with self.assertRaises(Fault) as caught:
            self.call_as("atk_user", "mcp.connection", "create",
                         {"alias": "f03", "url": secret_url, "db": "erp", "login": "bot"})
        self.assertIn(URL_CREDENTIALS_MESSAGE, caught.exception.faultString)
        conn_id = self.call_as("atk_user", "mcp.connection", "create",
                               {"alias": "f03", "url": "https://erp.example.com", "db": "erp", "login": "bot"})
        with self.assertRaises(Fault):
            self.call_as("atk_user", "mcp.connection", "write", [conn_id], {"url": secret_url})
        with self.assertRaises(Fault):
            self.as_agent("mcp.connection", "upsert_from_agent",
                       {"alias": "f03b", "url": "https://bot@erp.example.com", "db": "erp", "login": "bot"})
        self.assertEqual(self.urls("f03"), ["https://erp.example.com"])
        self.assertEqual(self.urls("f03b"), [])
        with self.assertRaises(Fault):  # a person asks from the connection's form (review 9, finding 09)
            self.call_as("atk_user", "mcp.approval.request", "file_request", "odoo_disconnect",
                         {"alias": "f03"}, "uma", "cleanup pass=S3cr3t-pw please", server=SERVER)
        # the reason the agent gives is redacted before anybody reads it
        self.as_agent("mcp.connection", "upsert_from_agent",
                      {"alias": "f03c", "url": "https://erp.example.com", "db": "erp", "login": "bot"})
        filed = self.as_agent("mcp.approval.request", "file_request", "odoo_disconnect",
                              {"alias": "f03c"}, "uma", "cleanup pass=S3cr3t-pw please", server=SERVER)
        shown = self.call_as("atk_approver", "mcp.approval.request", "read", [filed["id"]], ["reason"])[0]
        self.assertNotIn("S3cr3t", shown["reason"])
        self.assertIn("cleanup", shown["reason"])

    # --- 08: secrets neither exported nor read back except by the Agent -------------------

    def test_08_secrets_write_only_and_not_exported(self):
        conn_id = self.as_agent("mcp.connection", "create", {
            "alias": "f08", "url": "https://e.example.com", "db": "d", "login": "l",
            "password": "Pw-08", "api_key": "Key-08",
        })
        for login in ("admin", "atk_manager"):
            with self.assertRaises(Fault):
                self.call_as(login, "mcp.connection", "export_data", [conn_id], ["alias", "password", "api_key"])
            try:
                rows = self.call_as(login, "mcp.connection", "search_read", [["id", "=", conn_id]],
                                    fields=["alias", "password", "api_key", "new_password", "new_api_key"])
            except Fault:
                rows = []
            self.assertNotIn("Pw-08", str(rows), login)
            self.assertNotIn("Key-08", str(rows), login)
        # a new secret of a connection the agent uses is a replacement: "Request change"
        with self.assertRaises(Fault):
            self.call_as("atk_manager", "mcp.connection", "write", [conn_id], {"new_password": "Pw-new"})
        # a Manager sets a secret of a person's connection without seeing it; once the owner
        # shares it, the Agent reads it to connect
        mine = self.call_as("atk_user", "mcp.connection", "create", {
            "alias": "f08b", "url": "https://e.example.com", "db": "d", "login": "l", "new_api_key": "Key-08b"})
        self.call_as("atk_manager", "mcp.connection", "write", [mine], {"new_password": "Pw-new"})
        shown = self.call_as("atk_manager", "mcp.connection", "read", [mine], ["new_password"])[0]
        self.assertFalse(shown["new_password"])
        self.call_as("atk_user", "mcp.connection", "write", [mine], {"agent_user_ids": [(4, self.agent_user.id)]})
        listed = {c["alias"]: c for c in self.as_agent("mcp.connection", "list_for_agent")}
        self.assertEqual((listed["f08"]["password"], listed["f08"]["api_key"]), ("Pw-08", "Key-08"))
        self.assertEqual((listed["f08b"]["password"], listed["f08b"]["api_key"]), ("Pw-new", "Key-08b"))

    # --- 07: the audit keeps its own receipt time; event times are bounded -----------------

    def test_07_audit_time_not_forgeable(self):
        now = datetime.now(timezone.utc)

        def event(moment, uid):
            return {"uuid": uid, "time": iso(moment), "principal": "agent", "tool": "odoo_connections",
                    "arguments_hash": "a" * 64, "outcome": "allowed"}

        for moment in (datetime(2019, 1, 1, tzinfo=timezone.utc), now + timedelta(days=1)):
            with self.assertRaises(Fault) as caught:
                self.as_agent("mcp.audit.log", "record_batch", [event(moment, "f07-%s" % moment.year)])
            self.assertIn("Audit event 0: time", caught.exception.faultString)
        with self.assertRaises(Fault):
            self.as_agent("mcp.audit.log", "create", {"uuid": "f07-c", "event_time": "2019-01-01 00:00:00",
                                                   "principal": "alice", "tool": "t", "outcome": "allowed"})
        self.assertEqual(self.as_agent("mcp.audit.log", "record_batch", [event(now - timedelta(hours=1), "f07-ok")]), 1)
        row = self.env["mcp.audit.log"].search([("uuid", "like", "f07-")])
        self.assertEqual(row.mapped("uuid"), ["f07-ok"])
        self.assertTrue(row.create_date)
        self.assertEqual(self.env["mcp.audit.log"].fields_get(["create_date"])["create_date"]["string"], "Received")

    # --- 01: edits of a connection in use are replacements (issue 14) ---------------------

    def test_01_plain_write_does_not_replace_a_connection(self):
        # a person's connection the agent uses (shared with it): a new URL, database or secret
        # is a replacement, refused on Save ("Request change" files it for approval)
        conn_id = self.call_as("admin", "mcp.connection", "create", {
            "alias": "f01", "url": "https://prod.example.com", "db": "prod", "login": "bot",
            "owner_id": self.user.id, "agent_user_ids": [(4, self.agent_user.id)],
        })
        for login, vals in (("atk_user", {"url": "https://attacker.example.net", "db": "evil"}),
                            ("atk_manager", {"new_password": "attacker-pw"})):
            with self.assertRaises(Fault, msg=login) as refusal:
                self.call_as(login, "mcp.connection", "write", [conn_id], vals)
            self.assertIn("Request change", refusal.exception.faultString)
            conn = self.env["mcp.connection"].sudo().browse(conn_id)
            self.assertEqual((conn.url, conn.db, conn.password), ("https://prod.example.com", "prod", False), login)
