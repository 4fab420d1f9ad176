import json

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from .common import McpGuardCase

DEFAULT_POLICY = {
    "version": "1",
    "default": "deny",
    "hide": [],
    "rules": {
        "odoo_connections": {"action": "allow"},
        "odoo_connect": {"action": "allow"},
        "odoo_disconnect": {
            "action": "require_approval",
            "reason": "Removing a connection cannot be undone",
            "approval": {"expires_in": 3600},
        },
        # data tools: reads allowed, changes need an approval
        "odoo_search_read": {"action": "allow"},
        "odoo_read": {"action": "allow"},
        "odoo_fields_get": {"action": "allow"},
        "odoo_create": {
            "action": "require_approval",
            "reason": "Creating records needs an approver",
            "approval": {"expires_in": 3600},
        },
        "odoo_write": {
            "action": "require_approval",
            "reason": "Changing records needs an approver",
            "approval": {"expires_in": 3600},
        },
        "odoo_unlink": {
            "action": "require_approval",
            "reason": "Deleting records cannot be undone",
            "approval": {"expires_in": 3600},
        },
    },
}

DEFAULT_RISK = {"require_approval": ["destructive", "critical"], "servers": {}, "overrides": []}
DEFAULT_POLICY["risk"] = DEFAULT_RISK

DESIGN_POLICY = {
    "version": "1",
    "default": "deny",
    "hide": ["odoo_disconnect"],
    "rules": {
        "odoo_connections": {"action": "allow"},
        "odoo_search_read": {"action": "allow", "rate_limit": {"max": 60, "window": 60}},
        "odoo_disconnect": {
            "action": "require_approval", "reason": "Removing a connection cannot be undone",
            "rate_limit": {"max": 10, "window": 60}, "approval": {"expires_in": 3600},
        },
        "odoo_unlink": {"action": "deny", "reason": "Agents may not delete records"},
        "odoo_*": {"action": "require_approval"},
    },
}


