import contextvars
import hashlib
import uuid

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from .compat import Constraint
from .mcp_guard_common import (
    committed_param,
    ACTION_SELECTION,
    ACTIONS,
    DEFAULT_APPROVER_GROUP,
    DEFAULT_RISK_APPROVAL,
    MAX_POLICY_BYTES,
    REQUIRED,
    RULE_NAME_RE,
    CompiledPolicy,
    PolicyFault,
    canonical_json,
    check_arguments,
    check_field_values,
    check_policy,
    gating_terms,
    internal_write,
    is_glob,
    json_path,
    parse_json_text,
    policy_size,
    rule_faults,
)
from .mcp_tool import CATALOG_REVISION_PARAM

DEFAULT_ACTION_PARAM = "mcp_guard.default_action"
# set (in Python, never by a client) while an import writes its rules: the whole document is
# measured once at its end, not once per rule
_SIZE_CHECKED_AT_END = contextvars.ContextVar("mcp_guard_policy_size_at_end", default=False)


class McpToolRule(models.Model):
    """One entry of the policy document.

    The whole policy lives here: a rule with an ``action`` is an entry of
    ``rules``; a rule with ``hidden`` set puts its (exact) name in ``hide``
    (a hidden rule may have no action). The default action is the system
    parameter ``mcp_guard.default_action``.
    """

    _name = "mcp.tool.rule"
    _description = "MCP Tool Rule"
    _inherit = ["mcp.guard.chatter"]
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
    # approver routing: who decides this rule's requests, and how many distinct approvers
    approver_group_id = fields.Many2one(
        "res.groups", "Approver group", tracking=True, ondelete="restrict",
        default=lambda self: self.env.ref("mcp_guard.group_mcp_approver", raise_if_not_found=False),
        help="Only members of this group who are also MCP Guard Approvers receive and decide this "
             "rule's requests (empty: the MCP Guard Approver group).",
    )
    approval_quorum = fields.Integer(
        "Approvals needed", default=1, tracking=True,
        help="How many different approvers must approve (never the requester), 1 to 10.",
    )

    _name_unique = Constraint("UNIQUE (name)", "There is already a rule for this tool.")

    @api.model_create_multi
    def create(self, vals_list):
        # on no record: copy() calls create on the records it copies
        self.browse()._check_name_free(vals_list)
        rules = super().create(vals_list)
        rules._name_approver_groups()
        return rules

    def write(self, vals):
        if isinstance(vals, dict) and "name" in vals:
            self._check_name_free([vals] * len(self))
        res = super().write(vals)
        if "approver_group_id" in vals:
            self._name_approver_groups()
        return res

    def _check_name_free(self, vals_list):
        """One line naming the tool for a rule (create, copy, a rename) whose name another rule
        already has, archived ones included (an import archives the rules it drops), before
        PostgreSQL's unique index on the name answers with the constraint's text, which names
        no tool. A rule keeps its own name."""
        names = [vals["name"] for vals in vals_list if isinstance(vals, dict) and isinstance(vals.get("name"), str)]
        for name in names:
            # a name PostgreSQL cannot hold (a NUL) is refused as such first, before it is searched
            check_field_values(self, {"name": name})
            other = self.sudo().with_context(active_test=False).search(
                [("id", "not in", self.ids), ("name", "=", name)], limit=1)
            if other and not other.active:
                raise ValidationError(self.env._(
                    "There is already an archived rule for %s: unarchive it (filter Archived) instead of "
                    "adding another.", name))
            if other or names.count(name) > 1:
                raise ValidationError(self.env._(
                    "There is already a rule for %s: change that rule instead of adding another.", name))

    def _name_approver_groups(self):
        """The policy names a group by its external id: a group made in the UI gets one."""
        groups = self.mapped("approver_group_id")
        named = groups._get_external_ids() if groups else {}
        for group in groups.filtered(lambda g: not named.get(g.id)):
            self.env["ir.model.data"].sudo().create({
                "module": "__export__", "model": "res.groups", "res_id": group.id,
                "name": "res_groups_%s_%s" % (group.id, uuid.uuid4().hex[:8]),
            })

    def _approver_group_xmlid(self):
        self.ensure_one()
        group = self.approver_group_id
        if not group:
            return DEFAULT_APPROVER_GROUP
        return (group.sudo()._get_external_ids().get(group.id) or [DEFAULT_APPROVER_GROUP])[0]

    @api.constrains(
        "name", "action", "hidden", "reason", "rate_limit_max", "rate_limit_window", "approval_expires_in",
        "approver_group_id", "approval_quorum",
    )
    def _check_rule(self):
        for rule in self:
            if not RULE_NAME_RE.fullmatch(rule.name or ""):
                raise ValidationError(self.env._("Invalid tool name or glob: %s", rule.name))
            if not rule.action and not rule.hidden:
                raise ValidationError(self.env._("Rule %s needs an action or must hide the tool.", rule.name))
            if rule.hidden and is_glob(rule.name):
                raise ValidationError(self.env._("Only exact tool names can be hidden, not %s.", rule.name))
            if bool(rule.rate_limit_max) != bool(rule.rate_limit_window):
                raise ValidationError(self.env._("A rate limit needs both a number of calls and a window."))
            if rule.rate_limit_max < 0 or rule.rate_limit_window < 0 or rule.approval_expires_in < 0:
                raise ValidationError(self.env._("Rate limits and expiry cannot be negative."))
            if rule.approval_expires_in and rule.action != "require_approval":
                raise ValidationError(self.env._("An approval expiry only applies to rules requiring approval."))
            if not rule.action and (rule.reason or rule.rate_limit_max or rule.approval_expires_in):
                raise ValidationError(self.env._("A hide-only rule cannot carry a reason, rate limit or expiry."))
            routed = rule.approval_quorum != 1 or rule._approver_group_xmlid() != DEFAULT_APPROVER_GROUP
            if routed and rule.action != "require_approval":
                raise ValidationError(self.env._(
                    "An approver group or a number of approvals only applies to rules requiring approval."))
            # the bounds the front-end loads the document with: an edit outside them is refused
            # here, never later by a front-end that then keeps a stale policy
            faults = rule_faults(rule.name, rule._rule_entry(), ("rules", rule.name)) if rule.action else []
            if faults:
                loc, message = faults[0]
                raise ValidationError(self.env._("Invalid rule at %(path)s: %(msg)s", path=json_path(loc), msg=message))

    @api.constrains("name", "active", "action", "hidden", "reason", "rate_limit_max", "rate_limit_window",
                    "approval_expires_in", "approver_group_id", "approval_quorum")
    def _check_policy_size(self):
        """The whole document stays within what the front-end loads (one measure for both
        halves, policy_core.policy_size): a legal edit never makes a policy no front-end can load."""
        if _SIZE_CHECKED_AT_END.get():
            return
        size = policy_size(self._build_policy())
        if size > MAX_POLICY_BYTES:
            raise ValidationError(self.env._(
                "The policy would be %(size)s bytes (its canonical JSON, UTF-8), more than the "
                "%(max)s bytes the MCP front-ends load: shorten reasons or remove rules.",
                size=size, max=MAX_POLICY_BYTES))

    # ------------------------------------------------------------------
    # Policy document (RPC contract)
    # ------------------------------------------------------------------
    @api.model
    def _get_default_action(self):
        value = committed_param(self.env, DEFAULT_ACTION_PARAM, "deny")
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
        approval = {}
        if self.approval_expires_in:
            approval["expires_in"] = self.approval_expires_in
        group = self._approver_group_xmlid()
        if group != DEFAULT_APPROVER_GROUP:
            approval["approver_group"] = group
        if self.approval_quorum != 1:
            approval["quorum"] = self.approval_quorum
        if approval:
            entry["approval"] = approval
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
        revision = committed_param(self.env, CATALOG_REVISION_PARAM)
        if revision:
            canonical += "\ncatalog-revision:" + revision
        return {"etag": hashlib.sha256(canonical.encode("utf-8")).hexdigest(), "policy": policy}

    @api.model
    def _policy_error(self, faults):
        return UserError(self.env._("Invalid policy: %s", "; ".join(faults)))

    @api.model
    def _parse_policy(self, document):
        """Validate a policy document (the front-end's rules, policy_core) and what Odoo can
        store of it; raise UserError naming the path of each fault."""
        try:
            if isinstance(document, str):
                document = parse_json_text(document)
            if isinstance(document, dict) and set(document) == {"etag", "policy"}:
                document = document["policy"]
            check_policy(document)
        except PolicyFault as exc:
            raise self._policy_error(exc.faults) from None
        faults = []
        if "approvers" in document:
            faults.append("%s: %s" % (json_path(("approvers",)), self.env._(
                "Odoo keeps approvers as the members of its groups (a rule's approval.approver_group): "
                "remove this key")))
        if "people" in document:
            faults.append("%s: %s" % (json_path(("people",)), self.env._(
                "Odoo binds principals to persons on their users (Settings > Users > MCP principals): "
                "remove this key")))
        hide = document.get("hide", [])
        faults += [
            "%s: %s" % (json_path(("hide", idx)), self.env._("only exact tool names can be hidden in Odoo"))
            for idx, name in enumerate(hide) if is_glob(name)
        ]
        parsed = {}
        for name, entry in document.get("rules", {}).items():
            vals = {"name": name, "action": entry["action"], "reason": entry.get("reason") or False}
            if entry.get("rate_limit"):
                window = entry["rate_limit"]["window"]
                if window != int(window):
                    faults.append("%s: %s" % (
                        json_path(("rules", name, "rate_limit", "window")),
                        self.env._("Odoo stores a window in whole seconds"),
                    ))
                vals.update(rate_limit_max=entry["rate_limit"]["max"], rate_limit_window=int(window))
            approval = entry.get("approval") or {}
            if "expires_in" in approval:
                vals["approval_expires_in"] = approval["expires_in"]
            if "quorum" in approval:
                vals["approval_quorum"] = approval["quorum"]
            if "approver_group" in approval:
                group = self.env.ref(approval["approver_group"], raise_if_not_found=False)
                if group is None or group._name != "res.groups":
                    faults.append("%s: %s" % (json_path(("rules", name, "approval", "approver_group")), self.env._(
                        "no group with the external id %s in this database", approval["approver_group"])))
                else:
                    vals["approver_group_id"] = group.id
            parsed[name] = vals
        for name in hide:
            parsed.setdefault(name, {"name": name})["hidden"] = True
        risk = self._parse_risk(document.get("risk") or {}, faults)
        if faults:
            raise self._policy_error(faults)
        return document.get("default", "deny"), list(parsed.values()), risk

    @api.model
    def _parse_risk(self, risk, faults):
        """What Odoo stores of a valid ``risk`` key: ``{"require_approval", "servers",
        "overrides"}`` with ``servers`` as {name: risk_approval setting} and ``overrides`` as
        {(server, tool): (class, reason)}. A server takes one of the settings Odoo offers, and
        overrides must name tools already in the catalog (faults appended to ``faults``)."""
        Server = self.env["mcp.tool.server"]
        parsed = {
            "require_approval": list(risk.get("require_approval", DEFAULT_RISK_APPROVAL)),
            "servers": {},
            "overrides": {},
        }
        for name, entry in risk.get("servers", {}).items():
            setting = Server._setting_for_classes(entry["require_approval"])
            if setting is None:
                faults.append("%s: %s" % (json_path(("risk", "servers", name, "require_approval")), self.env._(
                    "a server takes one of: [destructive, critical], [critical], "
                    "[write, destructive, critical] or []"
                )))
            parsed["servers"][name] = setting
        for entry in risk.get("overrides", []):
            key = (entry["server"], entry["tool"])
            parsed["overrides"][key] = (entry["class"], entry.get("reason") or False)
        if parsed["overrides"]:
            tools = self.env["mcp.tool"].sudo().search(
                [("server", "in", list({server for server, _tool in parsed["overrides"]}))]
            )
            known = {(tool.server, tool.name) for tool in tools}
            for idx, key in enumerate(parsed["overrides"]):
                if key not in known:
                    faults.append("%s: %s" % (json_path(("risk", "overrides", idx)), self.env._(
                        "tool %(tool)s of server %(server)s is not in the catalog (its server must report "
                        "it first)", tool=key[1], server=key[0],
                    )))
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
    def import_policy_document(self, document=REQUIRED):
        """Replace the whole policy with ``document`` (a dict or JSON text). Managers only."""
        check_arguments(self, "import_policy_document", document=document)
        self._check_manager()
        default, vals_list, risk = self._parse_policy(document)
        rules = self.sudo().with_context(active_test=False)
        # an import replaces the whole policy: rules absent from the document are archived
        existing = {rule.name: rule for rule in rules.search([])}  # pylint: disable=no-search-all
        blank = {
            "action": False, "hidden": False, "reason": False, "rate_limit_max": 0,
            "rate_limit_window": 0, "approval_expires_in": 0, "active": True,
            "approver_group_id": self.env.ref("mcp_guard.group_mcp_approver").id, "approval_quorum": 1,
        }
        token = _SIZE_CHECKED_AT_END.set(True)
        try:
            for vals in vals_list:
                values = dict(blank, **vals)
                rule = existing.pop(vals["name"], None)
                if rule:
                    rule.write(values)
                else:
                    rules.create(values)
            for rule in existing.values():
                rule.active = False
        finally:
            _SIZE_CHECKED_AT_END.reset(token)
        self._set_default_action(default)
        self._import_risk(risk)
        self._check_policy_size()  # the document as served (risk included), measured as stored
        return self.get_policy_document()

    @api.model
    def _compiled_policy(self):
        """The policy in force, ready to decide with the front-end's rules (policy_core)."""
        return CompiledPolicy(self._build_policy())

    @api.model
    def _match(self, tool):
        """The rule deciding ``tool``: the exact name wins, then the longest glob."""
        key, _rule = self._compiled_policy().rule_for(tool)
        return self.sudo().search([("name", "=", key), ("action", "!=", False)], limit=1) if key else self.browse()

    @api.model
    def _approval_terms(self, tools):
        """Who decides a request for a call of ``tools[0]`` that also does ``tools[1:]`` (a
        replacement is also a removal), as the front-end's gate files it
        (policy_core.gating_terms): every gating rule's approver group, the largest quorum, the
        shortest lifetime, and why no request stands under the rules in force (one of them
        hides or denies its tool, or none asks for an approval), or None."""
        policy = self._compiled_policy()
        return gating_terms([self._verdict(policy, tool) for tool in tools])

    @api.model
    def _verdict(self, policy, tool):
        """The decision for ``tool`` as a front-end takes it: a rule's ``allow`` that the
        tool's risk class in a catalog that serves it raises to require_approval (a glob or
        the default) is require_approval here too."""
        verdict = policy.decide(tool)
        if verdict.action != "allow":
            return verdict
        for entry in self.env["mcp.tool"].sudo().search([("name", "=", tool), ("risk_class", "!=", False)]):
            raised = policy.decide(tool, entry.server or None, entry.risk_class, "reported")
            if raised.action == "require_approval":
                return raised
        return verdict

    @api.model
    def _rule_bindings(self, tools):
        """The binding (policy_core.approval_terms) of the rule deciding each of ``tools``, in
        order: what a request for a call doing all of them is bound to."""
        policy = self._compiled_policy()
        return [policy.terms(tool).binding for tool in tools]

    @api.model
    def _decide(self, tool, server=None, risk_class=None):
        """The decision the front-end takes for ``tool`` (of ``server``, reported ``risk_class``)
        under the policy in force: ``{"action", "hidden", "rule", "expires_in", "rate_limit"}``."""
        verdict = self._compiled_policy().decide(tool, server, risk_class, risk_class and "reported")
        return {
            "action": verdict.action,
            "hidden": verdict.hidden,
            "rule": verdict.rule,
            "expires_in": verdict.expires_in,
            "rate_limit": list(verdict.rate_limit) if verdict.rate_limit else None,
            "approver_group": verdict.approver_group,
            "quorum": verdict.quorum,
            "binding": verdict.binding,
        }
