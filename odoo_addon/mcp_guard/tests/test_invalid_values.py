"""Outside security tester, LOW: values of the wrong kind at create (a protocol that is none of
the list, a text or a list where a record id goes) and record ids that are no ids came back over
XML-RPC as a server traceback (ValueError, psycopg). Each is refused with one line naming the
field and the value, nothing stored."""

from xmlrpc.client import Fault

from odoo.tests import HttpCase, new_test_user, tagged

CTX = {"no_reset_password": True}


@tagged("post_install", "-at_install")
class TestInvalidValuesOverRpc(HttpCase):
    def setUp(self):
        super().setUp()
        new_test_user(self.env, "bad_user", "mcp_guard.group_mcp_user", context=CTX, email="bad.user@example.org")
        new_test_user(self.env, "bad_manager", "mcp_guard.group_mcp_manager", context=CTX,
                      email="bad.manager@example.org")
        self.db = self.env.cr.dbname
        self.conn_id = self.call_as("bad_user", "mcp.connection", "create", {
            "alias": "bad", "url": "https://erp.example.com", "db": "d", "login": "l"})

    def call_as(self, login, model, method, *args, **kwargs):
        uid = self.xmlrpc_common.authenticate(self.db, login, login, {})
        return self.xmlrpc_object.execute_kw(self.db, uid, login, model, method, list(args), kwargs)

    def assertOneLine(self, texts, login, model, method, *args, **kwargs):  # noqa: N802 (unittest naming)
        """The call fails with a one-line message (a UserError's, no traceback) naming ``texts``."""
        with self.assertRaises(Fault) as caught:
            self.call_as(login, model, method, *args, **kwargs)
        message = caught.exception.faultString
        self.assertNotIn("Traceback", message)
        self.assertNotIn("\n", message.strip())
        for text in texts:
            self.assertIn(text, message)

    def test_a_connection_with_a_wrong_protocol_or_owner(self):
        base = {"url": "https://erp.example.com", "db": "d", "login": "l"}
        for login in ("bad_user", "bad_manager"):
            with self.subTest(login=login):
                self.assertOneLine(["protocol", "nope"], login, "mcp.connection", "create",
                                   dict(base, alias="bad2", protocol="nope"))
                self.assertOneLine(["owner_id", "x"], login, "mcp.connection", "create",
                                   dict(base, alias="bad3", owner_id="x"))
                self.assertOneLine(["protocol", "nope"], login, "mcp.connection", "write",
                                   [self.conn_id], {"protocol": "nope"})
        self.assertFalse(self.env["mcp.connection"].sudo().search([("alias", "in", ["bad2", "bad3"])]))
        self.assertEqual(self.env["mcp.connection"].browse(self.conn_id).protocol, "xmlrpc")

    def test_a_change_request_with_a_wrong_protocol_or_connection(self):
        wizard = "mcp.connection.change.wizard"
        values = {"connection_id": self.conn_id, "url": "https://erp.example.com", "db": "d", "login": "l"}
        self.assertOneLine(["protocol", "nope"], "bad_user", wizard, "create", dict(values, protocol="nope"))
        self.assertOneLine(["connection_id", "x"], "bad_user", wizard, "create", dict(values, connection_id="x"))
        self.assertOneLine(["connection_id", str(self.conn_id)], "bad_user", wizard, "create",
                           dict(values, connection_id=[self.conn_id]))
        # the right values still open a change
        self.assertTrue(self.call_as("bad_user", wizard, "create", dict(values, protocol="json2")))

    def test_an_action_on_ids_that_are_no_ids(self):
        for ids in (["x"], [[self.conn_id]], [1.5]):
            with self.subTest(ids=ids):
                self.assertOneLine(["mcp.connection"], "bad_user", "mcp.connection", "action_request_disconnect", ids)
        self.assertEqual(self.env["mcp.connection"].browse(self.conn_id).state, "connected")
