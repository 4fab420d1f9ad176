"""Breaks an outside tester found on live Odoo 18 and 19 (attack 11): four eyes by spellings that
stand for the requester (an RFC 5322 display name and mailbox, DOMAIN\\user, an LDAP DN, a
comment, a name last name first), one user per role."""

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import McpGuardCase


@tagged("post_install", "-at_install")
class TestAttack11Identity(McpGuardCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.olga = new_test_user(cls.env, "olga", "mcp_guard.group_mcp_user", name="Olga Owner",
                                 email="olga.owner@example.com")
        cls.alice = new_test_user(cls.env, "alice", "mcp_guard.group_mcp_approver", name="Alice Approver",
                                  email="alice.approver@example.com")

    def olgas_request(self, alias):
        conn = self.Connection.with_user(self.olga).create({
            "alias": alias, "url": "https://erp.example.com", "db": "x", "login": "u"})
        action = conn.with_user(self.olga).action_request_disconnect()
        return conn, self.Request.browse(action["res_id"])

    # 01: a second account of the requester, under a login or name that stands for her
    def test_01_second_account_under_a_spelling_of_the_requester_cannot_approve(self):
        accounts = [("ops7\\olga", "Owner, Olga"), ("cn7", "CN=olga"), ("olga7", "Owner, Olga"),
                    ("ops7/olga", "Second Account"), ("uid=olga,ou=people", "Someone Else"),
                    ("olga (laptop)", "Another Name"), ("olga8", "Olga <olga@corp.example>")]
        for n, (login, name) in enumerate(accounts):
            conn, req = self.olgas_request("o11-%d" % n)
            twin = new_test_user(self.env, login, "mcp_guard.group_mcp_approver", name=name,
                                 email="second%d@example.org" % n)
            with self.assertRaisesRegex(AccessError, "reads as you", msg=login):
                req.with_user(twin).action_approve()
            with self.assertRaisesRegex(AccessError, "reads as you", msg=login):
                req.with_user(twin).action_reject(note="mine")
            self.assertEqual(req.state, "pending")
            self.assertEqual(conn.state, "disconnect_pending")
        # another person approves: the connection is ended
        conn, req = self.olgas_request("o11-other")
        req.with_user(self.approver).action_approve()
        self.assertEnded(conn)

    # 02: the agent's request under a principal that stands for the approver (login alice, name
    # "Alice Approver") is hers: she can neither approve nor reject it
    def test_02_principal_spelling_of_the_approver_is_her(self):
        principals = ["Alice <alice@x.org>", "Alice Approver <alice@x.org>", "ops\\alice", "ops/alice",
                      "CN=alice", "CN=alice,OU=x,DC=y", "uid=alice", "alice (ops)", "alice (laptop)",
                      "Approver, Alice"]
        for principal in principals:
            req = self.Request.browse(self.file(self.agent, principal=principal)["id"])
            with self.assertRaisesRegex(AccessError, "reads as you|who is you", msg=principal):
                req.with_user(self.alice).action_approve()
            with self.assertRaisesRegex(AccessError, "reads as you|who is you", msg=principal):
                req.with_user(self.alice).action_reject(note="mine")
            self.assertEqual(req.state, "pending")
        # a principal of another person in the same unit is not hers (a principal with a comma
        # cannot be listed in MCP principals, so nobody claims it: nobody approves it)
        req = self.Request.browse(self.file(self.agent, principal="CN=bob,OU=alice")["id"])
        with self.assertRaisesRegex(AccessError, "no user claims the MCP principal"):
            req.with_user(self.alice).action_approve()
        req = self.Request.browse(self.file(self.agent, principal="CN=bob;OU=alice")["id"])
        req.with_user(self.alice).action_approve()
        self.assertEqual(req.state, "approved")
