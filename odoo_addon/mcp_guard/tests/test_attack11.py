"""Breaks an outside tester found on live Odoo 18 and 19 (attack 11), one test each."""

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import McpGuardCase


@tagged("post_install", "-at_install")
class TestAttack11(McpGuardCase):
    def shared(self, alias):
        conn = self.Connection.with_user(self.user).create({
            "alias": alias, "url": "https://erp.example.com", "db": "prod", "login": "bot",
            "new_password": "PW"})
        conn.with_user(self.user).write({"agent_user_ids": [Command.link(self.agent.id)]})
        return conn

    def assertStill(self, conn):
        conn.invalidate_recordset()
        self.assertEqual((conn.sudo().url, conn.sudo().db), ("https://erp.example.com", "prod"))

    # 01: an administrator archives the agent for one write: the connection is still in use
    def test_01_archiving_the_agent_does_not_make_a_rewire_a_plain_save(self):
        conn = self.shared("a11")
        self.agent.sudo().write({"active": False})
        for who in (self.admin, self.user, self.manager):
            with self.assertRaises(UserError):
                conn.with_user(who).write({"url": "https://attacker.example.net", "db": "evil"})
        # nor can the sharing be taken away while the agent is archived (unshare, edit, reshare)
        with self.assertRaises(UserError):
            conn.with_user(self.admin).write({"agent_user_ids": [Command.unlink(self.agent.id)]})
        self.agent.sudo().write({"active": True})
        self.assertStill(conn)

    # 01b: ... or takes it out of the Agent group: once an agent used it, edits stay guarded
    def test_01_taking_the_agent_out_of_its_group_does_not_either(self):
        conn = self.shared("b11")
        self.assertTrue(conn.agent_bound)
        agent_group = self.env.ref("mcp_guard.group_mcp_agent")
        groups = "group_ids" if "group_ids" in self.env["res.users"]._fields else "groups_id"
        self.agent.sudo().write({groups: [Command.unlink(agent_group.id)]})
        with self.assertRaises(UserError):
            conn.with_user(self.admin).write({"url": "https://attacker.example.net"})
        self.assertTrue(conn.in_use_by_agent)
        # the flag is the add-on's: no client clears it
        with self.assertRaises(UserError):
            conn.with_user(self.admin).write({"agent_bound": False})
        self.assertStill(conn)
