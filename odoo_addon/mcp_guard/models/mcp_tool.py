import json

from psycopg2 import errorcodes, errors

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from .compat import Constraint
from .mcp_guard_common import (
    committed_param,
    REQUIRED,
    RISK_CLASSES,
    RISK_SELECTION,
    STRICTNESS,
    TOOL_NAME_RE,
    arguments_hash,
    check_arguments,
    internal_write,
    is_internal_write,
    json_path,
    override_faults,
    valid_server_name,
)

CATALOG_REVISION_PARAM = "mcp_guard.catalog_revision"
ENTRY_KEYS = {
    "name", "description", "input_schema", "annotations", "definition_hash", "risk_class", "risk_reason",
}
# written only by the add-on itself (report_catalog, accept): never by a client's write()
PROTECTED_FIELDS = {
    "server_id", "server", "name", "description", "input_schema", "annotations", "definition",
    "definition_hash", "pending_definition", "pending_hash", "pending_since", "state", "first_seen",
    "last_seen", "served", "reported_risk", "risk_reason", "risk_class", "accepted_by", "accepted_at",
}
OVERRIDE_FIELDS = {"risk_override", "risk_override_reason"}


def _pretty(value):
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _definition(entry):
    """The definition dict of a reported entry (description/annotations absent when None)."""
    definition = {"name": entry["name"], "inputSchema": entry["input_schema"]}
    if entry.get("description") is not None:
        definition["description"] = entry["description"]
    if entry.get("annotations") is not None:
        definition["annotations"] = entry["annotations"]
    return definition


RISK_GROUPS = [("1_critical", "Critical"), ("2_destructive", "Destructive"), ("3_write", "Write"), ("4_read", "Read-only")]
RISK_GROUP_OF = {key.split("_", 1)[1]: key for key, _label in RISK_GROUPS}


class ConcurrentCatalogReport(errors.SerializationFailure):
    """A serialisation failure, so that Odoo's RPC layer (``odoo.service.model.retrying``, on
    18.0 and 19.0) rolls back and retries the call; it reads the code to log it."""

    pgcode = errorcodes.SERIALIZATION_FAILURE


