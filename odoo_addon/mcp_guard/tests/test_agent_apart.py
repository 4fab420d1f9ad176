"""Outside security tester, MEDIUM: an administrator put their own account in the Agent group
(``res.groups`` write of its members, a write of the user's groups, or a new user given both) and
then read every connection's password and API key, which only the Agent group reads. The Agent
group is the agent's technical account only: nobody is both an Agent and an approver (the
Approver group, implied by Manager and Settings), whichever way, administrators and sudo alike;
refused with one line naming the user."""

from odoo import Command
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import McpGuardCase

CTX = {"mail_create_nolog": True, "no_reset_password": True}


@tagged("post_install", "-at_install")
class TestAgentIsNoApprover(McpGuardCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Users, Groups = cls.env["res.users"], cls.env["res.groups"]
        cls.groups_field = "group_ids" if "group_ids" in Users._fields else "groups_id"  # 18.0 / 19.0
        cls.members_field = "user_ids" if "user_ids" in Groups._fields else "users"
        cls.agent_group = cls.env.ref("mcp_guard.group_mcp_agent")
        cls.approver_group = cls.env.ref("mcp_guard.group_mcp_approver")
        cls.manager_group = cls.env.ref("mcp_guard.group_mcp_manager")
        cls.system_group = cls.env.ref("base.group_system")

    def assertRefused(self, user_name, call, *args, **kwargs):  # noqa: N802 (unittest naming)
        with self.assertRaises(ValidationError) as caught:
            call(*args, **kwargs)
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        self.assertIn(user_name, message)
        self.assertIn("cannot be both an MCP Guard Agent and an approver", message)
        return message

    def both(self):
        """The users in both groups, as the database has them."""
        self.env.invalidate_all()
        return (self.agent_group.sudo().with_context(active_test=False)[self._all("res.groups")]
                & self.approver_group.sudo().with_context(active_test=False)[self._all("res.groups")])

    def _all(self, model):
        return "all_user_ids" if "all_user_ids" in self.env[model]._fields else "users"

    def test_an_administrator_cannot_join_the_agent_group(self):
        admin = self.admin
        for who in (admin, self.env.user):  # an administrator over the ORM, and sudo
            with self.subTest(who=who.login):
                self.assertRefused(admin.name, self.agent_group.with_user(who).write,
                                   {self.members_field: [Command.link(admin.id)]})
                self.assertRefused(admin.name, admin.with_user(who).write,
                                   {self.groups_field: [Command.link(self.agent_group.id)]})
                if self.groups_field == "groups_id":  # 18.0: the user form's reified group fields
                    self.assertRefused(admin.name, admin.with_user(who).write,
                                       {f"in_group_{self.agent_group.id}": True})
        self.assertFalse(admin.has_group("mcp_guard.group_mcp_agent"))
        self.assertFalse(self.both())
        # and so the administrator reads no secret
        with self.assertRaises(AccessError):
            self.prod.with_user(admin).read(["password"])

    def test_a_new_user_cannot_be_both(self):
        Users = self.env["res.users"].with_user(self.admin).with_context(**CTX)
        for groups in ((self.agent_group, self.approver_group), (self.agent_group, self.manager_group),
                       (self.agent_group, self.system_group)):
            with self.subTest(groups=groups[1].name):
                self.assertRefused("Eve Both", Users.create, {
                    "name": "Eve Both", "login": "eve_both",
                    self.groups_field: [Command.set([g.id for g in groups])]})
        self.assertFalse(self.env["res.users"].with_context(active_test=False).search([("login", "=", "eve_both")]))
        # the documented agent set-up still works (README, docker/create-agent.py)
        agent = Users.create({"name": "MCP Agent Two", "login": "mcp-agent-two",
                              self.groups_field: [Command.set([self.agent_group.id])]})
        self.assertTrue(agent.has_group("mcp_guard.group_mcp_agent"))
        self.assertTrue(new_test_user(self.env, "apart_agent", "mcp_guard.group_mcp_agent", context=CTX)
                        .has_group("mcp_guard.group_mcp_agent"))

    def test_an_agent_cannot_be_made_an_approver(self):
        agent = self.agent
        for who in (self.admin, self.env.user):
            for group in (self.approver_group, self.manager_group, self.system_group):
                with self.subTest(who=who.login, group=group.name):
                    self.assertRefused(agent.name, agent.with_user(who).write,
                                       {self.groups_field: [Command.link(group.id)]})
                    self.assertRefused(agent.name, group.with_user(who).write,
                                       {self.members_field: [Command.link(agent.id)]})
        self.assertFalse(agent.has_group("mcp_guard.group_mcp_approver"))
        self.assertFalse(self.both())

    def test_implied_groups_cannot_join_them(self):
        admin = self.admin.with_user(self.admin)
        # the Agent group implying the approvers' (every agent an approver), Settings implying
        # the Agent group (every administrator an agent), a new group implying both
        self.assertRefused(self.agent.name, self.agent_group.with_user(admin).write,
                           {"implied_ids": [Command.link(self.approver_group.id)]})
        self.assertRefused(self.admin.name, self.system_group.with_user(admin).write,
                           {"implied_ids": [Command.link(self.agent_group.id)]})
        self.assertRefused(self.approver.name, self.env["res.groups"].with_user(admin).create, {
            "name": "MCP both", "implied_ids": [Command.set([self.agent_group.id])],
            self.members_field: [Command.set([self.approver.id])]})
        bridge = self.env["res.groups"].create({"name": "MCP bridge", "implied_ids": [Command.set([self.agent_group.id])]})
        self.assertRefused(self.manager.name, bridge.with_user(admin).write,
                           {self.members_field: [Command.link(self.manager.id)]})
        self.assertRefused(self.manager.name, self.manager.with_user(admin).write,
                           {self.groups_field: [Command.link(bridge.id)]})
        self.assertFalse(self.both())
        self.assertFalse(self.agent_group.implied_ids & self.approver_group)
