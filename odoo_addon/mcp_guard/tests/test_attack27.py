"""Outside tester, round 27a.

HIGH-1: a Manager (or the owner of a connection shared with the agent) replaced the agent's
connection without an approval through load(): row 1 wrote the non-stored computed field
in_use_by_agent=False into the ORM's cache, row 2's write read it there and took the change of
URL, login, database or password for a plain Save. MEDIUM-1: the same cache trick in an
administrator's code. write() decides from the stored fields, and a client's value for a computed
field without an inverse is refused in one line.

MEDIUM-2: with a quorum of 2, two approvers approving one request at the same moment each
counted only their own vote, and the request stayed pending for good. Each approval now updates
the request's row first: the second fails with a serialization error, which Odoo's RPC layer
retries, and its retry sees the first vote and completes the quorum."""

import json

from psycopg2 import errors

from odoo import SUPERUSER_ID, api
from odoo.exceptions import UserError
from odoo.tests import HttpCase, TransactionCase, new_test_user, tagged
from odoo.tools import mute_logger

CTX = {"no_reset_password": True, "mail_create_nolog": True}
URL = "https://erp.example.com"
EVIL_URL = "https://attacker.example.com"
PASSWORD = "Sup3rS3cretPW!x"
API_KEY = "APIKEYsecret0123456789abc"
USER_PASSWORD = "ld-user-pass-27"


