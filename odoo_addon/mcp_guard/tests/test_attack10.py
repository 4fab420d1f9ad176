"""Breaks an outside tester found on live Odoo 18 and 19 (attack 10), one test each, one user
per role."""

import json

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from odoo.addons.mcp_guard.models.mcp_guard_common import MAX_POLICY_BYTES, policy_size

from .common import McpGuardCase

EMOJI = "\U0001f600"


@tagged("post_install", "-at_install")
class TestAttack10(McpGuardCase):
    def person_request(self):
        conn = self.Connection.with_user(self.user).create({
            "alias": "b10", "url": "https://erp.example.com", "db": "x", "login": "u"})
        action = conn.with_user(self.user).action_request_disconnect()
        return conn, self.Request.browse(action["res_id"])

    def padded(self, count):
        doc = self.Rule.with_user(self.manager).get_policy_document()["policy"]
        for i in range(count):
            doc["rules"]["zz_pad_%04d" % i] = {"action": "deny", "reason": EMOJI * 500}
        return doc

    # 01: one measure of a policy's size for both halves (its canonical JSON, UTF-8)
    def test_01_policy_size_is_measured_as_the_front_end_loads_it(self):
        Rule = self.Rule.with_user(self.manager)
        # 200 rules of 500 emoji: 0.4 MB as the front-end now loads it (1.2 MB ASCII-escaped)
        served = Rule.import_policy_document(json.dumps(self.padded(200), ensure_ascii=False))["policy"]
        self.assertLess(policy_size(served), MAX_POLICY_BYTES)
        self.assertGreater(len(json.dumps(served)), MAX_POLICY_BYTES)  # what used to be measured
        # 600 such rules are 1.2 MB: refused at import (as a document, not only as text)
        with self.assertRaises(UserError) as refused:  # assertRaises: rolled back, as an RPC call is
            Rule.import_policy_document(self.padded(600))
        self.assertIn("canonical JSON", str(refused.exception))
        # ... and when the rules are added one edit at a time
        with self.assertRaises(ValidationError) as refused:
            Rule.create([{"name": "zz_more_%04d" % i, "action": "deny", "reason": EMOJI * 500}
                         for i in range(400)])
        self.assertIn("MCP front-ends load", str(refused.exception))
        self.assertLessEqual(policy_size(Rule.get_policy_document()["policy"]), MAX_POLICY_BYTES)

    # 02: the arguments hash (an offline oracle for a new password) goes to the Agent only
    def test_02_list_for_agent_is_the_agents_own_list(self):
        conn = self.Connection.with_user(self.user).create({
            "alias": "h10", "url": "https://erp.example.com", "db": "x", "login": "u",
            "agent_user_ids": [(6, 0, self.agent.ids)]})
        arguments = {"alias": conn.alias, "url": "https://erp.example.com", "db": "x", "username": "u",
                     "password": "sunshine7"}
        res = self.file(self.agent, tool="odoo_connect", arguments=arguments)
        for who in (self.approver, self.user, self.manager):
            with self.assertRaises(AccessError):
                self.Request.with_user(who).list_for_agent(request_ids=[res["id"]])
        [view] = self.Request.with_user(self.agent).list_for_agent(request_ids=[res["id"]])
        self.assertEqual(view["arguments_hash"], self.digest(arguments))
        self.assertEqual(self.Request.with_user(self.agent2).list_for_agent(request_ids=[res["id"]]), [])

    # 03: the approvers' to-dos are theirs, not the requester's (Odoo 18 let any poster edit them)
    def test_03_requester_cannot_rewrite_or_delete_approver_todos(self):
        agent_req = self.Request.browse(self.file(self.agent)["id"])
        _conn, person_req = self.person_request()
        for requester, req in ((self.agent, agent_req), (self.user, person_req)):
            todos = req.sudo().activity_ids
            self.assertTrue(todos)
            self.assertNotIn(requester, todos.user_id)
            with self.assertRaises(AccessError):
                todos.with_user(requester).write({"summary": "Approve cleanup of sandbox"})
            with self.assertRaises(AccessError):
                todos.with_user(requester).unlink()
            with self.assertRaises(AccessError):
                todos.with_user(requester).action_feedback(feedback="done")
            self.assertTrue(todos.exists())
            self.assertTrue(all(t.summary.startswith("Approve ") for t in todos.sudo()))
        # the assigned approver keeps their own to-do, as on Odoo 19
        mine = agent_req.sudo().activity_ids.filtered(lambda t: t.user_id == self.approver)
        mine.with_user(self.approver).write({"summary": "Approve odoo_disconnect (mine)"})

    # 04: an address's +tag is the same mailbox, the same person (invariant 12)
    def test_04_subaddressed_twin_cannot_approve(self):
        twin = new_test_user(self.env, "mcp_user+approver@example.com", "mcp_guard.group_mcp_approver",
                             name="Second Account", email="mcp_user+approver@example.com")
        conn, req = self.person_request()
        with self.assertRaisesRegex(AccessError, "reads as you"):
            req.with_user(twin).action_approve()
        self.assertEqual(req.state, "pending")
        self.assertNotEqual(conn.state, "disconnected")
        olga = new_test_user(self.env, "olga+approver@example.com", "mcp_guard.group_mcp_approver",
                             name="Other Name", email="olga+approver@example.com")
        agent_req = self.Request.browse(self.file(self.agent, principal="http:olga")["id"])
        with self.assertRaisesRegex(AccessError, "reads as you|who is you"):
            agent_req.with_user(olga).action_approve()
        self.assertEqual(agent_req.state, "pending")

    # 05: the requester comments on its request as itself; the trail's own entries are not its to write
    def test_05_requester_cannot_forge_the_trail(self):
        agent_req = self.Request.browse(self.file(self.agent)["id"])
        _conn, person_req = self.person_request()
        alice = self.approver.partner_id.id
        approved = "mcp_guard.mt_mcp_request_approved"
        for requester, req in ((self.agent, agent_req), (self.user, person_req)):
            for post in (req.with_user(requester), req.with_user(requester).sudo()):  # sudo: the chatter route
                before = len(req.sudo().message_ids)
                forged = [
                    {"author_id": alice},
                    {"email_from": self.approver.email},
                    {"subtype_xmlid": approved, "message_type": "comment"},
                    {"subtype_id": self.env.ref(approved).id, "message_type": "comment"},
                    {"message_type": "notification"},
                    {"author_guest_id": False, "date": "2020-01-01 00:00:00"},
                ]
                for kwargs in forged:
                    with self.assertRaises(AccessError, msg=f"{requester.login} {kwargs}"):
                        post.message_post(body="Request approved by Alice Approver.", **kwargs)
                self.assertEqual(len(req.sudo().message_ids), before)
            msg = req.with_user(requester).message_post(body="please hurry")
            self.assertEqual(msg.sudo().author_id, requester.partner_id)
            self.assertEqual(msg.sudo().message_type, "comment")
        # the add-on's own trail is still written: the approval is tracked with its subtype
        agent_req.with_user(self.approver).action_approve()
        self.env.flush_all()
        agent_req.env.cr.precommit.run()
        self.assertIn(self.env.ref(approved), agent_req.sudo().message_ids.subtype_id)

    # 06: a change wizard cannot point at a connection its user cannot read
    def test_06_change_wizard_needs_read_access_to_the_connection(self):
        Wizard = self.env["mcp.connection.change.wizard"]
        values = {"url": "https://x.example", "db": "x", "login": "x", "protocol": "xmlrpc"}
        with self.assertRaises(AccessError):
            self.prod.with_user(self.user2).read(["alias"])
        with self.assertRaises(AccessError):
            Wizard.with_user(self.user2).create(dict(values, connection_id=self.prod.id))
        own = self.Connection.with_user(self.user2).create({
            "alias": "w10", "url": "https://erp.example.com", "db": "x", "login": "u"})
        wizard = Wizard.with_user(self.user2).create(dict(values, connection_id=own.id))
        with self.assertRaises(AccessError):
            wizard.write({"connection_id": self.prod.id})
        self.assertEqual(wizard.connection_id, own)