class McpTool(models.Model):
    """A tool served by an MCP front-end, with its pinned definition and risk class."""

    _name = "mcp.tool"
    _description = "MCP Tool (catalog)"
    _inherit = ["mcp.guard.chatter"]
    _order = "server, name, id"

    server_id = fields.Many2one(
        "mcp.tool.server", "Server record", required=True, readonly=True, ondelete="restrict", index=True
    )
    server = fields.Char(related="server_id.name", store=True, readonly=True, index=True)
    name = fields.Char("Tool", required=True, readonly=True, index=True)
    description = fields.Text(readonly=True)
    input_schema = fields.Text("Input schema (JSON)", readonly=True)
    annotations = fields.Text("Annotations (JSON)", readonly=True)
    definition = fields.Text("Pinned definition", readonly=True)
    definition_hash = fields.Char("Pinned hash", readonly=True, tracking=True)
    pending_definition = fields.Text("New definition", readonly=True)
    pending_hash = fields.Char("New hash", readonly=True)
    pending_since = fields.Datetime(readonly=True)
    state = fields.Selection(
        [("pinned", "Pinned"), ("changed", "Changed")],
        compute="_compute_state", store=True, readonly=True, tracking=True,
    )
    first_seen = fields.Datetime(readonly=True)
    last_seen = fields.Datetime(readonly=True)
    served = fields.Boolean(readonly=True, help="In the latest report of its server.")
    reported_risk = fields.Selection(RISK_SELECTION, "Reported class", readonly=True)
    risk_reason = fields.Char("Reported reason", readonly=True)
    risk_override = fields.Selection(
        RISK_SELECTION, "Class override", tracking=True, groups="mcp_guard.group_mcp_manager",
        help="A Manager's decision; it travels in the policy document (risk.overrides).",
    )
    risk_override_reason = fields.Char("Override reason", tracking=True)
    risk_class = fields.Selection(
        RISK_SELECTION, "Risk class", compute="_compute_risk_class", store=True, readonly=True, index=True
    )
    # the class as a group heading, most severe first (a selection groups by its raw value)
    risk_group = fields.Selection(
        RISK_GROUPS, "Risk", compute="_compute_risk_group", store=True, readonly=True,
        help="The risk class, ordered by severity for grouping.",
    )
    accepted_by = fields.Many2one("res.users", readonly=True)
    accepted_at = fields.Datetime(readonly=True)
    call_count = fields.Integer("Calls", compute="_compute_usage")
    refusal_count = fields.Integer("Refusals", compute="_compute_usage")
    rule_in_force = fields.Char(compute="_compute_rule_in_force", help="The rule deciding calls of this tool.")

    _catalog_entry_unique = Constraint("UNIQUE (server_id, name)", "This tool is already in the catalog of its server.")

    @api.depends("pending_hash")
    def _compute_state(self):
        for tool in self:
            tool.state = "changed" if tool.pending_hash else "pinned"

    @api.depends("risk_override", "reported_risk")
    def _compute_risk_class(self):
        for tool in self.sudo():
            tool.risk_class = tool.risk_override or tool.reported_risk

    @api.depends("risk_class")
    def _compute_risk_group(self):
        for tool in self:
            tool.risk_group = RISK_GROUP_OF.get(tool.risk_class, False)

    def _compute_usage(self):
        counts = {}
        names = [name for name in self.mapped("name") if name]
        if names:
            groups = self.env["mcp.audit.log"].sudo()._read_group(
                [("tool", "in", names)], ["tool", "refused"], ["__count"]
            )
            for tool_name, refused, count in groups:
                calls, refusals = counts.get(tool_name, (0, 0))
                counts[tool_name] = (calls + count, refusals + (count if refused else 0))
        for tool in self:
            tool.call_count, tool.refusal_count = counts.get(tool.name, (0, 0))

    # ------------------------------------------------------------------
    # The rule in force
    # ------------------------------------------------------------------
    def _decisions(self):
        """{tool id: (decision, text)}; decision is allow/deny/require_approval/hidden.

        The decision is the front-end's (policy_core over the exported policy document)."""
        policy = self.env["mcp.tool.rule"]._compiled_policy()
        labels = {"allow": self.env._("allow"), "deny": self.env._("deny"),
                  "require_approval": self.env._("require approval")}
        result = {}
        for tool in self:
            name, server = tool.name or "", tool.server or None
            verdict = policy.decide(name, server, tool.sudo().reported_risk or None)
            if verdict.hidden:
                result[tool.id] = ("hidden", self.env._("hidden (exact rule)"))
            elif verdict.rule == name:
                result[tool.id] = (verdict.action, self.env._("%s (exact rule)", labels[verdict.action]))
            elif verdict.risk_class and verdict.risk_class in policy.approval_classes(server):
                result[tool.id] = (verdict.action, self.env._(
                    "%(decision)s (%(cls)s, no exact rule)", decision=labels[verdict.action], cls=verdict.risk_class
                ))
            else:
                source = self.env._("glob %s", verdict.rule) if verdict.rule else self.env._("default")
                result[tool.id] = (verdict.action, "%s (%s)" % (labels[verdict.action], source))
        return result

    @api.constrains("risk_override", "risk_override_reason")
    def _check_override(self):
        # the bounds the front-end loads the policy's risk.overrides with
        for tool in self.sudo().filtered("risk_override"):
            entry = {"server": tool.server, "tool": tool.name, "class": tool.risk_override}
            if tool.risk_override_reason:
                entry["reason"] = tool.risk_override_reason
            faults = override_faults(entry, ("risk", "overrides"))
            if faults:
                loc, message = faults[0]
                raise ValidationError(self.env._(
                    "Invalid class override at %(path)s: %(msg)s", path=json_path(loc), msg=message
                ))
        # the overrides are part of the document the front-ends load: it stays within their bound
        self.env["mcp.tool.rule"]._check_policy_size()

    def _compute_rule_in_force(self):
        decisions = self._decisions()
        for tool in self:
            tool.rule_in_force = decisions.get(tool.id, (False, False))[1]

    # ------------------------------------------------------------------
    # Protection
    # ------------------------------------------------------------------
    @api.model
    def _check_catalog_manager(self):
        if not self.env.user.has_group("mcp_guard.group_mcp_manager"):
            raise AccessError(self.env._("Only MCP Guard managers can change the tool catalog."))

    @api.model_create_multi
    def create(self, vals_list):
        if not is_internal_write():
            raise AccessError(self.env._("Catalog entries are created by the front-end's report only."))
        return super().create(vals_list)

    def write(self, vals):
        if not is_internal_write():
            protected = sorted(PROTECTED_FIELDS & set(vals))
            if protected:
                raise AccessError(self.env._("The catalog field %s is kept by the add-on.", protected[0]))
            if OVERRIDE_FIELDS & set(vals):
                # field-level groups are enforced on write too; this also covers sudo paths
                self._check_catalog_manager()
        return super().write(vals)

    def unlink(self):  # pylint: disable=method-required-super
        # refused in unlink itself, not @api.ondelete: _force_unlink skips those (invariant 14).
        # A deleted pin would come back as a new tool, its changed definition never reviewed.
        raise AccessError(self.env._(  # pylint: disable=no-raise-unlink
            "A catalog entry is kept: its pinned definition is what a changed one is checked against."))

    # ------------------------------------------------------------------
    # RPC: report_catalog
    # ------------------------------------------------------------------
    @api.model
    def _validate_report(self, server, tools):
        if not valid_server_name(server):
            raise UserError(self.env._("server must be 1 to 200 printable characters"))
        if not isinstance(tools, list):
            raise UserError(self.env._("tools must be a list"))
        entries, seen = [], set()
        for index, entry in enumerate(tools):
            if not isinstance(entry, dict):
                raise UserError(self.env._("Tool entry %s is not an object.", index))
            name = entry.get("name")
            if not isinstance(name, str) or not TOOL_NAME_RE.fullmatch(name):
                raise UserError(self.env._("Tool entry %s: not a valid tool name.", index))

            def fail(msg, name=name):
                raise UserError(self.env._("Tool %(name)s: %(msg)s", name=name, msg=msg))

            unknown = sorted(set(entry) - ENTRY_KEYS)
            if unknown:
                fail(self.env._("unknown key %s", unknown[0]))
            if name in seen:
                fail(self.env._("reported twice"))
            seen.add(name)
            for key in ("description", "risk_reason"):
                if entry.get(key) is not None and not isinstance(entry[key], str):
                    fail(self.env._("%s must be a string", key))
            if not isinstance(entry.get("input_schema"), dict):
                fail(self.env._("input_schema must be an object"))
            if entry.get("annotations") is not None and not isinstance(entry["annotations"], dict):
                fail(self.env._("annotations must be an object"))
            if entry.get("risk_class") not in RISK_CLASSES:
                fail(self.env._("risk_class must be one of %s", ", ".join(RISK_CLASSES)))
            digest = entry.get("definition_hash")
            if not isinstance(digest, str):
                fail(self.env._("definition_hash must be a string"))
            definition = _definition(entry)
            if arguments_hash(definition) != digest:
                fail(self.env._("definition_hash does not match the definition"))
            entries.append({
                "name": name, "definition": definition, "hash": digest,
                "risk_class": entry["risk_class"], "risk_reason": entry.get("risk_reason") or False,
            })
        return entries

    @api.model
    def _pinned_values(self, definition, digest):
        return {
            "description": definition.get("description", False),
            "input_schema": _pretty(definition["inputSchema"]),
            "annotations": _pretty(definition["annotations"]) if "annotations" in definition else False,
            "definition": _pretty(definition),
            "definition_hash": digest,
        }

    @api.model
    def report_catalog(self, server=REQUIRED, tools=REQUIRED):
        """See :meth:`_report_catalog`; two reports that add the same server or tool at once
        (two replicas, or one front-end's overlapping calls) meet on the unique constraints:
        the later one is retried by Odoo on a fresh snapshot, where it finds the rows."""
        check_arguments(self, "report_catalog", server=server, tools=tools)
        try:
            with self.env.cr.savepoint():
                return self._report_catalog(server, tools)
        except errors.UniqueViolation as exc:
            raise ConcurrentCatalogReport(str(exc)) from exc

    @api.model
    def _report_catalog(self, server, tools):
        """Record the tools ``server`` serves (RPC contract, Agent group only).

        Returns ``{"known", "new", "changed", "pinned"}``: names by status, and for each
        changed tool its accepted definition ``{"definition_hash", "definition"}``.
        """
        if not self.env.user.has_group("mcp_guard.group_mcp_agent"):
            raise AccessError(self.env._("Only the MCP Guard agent reports its tool catalog."))
        entries = self._validate_report(server, tools)
        now = fields.Datetime.now()
        result = {"known": [], "new": [], "changed": [], "pinned": {}}
        Tool = self.sudo()
        with internal_write():
            Server = self.env["mcp.tool.server"].sudo()
            server_rec = Server.search([("name", "=", server)], limit=1) or Server.create({"name": server})
            existing = {tool.name: tool for tool in Tool.search([("server_id", "=", server_rec.id)])}
            seen = Tool.browse()
            new_vals = []
            for entry in entries:
                name = entry["name"]
                tool = existing.pop(name, None)
                risk_vals = {"reported_risk": entry["risk_class"], "risk_reason": entry["risk_reason"]}
                if not tool:
                    vals = dict(
                        self._pinned_values(entry["definition"], entry["hash"]),
                        server_id=server_rec.id, name=name, first_seen=now, last_seen=now, served=True,
                        **risk_vals,
                    )
                    new_vals.append(vals)
                    result["new"].append(name)
                    continue
                seen |= tool
                vals = {key: value for key, value in risk_vals.items() if tool[key] != value}
                if tool.definition_hash == entry["hash"]:
                    result["known"].append(name)
                    if tool.pending_hash:  # the server went back to the pinned definition
                        vals.update(pending_definition=False, pending_hash=False, pending_since=False)
                else:
                    result["changed"].append(name)
                    result["pinned"][name] = {
                        "definition_hash": tool.definition_hash,
                        "definition": json.loads(tool.definition or "{}"),
                    }
                    if tool.pending_hash != entry["hash"]:
                        vals.update(
                            pending_definition=_pretty(entry["definition"]),
                            pending_hash=entry["hash"], pending_since=now,
                        )
                        tool._post_own(body=self.env._(
                            "The server reports a new definition (%(new)s); the pinned one (%(old)s) stays "
                            "in force until a Manager accepts it.", new=entry["hash"], old=tool.definition_hash,
                        ))
                if vals:
                    tool.write(vals)
            if seen:
                seen.write({"last_seen": now, "served": True})
            gone = Tool.browse([tool.id for tool in existing.values() if tool.served])
            if gone:
                gone.write({"served": False})
            if new_vals:
                Tool.with_context(mail_create_nolog=True).create(new_vals)
        return result

    # ------------------------------------------------------------------
    # Manager actions
    # ------------------------------------------------------------------
    @api.model
    def _bump_catalog_revision(self):
        params = self.env["ir.config_parameter"].sudo()
        try:
            revision = int(committed_param(self.env, CATALOG_REVISION_PARAM, "0"))
        except ValueError:
            revision = 0
        params.set_param(CATALOG_REVISION_PARAM, str(revision + 1))

    def action_accept_definition(self):
        """Pin the new definition of changed tools (Managers only)."""
        self._check_catalog_manager()
        if not self or any(tool.state != "changed" for tool in self):
            raise UserError(self.env._("Only a tool with a changed definition can be accepted."))
        now = fields.Datetime.now()
        with internal_write():
            for tool in self.sudo():
                old_hash, new_hash = tool.definition_hash, tool.pending_hash
                definition = json.loads(tool.pending_definition)
                tool.write(dict(
                    self._pinned_values(definition, new_hash),
                    pending_definition=False, pending_hash=False, pending_since=False,
                    accepted_by=self.env.user.id, accepted_at=now,
                ))
                tool._post_own(body=self.env._(
                    "New definition accepted by %(user)s: %(old)s → %(new)s",
                    user=self.env.user.name, old=old_hash, new=new_hash,
                ))
        # the policy etag covers this revision: front-ends re-report and learn the acceptance
        self._bump_catalog_revision()
        return True

    def _effective_action(self):
        """The action deciding calls of this tool now (for a new exact rule)."""
        self.ensure_one()
        decision = self._decisions()[self.id][0]
        return decision if decision in STRICTNESS else "deny"

    def _set_exact_rule(self, values, note):
        self._check_catalog_manager()
        Rule = self.env["mcp.tool.rule"].with_context(active_test=False)
        for tool in self:
            vals = dict(values(tool) if callable(values) else values, active=True)
            rule = Rule.search([("name", "=", tool.name)], limit=1)
            if rule:
                if vals.get("action") and vals["action"] != "require_approval":
                    vals.setdefault("approval_expires_in", 0)
                rule.write(vals)
            else:
                rule = Rule.create(dict(vals, name=tool.name))
            tool._post_own(body=self.env._("Exact rule %(rule)s: %(note)s", rule=rule.name, note=note))
        return True

    def action_rule_allow(self):
        return self._set_exact_rule({"action": "allow", "hidden": False}, self.env._("allow"))

    def action_rule_deny(self):
        return self._set_exact_rule({"action": "deny", "hidden": False}, self.env._("deny"))

    def action_rule_require_approval(self):
        return self._set_exact_rule(
            {"action": "require_approval", "hidden": False}, self.env._("require approval")
        )

    def action_rule_hide(self):
        return self._set_exact_rule({"hidden": True}, self.env._("hidden"))

    def _set_rate_limit(self, calls, window):
        if calls < 1 or window < 1:
            raise UserError(self.env._("A rate limit needs at least one call and a window of one second."))
        Rule = self.env["mcp.tool.rule"].sudo().with_context(active_test=False)

        def values(tool):
            rule = Rule.search([("name", "=", tool.name)], limit=1)
            vals = {"rate_limit_max": calls, "rate_limit_window": window}
            if not rule.action:  # a rate limit needs an action: keep the one in force
                vals["action"] = tool._effective_action()
            return vals

        return self._set_exact_rule(
            values, self.env._("rate limit %(calls)s calls per %(window)s s", calls=calls, window=window)
        )

    def action_rule_rate_limit(self):
        self._check_catalog_manager()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Rate limit"),
            "res_model": "mcp.tool.rate.limit.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_tool_ids": self.ids},
        }

    # ------------------------------------------------------------------
    # Smart buttons
    # ------------------------------------------------------------------
    def _usage_action(self, refused_only):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("mcp_guard.mcp_audit_log_usage_action")
        domain = [("tool", "=", self.name)]
        if refused_only:
            domain.append(("refused", "=", True))
        action.update(domain=domain, view_mode="list,graph,pivot,form", context={"search_default_group_outcome": 1})
        action["views"] = [(False, "list"), (False, "graph"), (False, "pivot"), (False, "form")]
        action["display_name"] = self.name
        return action

    def action_view_calls(self):
        return self._usage_action(refused_only=False)

    def action_view_refusals(self):
        return self._usage_action(refused_only=True)
