import re

from lxml import etree

from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools.misc import file_open

from odoo.addons.mcp_guard.models.mcp_guard_common import TRAIL_MODELS

from .common import McpGuardCase
from .test_catalog import entry


@tagged("post_install", "-at_install")
class TestUiPolish(McpGuardCase):
    """Odoo idioms: read-only forms for those who cannot save, the approver's default filter,
    risk by severity, empty-state help, settings, confirmations on risky one-click rules."""

    def arch(self, model, view_type, user):
        views = self.env[model].with_user(user).get_views([(False, view_type)])
        return etree.fromstring(views["views"][view_type]["arch"])

    def test_approver_sees_a_read_only_connection_form(self):
        conn = self.Connection.with_user(self.user).create({
            "alias": "crm", "url": "https://crm.example.com", "db": "crm", "login": "bot",
        })
        self.assertFalse(conn.with_user(self.approver).can_edit)
        self.assertTrue(conn.with_user(self.user).can_edit)
        self.assertTrue(conn.with_user(self.manager).can_edit)
        # every field a person could type into is read-only (or absent) unless can_edit
        arch = self.arch("mcp.connection", "form", self.approver)
        fields_info = self.Connection.fields_get()
        for node in arch.iter("field"):
            name = node.get("name")
            if node.getparent().tag == "header" or fields_info[name].get("readonly"):
                continue
            if node.get("invisible") in ("1", "True") or name in ("active",):
                continue
            guard = (node.get("readonly") or "") + (node.get("invisible") or "")
            self.assertIn("can_", guard, f"{name} is editable for someone whose Save would fail")
        with self.assertRaises(AccessError):
            conn.with_user(self.approver).write({"alias": "crm2"})

    def test_requests_open_on_to_approve_excluding_ones_own(self):
        action = self.env.ref("mcp_guard.mcp_approval_request_action")
        self.assertIn("search_default_to_approve", action.context)
        self.assertEqual(action.view_mode.split(",")[:2], ["list", "kanban"])
        mine = self.Request.browse(self.file(self.agent)["id"])
        conn = self.Connection.with_user(self.approver).create({
            "alias": "appr", "url": "https://a.example.com", "db": "a", "login": "bot",
        })
        own = self.Request.browse(conn.with_user(self.approver).action_request_disconnect()["res_id"])
        search = self.arch("mcp.approval.request", "search", self.approver)
        domain = search.xpath("//filter[@name='to_approve']")[0].get("domain")
        self.assertIn("requester_id", domain)
        found = self.Request.with_user(self.approver).search(
            [("state", "=", "pending"), ("requester_id", "!=", self.approver.id)])
        self.assertIn(mine, found)
        self.assertNotIn(own, found)

    def test_risk_groups_most_severe_first(self):
        Tool = self.env["mcp.tool"].with_user(self.agent)
        entries = [entry(f"t_{risk}", risk=risk) for risk in ("read", "write", "critical", "destructive")]
        Tool.report_catalog("polish", entries)
        groups = self.env["mcp.tool"].read_group([("server", "=", "polish")], ["risk_group"], ["risk_group"])
        self.assertEqual([g["risk_group"] for g in groups], ["1_critical", "2_destructive", "3_write", "4_read"])
        action = self.env.ref("mcp_guard.mcp_tool_action")
        self.assertIn("risk_group", action.context)

    def test_risky_one_click_rules_ask_first_and_show_the_rule(self):
        arch = self.arch("mcp.tool", "form", self.manager)
        for method in ("action_rule_allow", "action_rule_deny", "action_rule_hide"):
            buttons = arch.xpath(f"//button[@name='{method}']")
            confirmed = [b for b in buttons if b.get("confirm")]
            self.assertEqual(len(confirmed), 1, method)
            self.assertIn("critical", confirmed[0].get("invisible"))
            plain = [b for b in buttons if not b.get("confirm")]
            self.assertIn("critical", plain[0].get("invisible"))
        text = etree.tostring(arch, encoding="unicode")
        self.assertIn("refuse every call of this tool until", text)
        self.assertTrue(arch.xpath("//div[contains(@class, 'alert')]//field[@name='rule_in_force']"))

    def test_rule_order_has_no_drag_handle(self):
        arch = self.arch("mcp.tool.rule", "list", self.manager)
        self.assertFalse(arch.xpath("//field[@widget='handle']"))

    def test_every_list_has_empty_state_help_and_labels_are_consistent(self):
        root = self.env.ref("mcp_guard.menu_mcp_guard_root")
        menus = self.env["ir.ui.menu"].search([("id", "child_of", root.id), ("action", "!=", False)])
        names = set(menus.mapped("name"))
        self.assertLessEqual({"Approval Requests", "Tool Usage", "Connections", "Audit Log"}, names)
        for menu in menus:
            action = menu.action
            if action._name != "ir.actions.act_window" or action.target == "new" \
                    or action.res_model == "res.config.settings":
                continue
            self.assertTrue(action.help, f"no empty-state help on {menu.name}")
            self.assertEqual(action.name, menu.name, "menu and window titles differ")

    def test_settings_default_action(self):
        Settings = self.env["res.config.settings"]
        settings = Settings.with_user(self.admin).create({})
        self.assertEqual(settings.mcp_guard_default_action, self.Rule._get_default_action())
        settings.mcp_guard_default_action = "require_approval"
        settings.execute()
        self.assertEqual(self.Rule.with_user(self.agent).get_policy_document()["policy"]["default"],
                         "require_approval")
        view = self.arch("res.config.settings", "form", self.admin)
        self.assertTrue(view.xpath("//app[@name='mcp_guard']"))
        self.assertIn("MCP_GUARD_POLICY_POLL", etree.tostring(view, encoding="unicode"))

    def test_trail_messages_offer_no_edit_or_delete(self):
        """The server refuses to edit or delete a trail message (mail_message.py); the web client
        does not offer it: its patch of Message.editable names the same models, and is loaded."""
        path = "mcp_guard/static/src/js/chatter/trail_message_patch.js"
        with file_open(path) as source:
            text = source.read()
        listed = re.search(r"TRAIL_MODELS = \[(.*?)\]", text, re.S).group(1)
        self.assertEqual(set(re.findall(r'"([a-z.]+)"', listed)), set(TRAIL_MODELS))
        bundle = {asset[0] for asset in self.env["ir.asset"]._get_asset_paths("web.assets_backend", {})}
        self.assertIn(f"/{path}", bundle)
