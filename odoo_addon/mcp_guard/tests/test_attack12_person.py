"""Attack 12 (found on live Odoo 18 and 19): four eyes decided by spellings. A principal is
bound to a person by res.users.mcp_principals (a Manager's field); an agent's request is
compared by user id with the users who claim its principal, frozen when it is filed; a request
whose principal nobody claims cannot be approved; the spelling comparison stays as a second
fence; a quorum counts distinct users, and accounts bound by a shared principal are one."""

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .common import McpGuardCase

# the display names outside testers approved alice's own request under
SPELLINGS = ["Ms Alice Approver", "Alice Approver, PhD", "Alice Q. Approver", "alice/ops", "alice/admin",
             "alice_laptop", "alice|laptop", "alice%ops@x.org", "alice@x@y"]


@tagged("post_install", "-at_install")
class TestAttack12Person(McpGuardCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ctx = {"mail_create_nolog": True, "no_reset_password": True}
        cls.olga = new_test_user(cls.env, "olga", "mcp_guard.group_mcp_user", name="Olga Owner",
                                 email="olga.owner@example.com", context=ctx)
        # alice's login is not her principal's spelling: only the claim says the principal is hers
        cls.alice = new_test_user(cls.env, "a.approver", "mcp_guard.group_mcp_approver", name="Alice Approver",
                                  email="a.approver@example.com", context=ctx)
        cls.carol = new_test_user(cls.env, "carol", "mcp_guard.group_mcp_approver", name="Carol Checker",
                                  email="carol@example.com", context=ctx)
        cls.dave = new_test_user(cls.env, "dave", "mcp_guard.group_mcp_approver", name="Dave Decider",
                                 email="dave@example.com", context=ctx)

    def agents_request(self, principal, **kwargs):
        return self.Request.browse(self.file(self.agent, principal=principal, claimed=False, **kwargs)["id"])

    def test_01_a_principal_nobody_claims_cannot_be_approved(self):
        req = self.agents_request("http:zed")
        self.assertIn("no user claims the MCP principal 'http:zed'", req.cannot_approve_reason)
        self.assertIn("Settings > Users > MCP principals", req.cannot_approve_reason)
        self.assertFalse(req.with_user(self.approver).can_decide)
        for verb in ("action_approve", "action_reject"):
            with self.assertRaisesRegex(AccessError, "no user claims the MCP principal"):
                getattr(req.with_user(self.approver), verb)()
        self.assertEqual(req.state, "pending")
        # a Manager binds it to its person: another approver now decides
        self.olga.with_user(self.manager).sudo().mcp_principals = "zed"
        req.invalidate_recordset()
        self.assertFalse(req.cannot_approve_reason)
        req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "approved")
        self.assertFalse(req._approval_problem())

    def test_02_the_claimed_person_is_refused_whatever_her_display_name(self):
        self.alice.sudo().mcp_principals = "alice"
        req = self.agents_request("alice")
        self.assertEqual(req.principal_user_ids, self.alice)
        for name in SPELLINGS:
            self.alice.with_user(self.alice).write({"name": name})  # her Preferences
            for verb in ("action_approve", "action_reject"):
                with self.assertRaisesRegex(AccessError, "which is yours|reads as you", msg=name):
                    getattr(req.with_user(self.alice), verb)()
        self.assertEqual(req.state, "pending")
        req.with_user(self.carol).action_approve()
        self.assertEqual(req.state, "approved")

    def test_03_renaming_before_filing_and_unclaiming_later_do_not_help(self):
        self.alice.sudo().mcp_principals = "stdio:alice"
        self.alice.with_user(self.alice).write({"name": "Zed Other"})
        req = self.agents_request("http:alice")  # the same principal, another transport
        self.alice.with_user(self.alice).write({"name": "Alice Approver"})
        self.alice.sudo().mcp_principals = False  # the claim is frozen on the request
        self.assertEqual(req.principal_user_ids, self.alice)
        with self.assertRaisesRegex(AccessError, "which is yours|reads as you"):
            req.with_user(self.alice).action_approve()
        self.assertEqual(req.state, "pending")

    def test_04_a_person_request_compares_accounts_and_the_name_when_filed(self):
        conn = self.Connection.with_user(self.olga).create({
            "alias": "o12", "url": "https://erp.example.com", "db": "x", "login": "u"})
        self.olga.with_user(self.olga).write({"name": "Someone Else"})
        req = self.Request.browse(conn.with_user(self.olga).action_request_disconnect()["res_id"])
        self.olga.with_user(self.olga).write({"name": "Olga Owner"})
        self.assertEqual(req.requester_name, "Someone Else")
        # a twin whose name reads as olga's name when she filed, or as her login
        for n, (login, name) in enumerate([("twin1", "Someone Else"), ("ops\\olga", "Twin Two")]):
            twin = new_test_user(self.env, login, "mcp_guard.group_mcp_approver", name=name,
                                 email=f"twin{n}@example.org")
            with self.assertRaisesRegex(AccessError, "reads as you", msg=login):
                req.with_user(twin).action_approve()
        # a twin account whose spelling no fence catches is another person to the guard, until
        # a Manager binds it to olga's account by a shared principal
        twin = new_test_user(self.env, "olga_laptop", "mcp_guard.group_mcp_approver", name="Olga Owner, PhD",
                             email="o.laptop@example.org")
        self.olga.sudo().mcp_principals = "olga"
        twin.sudo().mcp_principals = "olga"
        with self.assertRaisesRegex(AccessError, "bound to yours"):
            req.with_user(twin).action_approve()
        self.assertEqual(req.state, "pending")
        req.with_user(self.carol).action_approve()
        self.assertEnded(conn)

    def test_05_a_quorum_counts_distinct_persons(self):
        self.Rule.search([("name", "=", "odoo_disconnect")]).approval_quorum = 2
        self.olga.sudo().mcp_principals = "agent-q"
        req = self.agents_request("agent-q")
        self.assertEqual(req.quorum, 2)
        req.with_user(self.carol).action_approve()
        self.assertEqual(req.state, "pending")
        # carol's second account, bound to her by a shared principal, is carol
        carol_admin = new_test_user(self.env, "carol/admin", "mcp_guard.group_mcp_approver",
                                    name="Carol Admin", email="carol.admin@example.org")
        self.carol.sudo().mcp_principals = "carol"
        carol_admin.sudo().mcp_principals = "carol"
        with self.assertRaisesRegex(UserError, "reads as you has already approved"):
            req.with_user(carol_admin).action_approve()
        # a person of the principal never counts, even once claimed after filing
        self.dave.sudo().mcp_principals = "agent-q"
        with self.assertRaisesRegex(AccessError, "which is yours"):
            req.with_user(self.dave).action_approve()
        req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "approved")
        self.assertFalse(req._approval_problem())
