"""Breaks an outside tester found on live Odoo 18 and 19 (attack 11), one test each."""

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.mcp_guard.models.mcp_guard_common import URL_CREDENTIALS_MESSAGE, redact_text

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
        # archiving an agent that uses connections is refused (test_takeaway); were it archived
        # all the same (here in SQL), its connections would stay guarded
        with self.assertRaisesRegex(UserError, "Request disconnect"):
            self.agent.sudo().write({"active": False})
        self.env.cr.execute("UPDATE res_users SET active = false WHERE id = %s", (self.agent.id,))
        self.env.invalidate_all()
        for who in (self.admin, self.user, self.manager):
            with self.assertRaises(UserError):
                conn.with_user(who).write({"url": "https://attacker.example.net", "db": "evil"})
        # nor can the sharing be taken away while the agent is archived (unshare, edit, reshare)
        with self.assertRaises(UserError):
            conn.with_user(self.admin).write({"agent_user_ids": [Command.unlink(self.agent.id)]})
        self.env.cr.execute("UPDATE res_users SET active = true WHERE id = %s", (self.agent.id,))
        self.env.invalidate_all()
        self.assertStill(conn)

    # 01b: ... or takes it out of the Agent group: once an agent used it, edits stay guarded
    def test_01_taking_the_agent_out_of_its_group_does_not_either(self):
        conn = self.shared("b11")
        self.assertTrue(conn.agent_bound)
        agent_group = self.env.ref("mcp_guard.group_mcp_agent")
        groups = "group_ids" if "group_ids" in self.env["res.users"]._fields else "groups_id"
        # refused while it uses connections (test_takeaway); were it done all the same (here in
        # SQL), edits would stay guarded
        with self.assertRaisesRegex(UserError, "Request disconnect"):
            self.agent.sudo().write({groups: [Command.unlink(agent_group.id)]})
        self.env.cr.execute("DELETE FROM res_groups_users_rel WHERE uid = %s AND gid = %s",
                            (self.agent.id, agent_group.id))
        self.env.invalidate_all()
        self.env.registry.clear_cache()
        self.addCleanup(self.env.registry.clear_cache)  # no ormcache of this test outlives it
        self.assertFalse(self.agent.has_group("mcp_guard.group_mcp_agent"))
        with self.assertRaises(UserError):
            conn.with_user(self.admin).write({"url": "https://attacker.example.net"})
        self.assertTrue(conn.in_use_by_agent)
        # the flag is the add-on's: no client clears it
        with self.assertRaises(UserError):
            conn.with_user(self.admin).write({"agent_bound": False})
        self.assertStill(conn)


@tagged("post_install", "-at_install")
class TestAttack11UrlsAndAliases(McpGuardCase):
    """05: a URL holding credentials in a form a WHATWG parser reads (one slash, no slash,
    backslashes) or a secret query parameter; 07: an alias with an invisible character."""

    URLS = (
        "https:/bob:Hunter2pw@erp.example.com",
        "https:bob:Hunter2pw@erp.example.com",
        "https:\\\\bob:Hunter2pw@erp.example.com",
        "https://erp.example.com/?X-Amz-Signature=Hunter2pw",
        "https://erp.example.com/?key=Hunter2pw",
        "https://erp.example.com/?token=Hunter2pw",
        "https://erp.example.com/?access_token=Hunter2pw",
        "https://erp.example.com/?sig=Hunter2pw",
        "https://erp.example.com/?apikey=Hunter2pw",
    )

    def test_05_url_with_credentials_refused_in_any_form(self):
        conn = self.Connection.with_user(self.user).create({
            "alias": "u11", "url": "https://erp.example.com", "db": "d", "login": "u"})
        for who in (self.user, self.agent, self.manager):
            for url in self.URLS:
                with self.subTest(who=who.login, url=url):
                    with self.assertRaises(UserError) as caught:
                        self.Connection.with_user(who).create({
                            "alias": "s11", "url": url, "db": "d", "login": "u"})
                    self.assertEqual(str(caught.exception), URL_CREDENTIALS_MESSAGE)
        for url in self.URLS:
            with self.subTest(url=url), self.assertRaises(UserError):
                conn.with_user(self.user).write({"url": url})
        conn.invalidate_recordset()
        self.assertEqual(conn.sudo().url, "https://erp.example.com")

    def test_05_url_with_credentials_redacted_where_shown(self):
        for url in self.URLS:
            with self.subTest(url=url):
                self.assertNotIn("Hunter2pw", redact_text(url))
        self.assertEqual(redact_text(self.URLS[0]), "https:/bob:***@erp.example.com")

    def test_07_alias_with_invisible_character_refused(self):
        for who in (self.user, self.agent):
            for suffix in ("\u200b", "\u202e", "\u2060", " "):
                with self.subTest(who=who.login, suffix=ascii(suffix)):
                    with self.assertRaises(UserError) as caught:
                        vals = {"alias": "prod" + suffix, "url": "https://other.example.com", "db": "d",
                                "login": "u"}
                        if who == self.user:  # the owner shares it with the agent
                            vals["agent_user_ids"] = [Command.link(self.agent.id)]
                        self.Connection.with_user(who).create(vals)
                    self.assertIn(ascii(suffix), str(caught.exception))
                    self.assertNotIn("\n", str(caught.exception))
        with self.assertRaises(UserError):
            self.Connection.with_user(self.user).create({
                "alias": " prod", "url": "https://other.example.com", "db": "d", "login": "u"})
        conn = self.Connection.with_user(self.user).create({
            "alias": "ok11", "url": "https://other.example.com", "db": "d", "login": "u"})
        with self.assertRaises(UserError):
            conn.with_user(self.user).write({"alias": "ok11\u200b"})
        conn.invalidate_recordset()
        self.assertEqual(conn.alias, "ok11")
        aliases = [c["alias"] for c in self.Connection.with_user(self.agent).list_for_agent()]
        self.assertFalse([a for a in aliases if a.startswith("prod") and a != "prod"])
