import json
from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from odoo.addons.mcp_guard.models.mcp_guard_common import internal_write

from .common import SERVER, McpGuardCase
from .test_connection import TRICK_CONTEXTS


@tagged("post_install", "-at_install")
class TestApproval(McpGuardCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gate_test_tools()

    def test_file_request_dedup_hash_redaction(self):
        args = {"alias": "prod", "password": "pw!", "nested": {"api_key": "k", "Token": "t"}, "note": "é"}
        res = self.file(self.agent, tool="odoo_connect", arguments=args)
        self.assertEqual(set(res), {"id", "ref", "state"})
        self.assertEqual(res["state"], "pending")
        self.assertTrue(res["ref"].startswith("MCPR/"))
        req = self.Request.browse(res["id"])
        self.assertEqual(req.arguments_hash, self.digest(args))
        self.assertEqual(len(req.arguments_hash), 64)
        stored = json.loads(req.arguments)
        self.assertEqual(stored["password"], "***")
        self.assertEqual(stored["nested"], {"api_key": "***", "Token": "***"})
        self.assertEqual(stored["note"], "é")
        self.assertNotIn("pw!", req.arguments)
        self.assertEqual(req.requester_id, self.agent)
        self.assertEqual(req.connection_id, self.prod)  # odoo_connect replacing an alias
        # an identical call returns the same pending request
        self.assertEqual(self.file(self.agent, tool="odoo_connect", arguments=dict(args)), res)
        # any difference files a new one
        self.assertNotEqual(self.file(self.agent, tool="odoo_connect", arguments=dict(args, note="x"))["id"], res["id"])
        self.assertNotEqual(self.file(self.agent, tool="odoo_connect", arguments=args, principal="other")["id"], res["id"])

    def test_disconnect_request_links_connection(self):
        res = self.file(self.agent)
        req = self.Request.browse(res["id"])
        self.assertEqual(req.connection_id, self.prod)
        self.assertEqual(req.connection_alias, "prod")
        self.assertEqual(self.prod.state, "disconnect_pending")
        self.assertAlmostEqual(req.expires_at, fields.Datetime.now() + timedelta(seconds=3600), delta=timedelta(seconds=60))

    def test_who_may_file(self):
        """file_request is the agent's: people file from the connection's form, administrators
        included (review 9, finding 09)."""
        for user in (self.plain, self.user, self.approver, self.manager, self.admin):
            with self.assertRaisesRegex(AccessError, "^file_request is for the MCP Agent user only"):
                self.file(user, tool="odoo_write", arguments={"model": "res.partner"})
        self.assertFalse(self.Request.search([("tool", "=", "odoo_write")]))
        res = self.file(self.agent, tool="odoo_write", arguments={"model": "res.partner"})
        self.assertEqual(res["state"], "pending")
        with self.assertRaises(UserError):
            self.file(self.agent, tool="bad tool name")

    def person_request(self, requester, alias, owner=None):
        """``requester`` asks, on the form of a connection (``owner``'s, theirs by default), to
        disconnect it."""
        conn = self.Connection.with_user(owner or requester).create(
            {"alias": alias, "url": "https://erp.example.com", "db": "d", "login": "l"})
        return self.Request.browse(conn.with_user(requester).action_request_disconnect()["res_id"])

    def test_requester_never_decides(self):
        """Four eyes: not the requester, even as approver, manager, admin, or with sudo/context tricks."""
        for requester in (self.approver, self.manager, self.admin):
            req = self.person_request(requester, f"mine-{requester.id}", owner=self.user)
            with self.assertRaises(AccessError):
                req.with_user(requester).action_approve()
            with self.assertRaises(AccessError):
                req.with_user(requester).action_reject(note="no")
            with self.assertRaises(AccessError):
                req.with_user(requester).sudo().action_approve()
            for ctx in TRICK_CONTEXTS + [{"uid": self.approver2.id}, {"mcp_approver_id": self.approver.id}]:
                with self.assertRaises(AccessError):
                    req.with_user(requester).with_context(**ctx).action_approve()
            self.assertFalse(req.with_user(requester).can_decide)
            self.assertEqual(req.state, "pending")

    def test_approving_needs_approver_group(self):
        req = self.Request.browse(self.file(self.agent)["id"])
        for user in (self.user, self.agent2, self.plain):
            with self.assertRaises(AccessError):
                req.with_user(user).action_approve()
        with self.assertRaises(AccessError):  # the agent is its own requester and no approver
            req.with_user(self.agent).action_approve()
        self.assertFalse(req.with_user(self.agent).can_decide)
        self.assertTrue(req.with_user(self.approver).can_decide)
        req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "approved")
        self.assertEqual(req.approver_id, self.approver)
        with self.assertRaises(UserError):  # no second decision
            req.with_user(self.manager).action_reject(note="late")

    def test_no_direct_writes_or_creates(self):
        req = self.Request.browse(self.file(self.agent)["id"])
        for user in (self.manager, self.admin):
            for ctx in [{}] + TRICK_CONTEXTS:
                with self.assertRaises(AccessError):
                    req.with_user(user).with_context(**ctx).write({"state": "approved"})
        with self.assertRaises(AccessError):
            req.sudo().write({"state": "approved", "approver_id": self.approver.id})
        with self.assertRaises(AccessError):
            req.sudo().write({"arguments_hash": "0" * 64})
        with self.assertRaises(AccessError):
            self.Request.with_user(self.agent).create({"tool": "odoo_disconnect", "state": "approved",
                                                       "requester_id": self.agent.id})
        with self.assertRaises(AccessError):
            self.Request.sudo().create({"tool": "odoo_disconnect", "requester_id": self.agent.id, "state": "approved"})
        self.assertEqual(req.state, "pending")
        # commenting stays possible for readers
        req.with_user(self.approver).message_post(body="looking at it")

    def test_reject_with_note_and_states(self):
        res = self.file(self.agent)
        req = self.Request.browse(res["id"])
        wizard = self.env["mcp.approval.reject.wizard"].with_user(self.approver).create({
            "request_ids": [(6, 0, req.ids)], "note": "Not during closing",
        })
        wizard.action_confirm()
        self.assertEqual(req.state, "rejected")
        self.assertEqual(self.prod.state, "connected")  # released
        states = self.Request.with_user(self.agent).get_states([res["id"]])
        self.assertEqual(states, [{"id": res["id"], "ref": res["ref"], "state": "rejected",
                                   "decision_note": "Not during closing"}])
        other = self.file(self.agent, tool="odoo_x", arguments={})
        self.assertEqual(self.Request.with_user(self.agent).get_states([other["id"]])[0]["decision_note"], "")
        # another agent cannot read these states
        self.assertEqual(self.Request.with_user(self.agent2).get_states([res["id"], other["id"]]), [])
        result = self.Request.with_user(self.agent).consume(res["id"], "odoo_disconnect", self.digest({"alias": "prod"}), server=SERVER)
        self.assertFalse(result["ok"])
        self.assertEqual(result["state"], "rejected")

    def test_consume_disconnect_removes_connection_once(self):
        res = self.approved()
        args_hash = self.digest({"alias": "prod"})
        # only the requester consumes
        for user in (self.approver, self.manager, self.agent2, self.user):
            self.assertFalse(self.Request.with_user(user).consume(res["id"], "odoo_disconnect", args_hash, server=SERVER)["ok"])
        self.assertEqual(self.Request.browse(res["id"]).state, "approved")
        result = self.Request.with_user(self.agent).consume(res["id"], "odoo_disconnect", args_hash, server=SERVER)
        self.assertEqual(result["ok"], True)
        self.assertEqual(result["state"], "done")
        self.assertEnded(self.prod)
        req = self.Request.browse(res["id"])
        self.assertEqual(req.state, "done")
        self.assertTrue(req.consumed_at)
        self.assertEqual(req.connection_alias, "prod")
        again = self.Request.with_user(self.agent).consume(res["id"], "odoo_disconnect", args_hash, server=SERVER)
        self.assertFalse(again["ok"])
        self.assertEqual(again["state"], "done")

    def test_consume_mismatch_does_not_consume(self):
        res = self.approved()
        good = self.digest({"alias": "prod"})
        bad = [("odoo_disconnect", self.digest({"alias": "prod2"})), ("odoo_connect", good),
               ("odoo_disconnect", good.upper())]
        for tool, digest in bad:
            result = self.Request.with_user(self.agent).consume(res["id"], tool, digest, server=SERVER)
            self.assertFalse(result["ok"])
            self.assertEqual(result["state"], "approved")
            self.assertTrue(result["message"])
        self.assertTrue(self.prod.exists())
        self.assertTrue(self.Request.with_user(self.agent).consume(res["id"], "odoo_disconnect", good, server=SERVER)["ok"])

    def test_pending_not_consumable(self):
        res = self.file(self.agent)
        result = self.Request.with_user(self.agent).consume(res["id"], "odoo_disconnect", self.digest({"alias": "prod"}), server=SERVER)
        self.assertEqual(result["ok"], False)
        self.assertEqual(result["state"], "pending")
        self.assertTrue(self.prod.exists())
        self.assertFalse(self.Request.with_user(self.agent).consume(999999999, "odoo_disconnect", "x", server=SERVER)["ok"])

    def test_expiry_cron_and_consume(self):
        res = self.approved()
        req = self.Request.browse(res["id"])
        with freeze_time(fields.Datetime.now() + timedelta(seconds=3700)):
            result = self.Request.with_user(self.agent).consume(res["id"], "odoo_disconnect", self.digest({"alias": "prod"}), server=SERVER)
            self.assertFalse(result["ok"])
            self.assertEqual(result["state"], "expired")
        self.assertEqual(req.state, "expired")
        self.assertTrue(self.prod.exists())
        self.assertEqual(self.prod.state, "connected")
        pending = self.Request.browse(self.file(self.agent, tool="odoo_x", arguments={"a": 1})["id"])
        with freeze_time(fields.Datetime.now() + timedelta(hours=2)):
            self.Request._cron_expire()
        self.assertEqual(pending.state, "expired")
        # an expired request is no longer returned for an identical call
        self.assertNotEqual(self.file(self.agent, tool="odoo_x", arguments={"a": 1})["id"], pending.id)

    def test_expiry_follows_rule_and_resets_on_approval(self):
        self.env.ref("mcp_guard.rule_odoo_disconnect").write({"approval_expires_in": 120})
        with freeze_time("2026-01-01 10:00:00"):
            req = self.Request.browse(self.file(self.agent)["id"])
            self.assertEqual(req.expires_at, fields.Datetime.to_datetime("2026-01-01 10:02:00"))
        with freeze_time("2026-01-01 10:01:00"):
            req.with_user(self.approver).action_approve()
            self.assertEqual(req.expires_at, fields.Datetime.to_datetime("2026-01-01 10:03:00"))
            # the approver sees both: when the request would have lapsed, how long the approval holds
            self.assertEqual(req.request_expires_at, fields.Datetime.to_datetime("2026-01-01 10:02:00"))
            self.assertEqual(req.approval_valid_until, fields.Datetime.to_datetime("2026-01-01 10:03:00"))

    def test_cancel(self):
        req = self.Request.browse(self.file(self.agent)["id"])
        for user in (self.user, self.approver):
            with self.assertRaises(AccessError):
                req.with_user(user).action_cancel()
        req.with_user(self.agent).action_cancel()
        self.assertEqual(req.state, "cancelled")
        self.assertEqual(self.prod.state, "connected")
        req2 = self.Request.browse(self.file(self.agent, tool="odoo_y", arguments={})["id"])
        req2.with_user(self.manager).action_cancel()
        self.assertEqual(req2.state, "cancelled")

    def test_notifications(self):
        """Approvers get an activity (inbox) when filed; the requester is notified of the decision."""
        req = self.person_request(self.user, "mine")
        assigned = req.activity_ids.mapped("user_id")
        self.assertIn(self.approver, assigned)
        self.assertIn(self.manager, assigned)
        self.assertNotIn(self.user, assigned)
        self.assertNotIn(self.approver2, assigned)  # other company
        inbox = self.env["mail.message"].search([
            ("model", "=", "mcp.approval.request"), ("res_id", "=", req.id),
            ("message_type", "=", "user_notification"),
        ])
        self.assertIn(self.approver.partner_id, inbox.partner_ids)
        req.with_user(self.approver).action_approve()
        self.assertFalse(req.activity_ids)
        notified = req.message_ids.mapped("notified_partner_ids")
        self.assertIn(self.user.partner_id, notified)

    def test_record_rules_requests(self):
        mine = self.person_request(self.user, "mine")
        agent_req = self.Request.browse(self.file(self.agent)["id"])
        self.Connection.with_user(self.agent2).create({"alias": "c2", "url": "u", "db": "d", "login": "l"})
        other_co = self.Request.browse(self.file(self.agent2, arguments={"alias": "c2"})["id"])
        self.assertEqual(self.Request.with_user(self.user).search([]), mine)
        self.assertEqual(self.Request.with_user(self.agent).search([]), agent_req)
        self.assertEqual(self.Request.with_user(self.user2).search([]), self.Request)
        approver_sees = self.Request.with_user(self.approver).search([])
        self.assertEqual(approver_sees & (mine | agent_req | other_co), mine | agent_req)
        self.assertEqual(self.Request.with_user(self.approver2).search([("id", "=", other_co.id)]), other_co)
        with self.assertRaises(AccessError):  # not the approver of another company
            other_co.with_user(self.approver).action_approve()
        other_co.with_user(self.approver2).action_approve()
        self.assertEqual(other_co.state, "approved")

    def test_reject_wizard_and_bad_input(self):
        req = self.person_request(self.approver, "mine", owner=self.user)
        wizard = self.env["mcp.approval.reject.wizard"].with_user(self.approver).create(
            {"request_ids": [(6, 0, req.ids)], "note": "self-reject"}
        )
        with self.assertRaises(AccessError):  # the wizard goes through the same four-eyes check
            wizard.action_confirm()
        with self.assertRaises(UserError):
            self.Request.with_user(self.agent).file_request("odoo_x", ["not", "a", "dict"], "p", "r", server=SERVER)
        # admin (a Manager through Settings) may decide on somebody else's request
        req.with_user(self.admin).action_reject(note="admin says no")
        self.assertEqual(req.state, "rejected")

    def test_connect_replacement_through_approval(self):
        """An existing alias is replaced only after an approved odoo_connect is consumed."""
        args = {"alias": "prod", "url": "https://new.example.com", "db": "prod", "username": "bot",
                "password": "new-pw", "protocol": "xmlrpc"}
        res = self.approved(tool="odoo_connect", arguments=args)
        with self.assertRaises(UserError):
            self.Connection.with_user(self.agent).upsert_from_agent(
                {"alias": "prod", "url": "https://new.example.com", "db": "prod", "login": "bot"})
        # consume carries the replacement out itself, with the approved call's arguments
        result = self.Request.with_user(self.agent).consume(res["id"], "odoo_connect", self.digest(args), args, server=SERVER)
        self.assertTrue(result["ok"], result)
        self.assertEnded(self.prod)
        listed = self.Connection.with_user(self.agent).list_for_agent()
        self.assertEqual([(c["alias"], c["url"], c["password"]) for c in listed],
                         [("prod", "https://new.example.com", "new-pw")])

    def test_context_cannot_file_an_approved_request(self):
        ctx = {"default_state": "approved", "default_approver_id": self.approver.id, "tracking_disable": True}
        res = self.Request.with_user(self.agent).with_context(**ctx).file_request(
            "odoo_disconnect", {"alias": "prod"}, "agent-test", "", server=SERVER)
        req = self.Request.browse(res["id"])
        self.assertEqual((res["state"], req.state, req.approver_id), ("pending", "pending", self.env["res.users"]))
        self.assertFalse(self.Request.with_user(self.agent).consume(res["id"], "odoo_disconnect",
                                                                   self.digest({"alias": "prod"}), server=SERVER)["ok"])
        self.assertTrue(self.prod.exists())

    def test_disconnect_of_unknown_alias_refused(self):
        for args in ({"alias": "ghost"}, {"alias": ""}, {"alias": ["prod"]}, {}):
            with self.assertRaises(UserError):
                self.file(self.agent, arguments=args)
        with self.assertRaises(UserError):  # another owner's alias is unknown to this caller
            self.file(self.agent2, arguments={"alias": "prod"})
        self.assertFalse(self.Request.search([("tool", "=", "odoo_disconnect")]))

    def test_rename_after_filing_removes_nothing(self):
        """A request acts on the record it was filed for, never on whoever bears the alias later."""
        mine = self.Connection.with_user(self.agent).create({"alias": "mine", "url": "u", "db": "d", "login": "l"})
        # (a new connection needs an approval only where odoo_connect's rule asks for one)
        self.env.ref("mcp_guard.rule_odoo_connect").write({"action": "require_approval"})
        # an odoo_connect filed for an alias that does not exist yet replaces nothing ...
        args = {"alias": "x", "url": "https://new.example.com", "db": "n", "username": "n"}
        res = self.approved(tool="odoo_connect", arguments=args)
        with internal_write():  # as an approved "Request change" would (a plain Save is refused)
            mine.sudo().write({"alias": "x"})  # ... even once the agent's connection is named "x"
        result = self.Request.with_user(self.agent).consume(res["id"], "odoo_connect", self.digest(args), args, server=SERVER)
        self.assertEqual((result["ok"], result["state"]), (False, "failed"), result)
        self.assertTrue(mine.exists())
        self.assertEqual(mine.url, "u")
        # a disconnect filed for "x", then the names are swapped: consumption fails, nothing goes
        other = self.Connection.with_user(self.agent).create({"alias": "y", "url": "u", "db": "d", "login": "l"})
        res = self.approved(arguments={"alias": "x"})
        with internal_write():
            mine.sudo().write({"alias": "x-old"})
            self.env.flush_all()  # two calls, as over RPC: the unique alias holds after each
            other.sudo().write({"alias": "x"})
        result = self.Request.with_user(self.agent).consume(res["id"], "odoo_disconnect", self.digest({"alias": "x"}), server=SERVER)
        self.assertEqual((result["ok"], result["state"]), (False, "failed"))
        self.assertIn("alias", result["message"])
        self.assertTrue(mine.exists() and other.exists())
        self.assertEqual(mine.state, "connected")  # released
        self.assertEqual(self.Request.browse(res["id"]).state, "failed")

    def test_changed_connection_voids_request(self):
        """A new URL, database, login or owner between filing and consumption makes consumption fail."""
        args_hash = self.digest({"alias": "prod"})
        for vals in ({"url": "https://evil.example.com"}, {"db": "other"}, {"login": "root"},
                     {"owner_id": self.user.id}):
            res = self.approved()
            before = {key: self.prod[key] for key in vals}
            with internal_write():  # as an approved "Request change" would (a plain Save is refused)
                self.prod.with_user(self.manager).write(vals)
            result = self.Request.with_user(self.agent).consume(res["id"], "odoo_disconnect", args_hash, server=SERVER)
            self.assertEqual((result["ok"], result["state"]), (False, "failed"), vals)
            self.assertIn(next(iter(vals)).replace("_id", ""), result["message"])
            self.assertTrue(self.prod.active)
            with internal_write():
                self.prod.with_user(self.manager).write(
                    {key: value.id if key == "owner_id" else value for key, value in before.items()}
                )
        # unchanged (or changed back), a new approval removes it
        res = self.approved()
        self.assertTrue(self.Request.with_user(self.agent).consume(res["id"], "odoo_disconnect", args_hash, server=SERVER)["ok"])
        self.assertEnded(self.prod)

    def test_bad_request_ids(self):
        for bad in ("abc", "12", None, 1.5, True, -3, 0, [1], {"id": 1}):
            with self.assertRaisesRegex(UserError, "Invalid request id"):
                self.Request.with_user(self.agent).consume(bad, "odoo_disconnect", "x", server=SERVER)
            with self.assertRaisesRegex(UserError, "Invalid request id"):
                self.Request.with_user(self.agent).get_states([bad])
        with self.assertRaisesRegex(UserError, "abc"):
            self.Request.with_user(self.agent).get_states([1, "abc"])
        for bad in ("1", 1, None, {"ids": [1]}):
            with self.assertRaisesRegex(UserError, "ids must be a list"):
                self.Request.with_user(self.agent).get_states(bad)

    def test_list_for_agent_shows_odoo_expiry_and_decider(self):
        res = self.file(self.agent, tool="odoo_x", arguments={"n": 1, "password": "pw!"})
        req = self.Request.browse(res["id"])
        req.with_user(self.approver).action_approve()
        [view] = self.Request.with_user(self.agent).list_for_agent(request_ids=[res["id"]])
        self.assertEqual(view["ref"], res["ref"])
        self.assertEqual(view["state"], "approved")
        self.assertEqual(view["decided_by"], self.approver.name)
        self.assertEqual(view["expires_at"], self.Request._epoch(req.expires_at))
        self.assertEqual(view["arguments"], {"n": 1, "password": "***"})
        self.assertEqual(self.Request.with_user(self.agent).list_for_agent(ref=res["ref"].lower()), [view])
        self.assertIn(view, self.Request.with_user(self.agent).list_for_agent(state="approved"))
        # record rules apply: another agent sees none of it
        self.assertEqual(self.Request.with_user(self.agent2).list_for_agent(request_ids=[res["id"]]), [])
        with self.assertRaises(UserError):
            self.Request.with_user(self.agent).list_for_agent(limit=0)

    def test_report_failure_only_by_the_requester_after_consumption(self):
        res = self.file(self.agent, tool="odoo_x", arguments={"n": 2})
        req = self.Request.browse(res["id"])
        self.assertFalse(self.Request.with_user(self.agent).report_failure(res["id"], "boom"))  # pending
        req.with_user(self.approver).action_approve()
        self.assertTrue(self.Request.with_user(self.agent).consume(res["id"], "odoo_x", self.digest({"n": 2}), server=SERVER)["ok"])
        self.assertFalse(self.Request.with_user(self.agent2).report_failure(res["id"], "boom"))
        self.assertEqual(req.state, "done")
        self.assertTrue(self.Request.with_user(self.agent).report_failure(res["id"], "boom"))
        self.assertEqual(req.state, "failed")
        self.assertFalse(self.Request.with_user(self.agent).report_failure(res["id"], "again"))

    def test_principal_never_decides_as_an_odoo_user(self):
        """The person behind the agent is the MCP principal: the Odoo user who is that person
        (by login, name or email, compared as the front-end compares: TR39 skeleton, transport
        prefix, case) cannot approve or reject the request the agent filed for them."""
        ctx = {"mail_create_nolog": True, "no_reset_password": True}
        alice = new_test_user(self.env, "alice", "mcp_guard.group_mcp_approver", context=ctx,
                              name="Alice Approver", email="alice@example.com")
        carol = new_test_user(self.env, "c.v", "mcp_guard.group_mcp_approver", context=ctx,
                              name="C. V.", email="carol@example.com")
        cases = [(alice, p) for p in ("stdio:alice", "alice", "http:alice", "ALICE", "\u0430lice",
                                      "Alice Approver", "stdio:alice approver")]
        cases.append((carol, "carol"))
        for n, (person, principal) in enumerate(cases):
            res = self.file(self.agent, tool="odoo_x", arguments={"n": n}, principal=principal)
            req = self.Request.browse(res["id"])
            self.assertEqual(req.principal, principal)
            self.assertFalse(req.with_user(person).can_decide)
            with self.assertRaises(AccessError):
                req.with_user(person).action_approve()
            with self.assertRaises(AccessError):
                req.with_user(person).action_reject(note="mine")
            wizard = self.env["mcp.approval.reject.wizard"].with_user(person).create(
                {"request_ids": [(6, 0, req.ids)], "note": "mine"})
            with self.assertRaises(AccessError):
                wizard.action_confirm()
            self.assertEqual(req.state, "pending")
            # another approver decides it
            self.assertTrue(req.with_user(self.approver).can_decide)
            req.with_user(self.approver).action_approve()
            self.assertEqual(req.state, "approved")

    def test_principal_that_cannot_be_compared_is_refused(self):
        """A principal with a prefix no transport gives ("x:alice"), or an unreadable one, is
        refused when filed: it could not be compared with an approver."""
        for principal in ("x:alice", "", "alice\u200b", "::", None):
            with self.assertRaises(UserError):
                self.file(self.agent, tool="odoo_x", arguments={"p": str(principal)}, principal=principal)
