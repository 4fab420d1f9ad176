from odoo.tests import HttpCase, new_test_user, tagged


@tagged("post_install", "-at_install")
class TestApproveTour(HttpCase):

    def test_approver_tour(self):
        agent = new_test_user(self.env, "tour_agent", "mcp_guard.group_mcp_agent")
        new_test_user(self.env, "tour_approver", "mcp_guard.group_mcp_approver")
        self.env["mcp.connection"].with_user(agent).create(
            {"alias": "prod", "url": "https://erp.example.com", "db": "prod", "login": "bot"}
        )
        res = self.env["mcp.approval.request"].with_user(agent).file_request(
            "odoo_disconnect", {"alias": "prod"}, "agent:tour", "tour"
        )
        self.start_tour("/odoo", "mcp_guard_approve_tour", login="tour_approver")
        request = self.env["mcp.approval.request"].browse(res["id"])
        request.invalidate_recordset()
        self.assertEqual(request.state, "approved")
        self.assertEqual(request.approver_id.login, "tour_approver")
