"""An agent's request is bound to the MCP server its call came through (the front-end's
server name: a proxy's --server-name or derived name, serve's own), as the embedded store binds
it (schema v10): a call through another server neither consumes it nor is told it is pending
under it: it files its own. Requests filed before the binding (no server) bind to nothing: no
call consumes them and nobody approves them."""

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from odoo.addons.mcp_guard.models.mcp_guard_common import internal_write

from .common import McpGuardCase


@tagged("post_install", "-at_install")
class TestServerBinding(McpGuardCase):
    def consume(self, res, server, tool="odoo_disconnect", arguments=None):
        return self.Request.with_user(self.agent).consume(
            res["id"], tool, self.digest(arguments or {"alias": "prod"}), arguments, server=server)

    def test_the_request_records_its_server_and_shows_it_read_only(self):
        res = self.file(self.agent, server="crm-proxy")
        req = self.Request.browse(res["id"])
        self.assertEqual(req.server, "crm-proxy")
        self.assertTrue(self.Request._fields["server"].readonly)
        self.assertTrue(self.Request._fields["server"].tracking)
        arch = self.Request.with_user(self.approver).get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn('name="server"', arch)
        # nobody edits it, whatever their rights
        with self.assertRaises(AccessError):
            req.sudo().write({"server": "other"})
        self.assertEqual(req.server, "crm-proxy")
        self.assertEqual(self.Request.with_user(self.agent).list_for_agent(request_ids=[req.id])[0]["server"],
                         "crm-proxy")

    def test_another_server_gets_its_own_request_not_the_pending_one(self):
        first = self.file(self.agent, server="server-a")
        self.assertEqual(self.file(self.agent, server="server-a")["id"], first["id"])  # same call, same server
        second = self.file(self.agent, server="server-b")
        self.assertNotEqual(second["id"], first["id"])
        self.assertNotEqual(second["ref"], first["ref"])
        self.assertEqual(self.Request.browse(second["id"]).server, "server-b")

    def test_a_call_through_another_server_cannot_consume_the_approval(self):
        res = self.approved(server="server-a")
        for server in ("server-b", "Server-A", "server-a ", None, "", 7):
            out = self.consume(res, server)
            self.assertFalse(out["ok"], server)
            self.assertEqual(out["state"], "approved")
            self.assertEqual(len(out["message"].splitlines()), 1)
        self.assertIn("server-a", self.consume(res, "server-b")["message"])
        self.assertEqual(self.prod.state, "disconnect_pending")  # still awaiting its approved call
        self.assertTrue(self.prod.active)
        self.assertTrue(self.consume(res, "server-a")["ok"])
        self.assertEnded(self.prod)

    def test_file_request_needs_a_server_name(self):
        for server in (None, "", "x" * 201, "a\nb", 3, ["a"]):
            with self.assertRaisesRegex(UserError, "server", msg=server):
                self.Request.with_user(self.agent).file_request(
                    "odoo_disconnect", {"alias": "prod"}, "agent-test", "r", server=server)
        self.assertFalse(self.Request.sudo().search([("tool", "=", "odoo_disconnect")]))

    def test_a_request_filed_before_the_binding_binds_to_nothing(self):
        """Filed before the upgrade (no server): not approved, not consumed, not answered."""
        pending = self.Request.browse(self.file(self.agent, server="old")["id"])
        approved = self.approved(user=self.agent, tool="odoo_x", arguments={"n": 1}, server="old")
        with internal_write():
            (pending | self.Request.browse(approved["id"])).sudo().write({"server": False})
        self.assertIn("filed before", pending.cannot_approve_reason)
        with self.assertRaisesRegex(UserError, "filed before"):
            pending.with_user(self.approver).action_approve()
        self.assertEqual(pending.state, "pending")
        for server in ("old", "odoo-mcp-guard", "", None):
            out = self.consume(approved, server, tool="odoo_x", arguments={"n": 1})
            self.assertFalse(out["ok"])
        self.assertIn("filed before", self.consume(approved, "old", tool="odoo_x", arguments={"n": 1})["message"])
        # the same call now files a request of its own, bound to its server
        again = self.file(self.agent, server="old")
        self.assertNotEqual(again["id"], pending.id)
        self.assertEqual(self.Request.browse(again["id"]).server, "old")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gate_test_tools()
