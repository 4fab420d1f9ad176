"""What a data tool's request touches, shown to the person who decides it.

For ``odoo_read``, ``odoo_write``, ``odoo_unlink`` and ``odoo_create`` the request form shows
the model, the records by name and, for ``odoo_write``, each field's current value beside the
proposed one. Only for the records and fields the request names, and only when the request's
connection is this very database (another Odoo's records are not read from here).

Leaks are kept out in four ways: the fields are readable by MCP Guard users only (not by the
Agent group that files the requests, so an agent cannot use a request to read names); the
detail (where the records are, their names, their values) is shown only to those who decide
the request (``_not_a_decider``: four eyes and the rule's approver group), everybody else who
can open it (the requester, somebody who reads as the requester, an approver of another group,
an MCP user) gets a neutral line instead; values are read with the viewer's own rights, and a
record they cannot read gives its name only (``display_name`` as the system, nothing else);
everything shown passes the one redaction rule of the shared policy core.
"""

import json
from urllib.parse import urlsplit

from markupsafe import Markup, escape

from odoo import api, fields, models
from odoo.exceptions import AccessError

from .identity import shown
from .policy_core import REDACTED, is_secret_key, redact

DATA_TOOLS = ("odoo_read", "odoo_write", "odoo_unlink", "odoo_create")
MAX_RECORDS = 50  # names listed; the arguments tab keeps the full call
MAX_CHANGED_RECORDS = 20  # records whose current values are shown beside the proposed ones
MAX_VALUE = 200  # characters of one value
LOOPBACK = ("localhost", "127.0.0.1", "::1")
VIEWERS = "mcp_guard.group_mcp_user"
# what a data tool does when the catalog does not know it (the catalog's class wins)
DATA_TOOL_RISK = {"odoo_read": "read", "odoo_create": "write", "odoo_write": "write", "odoo_unlink": "destructive"}


def _short(text):
    text = str(text)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


