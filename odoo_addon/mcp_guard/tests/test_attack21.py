"""Outside round 21 (live Odoo 18 and 19, JSON-RPC as the agent, an approver and a manager):
a NUL in an agent's alias or in a secret, and a reject note that is no text, reached
PostgreSQL or the redaction as they were and came back as a traceback. Each is refused with
one line saying what is wrong, and nothing is stored."""

from odoo.exceptions import UserError
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
