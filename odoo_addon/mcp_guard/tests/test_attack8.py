"""The twelve breaks an outside tester found over XML-RPC (attack 8), one test each: every
check lives in the overridden method, whatever the caller's role or context."""

import threading
from contextlib import contextmanager

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import SERVER, McpGuardCase
from .test_audit import event

SECRET = "S3CR3T-attack8"


@tagged("post_install", "-at_install")
class TestAttack8(McpGuardCase):
    def shared(self, alias="crm", user=None):
        user = user or self.user
        return self.Connection.with_user(user).create({
            "alias": alias, "url": "https://good.example.com", "db": "d", "login": "bot",
            "new_password": "good-pw", "agent_user_ids": [(6, 0, self.agent.ids)],
        })

    def server_action(self, model, code):
        return self.env["ir.actions.server"].create({
            "name": "attack8", "model_id": self.env["ir.model"]._get_id(model), "state": "code", "code": code,
        })

    @contextmanager
    def rpc_caller(self, user):
        """What odoo.service.model.dispatch sets for an XML-RPC call authenticated as ``user``."""
        thread = threading.current_thread()
        had, old = hasattr(thread, "uid"), getattr(thread, "uid", None)
        thread.uid = user.id
        try:
            yield
        finally:
            if had:
                thread.uid = old
            else:
                del thread.uid

    # 1 (inv 11/5): unshare, edit, re-share
    def test_01_unsharing_a_connection_in_use_is_refused(self):
        conn = self.shared()
        for user in (self.user, self.manager, self.admin):
            with self.assertRaisesRegex(UserError, "Request disconnect"):
                conn.with_user(user).write({"agent_user_ids": [(5, 0, 0)]})
            self.env.invalidate_all()  # the next RPC call reads what the refusal rolled back
            with self.assertRaisesRegex(UserError, "Request disconnect"):
                conn.with_user(user).write({"agent_user_ids": [(3, self.agent.id)]})
            self.env.invalidate_all()
        self.assertEqual(conn.agent_user_ids, self.agent)
        self.assertEqual(self.Connection.with_user(self.agent).list_for_agent()[0]["url"], "https://good.example.com")

    # 2 (inv 11/14): rename the alias in use, then a new connection under the old alias
    def test_02_renaming_a_connection_in_use_is_a_replacement(self):
        conn = self.shared()
        for user in (self.user, self.manager, self.admin):
            with self.assertRaisesRegex(UserError, "alias"):
                conn.with_user(user).write({"alias": "crm-old"})
            self.env.invalidate_all()
        with self.assertRaises(ValidationError):
            self.shared(user=self.user2)  # the alias stays the agent's connection's
        self.assertEqual(conn.alias, "crm")

    # 3 (inv 11): a Manager becomes owner of the agent's connection, edits, gives it back
    def test_03_taking_the_agents_own_connection_is_refused(self):
        for user in (self.manager, self.admin):
            with self.assertRaisesRegex(UserError, "Request disconnect"):
                self.prod.with_user(user).write({"owner_id": user.id})
            self.env.invalidate_all()
        self.assertEqual(self.prod.owner_id, self.agent)
        # nor a new owner that keeps it shared with the agent: a connection an agent used keeps
        # its owner and company (test_takeaway); edits stay refused
        with self.assertRaisesRegex(UserError, "Request disconnect"):
            self.prod.with_user(self.manager).write({"owner_id": self.manager.id,
                                                     "agent_user_ids": [(4, self.agent.id)]})
        self.prod.with_user(self.manager).write({"agent_user_ids": [(4, self.agent.id)]})
        with self.assertRaisesRegex(UserError, "Request change"):
            self.prod.with_user(self.manager).write({"url": "https://evil.example.com", "new_password": "evil"})
        self.assertEqual(self.prod.sudo().password, "s3cret-pw")

    # 4 (inv 5): a server action calls the private _end()
    def test_04_private_end_outside_consume_is_refused(self):
        conn = self.shared()
        action = self.server_action("mcp.connection", "records._end()")
        with self.assertRaisesRegex(UserError, "approved disconnect"):
            action.with_context(active_model="mcp.connection", active_id=conn.id, active_ids=conn.ids).run()
        with self.assertRaises(UserError):
            conn.sudo()._end()
        req = self.Request.browse(self.file(self.agent, arguments={"alias": "crm"})["id"])
        with self.assertRaises(UserError):
            req.sudo()._set_connection_state("disconnected")
        conn.invalidate_recordset()
        self.assertTrue(conn.active)
        self.assertEqual(conn.state, "disconnect_pending")
        # the consumption of the approved request still ends it
        req.with_user(self.approver).action_approve()
        res = self.Request.with_user(self.agent).consume(req.id, "odoo_disconnect", self.digest({"alias": "crm"}), server=SERVER)
        self.assertTrue(res["ok"], res)
        self.assertEnded(conn)

    # 5 (inv 4): admin approves their own request as with_user(<approver>) in a server action
    def test_05_approval_is_given_by_the_authenticated_caller(self):
        conn = self.shared()
        action = conn.with_user(self.admin).action_request_disconnect()
        req = self.Request.browse(action["res_id"])
        code = f"env['mcp.approval.request'].browse({req.id}).with_user(env['res.users'].browse({self.approver.id})).action_approve()"
        sa = self.server_action("res.partner", code).with_user(self.admin)
        with self.rpc_caller(self.admin), self.assertRaisesRegex(AccessError, "signed-in person"):
            sa.with_context(active_model="res.partner", active_id=1, active_ids=[1]).run()
        with self.rpc_caller(self.admin), self.assertRaises(AccessError):
            req.with_user(self.approver).action_reject(note="no")
        self.assertEqual(req.state, "pending")
        with self.rpc_caller(self.approver):
            req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "done")
        self.assertEnded(conn)

    # 6 (inv 4/12): a twin account (Cyrillic "е" in the login, same name) approves a person's request
    def test_06_person_request_twin_account_cannot_decide(self):
        self.user.sudo().write({"name": "Olga Owner"})
        conn = self.shared()
        twin = new_test_user(self.env, "mcp_us\u0435r", "mcp_guard.group_mcp_approver", name="Olga Owner",
                             email="twin@example.com", context={"no_reset_password": True})
        req = self.Request.browse(conn.with_user(self.user).action_request_disconnect()["res_id"])
        self.assertIn(twin, req.sudo().requester_match_ids)
        self.assertFalse(req.with_user(twin).can_decide)
        with self.assertRaisesRegex(AccessError, "reads as you"):
            req.with_user(twin).action_approve()
        # a name alone also reads as the requester, even with another login
        namesake = new_test_user(self.env, "someone_else", "mcp_guard.group_mcp_approver", name="Olga  OWNER",
                                 email="namesake@example.com", context={"no_reset_password": True})
        with self.assertRaises(AccessError):
            req.with_user(namesake).action_approve()
        req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "done")

    # 7 (inv 4/12): principal = the approver's full email; the approver renames herself
    def test_07_approver_email_name_and_mapping_are_compared_and_frozen(self):
        self.approver.sudo().write({"email": "ann.approver@example.com", "name": "Ann Approver"})
        self.shared("a1")
        full = self.Request.browse(self.file(self.agent, arguments={"alias": "a1"},
                                             principal="http:ann.approver@example.com")["id"])
        with self.assertRaises(AccessError):
            full.with_user(self.approver).action_approve()
        self.shared("a2")
        named = self.Request.browse(self.file(self.agent, arguments={"alias": "a2"}, principal="Ann Approver")["id"])
        self.approver.with_user(self.approver).write({"name": "A. Approver"})  # Preferences
        with self.assertRaisesRegex(AccessError, "reads as you"):
            named.with_user(self.approver).action_approve()
        # a principal a Manager mapped to the person (users cannot set it themselves)
        with self.assertRaises(AccessError):
            self.approver.with_user(self.approver).write({"mcp_principals": "x"})
        self.approver.sudo().write({"mcp_principals": "stdio:bot-7, http:ann-laptop"})
        self.shared("a3")
        mapped = self.Request.browse(self.file(self.agent, arguments={"alias": "a3"}, principal="http:ann-laptop")["id"])
        with self.assertRaises(AccessError):
            mapped.with_user(self.approver).action_approve()
        mapped.with_user(self.manager).action_approve()  # somebody else
        self.assertEqual(mapped.state, "approved")

    # 8 (secrets): the "Request change" wizard keeps the new password readable
    def test_08_change_wizard_secret_is_write_only_and_wiped(self):
        conn = self.shared()
        wizard = self.env["mcp.connection.change.wizard"].with_user(self.user).create({
            "connection_id": conn.id, "url": "https://good.example.com", "db": "d", "login": "bot",
            "protocol": "xmlrpc", "password": SECRET,
        })
        self.env.invalidate_all()  # what another request (RPC call) reads
        for user in (self.user, self.approver, self.manager, self.admin):
            rows = wizard.with_user(user).search_read([("id", "=", wizard.id)], ["password", "api_key"])
            self.assertNotIn(SECRET, repr(rows))
        with self.assertRaises(AccessError):
            wizard.with_user(self.manager).read(["stored_password"])
        res = wizard.with_user(self.user).action_confirm()
        self.assertFalse(wizard.sudo().stored_password)  # handed to the request, wiped here
        req = self.Request.browse(res["res_id"])
        self.assertEqual(req.sudo().new_password, SECRET)
        with self.assertRaises(AccessError):
            req.with_user(self.manager).read(["new_password"])
        req.with_user(self.approver).action_approve()
        self.assertFalse(req.sudo().new_password)
        self.assertEqual(conn.sudo().password, SECRET)

    # 9 (inv 7): arguments_hash of a password-bearing call is an offline oracle
    def test_09_arguments_hash_not_shown_to_approvers(self):
        args = {"alias": "prod", "url": "https://h2.example.com", "db": "d", "username": "bot", "password": "Winter2026!"}
        req = self.Request.browse(self.file(self.agent, tool="odoo_connect", arguments=args)["id"])
        with self.assertRaises(AccessError):
            req.with_user(self.approver).read(["arguments_hash"])
        self.assertNotIn("Winter2026!", req.with_user(self.approver).arguments)
        with self.assertRaises(AccessError):  # round 21: an offline oracle of the password
            req.with_user(self.manager).read(["arguments_hash"])
        self.assertEqual(self.Request.with_user(self.agent).list_for_agent(request_ids=[req.id])[0]["arguments_hash"],
                         self.digest(args))
        self.env["mcp.audit.log"].with_user(self.agent).record_batch([
            event(tool="odoo_connect", arguments_hash=self.digest(args))])
        log = self.env["mcp.audit.log"].search([("tool", "=", "odoo_connect")], limit=1)
        with self.assertRaises(AccessError):
            log.with_user(self.approver).read(["arguments_hash"])
        # approving still works without the approver reading the hash
        req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "approved")

    # 10 (inv 13): credentials in the query or a scheme-relative userinfo
    def test_10_url_credentials_in_query_or_scheme_relative_refused(self):
        for url in (f"https://h.example.com/?api_key={SECRET}", f"//bob:{SECRET}@h.example.com",
                    f"https://h.example.com/web?password={SECRET}"):
            with self.assertRaisesRegex(UserError, "credentials"):
                self.Connection.with_user(self.user).create({"alias": "u", "url": url, "db": "d", "login": "l"})
            with self.assertRaisesRegex(UserError, "credentials"):
                self.prod.with_user(self.manager).write({"url": url})
            with self.assertRaisesRegex(UserError, "credentials"):
                self.file(self.agent, tool="odoo_connect", arguments={"alias": "new", "url": url, "db": "d"})

    # 11 (inv 13): a reject note posted raw in the chatter
    def test_11_reject_note_redacted_in_chatter(self):
        conn = self.shared()
        req = self.Request.browse(conn.with_user(self.user).action_request_disconnect()["res_id"])
        req.with_user(self.approver).action_reject(note=f"rejected: use password={SECRET} instead")
        self.assertNotIn(SECRET, req.decision_note)
        bodies = " ".join(str(body) for body in req.message_ids.mapped("body"))
        self.assertIn("rejected:", bodies)
        self.assertNotIn(SECRET, bodies)

    # 12 (inv 5): uninstalling the add-on drops every connection
    def test_12_uninstall_refused_while_connections_are_not_ended(self):
        module = self.env["ir.module.module"].search([("name", "=", "mcp_guard")])
        with self.assertRaisesRegex(UserError, "Request disconnect"):
            module.button_uninstall()
        with self.assertRaisesRegex(UserError, "cannot be uninstalled"):
            module.module_uninstall()
        # uninstalling a module it depends on would take it along
        with self.assertRaisesRegex(UserError, "cannot be uninstalled"):
            self.env["ir.module.module"].search([("name", "=", "mail")]).button_uninstall()
        self.assertEqual(module.state, "installed")
        self.assertTrue(self.prod.active)