class McpApprovalRequestTarget(models.Model):
    _inherit = "mcp.approval.request"

    target_model = fields.Char("Model", compute="_compute_target", groups=VIEWERS)
    target_location = fields.Char("Records in", compute="_compute_target", groups=VIEWERS)
    target_records = fields.Text("Records", compute="_compute_target", groups=VIEWERS)
    target_changes = fields.Html(
        "Current and proposed values", compute="_compute_target", sanitize=False, groups=VIEWERS
    )

    @api.depends("tool", "principal", "requester_id", "origin", "connection_alias", "connection_url",
                 "connection_db", "connection_owner_id", "arguments")
    def _compute_summary(self):
        res = super()._compute_summary()
        verbs = {"odoo_read": self.env._("read"), "odoo_create": self.env._("create"),
                 "odoo_write": self.env._("change"), "odoo_unlink": self.env._("delete")}
        for req in self.filtered(lambda r: r.tool in DATA_TOOLS):
            # no record names here: the summary is readable by the requesting agent too
            args = req._target_arguments()
            model = args.get("model") if isinstance(args.get("model"), str) else "?"
            ids = args.get("ids") if isinstance(args.get("ids"), list) else []
            who = (req.principal if req.origin == "agent" and req.principal else req.requester_id.name) or ""
            if req.tool == "odoo_create":
                req.summary = shown(self.env._("%(who)s asks to create a %(model)s record", who=who, model=model))
            else:
                req.summary = shown(self.env._("%(who)s asks to %(verb)s %(count)s %(model)s record(s)",
                                               who=who, verb=verbs[req.tool], count=len(ids), model=model))
        return res

    @api.depends("tool")
    def _compute_risk_class(self):
        res = super()._compute_risk_class()
        for req in self.filtered(lambda r: not r.risk_class and r.tool in DATA_TOOL_RISK):
            req.risk_class = DATA_TOOL_RISK[req.tool]
        return res

    def _target_arguments(self):
        try:
            args = json.loads(self.arguments or "{}")
        except ValueError:
            return {}
        return args if isinstance(args, dict) else {}

    def _target_connection(self, args):
        """The requester's connection the call names (or its only one)."""
        Connection = self.env["mcp.connection"].sudo()
        domain = Connection._usable_domain(self.requester_id)
        alias = args.get("alias")
        if isinstance(alias, str) and alias:
            return Connection.search([("alias", "=", alias), *domain], limit=1)
        conns = Connection.search(domain, limit=2)
        return conns if len(conns) == 1 else Connection

    def _is_this_database(self, conn):
        if not conn or conn.db != self.env.cr.dbname:
            return False
        host = urlsplit(conn.url or "").hostname or ""
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        return host in LOOPBACK or host == (urlsplit(base).hostname or "")

    @api.depends_context("uid")
    @api.depends("tool", "arguments", "requester_id", "principal", "approver_group_id")
    def _compute_target(self):
        names = self._decider_names()  # once: whether the viewer decides is judged per request
        for req in self:
            req.target_model = req.target_location = req.target_records = False
            req.target_changes = False
            if req.tool not in DATA_TOOLS:
                continue
            args = req._target_arguments()
            model = args.get("model")
            if not isinstance(model, str):
                continue
            # the call's own argument, in its summary and arguments too
            req.target_model = model
            if req._not_a_decider(names):
                # read as the system, for a person who decides it, and for nobody else
                req.target_records = self.env._("Shown to the approvers of this request.")
                continue
            conn = req._target_connection(args)
            if not conn:
                req.target_location = self.env._("an unknown connection: records are not shown")
                continue
            where = f"{conn.alias} ({redact(conn.url)}, db {conn.db})"
            if not req._is_this_database(conn):
                req.target_location = self.env._(
                    "%(where)s: another Odoo, its records are not read from here", where=where)
                continue
            req.target_location = self.env._("%(where)s: this database", where=where)
            if model not in self.env:
                req.target_records = self.env._("Model %s is not installed in this database.", model)
                continue
            req._show_target(self.env[model], args)

    def _show_target(self, Model, args):
        ids = [i for i in args.get("ids") or [] if isinstance(i, int) and not isinstance(i, bool) and i > 0]
        records = Model.browse(ids[:MAX_RECORDS])
        existing = records.sudo().exists().with_env(self.env)
        try:
            readable = existing._filtered_access("read")
        except AccessError:
            readable = Model
        if not Model.has_access("read"):
            readable = Model
        names = self._record_names(records, existing, readable)
        lines = [names[rec.id] for rec in records]
        if len(ids) > MAX_RECORDS:
            lines.append(self.env._("… and %s more (see Arguments)", len(ids) - MAX_RECORDS))
        self.target_records = "\n".join(lines) or False
        values = args.get("values")
        if self.tool in ("odoo_write", "odoo_create") and isinstance(values, dict):
            shown = records if self.tool == "odoo_write" else Model
            self.target_changes = self._changes_table(Model, shown, readable, values, names)

    def _record_names(self, records, existing, readable):
        """id -> how the viewer, who decides the request, sees the record: its name when their
        rights (ACLs, record rules) let them read it, else its id only: a name can itself be
        what the rules protect (a system parameter's key, an API key's description)."""
        names = {}
        for rec in records:
            if rec not in existing:
                names[rec.id] = self.env._("#%s (no such record)", rec.id)
            elif rec in readable:
                names[rec.id] = f"{rec.display_name} (#{rec.id})"
            else:
                names[rec.id] = self.env._("#%s (not readable by you)", rec.id)
        return {key: redact(name) for key, name in names.items()}

    def _current(self, rec, name, field):
        value = rec[name]
        if field.type == "many2one":
            return value.display_name or ""
        if field.type in ("one2many", "many2many"):
            return ", ".join(value[:10].mapped("display_name")) + (" …" if len(value) > 10 else "")
        if field.type == "selection":
            return dict(field._description_selection(self.env)).get(value, value or "")
        if value is False and field.type != "boolean":
            return ""
        return value

    def _changes_table(self, Model, records, readable, values, names):
        """Field by field, each record's current value beside the proposed one."""
        known = Model.fields_get(list(values), attributes=["string", "type"])  # the viewer's fields only
        proposed = redact(values)
        rows = []
        for rec in records[:MAX_CHANGED_RECORDS] or [None]:
            for name in values:
                label = known.get(name, {}).get("string") or name
                if rec is None:
                    current = ""  # a new record
                elif name not in Model._fields:
                    current = self.env._("(no such field)")
                elif rec not in readable or name not in known:
                    current = self.env._("(not readable by you)")
                else:
                    current = self._current(rec, name, Model._fields[name])
                    current = REDACTED if is_secret_key(name) and current not in ("", None, False) else current
                    current = redact({name: current})[name]
                new = proposed.get(name)
                new_text = new if isinstance(new, str) else json.dumps(new, ensure_ascii=False)
                changed = rec is None or str(current) != str(new if new is not None else "")
                rows.append(Markup(
                    "<tr%s><td>%s</td><td>%s <small class='text-muted'>%s</small></td><td>%s</td><td>%s</td></tr>"
                ) % (
                    Markup(" class='table-warning'") if changed and rec is not None else "",
                    escape(names[rec.id] if rec is not None else self.env._("new record")),
                    escape(label), escape(name), escape(_short(current)), escape(_short(new_text)),
                ))
        head = Markup("<thead><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr></thead>") % (
            self.env._("Record"), self.env._("Field"), self.env._("Current value"), self.env._("Proposed value"))
        return Markup("<table class='table table-sm o_mcp_guard_changes'>%s<tbody>%s</tbody></table>") % (
            head, Markup("").join(rows))