@tagged("post_install", "-at_install")
class TestLoadReplacement(HttpCase):
    def setUp(self):
        super().setUp()
        self.mia = new_test_user(self.env, "ld_mia", "mcp_guard.group_mcp_manager", context=CTX, password=USER_PASSWORD,
                                 email="ld.mia@example.org")
        self.olga = new_test_user(self.env, "ld_olga", "mcp_guard.group_mcp_user", context=CTX, password=USER_PASSWORD,
                                  email="ld.olga@example.org")
        self.agent = new_test_user(self.env, "ld_agent", "mcp_guard.group_mcp_agent", context=CTX, password=USER_PASSWORD,
                                   email="ld.agent@example.org")
        values = {"url": URL, "db": "erp", "login": "bob", "password": PASSWORD, "api_key": API_KEY}
        Connection = self.env["mcp.connection"]
        self.agents = Connection.with_user(self.agent).create({"alias": "ld-agent", **values})
        self.olgas = Connection.with_user(self.olga).create({
            "alias": "ld-olga", "url": URL, "db": "erp", "login": "bob", "new_password": PASSWORD,
            "new_api_key": API_KEY})
        self.olgas.with_user(self.olga).write({"agent_user_ids": [(4, self.agent.id)]})
        self.plain = Connection.with_user(self.mia).create({"alias": "ld-plain", "url": URL, "db": "erp",
                                                            "login": "bob"})

    def rpc(self, user, model, method, args, kwargs=None):
        """The call's result; an error is returned as ("error", exception name, message)."""
        payload = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "object", "method": "execute_kw",
            "args": [self.env.cr.dbname, user.id, USER_PASSWORD, model, method, args, kwargs or {}]}}
        response = self.url_open("/jsonrpc", data=json.dumps(payload), headers={"Content-Type": "application/json"})
        body = response.json()
        if "error" in body:
            return ("error", body["error"]["data"]["name"], body["error"]["data"]["message"])
        return body["result"]

    def stored(self, conn):
        self.env.invalidate_all()
        self.env.cr.execute("SELECT url, db, login, password, api_key FROM mcp_connection WHERE id=%s", (conn.id,))
        return self.env.cr.fetchone()

    def agent_sees(self, conn):
        found = self.env["mcp.connection"].with_user(self.agent).list_for_agent()
        return [item for item in found if item["alias"] == conn.alias]

    CHANGES = (
        (("url",), (URL,), (EVIL_URL,)),
        (("login",), ("bob",), ("eve",)),
        (("db",), ("erp",), ("otherdb",)),
        (("new_password",), ("",), ("attacker-pw-123",)),
        (("url", "new_password"), (URL, ""), (EVIL_URL, "attacker-pw-123")),
    )

    def test_load_cannot_replace_an_agents_connection(self):
        for user, conn in ((self.mia, self.agents), (self.mia, self.olgas), (self.olga, self.olgas)):
            before, seen = self.stored(conn), self.agent_sees(conn)
            for names, same, new in self.CHANGES:
                with self.subTest(user=user.login, conn=conn.alias, fields=names):
                    columns = [".id", "in_use_by_agent", *names]
                    rows = [[str(conn.id), "False", *same], [str(conn.id), "False", *new]]
                    with mute_logger("odoo.sql_db", "odoo.models"):
                        answer = self.rpc(user, "mcp.connection", "load", [columns, rows])
                    self.assertNotIn("AccessDenied", str(answer))
                    if isinstance(answer, dict):
                        self.assertFalse(answer["ids"], answer)
                        self.assertTrue(answer["messages"], answer)
                    self.assertEqual(self.stored(conn), before)
                    self.assertEqual(self.agent_sees(conn), seen)
                    self.assertFalse(self.env["mcp.approval.request"].sudo().search_count(
                        [("connection_id", "=", conn.id)]))
                # without the computed column: the change of a connection an agent uses is refused
                with self.subTest(user=user.login, conn=conn.alias, plain_load=True):
                    with mute_logger("odoo.sql_db", "odoo.models"):
                        answer = self.rpc(user, "mcp.connection", "load", [[".id", "url"], [[str(conn.id), EVIL_URL]]])
                    self.assertNotIn("AccessDenied", str(answer))
                    self.assertTrue(isinstance(answer, tuple) or answer["messages"], answer)
                    self.assertEqual(self.stored(conn), before)

    def test_computed_fields_are_refused_in_one_line(self):
        for name, value in (("in_use_by_agent", False), ("can_edit", True), ("has_password", True)):
            with self.subTest(field=name):
                answer = self.rpc(self.mia, "mcp.connection", "write", [[self.plain.id], {name: value}])
                self.assertIsInstance(answer, tuple, "the write succeeded")
                _error, exception, message = answer
                self.assertEqual(exception, "odoo.exceptions.UserError", message)
                self.assertIn(f"{name} is computed: it cannot be written", message)
                self.assertNotIn("\n", message.strip())
                answer = self.rpc(self.mia, "mcp.connection", "create", [{
                    "alias": "ld-new", "url": URL, "db": "erp", "login": "bob", name: value}])
                self.assertIsInstance(answer, tuple, "the create succeeded")
                self.assertIn(f"{name} is computed: it cannot be written", answer[2])
        answer = self.rpc(self.mia, "mcp.connection", "load", [[".id", "in_use_by_agent"],
                                                               [[str(self.plain.id), "False"]]])
        self.assertFalse(answer["ids"], answer)
        self.assertIn("in_use_by_agent is computed: it cannot be written", answer["messages"][0]["message"])
        self.assertFalse(self.env["mcp.connection"].search_count([("alias", "=", "ld-new")]))

    def test_ordinary_load_of_a_connection_no_agent_uses(self):
        answer = self.rpc(self.mia, "mcp.connection", "load", [
            [".id", "url", "login", "new_password"], [[str(self.plain.id), "https://new.example.com", "eve", "pw-9"]]])
        self.assertEqual((answer["ids"], answer["messages"]), ([self.plain.id], []), answer)
        self.assertEqual(self.stored(self.plain), ("https://new.example.com", "erp", "eve", "pw-9", None))
        # and a write of the same by the owner
        self.assertIs(self.rpc(self.mia, "mcp.connection", "write", [[self.plain.id], {"db": "other"}]), True)
        self.assertEqual(self.stored(self.plain)[1], "other")

    def test_admin_code_cannot_poison_the_cache(self):
        """MEDIUM-1: an administrator's server-action code (ORM only) puts False for the computed
        field, and for agent_bound, into the cache, then writes: refused, the row unchanged."""
        admin = self.env.ref("base.user_admin")
        for conn in (self.agents, self.olgas):
            before = self.stored(conn)
            rec = conn.with_user(admin)
            cache = rec.env.cache
            for poisoned in (("in_use_by_agent",), ("in_use_by_agent", "agent_bound")):
                for vals in ({"url": EVIL_URL}, {"login": "eve"}, {"db": "otherdb"}, {"new_password": "x-pw-123"}):
                    with self.subTest(conn=conn.alias, poisoned=poisoned, vals=vals):
                        rec.env.invalidate_all()
                        self.assertTrue(rec.in_use_by_agent)  # in the cache, then overwritten there
                        for name in poisoned:
                            cache.set(rec, rec._fields[name], False)
                        with self.assertRaisesRegex(UserError, "is used by an agent"), self.env.cr.savepoint():
                            rec.write(vals)
                        self.assertEqual(self.stored(conn), before)
            rec.env.invalidate_all()
            with self.assertRaisesRegex(UserError, "in_use_by_agent is computed: it cannot be written"):
                rec.in_use_by_agent = False
            self.assertTrue(rec.in_use_by_agent)


