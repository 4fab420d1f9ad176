import fnmatch
import hashlib
import json

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from .compat import Constraint
from .mcp_guard_common import (
    ACTION_SELECTION,
    ACTIONS,
    DEFAULT_RISK_APPROVAL,
    RISK_CLASSES,
    RULE_NAME_RE,
    TOOL_NAME_RE,
    canonical_json,
    internal_write,
    valid_server_name,
)
from .mcp_tool import CATALOG_REVISION_PARAM

DEFAULT_ACTION_PARAM = "mcp_guard.default_action"
_GLOB_CHARS = set("*?")


class McpToolRule(models.Model):
    """One entry of the policy document.

    The whole policy lives here: a rule with an ``action`` is an entry of
    ``rules``; a rule with ``hidden`` set puts its (exact) name in ``hide``
    (a hidden rule may have no action). The default action is the system
    parameter ``mcp_guard.default_action``.
    """

    _name = "mcp.tool.rule"
    _description = "MCP Tool Rule"
    _inherit = ["mail.thread"]
    _order = "sequence, name, id"

    name = fields.Char(
        "Tool",
        required=True,
        tracking=True,
        help="Exact tool name or a glob such as odoo_*. The exact name wins, then the longest glob.",
    )
    sequence = fields.Integer(default=10)
    # archived rules are out of the policy; an import archives rather than deletes, so the
    # default rules (noupdate data) are not re-created by the next module update
    active = fields.Boolean(default=True, tracking=True)
    action = fields.Selection(ACTION_SELECTION, tracking=True)
    hidden = fields.Boolean(
        tracking=True, help="Absent from tools/list and refused if called (exact tool names only)."
    )
    reason = fields.Char(tracking=True)
    rate_limit_max = fields.Integer("Rate limit: calls", tracking=True)
    rate_limit_window = fields.Integer("Rate limit: window (s)", tracking=True)
    approval_expires_in = fields.Integer("Approval expires in (s)", tracking=True)

    _name_unique = Constraint("UNIQUE (name)", "There is already a rule for this tool.")

    @api.constrains(
        "name", "action", "hidden", "rate_limit_max", "rate_limit_window", "approval_expires_in"
    )
    def _check_rule(self):
        for rule in self:
            if not RULE_NAME_RE.fullmatch(rule.name or ""):
                raise ValidationError(self.env._("Invalid tool name or glob: %s", rule.name))
            if not rule.action and not rule.hidden:
                raise ValidationError(self.env._("Rule %s needs an action or must hide the tool.", rule.name))
            if rule.hidden and (_GLOB_CHARS & set(rule.name)):
                raise ValidationError(self.env._("Only exact tool names can be hidden, not %s.", rule.name))
            if bool(rule.rate_limit_max) != bool(rule.rate_limit_window):
                raise ValidationError(self.env._("A rate limit needs both a number of calls and a window."))
            if rule.rate_limit_max < 0 or rule.rate_limit_window < 0 or rule.approval_expires_in < 0:
                raise ValidationError(self.env._("Rate limits and expiry cannot be negative."))
            if rule.approval_expires_in and rule.action != "require_approval":
                raise ValidationError(self.env._("An approval expiry only applies to rules requiring approval."))
            if not rule.action and (rule.reason or rule.rate_limit_max or rule.approval_expires_in):
                raise ValidationError(self.env._("A hide-only rule cannot carry a reason, rate limit or expiry."))

    # ------------------------------------------------------------------
    # Policy document (RPC contract)
    # ------------------------------------------------------------------
    @api.model
    def _get_default_action(self):
        value = self.env["ir.config_parameter"].sudo().get_param(DEFAULT_ACTION_PARAM, "deny")
        # an unknown stored value must never widen access
        return value if value in ACTIONS else "deny"

    @api.model
    def _check_manager(self):
        if not self.env.user.has_group("mcp_guard.group_mcp_manager"):
            raise AccessError(self.env._("Only MCP Guard managers can change the policy."))

    @api.model
    def _set_default_action(self, action):
        self._check_manager()
        if action not in ACTIONS:
            raise UserError(self.env._("Unknown default action: %s", action))
        self.env["ir.config_parameter"].sudo().set_param(DEFAULT_ACTION_PARAM, action)

    def _rule_entry(self):
        self.ensure_one()
        entry = {"action": self.action}
        if self.reason:
            entry["reason"] = self.reason
        if self.rate_limit_max:
            entry["rate_limit"] = {"max": self.rate_limit_max, "window": self.rate_limit_window}
        if self.approval_expires_in:
            entry["approval"] = {"expires_in": self.approval_expires_in}
        return entry

    @api.model
    def _build_policy(self):
        # the document is the whole policy: every rule is needed
        rules = self.sudo().search([])  # pylint: disable=no-search-all
        return {
            "version": "1",
            "default": self._get_default_action(),
            "hide": sorted(rules.filtered("hidden").mapped("name")),
            "rules": {rule.name: rule._rule_entry() for rule in rules.filtered("action")},
            "risk": self.env["mcp.tool.server"]._build_risk(),
        }

    @api.model
    def get_policy_document(self):
        """Return ``{"etag", "policy"}``.

        The etag is the SHA-256 of the canonical document, joined with the catalog revision
        once a Manager has accepted a tool definition: an acceptance changes the etag (the
        front-ends then re-report their catalog) although the document itself is unchanged.
        """
        self.check_access("read")
        policy = self._build_policy()
        canonical = canonical_json(policy)
        revision = self.env["ir.config_parameter"].sudo().get_param(CATALOG_REVISION_PARAM)
        if revision:
            canonical += "\ncatalog-revision:" + revision
        return {"etag": hashlib.sha256(canonical.encode("utf-8")).hexdigest(), "policy": policy}

    @api.model
    def _parse_policy(self, document):
        """Validate a policy document; raise UserError naming the path of the fault."""
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except ValueError as exc:
                raise UserError(self.env._("The policy is not valid JSON: %s", exc)) from exc
        if isinstance(document, dict) and set(document) == {"etag", "policy"}:
            document = document["policy"]

        def fail(path, msg):
            raise UserError(self.env._("Invalid policy at %(path)s: %(msg)s", path=path, msg=msg))

        def check_int(path, value, minimum):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                fail(path, self.env._("must be an integer >= %s", minimum))

        def check_keys(path, obj, allowed):
            if not isinstance(obj, dict):
                fail(path, self.env._("must be an object"))
            unknown = sorted(set(obj) - set(allowed))
            if unknown:
                fail(path, self.env._("unknown key %s", unknown[0]))

        check_keys("$", document, ("version", "default", "hide", "rules", "risk"))
        if document.get("version") != "1":
            fail("$.version", self.env._('must be "1"'))
        default = document.get("default", "deny")
        if default not in ACTIONS:
            fail("$.default", self.env._("must be one of %s", ", ".join(ACTIONS)))
        hide = document.get("hide", [])
        if not isinstance(hide, list):
            fail("$.hide", self.env._("must be a list"))
        for idx, name in enumerate(hide):
            if not isinstance(name, str) or not TOOL_NAME_RE.fullmatch(name):
                fail("$.hide[%d]" % idx, self.env._("not a valid tool name"))
        rules = document.get("rules", {})
        check_keys("$.rules", rules, rules.keys() if isinstance(rules, dict) else ())
        parsed = {}
        for name, entry in rules.items():
            path = "$.rules.%s" % name
            if not RULE_NAME_RE.fullmatch(name):
                fail(path, self.env._("not a valid tool name or glob"))
            check_keys(path, entry, ("action", "reason", "rate_limit", "approval"))
            if entry.get("action") not in ACTIONS:
                fail(path + ".action", self.env._("must be one of %s", ", ".join(ACTIONS)))
            vals = {"name": name, "action": entry["action"]}
            if "reason" in entry:
                if not isinstance(entry["reason"], str):
                    fail(path + ".reason", self.env._("must be a string"))
                vals["reason"] = entry["reason"]
            if "rate_limit" in entry:
                check_keys(path + ".rate_limit", entry["rate_limit"], ("max", "window"))
                for key in ("max", "window"):
                    check_int("%s.rate_limit.%s" % (path, key), entry["rate_limit"].get(key), 1)
                vals["rate_limit_max"] = entry["rate_limit"]["max"]
                vals["rate_limit_window"] = entry["rate_limit"]["window"]
            if "approval" in entry:
                check_keys(path + ".approval", entry["approval"], ("expires_in",))
                check_int(path + ".approval.expires_in", entry["approval"].get("expires_in"), 1)
                if entry["action"] != "require_approval":
                    fail(path + ".approval", self.env._("only valid with require_approval"))
                vals["approval_expires_in"] = entry["approval"]["expires_in"]
            parsed[name] = vals
        for name in hide:
            parsed.setdefault(name, {"name": name})["hidden"] = True
        risk = self._parse_risk(document.get("risk", {}), fail, check_keys)
        return default, list(parsed.values()), risk

    @api.model
    def _parse_risk(self, risk, fail, check_keys):
        """Validate the ``risk`` key; returns ``{"require_approval", "servers", "overrides"}``
        with ``servers`` as {name: risk_approval setting} and ``overrides`` as
        {(server, tool): (class, reason)}. Overrides must name tools already in the catalog."""
        Server = self.env["mcp.tool.server"]
        check_keys("$.risk", risk, ("require_approval", "servers", "overrides"))

        def check_classes(path, value):
            if not isinstance(value, list):
                fail(path, self.env._("must be a list"))
            for idx, cls in enumerate(value):
                if cls not in RISK_CLASSES:
                    fail("%s[%d]" % (path, idx), self.env._("must be one of %s", ", ".join(RISK_CLASSES)))
            if len(set(value)) != len(value):
                fail(path, self.env._("lists a class twice"))
            return value

        parsed = {
            "require_approval": check_classes("$.risk.require_approval", risk["require_approval"])
            if "require_approval" in risk else list(DEFAULT_RISK_APPROVAL),
            "servers": {},
            "overrides": {},
        }
        servers = risk.get("servers", {})
        check_keys("$.risk.servers", servers, servers.keys() if isinstance(servers, dict) else ())
        for name, entry in servers.items():
            path = "$.risk.servers.%s" % name
            if not valid_server_name(name):
                fail(path, self.env._("a server name is 1 to 200 printable characters"))
            check_keys(path, entry, ("require_approval",))
            if "require_approval" not in entry:
                fail(path + ".require_approval", self.env._("is required"))
            classes = check_classes(path + ".require_approval", entry["require_approval"])
            setting = Server._setting_for_classes(classes)
            if setting is None:
                fail(path + ".require_approval", self.env._(
                    "a server takes one of: [destructive, critical], [critical], "
                    "[write, destructive, critical] or []"
                ))
            parsed["servers"][name] = setting
        overrides = risk.get("overrides", [])
        if not isinstance(overrides, list):
            fail("$.risk.overrides", self.env._("must be a list"))
        for idx, entry in enumerate(overrides):
            path = "$.risk.overrides[%d]" % idx
            check_keys(path, entry, ("server", "tool", "class", "reason"))
            if not valid_server_name(entry.get("server")):
                fail(path + ".server", self.env._("a server name is 1 to 200 printable characters"))
            if not isinstance(entry.get("tool"), str) or not TOOL_NAME_RE.fullmatch(entry["tool"]):
                fail(path + ".tool", self.env._("not a valid tool name"))
            if entry.get("class") not in RISK_CLASSES:
                fail(path + ".class", self.env._("must be one of %s", ", ".join(RISK_CLASSES)))
            if "reason" in entry and not isinstance(entry["reason"], str):
                fail(path + ".reason", self.env._("must be a string"))
            key = (entry["server"], entry["tool"])
            if key in parsed["overrides"]:
                fail(path, self.env._("a second override of the same tool"))
            parsed["overrides"][key] = (entry["class"], entry.get("reason") or False)
        if parsed["overrides"]:
            tools = self.env["mcp.tool"].sudo().search(
                [("server", "in", list({server for server, _tool in parsed["overrides"]}))]
            )
            known = {(tool.server, tool.name) for tool in tools}
            for idx, key in enumerate(parsed["overrides"]):
                if key not in known:
                    fail("$.risk.overrides[%d]" % idx, self.env._(
                        "tool %(tool)s of server %(server)s is not in the catalog (its server must report "
                        "it first)", tool=key[1], server=key[0],
                    ))
        return parsed

    @api.model
    def _import_risk(self, risk):
        """Store a parsed ``risk`` key (the caller checked the Manager group)."""
        Server = self.env["mcp.tool.server"]
        Server._set_global_require_approval(risk["require_approval"])
        servers = Server.sudo().search([])  # pylint: disable=no-search-all
        for server in servers:
            wanted = risk["servers"].get(server.name, "inherit")
            if server.risk_approval != wanted:
                server.risk_approval = wanted
        missing = set(risk["servers"]) - set(servers.mapped("name"))
        if missing:
            with internal_write():
                Server.sudo().create([
                    {"name": name, "risk_approval": risk["servers"][name]} for name in sorted(missing)
                ])
        Tool = self.env["mcp.tool"].sudo()
        tools = Tool.search([("risk_override", "!=", False)])
        if risk["overrides"]:
            tools |= Tool.search([("server", "in", list({server for server, _tool in risk["overrides"]}))])
        for tool in tools:
            cls, reason = risk["overrides"].get((tool.server, tool.name), (False, False))
            if tool.risk_override != cls or (tool.risk_override_reason or False) != reason:
                tool.write({"risk_override": cls, "risk_override_reason": reason})

    @api.model
    def import_policy_document(self, document):
        """Replace the whole policy with ``document`` (a dict or JSON text). Managers only."""
        self._check_manager()
        default, vals_list, risk = self._parse_policy(document)
        rules = self.sudo().with_context(active_test=False)
        # an import replaces the whole policy: rules absent from the document are archived
        existing = {rule.name: rule for rule in rules.search([])}  # pylint: disable=no-search-all
        blank = {
            "action": False, "hidden": False, "reason": False, "rate_limit_max": 0,
            "rate_limit_window": 0, "approval_expires_in": 0, "active": True,
        }
        for vals in vals_list:
            values = dict(blank, **vals)
            rule = existing.pop(vals["name"], None)
            if rule:
                rule.write(values)
            else:
                rules.create(values)
        for rule in existing.values():
            rule.active = False
        self._set_default_action(default)
        self._import_risk(risk)
        return self.get_policy_document()

    @api.model
    def _match(self, tool):
        """The rule deciding ``tool``: the exact name wins, then the longest glob."""
        rules = self.sudo().search([("action", "!=", False)])
        exact = rules.filtered(lambda r: r.name == tool)
        if exact:
            return exact[0]
        globs = rules.filtered(
            lambda r: _GLOB_CHARS & set(r.name) and fnmatch.fnmatchcase(tool, r.name)
        )
        return globs.sorted(lambda r: (-len(r.name), r.name))[:1]