@tagged("post_install", "-at_install")
class TestPolicy(McpGuardCase):

    def test_default_policy_document(self):
        """The default data is exactly the documented policy, readable by the agent."""
        doc = self.Rule.with_user(self.agent).get_policy_document()
        self.assertEqual(set(doc), {"etag", "policy"})
        self.assertEqual(doc["policy"], DEFAULT_POLICY)
        self.assertEqual(len(doc["etag"]), 64)

    def test_import_export_round_trip(self):
        """Importing the DESIGN example exports exactly the same document (no nulls, no extra keys)."""
        result = self.Rule.with_user(self.manager).import_policy_document(json.dumps(DESIGN_POLICY))
        # a document without "risk" means the default risk settings, exported explicitly
        self.assertEqual(result["policy"], dict(DESIGN_POLICY, risk=DEFAULT_RISK))
        again = self.Rule.with_user(self.agent).get_policy_document()
        self.assertEqual(again, result)
        # the default rules are archived, not deleted: a module update will not bring them back
        self.assertFalse(self.env.ref("mcp_guard.rule_odoo_connect").active)
        self.assertTrue(self.env.ref("mcp_guard.rule_odoo_disconnect").active)
        self.assertTrue(self.env.ref("mcp_guard.rule_odoo_disconnect").hidden)
        hidden_only = self.Rule.with_user(self.manager).import_policy_document(
            {"version": "1", "default": "allow", "hide": ["odoo_secret_tool"], "rules": {}}
        )
        self.assertEqual(hidden_only["policy"]["hide"], ["odoo_secret_tool"])
        self.assertEqual(hidden_only["policy"]["rules"], {})
        again = self.Rule.with_user(self.manager).import_policy_document(DEFAULT_POLICY)
        self.assertEqual(again["policy"], DEFAULT_POLICY)
        self.assertTrue(self.env.ref("mcp_guard.rule_odoo_connect").active)

    def test_etag_changes_with_every_change(self):
        etags = [self.Rule.get_policy_document()["etag"]]
        rule = self.env.ref("mcp_guard.rule_odoo_connect")
        rule.with_user(self.manager).write({"reason": "ok"})
        etags.append(self.Rule.get_policy_document()["etag"])
        rule.with_user(self.manager).write({"hidden": True})
        etags.append(self.Rule.get_policy_document()["etag"])
        self.Rule.with_user(self.manager)._set_default_action("allow")
        etags.append(self.Rule.get_policy_document()["etag"])
        self.Rule.with_user(self.manager).create({"name": "odoo_*", "action": "deny"})
        etags.append(self.Rule.get_policy_document()["etag"])
        self.assertEqual(len(set(etags)), len(etags))
        # and it is stable when nothing changes
        self.assertEqual(self.Rule.get_policy_document()["etag"], etags[-1])

    def test_only_managers_edit_or_import(self):
        for user in (self.agent, self.user, self.approver):
            with self.assertRaises(AccessError):
                self.Rule.with_user(user).import_policy_document(DESIGN_POLICY)
            with self.assertRaises(AccessError):
                self.Rule.with_user(user).create({"name": "odoo_x", "action": "allow"})
            with self.assertRaises(AccessError):
                self.env.ref("mcp_guard.rule_odoo_disconnect").with_user(user).write({"action": "allow"})
        # a context key does not make anybody a manager
        with self.assertRaises(AccessError):
            self.Rule.with_user(self.agent).with_context(mcp_guard_manager=True).import_policy_document(DESIGN_POLICY)
        self.assertEqual(self.Rule.get_policy_document()["policy"], DEFAULT_POLICY)
        with self.assertRaises(AccessError):
            self.Rule.with_user(self.plain).get_policy_document()

    def test_invalid_documents_refused_with_path(self):
        bad = [
            ({"version": "2"}, "$.version"),
            ({"version": "1", "default": "maybe"}, "$.default"),
            ({"version": "1", "extra": 1}, "extra"),
            ({"version": "1", "rules": {"x": {"action": "allow", "colour": "red"}}}, "$.rules.x"),
            ({"version": "1", "rules": {"x": {"action": "allow", "rate_limit": {"max": 1, "window": -5}}}},
             "$.rules.x.rate_limit.window"),
            ({"version": "1", "rules": {"x": {"action": "deny", "approval": {"expires_in": 5}}}}, "$.rules.x.approval"),
            ({"version": "1", "hide": ["bad name"]}, "$.hide[0]"),
        ]
        for document, path in bad:
            with self.assertRaises(UserError) as ctx:
                self.Rule.with_user(self.manager).import_policy_document(document)
            self.assertIn(path, str(ctx.exception))
        self.assertEqual(self.Rule.get_policy_document()["policy"], DEFAULT_POLICY)
        with self.assertRaises(ValidationError):
            self.Rule.with_user(self.manager).create({"name": "odoo_*", "hidden": True})

    def test_rule_matching_exact_then_longest_glob(self):
        self.Rule.with_user(self.manager).import_policy_document(DESIGN_POLICY)
        self.Rule.with_user(self.manager).create({"name": "odoo_search_*", "action": "allow"})
        self.assertEqual(self.Rule._match("odoo_unlink").name, "odoo_unlink")
        self.assertEqual(self.Rule._match("odoo_search_count").name, "odoo_search_*")
        self.assertEqual(self.Rule._match("odoo_write").name, "odoo_*")
        self.assertFalse(self.Rule._match("other_tool"))

    def test_policy_wizard(self):
        wizard = self.env["mcp.policy.wizard"].with_user(self.manager).create({})
        self.assertEqual(json.loads(wizard.document), DEFAULT_POLICY)
        wizard.document = json.dumps(DESIGN_POLICY)
        wizard.action_import()
        self.assertEqual(self.Rule.get_policy_document()["policy"], dict(DESIGN_POLICY, risk=DEFAULT_RISK))
        wizard.default_action = "require_approval"
        wizard.action_set_default()
        self.assertEqual(self.Rule.get_policy_document()["policy"]["default"], "require_approval")
        with self.assertRaises(AccessError):
            self.env["mcp.policy.wizard"].with_user(self.approver).create({})

    def test_edits_outside_the_front_ends_bounds_are_refused(self):
        """A rule the front-end would refuse to load is refused where it is edited (one bound
        for both halves, policy_core.MAX_SECONDS): the front-end never goes dark on a valid edit."""
        rule = self.env.ref("mcp_guard.rule_odoo_disconnect").with_user(self.manager)
        for values, path in (
            ({"approval_expires_in": 60 * 86400}, "$.rules.odoo_disconnect.approval.expires_in"),
            ({"rate_limit_max": 5, "rate_limit_window": 60 * 86400}, "$.rules.odoo_disconnect.rate_limit.window"),
            ({"reason": "x" * 501}, "$.rules.odoo_disconnect.reason"),
        ):
            with self.assertRaises(ValidationError) as caught:
                rule.write(values)
            self.assertIn(path, str(caught.exception))
            self.assertIn("at most" if "reason" in values else "2678400", str(caught.exception))
        rule.write({"approval_expires_in": 31 * 86400, "rate_limit_max": 5, "rate_limit_window": 31 * 86400})
        policy = self.Rule.with_user(self.agent).get_policy_document()["policy"]
        self.assertEqual(policy["rules"]["odoo_disconnect"]["approval"], {"expires_in": 31 * 86400})
        self.assertEqual(self.Rule._decide("odoo_disconnect")["expires_in"], 31 * 86400)
        self.assertEqual(self.Rule._match("odoo_disconnect"), self.env.ref("mcp_guard.rule_odoo_disconnect"))
