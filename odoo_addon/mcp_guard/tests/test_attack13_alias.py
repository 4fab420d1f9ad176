"""Attack 13 (found on live Odoo 18 and 19): a data tool's request was filed for an alias no
connection has (connection_id False); once approved, the agent created that alias itself (a new
alias needs no approval), pointing anywhere, and the approval was used against it. A call that
names a connection is filed for that record or not at all, and consumed only while that record
is still the one its alias names (invariant 14)."""

from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.mcp_guard.models.mcp_guard_common import internal_write

from .common import SERVER, McpGuardCase

UNLINK = {"model": "res.partner", "ids": [1]}


@tagged("post_install", "-at_install")
class TestAttack13Alias(McpGuardCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gate_test_tools()

    def count(self):
        return self.Request.sudo().search_count([])

    def test_01_a_data_call_naming_an_unknown_alias_is_not_filed(self):
        before = self.count()
        for tool, extra in (("odoo_unlink", {}), ("odoo_write", {"values": {"name": "x"}}),
                            ("odoo_create", {"values": {"name": "x"}}), ("some_tool", {})):
            with self.assertRaisesRegex(UserError, "no connection with alias ghost.*no request", msg=tool):
                self.file(self.agent, tool=tool, arguments={"alias": "ghost", **UNLINK, **extra})
        for alias in ("", 5, ["prod"], None):
            with self.assertRaises(UserError, msg=repr(alias)):
                self.file(self.agent, tool="odoo_unlink", arguments={"alias": alias, **UNLINK})
        # another agent's connection is not the caller's
        self.Connection.with_user(self.agent2).create({"alias": "theirs", "url": "u", "db": "d", "login": "l"})
        with self.assertRaises(UserError):
            self.file(self.agent, tool="odoo_unlink", arguments={"alias": "theirs", **UNLINK})
        self.assertEqual(self.count(), before)

    def test_02_a_data_call_is_bound_to_the_connection_it_names(self):
        req = self.Request.browse(self.file(self.agent, tool="odoo_unlink", arguments={"alias": "prod", **UNLINK})["id"])
        self.assertEqual(req.connection_id, self.prod)
        self.assertEqual(req.connection_alias, "prod")
        self.assertTrue(req.connection_url)
        # a call naming no connection is about none
        other = self.Request.browse(self.file(self.agent, tool="odoo_x", arguments={"model": "res.partner"})["id"])
        self.assertFalse(other.connection_id)

    def test_03_an_approval_is_not_used_for_a_connection_made_since(self):
        args = {"alias": "prod", **UNLINK}
        res = self.approved(tool="odoo_unlink", arguments=args)
        # prod ends and the agent registers a new prod, pointing elsewhere
        with internal_write():
            self.prod.sudo().write({"active": False, "state": "disconnected"})
        self.Connection.with_user(self.agent).create({"alias": "prod", "url": "https://evil.example.com",
                                                       "db": "x", "login": "l"})
        result = self.Request.with_user(self.agent).consume(res["id"], "odoo_unlink", self.digest(args), server=SERVER)
        self.assertEqual((result["ok"], result["state"]), (False, "failed"), result)
        self.assertEqual(self.Request.browse(res["id"]).state, "failed")

    def test_04_an_approval_is_used_for_the_connection_it_was_filed_for(self):
        args = {"alias": "prod", **UNLINK}
        res = self.approved(tool="odoo_unlink", arguments=args)
        result = self.Request.with_user(self.agent).consume(res["id"], "odoo_unlink", self.digest(args), server=SERVER)
        self.assertTrue(result["ok"], result)
