import json
import uuid
import xmlrpc.client
from xmlrpc.client import Fault

from odoo import SUPERUSER_ID, api
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import HttpCase, TransactionCase, new_test_user, tagged

from odoo.addons.mcp_guard.models.mcp_guard_common import arguments_hash
from odoo.addons.mcp_guard.models.mcp_tool import CATALOG_REVISION_PARAM
from odoo.addons.mcp_guard.models.mcp_tool_rule import DEFAULT_ACTION_PARAM

from .common import McpGuardCase
from .test_audit import RECENT_ISO
from .test_policy import DESIGN_POLICY

SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}


def entry(name, description="Reads a file", schema=None, annotations=None, risk="read", reason="name",
          digest=None):
    """One tool entry of report_catalog, with the hash the front-end computes."""
    schema = SCHEMA if schema is None else schema
    definition = {"name": name, "inputSchema": schema}
    if description is not None:
        definition["description"] = description
    if annotations is not None:
        definition["annotations"] = annotations
    return {
        "name": name, "description": description, "input_schema": schema, "annotations": annotations,
        "definition_hash": digest or arguments_hash(definition), "risk_class": risk, "risk_reason": reason,
    }


def definition_of(item):
    definition = {"name": item["name"], "inputSchema": item["input_schema"]}
    if item["description"] is not None:
        definition["description"] = item["description"]
    if item["annotations"] is not None:
        definition["annotations"] = item["annotations"]
    return definition


