"""Outside round 21 (live Odoo 18 and 19, every role over XML-RPC, JSON-RPC and JSON-2):

- HIGH: writing ``agent_user_ids: None`` (Odoo clears the list) on a connection the agent uses
  took it from the agent with no approval: the check read None as "no change".
- MEDIUM: an approved change of only the URL sent the saved password and API key to the new
  server; a Manager read ``arguments_hash``, an unsalted hash of arguments whose password they
  are not shown, and guessed a weak password offline.
- LOW: a NUL in an agent's alias or in a secret, odd ``agent_user_ids`` values and a reject
  note that is no text came back as tracebacks. Each is refused with one line, nothing stored."""

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import McpGuardCase

NUL_VALUES = [
    {"alias": "\x00"},
    {"alias": "nul1", "password": "pw\x00"},
    {"alias": "nul2", "api_key": "\x00key"},
    {"alias": "nul3", "password": ["pw"]},
]


@tagged("post_install", "-at_install")
class TestAttack21(McpGuardCase):
    def test_an_agents_connection_with_a_nul_is_refused_in_one_line(self):
        for values in NUL_VALUES:
            base = {"url": "https://erp.example.com", "db": "d", "login": "l", **values}
            for user in (self.agent, self.user):
                with self.subTest(values=values, user=user.login):
                    with self.assertRaises(UserError) as caught:
                        self.Connection.with_user(user).upsert_from_agent(base)
                    message = str(caught.exception)
                    self.assertNotIn("\n", message)
                    self.assertRegex(message, r"NUL|must be a string|alias")
        self.assertFalse(self.Connection.sudo().search([("alias", "in", ["nul1", "nul2", "nul3"])]))

    def test_a_nul_in_a_secret_typed_in_odoo_is_refused(self):
        with self.assertRaisesRegex(UserError, "password contains a NUL"):
            self.Connection.with_user(self.user).create(
                {"alias": "nul4", "url": "https://erp.example.com", "db": "d", "login": "l", "new_password": "a\x00"})
        conn = self.Connection.with_user(self.user).create(
            {"alias": "nul5", "url": "https://erp.example.com", "db": "d", "login": "l", "new_password": "good"})
        with self.assertRaisesRegex(UserError, "api_key contains a NUL"):
            conn.with_user(self.user).write({"new_api_key": "k\x00"})
        with self.assertRaisesRegex(UserError, "password contains a NUL"):
            conn.with_user(self.manager).write({"password": "\x00"})
        self.assertEqual((conn.sudo().password, conn.sudo().api_key), ("good", False))
        # a change request's new secret likewise
        Wizard = self.env["mcp.connection.change.wizard"].with_user(self.user).with_context(
            default_connection_id=conn.id)
        with self.assertRaisesRegex(UserError, "password contains a NUL"):
            Wizard.create({"url": "https://erp.example.com", "password": "new\x00"})

    def test_a_reject_note_that_is_no_text_is_refused_in_one_line(self):
        res = self.file(self.agent)
        req = self.Request.browse(res["id"]).with_user(self.approver)
        for note in (1e308, 10**22, -(10**22), {"x": [{"y": None}]}, ["no"], "bad\x00note"):
            with self.subTest(note=note):
                with self.assertRaises(UserError) as caught:
                    req.action_reject(note=note)
                self.assertNotIn("\n", str(caught.exception))
                self.assertIn("note", str(caught.exception))
        self.assertEqual(req.state, "pending")
        req.action_reject(note="not now\nplease file it again")
        self.assertEqual(req.state, "rejected")

    def shared_connection(self):
        conn = self.Connection.with_user(self.user).create({
            "alias": "crm21", "url": "https://crm.example.com", "db": "crm", "login": "bot",
            "new_password": "pw-crm", "new_api_key": "key-crm", "agent_user_ids": [(4, self.agent.id)]})
        self.assertIn("crm21", [c["alias"] for c in self.Connection.with_user(self.agent).list_for_agent()])
        return conn

    def test_no_value_of_agent_user_ids_takes_a_connection_from_the_agent(self):
        conn = self.shared_connection()
        for value in (None, False, 0, [], (), [(5,)], [(5, 0, 0)], [(3, self.agent.id)], [(2, self.agent.id)],
                      [(6, 0, [])], [(6, 0, None)], [self.user.id]):
            for user in (self.user, self.manager, self.admin):
                with self.subTest(value=value, user=user.login):
                    with self.assertRaisesRegex(UserError, "Request disconnect"):
                        conn.with_user(user).write({"agent_user_ids": value})
        for value in ([(3, [self.agent.id])], [(6, 0, ["6x"])], "abc", 3.5, [("x", 1)], [(9, 1)], [True]):
            with self.subTest(value=value):
                with self.assertRaises(UserError) as caught:
                    conn.with_user(self.user).write({"agent_user_ids": value})
                self.assertNotIn("\n", str(caught.exception))
        self.assertIn("crm21", [c["alias"] for c in self.Connection.with_user(self.agent).list_for_agent()])
        # adding another user, or the same set again, takes nothing away
        conn.with_user(self.user).write({"agent_user_ids": [(4, self.agent.id)]})
        conn.with_user(self.user).write({"agent_user_ids": [(6, 0, [self.agent.id])]})

    def test_an_approved_new_url_forgets_the_secrets_it_does_not_give_anew(self):
        conn = self.shared_connection()
        wizard = self.env["mcp.connection.change.wizard"].with_user(self.manager).with_context(
            default_connection_id=conn.id).create({"url": "https://evil.example.net"})
        req = self.Request.browse(wizard.action_confirm()["res_id"])
        req.with_user(self.approver).action_approve()
        self.assertEqual(req.state, "done")
        self.assertEqual((conn.url, conn.sudo().password, conn.sudo().api_key),
                         ("https://evil.example.net", False, False))
        listed = {c["alias"]: c for c in self.Connection.with_user(self.agent).list_for_agent()}
        self.assertEqual((listed["crm21"]["password"], listed["crm21"]["api_key"]), ("", ""))

    def test_only_the_agent_reads_the_arguments_hash(self):
        args = {"alias": "prod", "url": "https://h.example.com", "db": "d", "username": "bot", "password": "Winter2026!"}
        req = self.Request.browse(self.file(self.agent, tool="odoo_connect", arguments=args)["id"])
        for user in (self.manager, self.approver, self.user):
            with self.subTest(user=user.login):
                with self.assertRaises(AccessError):
                    req.with_user(user).read(["arguments_hash"])
        self.assertEqual(self.Request.with_user(self.agent).list_for_agent(request_ids=[req.id])[0]["arguments_hash"],
                         self.digest(args))
