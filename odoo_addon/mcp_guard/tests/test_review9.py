"""Findings of an outside security review (round 9), one test each, one user per role."""

from odoo.tests import new_test_user, tagged

from .common import SERVER, McpGuardCase

NEUTRAL = "Shown to the approvers of this request."


@tagged("post_install", "-at_install")
class TestReview9Detail(McpGuardCase):
    """04: a data tool's detail (where the records are, their names read as the system, their
    current values) is shown to those who decide the request, and to nobody else who can open
    it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ctx = {"mail_create_nolog": True, "no_reset_password": True}
        cls.here = cls.Connection.with_user(cls.agent).create({
            "alias": "here", "url": "http://localhost:8069", "db": cls.env.cr.dbname,
            "login": "bot", "password": "pw-here",
        })
        cls.partner = cls.env["res.partner"].create({"name": "Acme Old Name"})
        # approvers cannot read system parameters: their names come from the system
        cls.param = cls.env["ir.config_parameter"].sudo().create({"key": "mcp.r9.secret", "value": "v4lue-r9"})
        cls.finance = cls.env["res.groups"].create({"name": "MCP R9 Finance approvers"})
        cls.fin1 = new_test_user(cls.env, "mcp_r9fin", "mcp_guard.group_mcp_approver", context=ctx)
        cls.fin1.email = "mcp_r9fin@example.com"
        members = "users" if "users" in cls.finance._fields else "user_ids"  # 18.0 / 19.0
        cls.finance.write({members: [(4, cls.fin1.id)]})

    def write_request(self, ids, model="ir.config_parameter", values=None, principal="agent-test"):
        res = self.file(self.agent, tool="odoo_write", principal=principal, arguments={
            "alias": "here", "model": model, "ids": ids, "values": values or {"value": "other"},
        })
        return self.Request.browse(res["id"])

    def assertNoDetail(self, req, user, model="ir.config_parameter"):  # noqa: N802 (unittest naming)
        seen = req.with_user(user)
        self.assertFalse(seen.can_decide)
        self.assertEqual(seen.target_model, model)  # the call's own argument, as in its summary
        self.assertEqual(seen.target_records, NEUTRAL)
        self.assertFalse(seen.target_location)
        self.assertFalse(seen.target_changes)

    def test_04_refused_by_four_eyes_sees_no_names(self):
        # the person behind the agent is the approver: four eyes refuses them, the detail too
        req = self.write_request([self.param.id], principal="mcp_approver")
        self.assertNoDetail(req, self.approver)
        # the manager decides it: names and values only by their own rights
        seen = req.with_user(self.manager)
        self.assertTrue(seen.can_decide)
        self.assertIn(f"#{self.param.id} (not readable by you)", seen.target_records)
        self.assertNotIn("mcp.r9.secret", seen.target_records)
        self.assertIn("this database", seen.target_location)
        self.assertNotIn("v4lue-r9", str(seen.target_changes))

    def test_04_approver_of_another_group_sees_no_names(self):
        self.Rule.search([("name", "=", "odoo_write")]).with_user(self.manager).write(
            {"approver_group_id": self.finance.id})
        req = self.write_request([self.partner.id], model="res.partner", values={"name": "Acme New Name"})
        # an approver outside the rule's group (and a manager outside it) may not decide: no detail
        self.assertNoDetail(req, self.approver, "res.partner")
        self.assertEqual(req.with_user(self.manager).target_records, NEUTRAL)
        seen = req.with_user(self.fin1)
        self.assertTrue(seen.can_decide)
        self.assertEqual(seen.target_records, f"Acme Old Name (#{self.partner.id})")
        self.assertIn("Acme Old Name", str(seen.target_changes))
        self.assertIn("Acme New Name", str(seen.target_changes))

    def test_04_requester_and_plain_user_see_no_detail(self):
        # a request a person filed for themself (before file_request was the Agent's alone)
        self.Connection.with_user(self.user).create({
            "alias": "mine", "url": "http://localhost:8069", "db": self.env.cr.dbname, "login": "me"})
        req = self.Request.with_user(self.user)._file(
            "odoo_write", {"alias": "mine", "model": "res.partner", "ids": [self.partner.id],
                           "values": {"name": "Acme New Name"}}, "mcp_user", "r9", {}, "agent")
        self.assertNoDetail(req, self.user, "res.partner")
        self.assertNotIn("Acme Old Name", str(req.with_user(self.user).read(
            ["target_records", "target_changes", "target_location"])))
        # the one who decides it sees it
        self.assertEqual(req.with_user(self.approver).target_records, f"Acme Old Name (#{self.partner.id})")


@tagged("post_install", "-at_install")
class TestReview9Replacement(McpGuardCase):
    """07: a replacement (odoo_connect of an existing alias) is filed under the terms of both
    odoo_connect and odoo_disconnect; a change of either rule voids its approval."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.disconnect_rule = cls.Rule.search([("name", "=", "odoo_disconnect")])
        cls.finance = cls.env["res.groups"].create({"name": "MCP R9 Finance"})

    def test_07_agent_replacement_refused_after_the_disconnect_rule_changed(self):
        rule = self.disconnect_rule.with_user(self.manager)
        filed_under = {"action": "require_approval", "approval_expires_in": 3600, "approval_quorum": 1,
                       "approver_group_id": self.env.ref("mcp_guard.group_mcp_approver").id}
        # its action, its approver group, its quorum
        changes = [{"action": "deny", "approval_expires_in": 0}, {"approver_group_id": self.finance.id},
                   {"approval_quorum": 2}]
        for number, change in enumerate(changes):
            with self.subTest(change=change):
                rule.write(filed_under)
                args = {"alias": "prod", "url": f"https://new{number}.example.com", "db": "prod",
                        "username": "bot", "password": "new-pw", "protocol": "xmlrpc"}
                req = self.Request.browse(self.approved(tool="odoo_connect", arguments=args)["id"])
                self.assertEqual((req.state, req.connection_id), ("approved", self.prod))
                rule.write(change)  # after the approval, before the agent calls again
                result = self.Request.with_user(self.agent).consume(req.id, "odoo_connect", self.digest(args), args, server=SERVER)
                self.assertEqual((result["ok"], result["state"]), (False, "expired"), result)
                self.assertIn("rule for odoo_disconnect that has changed since", result["message"])
                self.assertEqual(req.state, "expired")
                self.prod.invalidate_recordset()
                self.assertTrue(self.prod.active)
                self.assertEqual((self.prod.url, self.prod.state), ("https://erp.example.com", "connected"))
        # under the rule in force again, a new approval is carried out
        rule.write(filed_under)
        args = {"alias": "prod", "url": "https://new.example.com", "db": "prod", "username": "bot"}
        res = self.approved(tool="odoo_connect", arguments=args)
        result = self.Request.with_user(self.agent).consume(res["id"], "odoo_connect", self.digest(args), args, server=SERVER)
        self.assertTrue(result["ok"], result)
        self.assertEnded(self.prod)

    def test_07_person_replacement_refused_when_the_disconnect_rule_changed(self):
        conn = self.Connection.with_user(self.user).create({
            "alias": "crm", "url": "https://crm.example.com", "db": "crm", "login": "bot",
            "agent_user_ids": [(6, 0, self.agent.ids)],
        })
        wizard = self.env["mcp.connection.change.wizard"].with_user(self.user).with_context(
            default_connection_id=conn.id).create({"url": "https://other.example.com"})
        req = self.Request.browse(wizard.action_confirm()["res_id"])
        self.assertEqual((req.tool, req.origin, req.connection_url), ("odoo_connect", "person", "https://crm.example.com"))
        # tightened after filing: two approvers, before anybody decided
        self.disconnect_rule.with_user(self.manager).write({"approval_quorum": 2})
        req.with_user(self.approver).action_approve()  # approving carries it out, after the checks
        self.assertEqual(req.state, "expired")
        self.assertIn("rule for odoo_disconnect that has changed since", req.message_ids[0].body)
        self.assertEqual((conn.url, conn.state, conn.active), ("https://crm.example.com", "connected", True))
