from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from .common import SERVER, McpGuardCase


@tagged("post_install", "-at_install")
class TestSharing(McpGuardCase):
    """A person's connection: shared with the agent, ended from the UI, edited through approval."""

    def person_connection(self, user=None, alias="crm", **vals):
        user = user or self.user
        conn = self.Connection.with_user(user).create({
            "alias": alias, "url": "https://crm.example.com", "db": "crm", "login": "bot",
            "new_password": "pw-crm", "new_api_key": "key-crm", **vals,
        })
        conn.with_user(user).write({"agent_user_ids": [(4, self.agent.id)]})
        return conn

    def test_shared_connection_listed_with_secrets_for_the_agent_only(self):
        conn = self.person_connection()
        # the owner wrote its secrets, but never reads them back
        with self.assertRaises(AccessError):
            conn.with_user(self.user).read(["password"])
        self.assertEqual(conn.with_user(self.user).read(["new_password", "has_password"])[0]["new_password"], False)
        self.assertTrue(conn.with_user(self.user).has_password)
        listed = {c["alias"]: c for c in self.Connection.with_user(self.agent).list_for_agent()}
        self.assertEqual(set(listed), {"prod", "crm"})
        self.assertEqual(
            listed["crm"],
            {"alias": "crm", "url": "https://crm.example.com", "db": "crm", "login": "bot", "protocol": "xmlrpc",
             "password": "pw-crm", "api_key": "key-crm"},
        )
        # the owner lists exactly their own, without secrets; another agent sees none of it
        self.assertEqual(self.Connection.with_user(self.user).list_for_agent(), [
            {"alias": "crm", "url": "https://crm.example.com", "db": "crm", "login": "bot", "protocol": "xmlrpc"},
        ])
        self.assertEqual(self.Connection.with_user(self.agent2).list_for_agent(), [])
        # unsharing would end it for the agent: refused (it goes through Request disconnect)
        with self.assertRaisesRegex(UserError, "Request disconnect"):
            conn.with_user(self.user).write({"agent_user_ids": [(5, 0, 0)]})

    def test_sharing_is_checked(self):
        conn = self.Connection.with_user(self.user).create({"alias": "crm", "url": "u", "db": "d", "login": "l"})
        for who in (self.user2, self.plain):  # a person is no agent
            with self.assertRaises(ValidationError):
                conn.with_user(self.user).write({"agent_user_ids": [(4, who.id)]})
        with self.assertRaises(ValidationError):  # the agent of another company
            conn.with_user(self.user).write({"agent_user_ids": [(4, self.agent2.id)]})
        with self.assertRaises(AccessError):  # another user's connection
            conn.with_user(self.user2).write({"agent_user_ids": [(4, self.agent.id)]})
        # an agent never has two connections of one alias
        clash = self.Connection.with_user(self.user).create({"alias": "prod", "url": "u", "db": "d", "login": "l"})
        with self.assertRaises(ValidationError):
            clash.with_user(self.user).write({"agent_user_ids": [(4, self.agent.id)]})
        # a manager shares anybody's connection
        conn.with_user(self.manager).write({"agent_user_ids": [(4, self.agent.id)]})
        self.assertIn("crm", [c["alias"] for c in self.Connection.with_user(self.agent).list_for_agent()])

    def test_owner_requests_disconnect_another_person_approves(self):
        conn = self.person_connection()
        action = conn.with_user(self.user).action_request_disconnect()
        req = self.Request.browse(action["res_id"])
        self.assertEqual((req.tool, req.origin, req.requester_id, req.state), ("odoo_disconnect", "person", self.user, "pending"))
        self.assertEqual((req.connection_id, req.connection_owner_id), (conn, self.user))
        self.assertEqual(conn.state, "disconnect_pending")
        self.assertIn("asks to remove connection crm (https://crm.example.com, db crm), owned by", req.summary)
        self.assertEqual(req.risk_class, "destructive")
        # still usable until approved; a second click finds the same request
        self.assertIn("crm", [c["alias"] for c in self.Connection.with_user(self.agent).list_for_agent()])
        self.assertEqual(conn.with_user(self.user).action_request_disconnect()["res_id"], req.id)
        # four eyes: the owner cannot approve, even as a manager
        with self.assertRaises(AccessError):
            req.with_user(self.user).action_approve()
        self.assertIn(self.approver, req.activity_ids.user_id)
        req.with_user(self.approver).action_approve()
        # Odoo carried it out itself, in the approval's transaction
        self.assertEqual(req.state, "done")
        self.assertTrue(req.consumed_at)
        self.assertEnded(conn)
        self.assertEqual([c["alias"] for c in self.Connection.with_user(self.agent).list_for_agent()], ["prod"])
        # what a disconnect leaves: the request and the chatter, linked; the alias free again
        self.assertEqual(conn.request_ids, req)
        self.assertEqual((req.connection_alias, req.connection_url, req.connection_db),
                         ("crm", "https://crm.example.com", "crm"))
        self.assertIn("was disconnected by request", " ".join(conn.sudo().message_ids.mapped("body")))
        self.assertIn("Approved → Done", " ".join(req.sudo().message_ids.mapped("body")))
        with self.assertRaises(UserError):  # ended is ended: no edit, no unarchive
            conn.with_user(self.manager).write({"active": True})
        again = self.person_connection()
        self.assertTrue(again.active)
        self.assertNotEqual(again, conn)
        # the owner sees the request about their connection and was told of the decision
        self.assertIn(req, self.Request.with_user(self.user).search([]))
        self.assertIn(self.user.partner_id, req.message_ids.notified_partner_ids)

    def test_approver_and_manager_request_disconnect_owner_is_told(self):
        conn = self.person_connection()
        with self.assertRaises(AccessError):  # another user cannot even read it
            conn.with_user(self.user2).action_request_disconnect()
        req = self.Request.browse(conn.with_user(self.approver).action_request_disconnect()["res_id"])
        self.assertEqual((req.requester_id, req.connection_owner_id), (self.approver, self.user))
        self.assertIn(self.user.partner_id, req.message_ids.notified_partner_ids)
        self.assertIn(req, self.Request.with_user(self.user).search([]))
        with self.assertRaises(AccessError):  # the requester never decides
            req.with_user(self.approver).action_approve()
        req.with_user(self.manager).action_reject(note="still needed")
        self.assertEqual(conn.state, "connected")
        req2 = self.Request.browse(conn.with_user(self.manager).action_request_disconnect()["res_id"])
        req2.with_user(self.approver).action_approve()
        self.assertEqual(req2.state, "done")
        self.assertEnded(conn)
        with self.assertRaises(UserError):  # nothing left to disconnect
            conn.with_user(self.manager).action_request_disconnect()

    def test_agent_disconnects_a_shared_connection_with_todays_flow(self):
        conn = self.person_connection()
        res = self.file(self.agent, arguments={"alias": "crm"})
        req = self.Request.browse(res["id"])
        self.assertEqual((req.origin, req.connection_id, req.connection_owner_id), ("agent", conn, self.user))
        self.env.cr.precommit.run()  # mail writes its tracking at commit
        self.assertIn(self.env.ref("mcp_guard.mt_mcp_request_filed"), req.message_ids.subtype_id)
        req.with_user(self.approver).action_approve()
        self.env.flush_all()
        self.env.cr.precommit.run()
        # followers pick what they hear about: filed, approved, rejected
        self.assertIn(self.env.ref("mcp_guard.mt_mcp_request_approved"), req.message_ids.subtype_id)
        self.assertEqual(req.state, "approved")  # the agent's retry carries it out
        self.assertTrue(conn.active)
        # the agent has no mailbox: nobody mails it; the owner hears about it
        self.assertNotIn(self.agent.partner_id, req.message_ids.notified_partner_ids)
        self.assertIn(self.user.partner_id, req.message_ids.notified_partner_ids)
        result = self.Request.with_user(self.agent).consume(res["id"], "odoo_disconnect", self.digest({"alias": "crm"}), server=SERVER)
        self.assertTrue(result["ok"], result)
        self.assertEnded(conn)

    def test_unshared_before_consumption_removes_nothing(self):
        conn = self.person_connection()
        res = self.approved(arguments={"alias": "crm"})
        # a person cannot unshare it (that would end it for the agent); were it unshared by
        # the add-on's own code, the approval would remove nothing
        with self.assertRaisesRegex(UserError, "Request disconnect"):
            conn.with_user(self.user).write({"agent_user_ids": [(5, 0, 0)]})
        self.env.cr.execute("DELETE FROM mcp_connection_agent_user_rel WHERE connection_id = %s", (conn.id,))
        conn.invalidate_recordset()
        result = self.Request.with_user(self.agent).consume(res["id"], "odoo_disconnect", self.digest({"alias": "crm"}), server=SERVER)
        self.assertEqual((result["ok"], result["state"]), (False, "failed"))
        self.assertIn("no longer shared", result["message"])
        self.assertTrue(conn.active)

    def test_edit_of_a_connection_in_use_is_a_replacement(self):
        conn = self.person_connection()
        for vals in ({"url": "https://attacker.example.net"}, {"db": "x"}, {"login": "root"},
                     {"protocol": "jsonrpc"}, {"new_password": "other"}, {"new_api_key": "other"}):
            for user in (self.user, self.manager, self.admin):
                with self.assertRaisesRegex(UserError, "Request change"):
                    conn.with_user(user).write(vals)
        self.assertEqual(conn.url, "https://crm.example.com")
        self.assertEqual(conn.sudo().password, "pw-crm")
        # the agent's own connection likewise; a same-value write is no replacement, a rename is
        with self.assertRaises(UserError):
            self.prod.with_user(self.manager).write({"url": "https://attacker.example.net"})
        conn.with_user(self.user).write({"url": "https://crm.example.com", "alias": "crm"})
        with self.assertRaisesRegex(UserError, "alias"):
            conn.with_user(self.user).write({"alias": "crm2"})
        # never shared: a plain Save
        other = self.Connection.with_user(self.user).create(
            {"alias": "crm2", "url": "https://crm.example.com", "db": "crm", "login": "bot"})
        other.with_user(self.user).write({"alias": "crm3", "url": "https://crm2.example.com", "new_password": "pw2"})
        self.assertEqual((other.alias, other.url, other.sudo().password), ("crm3", "https://crm2.example.com", "pw2"))

    def test_a_new_address_forgets_the_secrets_saved_for_the_old_one(self):
        # a manager saves the password of a person's connection not yet shared; the owner then
        # points it at another server, database or login: the password must not follow it there
        conn = self.Connection.with_user(self.user).create(
            {"alias": "crm2", "url": "https://crm.example.com", "db": "crm", "login": "bot"})
        for field, value in (("url", "https://evil.example.net"), ("db", "other"), ("login", "root")):
            conn.with_user(self.manager).write({"new_password": "pw-manager", "new_api_key": "key-manager"})
            conn.with_user(self.user).write({field: value})
            self.assertEqual((conn.sudo().password, conn.sudo().api_key), (False, False), field)
            self.assertFalse(conn.with_user(self.user).has_password or conn.with_user(self.user).has_api_key)
        # a secret given in the same write is the one kept; the other is forgotten
        conn.with_user(self.manager).write({"new_password": "pw-manager", "new_api_key": "key-manager"})
        conn.with_user(self.user).write({"url": "https://crm2.example.com", "new_password": "pw-own"})
        self.assertEqual((conn.sudo().password, conn.sudo().api_key), ("pw-own", False))
        # the same address, or another field, forgets nothing
        conn.with_user(self.user).write({"url": "https://crm2.example.com", "protocol": "jsonrpc", "alias": "crm4"})
        self.assertEqual(conn.sudo().password, "pw-own")

    def test_approver_form_is_read_only(self):
        conn = self.person_connection()
        self.assertFalse(conn.with_user(self.approver).can_edit)
        self.assertTrue(conn.with_user(self.approver).can_request_disconnect)
        self.assertTrue(conn.with_user(self.user).can_edit)
        self.assertFalse(conn.with_user(self.user).can_change_owner)
        self.assertTrue(conn.with_user(self.manager).can_change_owner)
        with self.assertRaises(UserError):  # no right to write (and a rename of a connection in use)
            conn.with_user(self.approver).write({"alias": "x"})

    def change(self, conn, user, **vals):
        wizard = self.env["mcp.connection.change.wizard"].with_user(user).with_context(
            default_connection_id=conn.id
        ).create(vals)
        return self.Request.browse(wizard.action_confirm()["res_id"])

    def test_request_change_is_approved_by_another_person(self):
        conn = self.person_connection()
        req = self.change(conn, self.user, url="https://attacker.example.net", password="pw-new")
        self.assertEqual((req.tool, req.origin, req.state), ("odoo_connect", "person", "pending"))
        self.assertEqual((req.connection_url, req.new_url, req.new_db), (
            "https://crm.example.com", "https://attacker.example.net", "crm"))
        self.assertEqual(req.changes_secrets, "password")
        self.assertIn("asks to replace connection crm", req.summary)
        self.assertNotIn("pw-new", req.arguments)
        with self.assertRaises(AccessError):  # nobody but managers and the agent reads it back
            req.with_user(self.user).read(["new_password"])
        with self.assertRaises(AccessError):
            req.with_user(self.approver).read(["new_password"])
        self.assertEqual(conn.url, "https://crm.example.com")  # unchanged until approved
        with self.assertRaises(AccessError):
            req.with_user(self.user).action_approve()
        req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "done")
        # the API key was given for the old URL, and not anew: forgotten (outside round 21)
        self.assertEqual((conn.url, conn.sudo().password, conn.sudo().api_key),
                         ("https://attacker.example.net", "pw-new", False))
        self.assertTrue(conn.active)
        self.assertFalse(req.sudo().new_password)
        self.env.flush_all()
        self.env.cr.precommit.run()
        tracked = conn.sudo().message_ids.tracking_value_ids
        self.assertIn(("url", "https://crm.example.com", "https://attacker.example.net"),
                      {(v.field_id.name, v.old_value_char, v.new_value_char) for v in tracked})

    def test_change_shows_the_new_login_as_its_arguments_do(self):
        """Outside tester, MEDIUM: a requested change whose new login (or database) repeats its
        new password, or looks like a secret, showed it in the "New" column (new_login) while
        the request's arguments hide it. The approver reads the new values as the arguments
        show them, and cannot read the stored ones; the approved change writes them as given."""
        conn = self.person_connection()
        secret = "Tr0ub4dor-horse-battery"
        # a login (or database) that is the password itself is refused (outside round, admin)
        with self.assertRaisesRegex(UserError, "must not be the connection's password"):
            self.change(conn, self.user, login=secret, password=secret)
        login = "token=lg-hunter2xyz"
        req = self.change(conn, self.user, login=login, db="token=db-hunter2xyz", password=secret)
        as_approver = req.with_user(self.approver)
        self.assertNotIn(secret, as_approver.arguments)  # what the request hides ...
        self.assertNotIn("lg-hunter2xyz", as_approver.arguments)
        self.assertNotIn("db-hunter2xyz", as_approver.arguments)
        # ... is hidden in the replacement's columns too
        self.assertTrue(as_approver.shown_new_login)
        self.assertNotIn("lg-hunter2xyz", as_approver.shown_new_login)
        self.assertNotIn("db-hunter2xyz", as_approver.shown_new_db)
        self.assertEqual(as_approver.shown_new_url, "https://crm.example.com")
        for name in ("new_login", "new_db", "new_url"):
            with self.subTest(field=name), self.assertRaises(AccessError):
                as_approver.read([name])
        # everything the approver's form reads of the request
        view = self.Request.with_user(self.approver).get_view(view_type="form")
        shown = as_approver.read([name for name in self.Request.with_user(self.approver)._fields
                                  if f'name="{name}"' in view["arch"]])
        self.assertNotIn(secret, str(shown))
        self.assertNotIn("lg-hunter2xyz", str(shown))
        self.assertNotIn("db-hunter2xyz", str(shown))
        self.assertNotIn('name="new_login"', view["arch"])
        self.assertIn('name="shown_new_login"', view["arch"])
        as_approver.action_approve()
        self.assertEqual(req.state, "done")
        self.assertEqual((conn.login, conn.db, conn.sudo().password), (login, "token=db-hunter2xyz", secret))

    def test_rejected_change_keeps_nothing(self):
        conn = self.person_connection()
        req = self.change(conn, self.user, api_key="key-new")
        self.assertEqual(req.sudo().new_api_key, "key-new")
        req.with_user(self.approver).action_reject(note="no")
        self.assertFalse(req.sudo().new_api_key)
        self.assertEqual(conn.sudo().api_key, "key-crm")
        with self.assertRaises(UserError):  # nothing changes: nothing to approve
            self.change(conn, self.user)
        with self.assertRaises(AccessError):  # an approver neither edits nor files changes
            self.change(conn, self.approver, url="https://x.example.com")
