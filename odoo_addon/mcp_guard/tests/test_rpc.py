from xmlrpc.client import Fault

from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.mcp_guard.models.mcp_guard_common import arguments_hash

from .common import SERVER
from .test_audit import RECENT_ISO
from .test_connection import TRICK_CONTEXTS


@tagged("post_install", "-at_install")
class TestRpcContract(HttpCase):
    """The RPC contract over real XML-RPC, as the front-end uses it: Agent user + API key."""

    def setUp(self):
        super().setUp()
        ctx = {"no_reset_password": True}
        self.agent = new_test_user(self.env, "rpc_agent", "mcp_guard.group_mcp_agent", context=ctx)
        self.approver = new_test_user(self.env, "rpc_approver", "mcp_guard.group_mcp_approver", context=ctx)
        self.manager = new_test_user(self.env, "rpc_manager", "mcp_guard.group_mcp_manager", context=ctx)
        # the person the agent's principal acts for (a request nobody's principal cannot be approved)
        new_test_user(self.env, "rpc_person", "mcp_guard.group_mcp_user", context=ctx,
                      email="rpc.person@example.org", mcp_principals="agent-ci")
        # sudo: a persistent key, as an administrator would issue for the technical user
        self.key = self.env["res.users.apikeys"].with_user(self.agent).sudo()._generate("rpc", "mcp-guard", None)
        self.db = self.env.cr.dbname
        self.uid = self.xmlrpc_common.authenticate(self.db, "rpc_agent", self.key, {})
        self.assertEqual(self.uid, self.agent.id)

    def call(self, model, method, *args, **kwargs):
        return self.xmlrpc_object.execute_kw(self.db, self.uid, self.key, model, method, list(args), kwargs)

    def call_as(self, login, model, method, *args, **kwargs):
        uid = self.xmlrpc_common.authenticate(self.db, login, login, {})
        return self.xmlrpc_object.execute_kw(self.db, uid, login, model, method, list(args), kwargs)

    def test_agent_flow_over_xmlrpc(self):
        policy = self.call("mcp.tool.rule", "get_policy_document")
        self.assertEqual(policy["policy"]["rules"]["odoo_disconnect"]["action"], "require_approval")
        self.assertEqual(policy["policy"]["default"], "deny")
        created = self.call("mcp.connection", "upsert_from_agent", {
            "alias": "prod", "url": "https://erp.example.com", "db": "prod", "login": "bot",
            "password": "pw", "protocol": "xmlrpc",
        })
        self.assertEqual(created, {"alias": "prod", "created": True})
        listed = self.call("mcp.connection", "list_for_agent")
        self.assertEqual(listed[0]["alias"], "prod")
        self.assertEqual(listed[0]["password"], "pw")

        args = {"alias": "prod"}
        filed = self.call("mcp.approval.request", "file_request", "odoo_disconnect", args, "agent-ci", "tidy up", server=SERVER)
        self.assertEqual(filed["state"], "pending")
        self.assertEqual(self.call("mcp.approval.request", "file_request", "odoo_disconnect", args, "agent-ci", "x", server=SERVER),
                         filed)
        # the agent cannot approve its own request, whatever context it sends
        for ctx in [{}] + TRICK_CONTEXTS:
            with self.assertRaises(Fault):
                self.call("mcp.approval.request", "action_approve", [filed["id"]], context=ctx)
        # nor write the state, nor end the connection directly
        with self.assertRaises(Fault):
            self.call("mcp.approval.request", "write", [filed["id"]], {"state": "approved"})
        conn_id = self.env["mcp.connection"].search([("alias", "=", "prod")]).id
        for ctx in TRICK_CONTEXTS:
            with self.assertRaises(Fault):
                self.call("mcp.connection", "unlink", [conn_id], context=ctx)
            with self.assertRaises(Fault):
                self.call_as("rpc_manager", "mcp.connection", "unlink", [conn_id], context=ctx)
            with self.assertRaises(Fault):
                self.call_as("rpc_manager", "mcp.connection", "write", [conn_id], {"active": False}, context=ctx)
            with self.assertRaises(Fault):
                self.call_as("admin", "mcp.connection", "unlink", [conn_id], context=ctx)
            with self.assertRaises(Fault):
                self.call_as("admin", "mcp.connection", "action_archive", [conn_id], context=ctx)
        self.assertTrue(self.env["mcp.connection"].browse(conn_id).exists())
        self.assertEqual(self.call("mcp.approval.request", "get_states", [filed["id"]])[0]["state"], "pending")
        not_yet = self.call("mcp.approval.request", "consume", filed["id"], "odoo_disconnect", arguments_hash(args), server=SERVER)
        self.assertFalse(not_yet["ok"])

        self.call_as("rpc_approver", "mcp.approval.request", "action_approve", [filed["id"]])
        self.assertEqual(self.call("mcp.approval.request", "get_states", [filed["id"]]),
                         [{"id": filed["id"], "ref": filed["ref"], "state": "approved", "decision_note": ""}])
        wrong = self.call("mcp.approval.request", "consume", filed["id"], "odoo_disconnect",
                          arguments_hash({"alias": "prod2"}), server=SERVER)
        self.assertFalse(wrong["ok"])
        done = self.call("mcp.approval.request", "consume", filed["id"], "odoo_disconnect", arguments_hash(args), server=SERVER)
        self.assertEqual(done["ok"], True)
        self.assertEqual(done["state"], "done")
        self.assertEqual(self.call("mcp.connection", "list_for_agent"), [])
        twice = self.call("mcp.approval.request", "consume", filed["id"], "odoo_disconnect", arguments_hash(args), server=SERVER)
        self.assertFalse(twice["ok"])

        events = [{"uuid": "0b4f5e2c-1", "time": RECENT_ISO, "principal": "agent-ci",
                   "tool": "odoo_disconnect", "arguments_hash": arguments_hash(args),
                   "outcome": "approved_executed", "detail": "", "request_ref": filed["ref"]}]
        self.assertEqual(self.call("mcp.audit.log", "record_batch", events), 1)
        self.assertEqual(self.call("mcp.audit.log", "record_batch", events), 0)

    def test_agent_limits_over_xmlrpc(self):
        """The agent reads the policy, nothing more: no policy edits, no audit reads, no secrets of others."""
        with self.assertRaises(Fault):
            self.call("mcp.tool.rule", "import_policy_document", {"version": "1", "default": "allow"})
        with self.assertRaises(Fault):
            self.call("mcp.tool.rule", "create", {"name": "odoo_unlink", "action": "allow"})
        with self.assertRaises(Fault):
            self.call("mcp.audit.log", "search_read", [], ["uuid"])
        with self.assertRaises(Fault):
            self.call("mcp.tool.rule", "_set_default_action", "allow")
        self.assertEqual(self.call("mcp.tool.rule", "get_policy_document")["policy"]["default"], "deny")
        # the manager edits the policy over RPC; the etag follows
        before = self.call("mcp.tool.rule", "get_policy_document")["etag"]
        self.call_as("rpc_manager", "mcp.tool.rule", "import_policy_document",
                     {"version": "1", "default": "deny", "hide": ["odoo_disconnect"],
                      "rules": {"odoo_connections": {"action": "allow"}}})
        after = self.call("mcp.tool.rule", "get_policy_document")
        self.assertNotEqual(after["etag"], before)
        self.assertEqual(after["policy"]["hide"], ["odoo_disconnect"])

    def test_bad_ids_answered_clearly(self):
        """A bad request id is a fault naming it, not a bare ValueError."""
        for method, args in (("get_states", (["abc"],)), ("consume", ("abc", "odoo_disconnect", "x"))):
            with self.assertRaises(Fault) as caught:
                self.call("mcp.approval.request", method, *args)
            self.assertIn("Invalid request id 'abc'", caught.exception.faultString)
            self.assertNotIn("ValueError", caught.exception.faultString)

    def test_admin_force_unlink_over_xmlrpc(self):
        """execute_kw as administrator with _force_unlink (which skips @api.ondelete) removes nothing."""
        conn = self.env["mcp.connection"].with_user(self.agent).create(
            {"alias": "keep", "url": "https://erp.example.com", "db": "prod", "login": "bot"}
        )
        for login in ("admin", "rpc_manager"):
            for method, args in (("unlink", ()), ("write", ({"active": False},)), ("action_archive", ())):
                with self.assertRaises(Fault):
                    self.call_as(login, "mcp.connection", method, [conn.id], *args,
                                 context={"_force_unlink": True, "tracking_disable": True})
        self.assertTrue(conn.exists())
        self.assertTrue(conn.active)
