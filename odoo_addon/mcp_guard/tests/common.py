from odoo.tests import TransactionCase, new_test_user

from odoo.addons.mcp_guard.models.identity import check_approver, principal_form
from odoo.addons.mcp_guard.models.mcp_guard_common import arguments_hash

# the MCP server the tests' agent calls come through (file_request and consume name it)
SERVER = "mcp-test-server"


class McpGuardCase(TransactionCase):
    """One user per group, a second company, and helpers shared by the tests."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.company2 = cls.env["res.company"].create({"name": "MCP Other Co"})
        ctx = {"mail_create_nolog": True, "no_reset_password": True}
        cls.user = new_test_user(cls.env, "mcp_user", "mcp_guard.group_mcp_user", context=ctx)
        cls.user2 = new_test_user(cls.env, "mcp_user2", "mcp_guard.group_mcp_user", context=ctx)
        cls.approver = new_test_user(cls.env, "mcp_approver", "mcp_guard.group_mcp_approver", context=ctx)
        cls.approver2 = new_test_user(
            cls.env, "mcp_approver2", "mcp_guard.group_mcp_approver", context=ctx,
            company_id=cls.company2.id, company_ids=[(6, 0, cls.company2.ids)],
        )
        cls.manager = new_test_user(cls.env, "mcp_manager", "mcp_guard.group_mcp_manager", context=ctx)
        cls.agent = new_test_user(cls.env, "mcp_agent", "mcp_guard.group_mcp_agent", context=ctx)
        cls.agent2 = new_test_user(
            cls.env, "mcp_agent2", "mcp_guard.group_mcp_agent", context=ctx,
            company_id=cls.company2.id, company_ids=[(6, 0, cls.company2.ids)],
        )
        cls.plain = new_test_user(cls.env, "mcp_plain", "base.group_user", context=ctx)
        # new_test_user gives every login starting with "m" the email m.m@example.com: one
        # address would make them one person to the identity checks (DESIGN.md invariant 12)
        for test_user in (cls.user, cls.user2, cls.approver, cls.approver2, cls.manager, cls.agent, cls.agent2,
                          cls.plain):
            test_user.email = f"{test_user.login}@example.com"
        cls.admin = cls.env.ref("base.user_admin")
        cls.Rule = cls.env["mcp.tool.rule"]
        cls.Connection = cls.env["mcp.connection"]
        cls.Request = cls.env["mcp.approval.request"]
        cls.Audit = cls.env["mcp.audit.log"]
        cls.prod = cls.Connection.with_user(cls.agent).create({
            "alias": "prod", "url": "https://erp.example.com", "db": "prod",
            "login": "bot", "password": "s3cret-pw", "api_key": "k-123",
        })

    @classmethod
    def gate_test_tools(cls):
        """A rule for the tools some tests file requests for without one of their own (odoo_x,
        odoo_y): a request is filed only while a rule asks for an approval (outside round 17)."""
        cls.Rule.create({"name": "odoo_?", "action": "require_approval"})

    def claim(self, principal, user=None):
        """Bind ``principal`` to a person, as a Manager does (Settings > Users > MCP principals):
        to ``user``, or to a person of its own who approves nothing (a principal nobody claims
        cannot be approved). A principal with a comma cannot be listed: it stays unclaimed."""
        if "," in principal or check_approver(principal) or not principal_form(principal):
            return
        if user is None:
            if self.Request._claimants(principal):
                return
            n = self.env["res.users"].sudo().search_count([("login", "=like", "principal_person_%")])
            user = new_test_user(
                self.env, f"principal_person_{n}", "mcp_guard.group_mcp_user", name=f"Principal Person {n}",
                email=f"principal.person.{n}@example.org",
                context={"mail_create_nolog": True, "no_reset_password": True})
        claimed = user.sudo().mcp_principals
        user.sudo().mcp_principals = f"{claimed}, {principal}" if claimed else principal

    def file(self, user, tool="odoo_disconnect", arguments=None, principal="agent-test", reason="cleanup",
             claimed=True, server=SERVER):
        """File as ``user`` through ``server``; the principal is claimed by a person first unless
        ``claimed`` is False."""
        arguments = {"alias": "prod"} if arguments is None else arguments
        if claimed and isinstance(principal, str):
            self.claim(principal)
        return self.Request.with_user(user).file_request(tool, arguments, principal, reason, server=server)

    def approved(self, user=None, tool="odoo_disconnect", arguments=None, server=SERVER):
        """File as ``user`` (the agent by default) and approve as the approver."""
        res = self.file(user or self.agent, tool=tool, arguments=arguments, server=server)
        self.Request.browse(res["id"]).with_user(self.approver).action_approve()
        return res

    def assertEnded(self, conn):  # noqa: N802 (unittest naming)
        """Ended, not erased: archived, disconnected, no secrets left; its trail stays."""
        conn.invalidate_recordset()
        self.assertTrue(conn.exists())
        self.assertFalse(conn.active)
        self.assertEqual(conn.state, "disconnected")
        self.assertFalse(conn.sudo().password)
        self.assertFalse(conn.sudo().api_key)

    @staticmethod
    def digest(arguments):
        return arguments_hash(arguments)
