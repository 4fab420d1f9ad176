import json

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import SERVER, McpGuardCase


@tagged("post_install", "-at_install")
class TestRouting(McpGuardCase):
    """Approver routing and quorum (a rule names the group that decides its requests and how
    many different approvers must approve), and approvals bound to the rule they were given
    under: one user per role."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ctx = {"mail_create_nolog": True, "no_reset_password": True}
        cls.finance = cls.env["res.groups"].create({"name": "MCP Finance approvers"})
        # approvers in the finance group, and one approver outside it
        cls.fin1 = new_test_user(cls.env, "mcp_fin1", "mcp_guard.group_mcp_approver", context=ctx)
        cls.fin2 = new_test_user(cls.env, "mcp_fin2", "mcp_guard.group_mcp_approver", context=ctx)
        cls.fin_user = new_test_user(cls.env, "mcp_fin_user", "mcp_guard.group_mcp_user", context=ctx)
        members = "users" if "users" in cls.finance._fields else "user_ids"  # 18.0 / 19.0
        cls.finance.write({members: [(4, user.id) for user in (cls.fin1, cls.fin2, cls.fin_user)]})
        cls.rule = cls.Rule.search([("name", "=", "odoo_disconnect")])

    def route(self, group=None, quorum=1):
        self.rule.with_user(self.manager).write({
            "approver_group_id": (group or self.env.ref("mcp_guard.group_mcp_approver")).id,
            "approval_quorum": quorum,
        })

    def activity_users(self, req):
        return req.sudo().activity_ids.filtered(
            lambda a: a.activity_type_id == self.env.ref("mcp_guard.mail_act_mcp_approval")).user_id

    def test_routing_to_named_group(self):
        self.route(self.finance)
        res = self.file(self.agent)
        req = self.Request.browse(res["id"])
        self.assertEqual(req.approver_group_id, self.finance)
        # activities go to the approvers of the rule's group only (not to a plain user in it)
        self.assertEqual(self.activity_users(req), self.fin1 | self.fin2)
        # an approver outside the group cannot decide, in the method itself
        self.assertFalse(req.with_user(self.approver).can_decide)
        with self.assertRaises(AccessError):
            req.with_user(self.approver).action_approve()
        with self.assertRaises(AccessError):
            req.with_user(self.approver).action_reject("no")
        self.assertTrue(req.with_user(self.fin1).can_decide)
        req.with_user(self.fin1).action_approve()
        self.assertEqual(req.state, "approved")
        # the policy document carries the group (its external id) and the agent sees it
        policy = self.Rule.with_user(self.agent).get_policy_document()["policy"]
        group = policy["rules"]["odoo_disconnect"]["approval"]["approver_group"]
        self.assertEqual(self.env.ref(group), self.finance)
        view = self.Request.with_user(self.agent).list_for_agent(request_ids=[req.id])[0]
        self.assertEqual(view["approver_group"], group)
        self.assertEqual(view["approvals"], [self.fin1.name])

    def test_quorum_of_two(self):
        self.route(quorum=2)
        policy = self.Rule.with_user(self.agent).get_policy_document()["policy"]
        self.assertEqual(policy["rules"]["odoo_disconnect"]["approval"]["quorum"], 2)
        self.assertNotIn("approver_group", policy["rules"]["odoo_disconnect"]["approval"])
        res = self.file(self.agent)
        req = self.Request.browse(res["id"])
        self.assertEqual(req.quorum, 2)
        digest = self.digest({"alias": "prod"})
        # the requester never counts, whatever their groups
        with self.assertRaises(AccessError):
            req.with_user(self.agent).action_approve()
        req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "pending")
        self.assertEqual(req.approval_count, 1)
        # the same approver twice is still one approval
        with self.assertRaises(UserError):
            req.with_user(self.approver).action_approve()
        self.assertFalse(req.with_user(self.approver).can_decide)
        # nothing to consume yet: one approval of two
        answer = self.Request.with_user(self.agent).consume(req.id, "odoo_disconnect", digest, server=SERVER)
        self.assertFalse(answer["ok"])
        self.assertEqual(self.prod.state, "disconnect_pending")
        # the first approver's to-do is done, the others' remain
        self.assertNotIn(self.approver, self.activity_users(req))
        self.assertIn(self.fin1, self.activity_users(req))
        req.with_user(self.fin1).action_approve()
        self.assertEqual(req.state, "approved")
        self.assertFalse(self.activity_users(req))
        self.assertEqual(req.sudo().vote_ids.user_id, self.approver | self.fin1)
        answer = self.Request.with_user(self.agent).consume(req.id, "odoo_disconnect", digest, server=SERVER)
        self.assertTrue(answer["ok"], answer)
        self.assertEnded(self.prod)

    def test_quorum_counts_valid_approvers_at_consumption(self):
        self.route(quorum=2)
        req = self.Request.browse(self.file(self.agent)["id"])
        req.with_user(self.approver).action_approve()
        req.with_user(self.fin1).action_approve()
        self.assertEqual(req.state, "approved")
        # one of the two is no longer an approver: the quorum no longer stands
        self.approver.sudo().write({"active": False})
        answer = self.Request.with_user(self.agent).consume(req.id, "odoo_disconnect", self.digest({"alias": "prod"}), server=SERVER)
        self.assertFalse(answer["ok"])
        self.assertIn("valid approvals", answer["message"])
        self.assertTrue(self.prod.active)

    def test_refused_after_the_rule_changed(self):
        req = self.Request.browse(self.file(self.agent)["id"])
        req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "approved")
        # the rule is changed before the approval is used: quorum 1 -> 2
        self.route(quorum=2)
        answer = self.Request.with_user(self.agent).consume(req.id, "odoo_disconnect", self.digest({"alias": "prod"}), server=SERVER)
        self.assertFalse(answer["ok"])
        self.assertEqual(answer["state"], "expired")
        self.assertIn("has changed", answer["message"])
        self.assertTrue(self.prod.active)
        self.assertEqual(self.prod.state, "connected")
        # the next call files anew, under the rule in force
        again = self.Request.browse(self.file(self.agent)["id"])
        self.assertNotEqual(again, req)
        self.assertEqual(again.quorum, 2)

    def test_pending_request_refiled_after_rule_change(self):
        req = self.Request.browse(self.file(self.agent)["id"])
        self.route(self.finance)
        again = self.Request.browse(self.file(self.agent)["id"])
        self.assertNotEqual(again, req)
        self.assertEqual(req.state, "expired")
        self.assertEqual(again.approver_group_id, self.finance)

    def test_rule_fields_validated(self):
        for quorum in (0, 11, -1):
            with self.assertRaises(ValidationError):
                self.rule.with_user(self.manager).write({"approval_quorum": quorum})
        allowed = self.Rule.search([("name", "=", "odoo_connections")])
        with self.assertRaises(ValidationError):
            allowed.with_user(self.manager).write({"approval_quorum": 2})

    def test_import_and_export_round_trip(self):
        document = self.Rule.get_policy_document()["policy"]
        document["rules"]["odoo_disconnect"]["approval"] = {
            "expires_in": 600, "approver_group": "mcp_guard.group_mcp_manager", "quorum": 3}
        self.Rule.with_user(self.manager).import_policy_document(json.dumps(document))
        self.assertEqual(self.rule.approver_group_id, self.env.ref("mcp_guard.group_mcp_manager"))
        self.assertEqual(self.rule.approval_quorum, 3)
        exported = self.Rule.get_policy_document()["policy"]
        self.assertEqual(exported["rules"]["odoo_disconnect"]["approval"], document["rules"]["odoo_disconnect"]["approval"])
        bad = dict(document, rules=dict(document["rules"], odoo_disconnect={
            "action": "require_approval", "approval": {"approver_group": "nope.no_such_group"}}))
        with self.assertRaises(UserError) as caught:
            self.Rule.with_user(self.manager).import_policy_document(bad)
        self.assertIn("$.rules.odoo_disconnect.approval.approver_group", str(caught.exception))
        # the embedded store's approver lists are not Odoo's: refused with their path
        with self.assertRaises(UserError) as caught:
            self.Rule.with_user(self.manager).import_policy_document(dict(document, approvers={"fin": ["alice"]}))
        self.assertIn("$.approvers", str(caught.exception))
