"""Taking a connection away from the agent that uses it, without any request (outside testers,
Odoo 18 and 19, as an administrator over RPC and in the UI): through the agent's companies, the
company's archive, the Agent group, the owner or company of the connection. Every such path is
refused with a one-line UserError naming the connections and how to end them, whoever calls
(sudo included), and the agent keeps listing them."""

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import SERVER, McpGuardCase


@tagged("post_install", "-at_install")
class TestTakeaway(McpGuardCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the agent works for both companies (its default stays the first one); "far" lives in
        # the second, shared with the agent by a person of both companies
        cls.agent.sudo().write({"company_ids": [Command.link(cls.company2.id)]})
        cls.user.sudo().write({"company_ids": [Command.link(cls.company2.id)]})
        cls.admin.sudo().write({"company_ids": [Command.link(cls.company2.id)]})
        far = cls.Connection.with_user(cls.user).with_company(cls.company2).create({
            "alias": "far", "url": "https://far.example.com", "db": "far", "login": "bot",
            "company_id": cls.company2.id, "agent_user_ids": [Command.link(cls.agent.id)]})
        cls.far = cls.Connection.browse(far.id)
        cls.groups_field = "group_ids" if "group_ids" in cls.env["res.users"]._fields else "groups_id"
        cls.members_field = "user_ids" if "user_ids" in cls.env["res.groups"]._fields else "users"
        cls.agent_group = cls.env.ref("mcp_guard.group_mcp_agent")

    def listed(self, agent=None):
        return {c["alias"] for c in self.Connection.with_user(agent or self.agent).list_for_agent()}

    def assertRefused(self, aliases, call, *args, **kwargs):  # noqa: N802 (unittest naming)
        """``call`` is refused with one line that names ``aliases`` and Request disconnect; the
        agent still lists them, connected."""
        with self.assertRaises(UserError) as caught:
            call(*args, **kwargs)
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        self.assertIn("Request disconnect", message)
        for alias in aliases:
            self.assertIn(alias, message)
        self.env.invalidate_all()
        self.assertLessEqual(set(aliases), self.listed())
        for conn in self.Connection.sudo().search([("alias", "in", list(aliases))]):
            self.assertEqual(conn.state, "connected")
        return message

    def test_setup(self):
        self.assertEqual(self.listed(), {"prod", "far"})
        self.assertTrue(self.far.agent_bound)

    # 1: the connection's company taken out of the agent's allowed companies
    def test_01_removing_the_company_from_the_agent_is_refused(self):
        for who in (self.admin, self.env.user):  # an administrator, and the superuser
            agent = self.agent.with_user(who)
            self.assertRefused(["far"], agent.write, {"company_ids": [Command.unlink(self.company2.id)]})
            self.assertRefused(["far"], agent.write, {"company_ids": [Command.set(self.company.ids)]})
            self.assertRefused(["prod"], agent.write, {
                "company_id": self.company2.id, "company_ids": [Command.set(self.company2.ids)]})
            # the same through the company's users
            self.assertRefused(["far"], self.company2.with_user(who).write,
                               {"user_ids": [Command.unlink(self.agent.id)]})
        # a company none of its connections lives in may go
        third = self.env["res.company"].create({"name": "MCP Third Co"})
        self.agent.with_user(self.admin).write({"company_ids": [Command.link(third.id)]})
        self.agent.with_user(self.admin).write({"company_ids": [Command.unlink(third.id)]})
        self.assertEqual(self.listed(), {"prod", "far"})

    # 2: the connection's company archived, or deleted
    def test_02_archiving_or_deleting_the_company_is_refused(self):
        company2 = self.company2.with_user(self.admin)
        self.assertRefused(["far"], company2.write, {"active": False})
        self.assertRefused(["far"], company2.action_archive)
        self.assertRefused(["far"], company2.sudo()._write, {"active": False})
        self.assertRefused(["far"], company2.sudo().with_context(_force_unlink=True).unlink)
        self.assertEqual(self.listed(), {"prod", "far"})

    # 3: the agent out of its group for one write, the owner swapped, the group back
    def test_03_taking_the_agent_out_of_its_group_is_refused(self):
        for who in (self.admin, self.env.user):
            self.assertRefused(["prod", "far"], self.agent.with_user(who).write,
                               {self.groups_field: [Command.unlink(self.agent_group.id)]})
            self.assertRefused(["prod", "far"], self.agent_group.with_user(who).write,
                               {self.members_field: [Command.unlink(self.agent.id)]})
        self.assertRefused(["prod", "far"], self.agent_group.sudo().unlink)
        # an agent that uses nothing may leave the group
        self.agent2.with_user(self.admin).write({self.groups_field: [Command.unlink(self.agent_group.id)]})
        self.assertFalse(self.agent2.has_group("mcp_guard.group_mcp_agent"))

    def test_03_owner_or_company_of_a_connection_an_agent_used_stays(self):
        person = self.Connection.with_user(self.user).create({
            "alias": "mine", "url": "https://mine.example.com", "db": "m", "login": "bot",
            "agent_user_ids": [Command.link(self.agent.id)]})
        # whatever the group says now (taken out by a path not foreseen: here SQL), an owner
        # swap or a move to another company is a replacement: refused, at every level
        self.env.cr.execute("DELETE FROM res_groups_users_rel WHERE uid = %s AND gid = %s",
                            (self.agent.id, self.agent_group.id))
        self.env.invalidate_all()
        self.env.registry.clear_cache()
        self.addCleanup(self.env.registry.clear_cache)  # no ormcache of this test outlives it
        person = person.sudo()
        for conn, owner in ((self.prod.sudo(), self.user), (person, self.user2)):
            for who in (self.admin, self.manager, self.env.user):
                with self.subTest(alias=conn.alias, who=who.login):
                    with self.assertRaisesRegex(UserError, "Request disconnect"):
                        conn.with_user(who).write({"owner_id": owner.id})
            with self.assertRaisesRegex(UserError, "Request disconnect"):
                conn.sudo()._write({"owner_id": owner.id})
        with self.assertRaisesRegex(UserError, "Request disconnect"):
            person.with_user(self.manager).write({"company_id": self.company2.id})
        with self.assertRaisesRegex(UserError, "Request disconnect"):
            person.sudo()._write({"company_id": self.company2.id})
        with self.assertRaisesRegex(UserError, "Request change"):
            person.sudo()._write({"url": "https://attacker.example.net"})
        self.env.invalidate_all()
        self.assertEqual((self.prod.sudo().owner_id, person.owner_id, person.company_id),
                         (self.agent, self.user, self.company))
        self.assertEqual(person.url, "https://mine.example.com")
        # writing the same owner is no change
        person.with_user(self.manager).write({"owner_id": self.user.id})

    # siblings: the agent archived or deleted, unshared; its login and password are its own
    def test_04_archiving_or_deleting_the_agent_is_refused(self):
        for who in (self.admin, self.env.user):
            agent = self.agent.with_user(who)
            self.assertRefused(["prod", "far"], agent.write, {"active": False})
            self.assertRefused(["prod", "far"], agent.action_archive)
        self.assertRefused(["prod", "far"], self.agent.sudo()._write, {"active": False})
        self.assertRefused(["prod", "far"], self.agent.sudo().with_context(_force_unlink=True).unlink)
        # an agent that uses nothing may be archived
        self.agent2.with_user(self.admin).action_archive()
        self.assertFalse(self.agent2.active)

    def test_04_unsharing_while_connected_is_refused(self):
        for who in (self.admin, self.env.user):
            for command in ([Command.unlink(self.agent.id)], [Command.clear()], [Command.set([])]):
                with self.assertRaisesRegex(UserError, "Request disconnect"):
                    self.far.with_user(who).write({"agent_user_ids": command})
        self.assertEqual(self.listed(), {"prod", "far"})

    def test_04_a_new_record_rule_does_not_hide_them(self):
        """An administrator's record rule that narrows what agents read (or company_ids in the
        caller's context) hides nothing from list_for_agent: it lists by ownership and sharing."""
        self.env["ir.rule"].with_user(self.admin).create({
            "name": "hide from agents", "model_id": self.env["ir.model"]._get_id("mcp.connection"),
            "domain_force": "[('alias', '=', 'nothing')]", "groups": [Command.link(self.agent_group.id)]})
        self.env["ir.rule"].with_user(self.admin).create({
            "name": "hide from all", "model_id": self.env["ir.model"]._get_id("mcp.connection"),
            "domain_force": "[('alias', '=', 'nothing')]"})
        self.assertEqual(self.listed(), {"prod", "far"})
        listed = self.Connection.with_user(self.agent).with_context(allowed_company_ids=self.company.ids)
        self.assertEqual({c["alias"] for c in listed.list_for_agent()}, {"prod", "far"})
        # still exactly its own: another agent, a person see none of them
        self.assertEqual(self.listed(self.agent2), set())

    def test_04_login_and_password_of_the_agent_may_change(self):
        self.agent.with_user(self.admin).write({"login": "mcp_agent_renamed", "password": "N3w-agent-pw!"})
        self.agent.with_user(self.admin).write({"name": "MCP front-end"})
        self.assertEqual(self.listed(), {"prod", "far"})

    def test_05_ended_connections_hold_nothing_back(self):
        """Once its connections are ended through approval, the agent may leave its company and
        its group."""
        for alias, approver in (("prod", self.approver), ("far", self.approver2)):
            res = self.file(self.agent, arguments={"alias": alias})
            # filed in the connection's company: its approvers decide
            self.assertEqual(self.Request.browse(res["id"]).company_id.name, self.Connection.sudo().search(
                [("alias", "=", alias)]).company_id.name)
            self.Request.browse(res["id"]).with_user(approver).action_approve()
            result = self.Request.with_user(self.agent).consume(
                res["id"], "odoo_disconnect", self.digest({"alias": alias}), server=SERVER)
            self.assertTrue(result["ok"], result)
        self.assertEqual(self.listed(), set())
        self.agent.with_user(self.admin).write({"company_ids": [Command.unlink(self.company2.id)]})
        self.agent.with_user(self.admin).write({self.groups_field: [Command.unlink(self.agent_group.id)]})


@tagged("post_install", "-at_install")
class TestTakeawayReplacement(McpGuardCase):
    """Round 11: an approved odoo_connect replacement refused at consumption ("approves other
    connection values"). Replacements of each kind of connection an agent uses, through
    file_request, action_approve and consume, as the front-end calls them."""

    def replace(self, alias, approver=None, **changes):
        args = {"alias": alias, "url": "https://new.example.com", "db": "new", "username": "bot",
                "password": "n3w-pw", **changes}
        res = self.file(self.agent, tool="odoo_connect", arguments=args)
        self.Request.browse(res["id"]).with_user(approver or self.approver).action_approve()
        result = self.Request.with_user(self.agent).consume(res["id"], "odoo_connect", self.digest(args), args, server=SERVER)
        self.assertTrue(result["ok"], result)
        listed = {c["alias"]: c for c in self.Connection.with_user(self.agent).list_for_agent()}
        self.assertEqual((listed[alias]["url"], listed[alias]["db"]), ("https://new.example.com", "new"))
        return result

    def test_the_agents_own(self):
        self.replace("prod")

    def test_as_odoo_claude_mcp_calls_it(self):
        # its schema's defaults: empty password or API key, verify_ssl, protocol
        self.replace("prod", password="", api_key="k-new", protocol="jsonrpc", verify_ssl=False)

    def test_shared_by_a_person(self):
        self.Connection.with_user(self.user).create({
            "alias": "crm", "url": "https://crm.example.com", "db": "crm", "login": "bot",
            "agent_user_ids": [Command.link(self.agent.id)]})
        self.replace("crm")

    def test_in_the_agents_other_company(self):
        self.agent.sudo().write({"company_ids": [Command.link(self.company2.id)]})
        self.Connection.sudo().create({
            "alias": "far", "url": "https://far.example.com", "db": "far", "login": "bot",
            "owner_id": self.agent.id, "company_id": self.company2.id})
        self.replace("far", approver=self.approver2)
        # the new one where the old one was: its company's approvers approved it
        self.assertEqual(self.Connection.sudo().search([("alias", "=", "far")]).company_id, self.company2)

    def test_with_keys_odoo_does_not_keep(self):
        """Behind the proxy, an upstream's odoo_connect takes keys of its own (odoo-claude-mcp's
        schema allows any): approved with them, the call replaces the connection; the keys are
        approved with the call (its hash) and not kept."""
        self.replace("prod", timeout=30)

    def test_answering_an_input_request(self):
        """A continuation (the client's answers to the upstream's question) is approved as
        {"arguments", "continuation"} (guard.bound_arguments): bound to the connection its
        alias names, and consumed into it."""
        inner = {"alias": "prod", "url": "https://new.example.com", "db": "new", "username": "bot",
                 "password": "n3w-pw"}
        args = {"arguments": inner, "continuation": {"answers": {"confirm": True}}}
        res = self.file(self.agent, tool="odoo_connect", arguments=args)
        self.assertEqual(self.Request.browse(res["id"]).connection_id, self.prod)
        self.Request.browse(res["id"]).with_user(self.approver).action_approve()
        result = self.Request.with_user(self.agent).consume(res["id"], "odoo_connect", self.digest(args), args, server=SERVER)
        self.assertTrue(result["ok"], result)
        self.assertEnded(self.prod)
        listed = {c["alias"]: c for c in self.Connection.with_user(self.agent).list_for_agent()}
        self.assertEqual(listed["prod"]["url"], "https://new.example.com")