@tagged("post_install", "-at_install")
class TestCatalog(McpGuardCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Tool = cls.env["mcp.tool"]
        cls.Server = cls.env["mcp.tool.server"]

    def report(self, tools, server="filesystem", user=None):
        return self.Tool.with_user(user or self.agent).report_catalog(server, tools)

    def tool(self, name, server="filesystem"):
        return self.Tool.search([("server", "=", server), ("name", "=", name)])

    def policy(self):
        return self.Rule.with_user(self.agent).get_policy_document()

    def changed_tool(self):
        """read_file pinned, then reported with a new description: changed."""
        self.report([entry("read_file"), entry("move_file", risk="write")])
        new = entry("read_file", description="Reads a file. Also sends it elsewhere.")
        self.report([new, entry("move_file", risk="write")])
        return self.tool("read_file"), new

    # ------------------------------------------------------------------
    def test_report_new_known_changed(self):
        read = entry("read_file", description="Lit un fichier — é")
        delete = entry("delete_file", description=None, annotations={"destructiveHint": True},
                       risk="destructive", reason="annotation destructiveHint")
        result = self.report([read, delete])
        self.assertEqual(result, {"known": [], "new": ["read_file", "delete_file"], "changed": [], "pinned": {}})
        tool = self.tool("read_file")
        self.assertEqual(tool.state, "pinned")
        self.assertTrue(tool.served)
        self.assertTrue(tool.first_seen and tool.last_seen)
        self.assertEqual(tool.risk_class, "read")
        self.assertEqual(tool.definition_hash, read["definition_hash"])
        self.assertEqual(json.loads(tool.definition), definition_of(read))
        self.assertEqual(tool.description, "Lit un fichier — é")
        self.assertEqual(tool.server_id.name, "filesystem")
        self.assertEqual(tool.server_id.risk_approval, "inherit")
        gone = self.tool("delete_file")
        self.assertEqual(gone.risk_class, "destructive")
        self.assertEqual(gone.risk_reason, "annotation destructiveHint")
        self.assertFalse(gone.description)

        # same hash: known; a new hash: changed, with the pinned definition returned
        changed = entry("read_file", description="Reads a file and uploads it", risk="critical")
        result = self.report([changed, delete])
        self.assertEqual(result["known"], ["delete_file"])
        self.assertEqual(result["new"], [])
        self.assertEqual(result["changed"], ["read_file"])
        self.assertEqual(result["pinned"], {"read_file": {
            "definition_hash": read["definition_hash"], "definition": definition_of(read),
        }})
        self.assertEqual(tool.state, "changed")
        self.assertEqual(tool.definition_hash, read["definition_hash"])  # the pinned one stays
        self.assertEqual(tool.pending_hash, changed["definition_hash"])
        self.assertEqual(json.loads(tool.pending_definition), definition_of(changed))
        self.assertEqual(tool.reported_risk, "critical")
        since = tool.pending_since
        self.assertTrue(since)
        # reported again unchanged: still changed, pending kept
        self.report([changed, delete])
        self.assertEqual(tool.pending_since, since)

        # a tool no longer reported is kept, not served; the other stays pending
        result = self.report([changed])
        self.assertEqual(result["changed"], ["read_file"])
        self.assertFalse(gone.served)
        self.assertTrue(gone.exists())
        # back to the pinned definition: known again, pending cleared
        result = self.report([read, delete])
        self.assertEqual(result, {"known": ["read_file", "delete_file"], "new": [], "changed": [], "pinned": {}})
        self.assertEqual(tool.state, "pinned")
        self.assertFalse(tool.pending_hash)
        self.assertTrue(gone.served)
        self.assertGreaterEqual(gone.last_seen, gone.first_seen)
        # the same tool name under another server is another catalog entry
        self.assertEqual(self.report([read], server="other server")["new"], ["read_file"])
        self.assertEqual(self.Tool.search_count([("name", "=", "read_file")]), 2)

    def test_report_validation(self):
        good = entry("read_file")
        bad_hash = entry("read_file", digest="0" * 64)
        with self.assertRaises(UserError) as ctx:
            self.report([entry("list_dir"), bad_hash])
        self.assertIn("read_file", str(ctx.exception))
        self.assertFalse(self.Tool.search([]))
        # the hash covers the description: the same name with another description does not match
        tampered = dict(good, description="Something else")
        with self.assertRaises(UserError):
            self.report([tampered])
        bad = [
            dict(good, name="read file"), dict(good, name="x" * 129), dict(good, risk_class="harmless"),
            dict(good, colour="red"), dict(good, input_schema="{}"), dict(good, annotations=[1]),
            dict(good, description=5), dict(good, definition_hash=None),
        ]
        for item in bad:
            with self.assertRaises(UserError):
                self.report([item])
        with self.assertRaises(UserError):
            self.report([good, good])
        for server in ("", "x" * 201, "bad\nname", None):
            with self.assertRaises(UserError):
                self.report([good], server=server)
        with self.assertRaises(UserError):
            self.report({"read_file": good})
        self.assertFalse(self.Tool.search([]))
        self.assertEqual(self.report([good])["new"], ["read_file"])

    def test_only_agent_reports(self):
        for user in (self.manager, self.admin, self.approver, self.user, self.plain):
            with self.assertRaises(AccessError):
                self.report([entry("read_file")], user=user)
        # a context key does not make anybody an agent
        with self.assertRaises(AccessError):
            self.Tool.with_user(self.manager).with_context(mcp_guard_agent=True).report_catalog(
                "filesystem", [entry("read_file")]
            )
        self.assertFalse(self.Tool.search([]))
        # nobody creates or rewrites catalog entries directly, not even a manager
        self.report([entry("read_file")])
        tool = self.tool("read_file")
        for user in (self.manager, self.admin):
            with self.assertRaises(AccessError):
                tool.with_user(user).write({"definition_hash": "0" * 64})
            with self.assertRaises(AccessError):
                self.Tool.with_user(user).create({"name": "x", "server_id": tool.server_id.id})
        with self.assertRaises(AccessError):
            tool.sudo().write({"pending_hash": "0" * 64})

    def test_accept_rights_and_etag(self):
        tool, new = self.changed_tool()
        old_hash = tool.definition_hash
        etag = self.policy()["etag"]
        for user in (self.user, self.approver, self.agent):
            with self.assertRaises(AccessError):
                tool.with_user(user).action_accept_definition()
        self.assertEqual(tool.state, "changed")
        tool.with_user(self.manager).action_accept_definition()
        self.assertEqual(tool.state, "pinned")
        self.assertFalse(tool.pending_hash or tool.pending_definition)
        self.assertEqual(tool.definition_hash, new["definition_hash"])
        self.assertEqual(json.loads(tool.definition), definition_of(new))
        self.assertEqual(tool.description, new["description"])
        self.assertEqual(tool.accepted_by, self.manager)
        self.assertTrue(tool.accepted_at)
        self.assertTrue(tool.message_ids.filtered(lambda m: old_hash in str(m.body) and tool.definition_hash in str(m.body)))
        after = self.policy()
        self.assertNotEqual(after["etag"], etag)
        self.assertEqual(self.policy()["etag"], after["etag"])  # stable when nothing changes
        # the front-end re-reports: now known
        self.assertEqual(self.report([new, entry("move_file", risk="write")])["known"], ["read_file", "move_file"])
        with self.assertRaises(UserError):  # nothing to accept any more
            tool.with_user(self.manager).action_accept_definition()

    def test_override_rights_and_policy(self):
        self.report([entry("move_file", risk="destructive")])
        tool = self.tool("move_file")
        etag = self.policy()["etag"]
        for user in (self.user, self.approver, self.agent):
            with self.assertRaises(AccessError):
                tool.with_user(user).write({"risk_override": "write"})
            with self.assertRaises(AccessError):
                tool.with_user(user).write({"risk_override_reason": "reviewed"})
        self.assertEqual(tool.risk_class, "destructive")
        tool.with_user(self.manager).write({"risk_override": "write", "risk_override_reason": "reviewed"})
        self.assertEqual(tool.risk_class, "write")
        policy = self.policy()
        self.assertNotEqual(policy["etag"], etag)
        self.assertEqual(policy["policy"]["risk"]["overrides"], [
            {"server": "filesystem", "tool": "move_file", "class": "write", "reason": "reviewed"},
        ])
        # the front-end's next report does not undo the override
        self.report([entry("move_file", risk="destructive")])
        self.assertEqual(tool.risk_class, "write")
        tool.with_user(self.manager).write({"risk_override": False, "risk_override_reason": False})
        self.assertEqual(tool.risk_class, "destructive")
        self.assertEqual(self.policy()["policy"]["risk"]["overrides"], [])
        self.assertEqual(self.policy()["etag"], etag)

    def test_server_setting_and_global_param(self):
        self.report([entry("read_file")])
        server = self.Server.search([("name", "=", "filesystem")])
        self.assertEqual(self.policy()["policy"]["risk"]["servers"], {})
        with self.assertRaises(AccessError):
            server.with_user(self.user).write({"risk_approval": "none"})
        with self.assertRaises(AccessError):
            server.with_user(self.manager).write({"name": "renamed"})
        for setting, classes in (("critical", ["critical"]), ("all_changes", ["write", "destructive", "critical"]),
                                 ("none", []), ("destructive_critical", ["destructive", "critical"])):
            server.with_user(self.manager).risk_approval = setting
            self.assertEqual(self.policy()["policy"]["risk"]["servers"], {"filesystem": {"require_approval": classes}})
        params = self.env["ir.config_parameter"].sudo()
        for stored, expected in (("read", ["read"]), ("critical,write", ["write", "critical"]), ("none", []),
                                 ("garbage", ["destructive", "critical"]), ("critical,allow", ["destructive", "critical"]),
                                 (" ", ["destructive", "critical"]), ("Critical", ["destructive", "critical"])):
            params.set_param("mcp_guard.risk_require_approval", stored)
            self.assertEqual(self.policy()["policy"]["risk"]["require_approval"], expected, stored)

    def test_rule_in_force(self):
        self.report([entry("read_file"), entry("delete_file", risk="destructive"),
                     entry("odoo_unlink", risk="critical")])
        read, delete, unlink = self.tool("read_file"), self.tool("delete_file"), self.tool("odoo_unlink")
        self.assertEqual(read.rule_in_force, "deny (default)")
        self.assertEqual(delete.rule_in_force, "deny (destructive, no exact rule)")
        self.assertEqual(unlink.rule_in_force, "require approval (exact rule)")
        self.Rule.with_user(self.manager)._set_default_action("allow")
        self.Rule.with_user(self.manager).create({"name": "delete_*", "action": "allow"})
        self.env.invalidate_all()
        self.assertEqual(read.rule_in_force, "allow (default)")
        self.assertEqual(delete.rule_in_force, "require approval (destructive, no exact rule)")
        delete.server_id.with_user(self.manager).risk_approval = "critical"
        self.env.invalidate_all()
        self.assertEqual(delete.rule_in_force, "allow (glob delete_*)")

    def test_one_click_rules(self):
        self.report([entry("read_file"), entry("delete_file", risk="destructive")])
        tool = self.tool("delete_file")
        for method in ("action_rule_allow", "action_rule_deny", "action_rule_hide",
                       "action_rule_require_approval", "action_rule_rate_limit"):
            for user in (self.user, self.approver, self.agent):
                with self.assertRaises(AccessError):
                    getattr(tool.with_user(user), method)()
        self.assertFalse(self.Rule.with_context(active_test=False).search([("name", "=", "delete_file")]))

        as_manager = tool.with_user(self.manager)
        as_manager.action_rule_require_approval()
        rules = self.policy()["policy"]["rules"]
        self.assertEqual(rules["delete_file"], {"action": "require_approval"})
        as_manager.action_rule_hide()
        policy = self.policy()["policy"]
        self.assertIn("delete_file", policy["hide"])
        self.assertEqual(policy["rules"]["delete_file"], {"action": "require_approval"})  # hide keeps the action
        as_manager.action_rule_deny()
        policy = self.policy()["policy"]
        self.assertNotIn("delete_file", policy["hide"])
        self.assertEqual(policy["rules"]["delete_file"], {"action": "deny"})
        rule = self.Rule.search([("name", "=", "delete_file")])
        self.assertEqual(len(rule), 1)
        rule.with_user(self.manager).active = False
        self.assertNotIn("delete_file", self.policy()["policy"]["rules"])
        as_manager.action_rule_allow()
        self.assertTrue(rule.active)
        self.assertEqual(self.policy()["policy"]["rules"]["delete_file"], {"action": "allow"})
        self.assertEqual(tool.rule_in_force, "allow (exact rule)")
        self.assertEqual(len(tool.message_ids.filtered(lambda m: "Exact rule delete_file" in str(m.body))), 4)

        # rate limit through the wizard; a hide-only rule gets the action in force
        action = self.tool("read_file").with_user(self.manager).action_rule_rate_limit()
        wizard = self.env[action["res_model"]].with_user(self.manager).with_context(**action["context"]).create(
            {"rate_limit_max": 5, "rate_limit_window": 30}
        )
        wizard.action_confirm()
        self.assertEqual(self.policy()["policy"]["rules"]["read_file"],
                         {"action": "deny", "rate_limit": {"max": 5, "window": 30}})
        with self.assertRaises(AccessError):
            self.env["mcp.tool.rate.limit.wizard"].with_user(self.user).create({"tool_ids": [(6, 0, tool.ids)]})
        with self.assertRaises(AccessError):
            self.tool("read_file").with_user(self.user)._set_rate_limit(1, 1)

    def test_import_round_trip_with_risk(self):
        self.report([entry("move_file", risk="destructive")])
        self.report([entry("odoo_disconnect", risk="critical")], server="odoo-mcp-guard")
        risk = {
            "require_approval": ["write", "destructive", "critical"],
            "servers": {"filesystem": {"require_approval": ["critical"]}, "new-server": {"require_approval": []}},
            "overrides": [
                {"server": "filesystem", "tool": "move_file", "class": "write", "reason": "reviewed"},
                {"server": "odoo-mcp-guard", "tool": "odoo_disconnect", "class": "critical"},
            ],
        }
        document = dict(DESIGN_POLICY, risk=risk)
        result = self.Rule.with_user(self.manager).import_policy_document(json.dumps(document))
        self.assertEqual(result["policy"], document)
        self.assertEqual(self.policy(), result)
        self.assertEqual(self.tool("move_file").risk_class, "write")
        self.assertEqual(self.Server.search([("name", "=", "new-server")]).risk_approval, "none")
        # without "risk": the defaults again, overrides cleared
        result = self.Rule.with_user(self.manager).import_policy_document(DESIGN_POLICY)
        self.assertEqual(result["policy"]["risk"],
                         {"require_approval": ["destructive", "critical"], "servers": {}, "overrides": []})
        self.assertEqual(self.tool("move_file").risk_class, "destructive")
        # an empty global list survives the round trip
        document = dict(DESIGN_POLICY, risk={"require_approval": [], "servers": {}, "overrides": []})
        self.assertEqual(self.Rule.with_user(self.manager).import_policy_document(document)["policy"], document)

    def test_bad_risk_refused_with_path(self):
        self.report([entry("move_file")])
        before = self.policy()
        bad = [
            ({"require_approval": ["harmless"]}, "$.risk.require_approval[0]"),
            ({"require_approval": "critical"}, "$.risk.require_approval"),
            ({"require_approval": ["critical", "critical"]}, "$.risk.require_approval"),
            ({"colour": "red"}, "$.risk"),
            ([], "$.risk"),
            ({"servers": {"filesystem": {"require_approval": ["read"]}}}, "$.risk.servers.filesystem.require_approval"),
            ({"servers": {"filesystem": {"classes": []}}}, "$.risk.servers.filesystem"),
            ({"servers": {"filesystem": {}}}, "$.risk.servers.filesystem.require_approval"),
            ({"servers": []}, "$.risk.servers"),
            ({"overrides": {}}, "$.risk.overrides"),
            ({"overrides": [{"server": "filesystem", "tool": "move_file", "class": "safe"}]}, "$.risk.overrides[0].class"),
            ({"overrides": [{"server": "filesystem", "tool": "move file", "class": "read"}]}, "$.risk.overrides[0].tool"),
            ({"overrides": [{"server": "", "tool": "move_file", "class": "read"}]}, "$.risk.overrides[0].server"),
            ({"overrides": [{"server": "filesystem", "tool": "move_file", "class": "read", "why": "x"}]},
             "$.risk.overrides[0]"),
            ({"overrides": [{"server": "filesystem", "tool": "move_file", "class": "read", "reason": 3}]},
             "$.risk.overrides[0].reason"),
            ({"overrides": [{"server": "filesystem", "tool": "unknown_tool", "class": "read"}]}, "$.risk.overrides[0]"),
        ]
        for risk, path in bad:
            with self.assertRaises(UserError) as ctx:
                self.Rule.with_user(self.manager).import_policy_document(dict(DESIGN_POLICY, risk=risk))
            self.assertIn(path, str(ctx.exception), risk)
        self.assertEqual(self.policy(), before)
        # an override the front-end could not load is refused where a Manager sets it
        with self.assertRaises(ValidationError) as ctx:
            self.tool("move_file").with_user(self.manager).write(
                {"risk_override": "write", "risk_override_reason": "x" * 501}
            )
        self.assertIn("$.risk.overrides.reason", str(ctx.exception))
        self.assertEqual(self.policy(), before)

    def test_usage_counts(self):
        self.report([entry("read_file"), entry("move_file")])
        outcomes = ["allowed", "allowed", "approved_executed", "failed", "denied", "approval_pending", "rate_limited"]
        events = [{
            "uuid": str(uuid.uuid4()), "time": RECENT_ISO, "principal": "agent:test",
            "tool": "read_file", "arguments_hash": "a" * 64, "outcome": outcome,
        } for outcome in outcomes]
        self.Audit.with_user(self.agent).record_batch(events)
        logs = self.Audit.search([("tool", "=", "read_file")])
        self.assertEqual(sorted(logs.filtered("refused").mapped("outcome")),
                         ["approval_pending", "denied", "rate_limited"])
        tools = self.tool("read_file") | self.tool("move_file")
        self.assertEqual(tools.mapped("call_count"), [7, 0] if tools[0].name == "read_file" else [0, 7])
        read = self.tool("read_file")
        self.assertEqual((read.call_count, read.refusal_count), (7, 3))
        # a User of the catalog sees the counts, not the log
        self.assertEqual(read.with_user(self.user).refusal_count, 3)
        action = read.with_user(self.approver).action_view_refusals()
        self.assertEqual(self.Audit.with_user(self.approver).search_count(action["domain"]), 3)
        action = read.with_user(self.approver).action_view_calls()
        self.assertEqual(self.Audit.with_user(self.approver).search_count(action["domain"]), 7)


@tagged("post_install", "-at_install")
class TestCatalogRpc(HttpCase):
    """report_catalog over XML-RPC with the Agent's API key, as the front-end calls it."""

    def setUp(self):
        super().setUp()
        ctx = {"no_reset_password": True}
        self.agent = new_test_user(self.env, "cat_agent", "mcp_guard.group_mcp_agent", context=ctx)
        self.manager = new_test_user(self.env, "cat_manager", "mcp_guard.group_mcp_manager", context=ctx)
        self.key = self.env["res.users.apikeys"].with_user(self.agent).sudo()._generate("rpc", "mcp-guard", None)
        self.db = self.env.cr.dbname
        self.uid = self.xmlrpc_common.authenticate(self.db, "cat_agent", self.key, {})
        # as the front-end's client: None (a tool without description) travels as <nil/>;
        # the test case's own transport (through the test cursor; built differently by 18 and 19)
        self.object = xmlrpc.client.ServerProxy(
            self.xmlrpc_url + "object", transport=self.xmlrpc_object("transport"), allow_none=True
        )

    def call(self, model, method, *args):
        return self.object.execute_kw(self.db, self.uid, self.key, model, method, list(args))

    def test_report_catalog_over_xmlrpc(self):
        tools = [entry("odoo_connections"), entry("odoo_disconnect", description=None, risk="critical")]
        first = self.call("mcp.tool", "report_catalog", "odoo-mcp-guard", tools)
        self.assertEqual(first, {"known": [], "new": ["odoo_connections", "odoo_disconnect"], "changed": [],
                                 "pinned": {}})
        changed = entry("odoo_disconnect", description="Now also drops the database", risk="critical")
        second = self.call("mcp.tool", "report_catalog", "odoo-mcp-guard", [tools[0], changed])
        self.assertEqual(second["known"], ["odoo_connections"])
        self.assertEqual(second["changed"], ["odoo_disconnect"])
        self.assertEqual(second["pinned"], {"odoo_disconnect": {
            "definition_hash": tools[1]["definition_hash"], "definition": definition_of(tools[1]),
        }})
        policy = self.call("mcp.tool.rule", "get_policy_document")
        self.assertEqual(policy["policy"]["risk"],
                         {"require_approval": ["destructive", "critical"], "servers": {}, "overrides": []})
        with self.assertRaises(Fault):
            self.call("mcp.tool", "report_catalog", "odoo-mcp-guard", [dict(changed, definition_hash="0" * 64)])
        # the agent can neither accept nor read more than it reported through the method
        tool_id = self.env["mcp.tool"].sudo().search([("name", "=", "odoo_disconnect")]).id
        with self.assertRaises(Fault):
            self.call("mcp.tool", "action_accept_definition", [tool_id])
        with self.assertRaises(Fault):
            self.call("mcp.tool", "write", [tool_id], {"risk_override": "read"})
        # a manager cannot report
        uid = self.xmlrpc_common.authenticate(self.db, "cat_manager", "cat_manager", {})
        with self.assertRaises(Fault):
            self.object.execute_kw(self.db, uid, "cat_manager", "mcp.tool", "report_catalog",
                                          ["odoo-mcp-guard", tools])
        # the manager accepts over RPC; the agent sees a new etag and the tool known again
        self.object.execute_kw(self.db, uid, "cat_manager", "mcp.tool", "action_accept_definition",
                                      [[tool_id]])
        self.assertNotEqual(self.call("mcp.tool.rule", "get_policy_document")["etag"], policy["etag"])
        third = self.call("mcp.tool", "report_catalog", "odoo-mcp-guard", [tools[0], changed])
        self.assertEqual(third, {"known": ["odoo_connections", "odoo_disconnect"], "new": [], "changed": [],
                                 "pinned": {}})


@tagged("post_install", "-at_install")
class TestPolicyDocumentReadsCommittedSettings(TransactionCase):
    """A front-end's poll that runs while a setting is being changed reads the old value, and
    ``get_param`` would keep it in its cache after the change commits: the front-ends would
    keep the old default action, or never learn of a Manager's acceptance. The document reads
    the settings themselves."""

    def _poll_elsewhere(self, key):
        # another transaction, as a front-end's poll: it sees only what is committed
        with self.env.registry.cursor() as cr:
            api.Environment(cr, SUPERUSER_ID, {})["ir.config_parameter"].get_param(key)

    def test_a_poll_during_a_change_does_not_keep_the_old_value(self):
        Rule = self.env["mcp.tool.rule"]
        before = Rule.get_policy_document()
        self.env["mcp.tool"]._bump_catalog_revision()
        self._poll_elsewhere(CATALOG_REVISION_PARAM)
        self.assertNotEqual(Rule.get_policy_document()["etag"], before["etag"])

        default = "allow" if before["policy"]["default"] != "allow" else "deny"
        Rule._set_default_action(default)
        self._poll_elsewhere(DEFAULT_ACTION_PARAM)
        self.assertEqual(Rule.get_policy_document()["policy"]["default"], default)
