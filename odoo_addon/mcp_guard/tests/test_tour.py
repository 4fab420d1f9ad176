from odoo.tests import HttpCase, new_test_user, tagged

from .common import SERVER
from .test_catalog import entry


@tagged("post_install", "-at_install")
class TestApproveTour(HttpCase):

    def test_approver_tour(self):
        agent = new_test_user(self.env, "tour_agent", "mcp_guard.group_mcp_agent")
        new_test_user(self.env, "tour_approver", "mcp_guard.group_mcp_approver")
        # the person the agent's principal acts for (a request nobody's principal cannot be approved)
        new_test_user(self.env, "tour_person", "mcp_guard.group_mcp_user",
                      email="tour.person@example.org", mcp_principals="agent-tour")
        self.env["mcp.connection"].with_user(agent).create(
            {"alias": "prod", "url": "https://erp.example.com", "db": "prod", "login": "bot"}
        )
        res = self.env["mcp.approval.request"].with_user(agent).file_request(
            "odoo_disconnect", {"alias": "prod"}, "agent-tour", "tour", server=SERVER
        )
        self.start_tour("/odoo", "mcp_guard_approve_tour", login="tour_approver")
        request = self.env["mcp.approval.request"].browse(res["id"])
        request.invalidate_recordset()
        self.assertEqual(request.state, "approved")
        self.assertEqual(request.approver_id.login, "tour_approver")


@tagged("post_install", "-at_install")
class TestCatalogTour(HttpCase):

    def test_manager_catalog_tour(self):
        ctx = {"mail_create_nolog": True, "no_reset_password": True}
        agent = new_test_user(self.env, "tour_cat_agent", "mcp_guard.group_mcp_agent", context=ctx)
        manager = new_test_user(
            self.env, "tour_cat_manager", "mcp_guard.group_mcp_manager", context=ctx, name="Tour Manager"
        )
        Tool = self.env["mcp.tool"].with_user(agent)
        read = entry("read_note", description="Reads a note.", risk="read", reason="name")
        purge = entry("purge_notes", description="Deletes every note.", annotations={"destructiveHint": True},
                      risk="destructive", reason="annotation destructiveHint")
        write = entry("write_note", description="Writes a note.", risk="write", reason="name")
        self.assertEqual(
            sorted(Tool.report_catalog("notes", [read, purge, write])["new"]),
            ["purge_notes", "read_note", "write_note"],
        )
        changed = entry("write_note", description="Writes a note. Also mails it out.", risk="write", reason="name")
        self.assertEqual(Tool.report_catalog("notes", [read, purge, changed])["changed"], ["write_note"])
        tools = {tool.name: tool for tool in self.env["mcp.tool"].search([("server", "=", "notes")])}
        self.assertEqual(tools["write_note"].state, "changed")
        Rule = self.env["mcp.tool.rule"]
        self.assertFalse(Rule.with_context(active_test=False).search([("name", "=", "purge_notes")]))
        etag_before = Rule.with_user(agent).get_policy_document()["etag"]

        self.start_tour("/odoo", "mcp_guard_catalog_tour", login="tour_cat_manager")

        self.env.invalidate_all()
        rule = Rule.search([("name", "=", "purge_notes")])
        self.assertEqual(len(rule), 1)
        self.assertEqual(rule.action, "require_approval")
        self.assertFalse(rule.hidden)
        write_tool = tools["write_note"]
        self.assertEqual(write_tool.state, "pinned")
        self.assertEqual(write_tool.accepted_by, manager)
        self.assertTrue(write_tool.accepted_at)
        self.assertEqual(write_tool.definition_hash, changed["definition_hash"])
        self.assertFalse(write_tool.pending_hash)
        self.assertEqual(tools["purge_notes"].state, "pinned")
        self.assertNotEqual(Rule.with_user(agent).get_policy_document()["etag"], etag_before)


@tagged("post_install", "-at_install")
class TestDisconnectTours(HttpCase):
    """A person ends a connection in the UI: the owner asks, another person approves."""

    def test_owner_requests_and_approver_approves_from_activity(self):
        ctx = {"mail_create_nolog": True, "no_reset_password": True}
        agent = new_test_user(self.env, "tour_dc_agent", "mcp_guard.group_mcp_agent", context=ctx)
        # an email of her own: new_test_user gives every "t..." login t.t@example.com, which
        # would make owner and approver one person to the identity check
        owner = new_test_user(self.env, "tour_dc_owner", "mcp_guard.group_mcp_user", context=ctx, name="Olga Owner",
                              email="olga.owner@example.com")
        new_test_user(self.env, "tour_dc_approver", "mcp_guard.group_mcp_approver", context=ctx)
        conn = self.env["mcp.connection"].with_user(owner).create({
            "alias": "crm", "url": "https://crm.example.com", "db": "crm", "login": "bot",
            "new_password": "pw", "agent_user_ids": [(4, agent.id)],
        })
        self.start_tour("/odoo", "mcp_guard_request_disconnect_tour", login="tour_dc_owner")
        request = conn.request_ids
        self.assertEqual((request.state, request.requester_id, request.origin), ("pending", owner, "person"))
        self.assertEqual(conn.state, "disconnect_pending")

        self.start_tour("/odoo", "mcp_guard_approve_from_activity_tour", login="tour_dc_approver")
        self.env.invalidate_all()
        self.assertEqual(request.state, "done")
        self.assertEqual(request.approver_id.login, "tour_dc_approver")
        self.assertFalse(conn.active)
        self.assertEqual(conn.state, "disconnected")
        self.assertFalse(conn.sudo().password)