@tagged("post_install", "-at_install")
class TestQuorumConcurrency(TransactionCase):
    """MEDIUM-2: two approvers approve a request with a quorum of 2 at the same moment."""

    def setUp(self):
        super().setUp()
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            users = {}
            # users are archived, not removed, after each test: each test has its own
            tag = self._testMethodName.split("_")[1]
            for login, group in (("q27_alice", "mcp_guard.group_mcp_approver"),
                                 ("q27_mia", "mcp_guard.group_mcp_approver"),
                                 ("q27_agent", "mcp_guard.group_mcp_agent"),
                                 ("q27_person", "mcp_guard.group_mcp_user")):
                users[login] = new_test_user(env, f"{login}_{tag}", group, context=CTX,
                                             name=f"{login} {tag}".replace("_", " ").title(),
                                             email=f"{login}.{tag}@example.org")
            users["q27_person"].mcp_principals = f"q27-bot-{tag}"
            rule = env["mcp.tool.rule"].create({"name": "race_q27", "action": "require_approval",
                                                "approval_quorum": 2})
            filed = env["mcp.approval.request"].with_user(users["q27_agent"]).file_request(
                "race_q27", {"x": 1}, f"q27-bot-{tag}", "race", server="mcp-test-server")
            # two real transactions must see the data: committed here, removed in _cleanup
            cr.commit()  # pylint: disable=invalid-commit
        self.user_ids = {login: user.id for login, user in users.items()}
        self.rule_id, self.req_id = rule.id, filed["id"]
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        with self.env.registry.cursor() as cr:
            for model, table, rec_id in (("mcp.approval.request", "mcp_approval_request", self.req_id),
                                         ("mcp.tool.rule", "mcp_tool_rule", self.rule_id)):
                cr.execute("DELETE FROM mail_activity WHERE res_model=%s AND res_id=%s", (model, rec_id))
                cr.execute("DELETE FROM mail_message WHERE model=%s AND res_id=%s", (model, rec_id))
                cr.execute("DELETE FROM mail_followers WHERE res_model=%s AND res_id=%s", (model, rec_id))
                cr.execute("DELETE FROM %s WHERE id=%%s" % table, (rec_id,))  # pylint: disable=sql-injection
            env = api.Environment(cr, SUPERUSER_ID, {})
            # the audit trail keeps who filed: those users are archived, not removed
            users = env["res.users"].with_context(active_test=False).browse(list(self.user_ids.values()))
            users.write({"active": False, "mcp_principals": False})
            cr.commit()  # pylint: disable=invalid-commit
        self.env.registry.clear_cache()

    def _approve(self, env):
        return env["mcp.approval.request"].browse(self.req_id).action_approve()

    def _state(self):
        with self.env.registry.cursor() as cr:
            cr.execute("SELECT state FROM mcp_approval_request WHERE id=%s", (self.req_id,))
            state = cr.fetchone()[0]
            cr.execute("SELECT user_id FROM mcp_approval_vote WHERE request_id=%s ORDER BY id", (self.req_id,))
            return state, [row[0] for row in cr.fetchall()]

    def _race(self, first_uid, second_uid):
        """Both transactions have their snapshot before either approves; the first commits, the
        second fails with a serialization error (what Odoo's RPC layer retries) and is retried.
        Returns the retry's exception, or None."""
        with self.env.registry.cursor() as cr1, self.env.registry.cursor() as cr2:
            env1 = api.Environment(cr1, first_uid, {})
            env2 = api.Environment(cr2, second_uid, {})
            for env in (env1, env2):
                request = env["mcp.approval.request"].browse(self.req_id)
                self.assertEqual((request.state, request.approval_count), ("pending", 0))
            self._approve(env1)
            cr1.commit()  # pylint: disable=invalid-commit
            with self.assertRaises(errors.SerializationFailure), mute_logger("odoo.sql_db"):
                self._approve(env2)
            cr2.rollback()
            env2.invalidate_all()
            try:
                self._approve(env2)
            except UserError as exc:
                cr2.rollback()
                return exc
            cr2.commit()  # pylint: disable=invalid-commit
        return None

    def test_two_approvers_at_once_reach_the_quorum(self):
        problem = self._race(self.user_ids["q27_alice"], self.user_ids["q27_mia"])
        self.assertIsNone(problem)
        self.assertEqual(self._state(), ("approved", [self.user_ids["q27_alice"], self.user_ids["q27_mia"]]))

    def test_one_approver_twice_does_not(self):
        problem = self._race(self.user_ids["q27_alice"], self.user_ids["q27_alice"])
        self.assertIn("You have already approved", str(problem))
        self.assertEqual(self._state(), ("pending", [self.user_ids["q27_alice"]]))
