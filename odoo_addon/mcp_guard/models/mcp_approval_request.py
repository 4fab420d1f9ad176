import json
import logging
from datetime import timedelta

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from .compat import GROUP_USERS
from .identity import check_approver, check_identity, same_person
from .mcp_guard_common import (
    DEFAULT_EXPIRES_IN,
    TOOL_NAME_RE,
    allow_connection_removal,
    arguments_hash,
    internal_write,
    is_internal_write,
    redact,
    redact_text,
)
from .mcp_guard_context import trusted

_logger = logging.getLogger(__name__)

STATES = [
    ("pending", "Pending"),
    ("approved", "Approved"),
    ("rejected", "Rejected"),
    ("cancelled", "Cancelled"),
    ("expired", "Expired"),
    ("done", "Done"),
    ("failed", "Failed"),
]
# fields only the add-on's own methods may write (never a client, whatever its rights)
PROTECTED_FIELDS = {
    "name", "tool", "arguments", "arguments_hash", "principal", "reason", "requester_id",
    "company_id", "connection_id", "connection_alias", "connection_url", "connection_db",
    "connection_login", "state", "approver_id",
    "decision_date", "decision_note", "expires_at", "consumed_at",
}
CONNECTION_TOOLS = ("odoo_disconnect", "odoo_connect")
# what a request for a connection is bound to besides its id, as the approver saw it
# an odoo_connect call's arguments (the front-end's ConnectArgs) -> upsert_from_agent's values
CONNECT_KEYS = {"alias": "alias", "url": "url", "db": "db", "username": "login", "password": "password",
                "api_key": "api_key", "protocol": "protocol"}
CONNECT_IGNORED = {"verify_ssl"}  # the front-end's own setting, not kept in Odoo
# the fields behind four eyes and the request's binding: written only by the add-on's methods,
# through write or the ORM's low-level _write/_write_multi alike
GUARDED_FIELDS = {"state", "approver_id", "requester_id", "tool", "arguments_hash"}
CONNECTION_SNAPSHOT = {"connection_alias": "alias", "connection_url": "url", "connection_db": "db",
                       "connection_login": "login"}


class McpApprovalRequest(models.Model):
    _name = "mcp.approval.request"
    _description = "MCP Approval Request"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "id desc"
    _check_company_auto = True
    # anybody who can read a request may comment on it; state changes go through methods
    _mail_post_access = "read"

    name = fields.Char("Reference", required=True, readonly=True, copy=False, default="/")
    tool = fields.Char(required=True, readonly=True, tracking=True)
    arguments = fields.Text("Arguments (redacted)", readonly=True)
    arguments_hash = fields.Char(readonly=True, index=True)
    principal = fields.Char(readonly=True, help="Identity of the agent as seen by the MCP front-end.")
    reason = fields.Text(readonly=True)
    requester_id = fields.Many2one("res.users", "Requested by", required=True, readonly=True, index=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, default=lambda self: self.env.company)
    connection_id = fields.Many2one("mcp.connection", readonly=True, ondelete="set null", check_company=True)
    connection_alias = fields.Char(readonly=True)
    # the connection as it was when the request was filed: a later change voids the request
    connection_url = fields.Char("Connection URL", readonly=True)
    connection_db = fields.Char("Connection database", readonly=True)
    connection_login = fields.Char("Connection login", readonly=True)
    state = fields.Selection(STATES, default="pending", required=True, readonly=True, tracking=True, index=True)
    approver_id = fields.Many2one("res.users", "Decided by", readonly=True, tracking=True)
    decision_date = fields.Datetime(readonly=True)
    decision_note = fields.Text(readonly=True, tracking=True)
    expires_at = fields.Datetime(readonly=True, tracking=True)
    consumed_at = fields.Datetime(readonly=True)
    can_decide = fields.Boolean(compute="_compute_user_rights")
    can_cancel = fields.Boolean(compute="_compute_user_rights")

    @api.depends_context("uid")
    @api.depends("state", "requester_id", "principal")
    def _compute_user_rights(self):
        is_approver = self.env.user.has_group("mcp_guard.group_mcp_approver")
        is_manager = self.env.user.has_group("mcp_guard.group_mcp_manager")
        try:
            names = self._person_names(self.env.user)
        except AccessError:
            names = None  # a user whose name cannot be compared decides nothing
        for req in self:
            mine = req.requester_id.id == self.env.uid
            req.can_decide = (
                req.state == "pending" and is_approver and not mine
                and names is not None and not req._principal_problem(names)
            )
            req.can_cancel = req.state in ("pending", "approved") and (mine or is_manager)

    # ------------------------------------------------------------------
    # ORM guards
    # ------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        if not is_internal_write():
            raise AccessError(self.env._("Approval requests are filed with file_request()."))
        for vals in vals_list:
            if vals.get("name", "/") == "/":
                vals["name"] = self.env["ir.sequence"].next_by_code("mcp.approval.request") or "/"
        # no default_state=approved from the client's context, and a chatter trail
        return super(McpApprovalRequest, trusted(self)).create(vals_list)

    def _check_protected(self, vals, protected):
        if not is_internal_write() and protected & set(vals):
            raise AccessError(
                self.env._("Approval requests change only through their actions (approve, reject, cancel, consume).")
            )

    def write(self, vals):
        self._check_protected(vals, PROTECTED_FIELDS)
        res = super(McpApprovalRequest, trusted(self)).write(vals)
        if is_internal_write():
            # the guarded fields reach the table now, while the flag is set (see _write_multi)
            self.flush_recordset()
        return res

    def _write_multi(self, vals_list):
        # the ORM's low-level write (also reached by _write from server-action code)
        for vals in vals_list:
            self._check_protected(vals, GUARDED_FIELDS)
        return super()._write_multi(vals_list)

    # ------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------
    @api.model
    def _expires_in(self, tool):
        rule = self.env["mcp.tool.rule"]._match(tool)
        return (rule.approval_expires_in if rule else 0) or DEFAULT_EXPIRES_IN

    def _set_connection_state(self, state):
        conns = self.sudo().connection_id.filtered(lambda c: c.state != state)
        if conns:
            with internal_write():
                conns.write({"state": state})

    def _release_connection(self):
        """Put a connection back to connected when its disconnect request ends without effect."""
        for req in self.filtered(lambda r: r.tool == "odoo_disconnect" and r.connection_id):
            others = self.sudo().search_count([
                ("id", "!=", req.id),
                ("connection_id", "=", req.connection_id.id),
                ("tool", "=", "odoo_disconnect"),
                ("state", "in", ("pending", "approved")),
            ])
            if not others:
                req._set_connection_state("connected")

    def _approvers(self):
        self.ensure_one()
        group = self.env.ref("mcp_guard.group_mcp_approver")
        return group.sudo()[GROUP_USERS].filtered(
            lambda u: u.active and not u.share and self.company_id in u.company_ids and u != self.requester_id
        )

    def _notify_approvers(self):
        for req in self.sudo():
            for user in req._approvers():
                req.activity_schedule(
                    act_type_xmlid="mcp_guard.mail_act_mcp_approval",
                    summary=self.env._("Approve %(tool)s (%(ref)s)", tool=req.tool, ref=req.name),
                    note=req.reason or "",
                    user_id=user.id,
                    date_deadline=fields.Date.context_today(req),
                )

    def _notify_requester(self, body):
        for req in self.sudo():
            req.message_post(
                body=body,
                partner_ids=req.requester_id.partner_id.ids,
                subtype_xmlid="mail.mt_comment",
                message_type="notification",
            )

    def _close_activities(self):
        # the decision itself is tracked on the state; the to-dos simply go away
        self.sudo().activity_unlink(["mcp_guard.mail_act_mcp_approval"])

    def _check_can_decide(self):
        """Four eyes: an approver, and never the requester (administrators included)."""
        if not self.env.user.has_group("mcp_guard.group_mcp_approver"):
            raise AccessError(self.env._("Only MCP Guard approvers can approve or reject requests."))
        names = self._person_names(self.env.user)
        for req in self:
            # env.uid, not a context key: sudo() and contexts cannot change it
            if req.requester_id.id == self.env.uid:
                raise AccessError(self.env._("You cannot approve or reject your own request %s.", req.name))
            problem = req._principal_problem(names)
            if problem:
                raise AccessError(problem)
            if req.state != "pending":
                raise UserError(self.env._("Request %(ref)s is %(state)s, not pending.", ref=req.name, state=req.state))

    @api.model
    def _person_names(self, user):
        """The names a user goes by (login, name, the local part of the email), each one a
        principal could be spelled as. A name that cannot be compared fails closed."""
        email_local_part = (user.email or "").split("@")[0]
        names = [name for name in (user.login, user.name, email_local_part) if name and name.strip()]
        for name in names:
            problem = check_identity(name)
            if problem:
                raise AccessError(self.env._(
                    "Your user name %(name)r cannot be compared with a requester (%(why)s): "
                    "you cannot approve or reject requests.", name=name, why=problem))
        return names

    def _principal_problem(self, names):
        """Why the person going by ``names`` may not decide this request, or None. The person
        behind the agent is the MCP principal, not the technical Odoo user that filed for it:
        compared as the front-end compares (identity.py: TR39 skeleton, prefixes, case)."""
        self.ensure_one()
        problem = check_approver(self.principal or "")
        if problem:
            return self.env._(
                "Request %(ref)s was filed under a name that cannot be compared (%(why)s): "
                "it cannot be approved or rejected.", ref=self.name, why=problem)
        if any(same_person(name, self.principal) for name in names):
            return self.env._(
                "Request %(ref)s was made by the MCP principal %(who)s, who is you: "
                "you cannot approve or reject your own request.", ref=self.name, who=self.principal)
        return None

    # ------------------------------------------------------------------
    # UI actions (rights checked here, not by the view)
    # ------------------------------------------------------------------
    def action_approve(self):
        self.check_access("read")
        self._check_can_decide()
        now = fields.Datetime.now()
        for req in self:
            with internal_write():
                req.sudo().write({
                    "state": "approved",
                    "approver_id": self.env.uid,
                    "decision_date": now,
                    "expires_at": now + timedelta(seconds=self._expires_in(req.tool)),
                })
            req._close_activities()
            req._notify_requester(
                self.env._("Request %(ref)s was approved by %(user)s.", ref=req.name, user=self.env.user.name)
            )
        return True

    def action_reject(self, note=None):
        self.check_access("read")
        self._check_can_decide()
        for req in self:
            with internal_write():
                req.sudo().write({
                    "state": "rejected",
                    "approver_id": self.env.uid,
                    "decision_date": fields.Datetime.now(),
                    "decision_note": redact_text(note) if isinstance(note, str) and note else False,
                })
            req._close_activities()
            req._release_connection()
            body = self.env._("Request %(ref)s was rejected by %(user)s.", ref=req.name, user=self.env.user.name)
            if note:
                body = Markup("%s<br/>%s") % (body, note)
            req._notify_requester(body)
        return True

    def action_open_reject_wizard(self):
        self.check_access("read")
        self._check_can_decide()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Reject request"),
            "res_model": "mcp.approval.reject.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_request_ids": self.ids},
        }

    def action_cancel(self):
        self.check_access("read")
        is_manager = self.env.user.has_group("mcp_guard.group_mcp_manager")
        for req in self:
            if req.requester_id.id != self.env.uid and not is_manager:
                raise AccessError(self.env._("Only the requester or a manager can cancel %s.", req.name))
            if req.state not in ("pending", "approved"):
                raise UserError(self.env._("Request %(ref)s is %(state)s.", ref=req.name, state=req.state))
            with internal_write():
                req.sudo().write({"state": "cancelled", "decision_date": fields.Datetime.now()})
            req._close_activities()
            req._release_connection()
        return True

    def action_view_connection(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "mcp.connection",
            "view_mode": "form",
            "res_id": self.connection_id.id,
        }

    @api.model
    def _cron_expire(self):
        """Mark stale pending/approved requests as expired."""
        stale = self.sudo().search([
            ("state", "in", ("pending", "approved")),
            ("expires_at", "<=", fields.Datetime.now()),
        ])
        for req in stale:
            with internal_write():
                req.write({"state": "expired"})
            req._close_activities()
            req._release_connection()
        return True

    # ------------------------------------------------------------------
    # RPC contract
    # ------------------------------------------------------------------
    @api.model
    def file_request(self, tool, arguments, principal, reason):
        """File a request for one exact call, or return the pending one of an identical call."""
        user = self.env.user
        if not (user.has_group("mcp_guard.group_mcp_agent") or user.has_group("mcp_guard.group_mcp_user")):
            raise AccessError(self.env._("Only the MCP agent or MCP users can file approval requests."))
        if not isinstance(tool, str) or not TOOL_NAME_RE.fullmatch(tool):
            raise UserError(self.env._("Invalid tool name."))
        if not isinstance(arguments, dict):
            raise UserError(self.env._("arguments must be an object"))
        principal = principal if isinstance(principal, str) else ""
        problem = check_approver(principal)
        if problem:
            # it would be compared with approvers: a name that cannot be is refused here
            raise UserError(self.env._("Invalid principal: %s", problem))
        # shown to approvers (form, activity): no secret in clear, whatever the caller wrote
        reason = redact_text(reason) if isinstance(reason, str) else ""
        digest = arguments_hash(arguments)
        now = fields.Datetime.now()
        binding = self._connection_binding(tool, arguments)
        existing = self.sudo().search([
            ("tool", "=", tool),
            ("arguments_hash", "=", digest),
            ("requester_id", "=", self.env.uid),
            ("principal", "=", principal),
            ("state", "=", "pending"),
            ("expires_at", ">", now),
            *[(name, "=", value) for name, value in binding.items()],
        ], limit=1)
        if existing:
            return {"id": existing.id, "ref": existing.name, "state": existing.state}
        vals = {
            "tool": tool,
            "arguments": json.dumps(redact(arguments), sort_keys=True, indent=2, ensure_ascii=False),
            "arguments_hash": digest,
            "principal": principal,
            "reason": reason,
            "requester_id": self.env.uid,
            "company_id": self.env.company.id,
            "expires_at": now + timedelta(seconds=self._expires_in(tool)),
            **binding,
        }
        with internal_write():
            req = self.sudo().create(vals)
        if req.tool == "odoo_disconnect":
            req._set_connection_state("disconnect_pending")
        req._notify_approvers()
        return {"id": req.id, "ref": req.name, "state": req.state}

    @api.model
    def _connection_binding(self, tool, arguments):
        """The caller's connection a request for ``tool`` acts on: its id and, as the approver
        sees it, its alias, URL, database and login. Consumption acts on that record only
        (never on whichever connection bears the alias by then) and only while these are
        unchanged."""
        if tool not in CONNECTION_TOOLS:
            return {}
        alias = arguments.get("alias")
        if not isinstance(alias, str) or not alias:
            if tool == "odoo_disconnect":
                raise UserError(self.env._("odoo_disconnect needs the alias of a connection (a string)."))
            return {}  # an odoo_connect without an alias replaces nothing
        conn = self.env["mcp.connection"].sudo().with_context(active_test=False).search(
            [("alias", "=", alias), ("owner_id", "=", self.env.uid)], limit=1
        )
        if not conn:
            if tool == "odoo_disconnect":
                raise UserError(self.env._("There is no connection with alias %s to disconnect.", alias))
            return {"connection_alias": alias, "connection_id": False}  # a new alias replaces nothing
        return {"connection_id": conn.id, **{name: conn[key] for name, key in CONNECTION_SNAPSHOT.items()}}

    def _binding_broken(self):
        """Why the connection this request was filed for can no longer be acted on, or ''."""
        self.ensure_one()
        if self.tool == "odoo_connect" and not self.connection_url and self.connection_alias:
            # filed as a new connection: creating it must not meet one made since
            taken = self.env["mcp.connection"].sudo().with_context(active_test=False).search_count(
                [("alias", "=", self.connection_alias), ("owner_id", "=", self.requester_id.id)])
            return self.env._("connection %s was created since the request was filed",
                              self.connection_alias) if taken else ""
        if self.tool != "odoo_disconnect" and not self.connection_url:
            return ""  # not about a connection
        conn = self.sudo().connection_id
        if not conn:
            return self.env._("connection %s no longer exists", self.connection_alias)
        # lock the row: a rename committed meanwhile is seen, a concurrent one waits or fails
        self.env.cr.execute("SELECT id FROM mcp_connection WHERE id = %s FOR NO KEY UPDATE", (conn.id,))
        conn.invalidate_recordset()
        changed = [key for name, key in CONNECTION_SNAPSHOT.items() if conn[key] != self[name]]
        if conn.owner_id != self.requester_id:
            changed.append("owner")
        if changed:
            return self.env._(
                "connection %(alias)s changed since the request was filed (%(fields)s)",
                alias=self.connection_alias, fields=", ".join(changed),
            )
        return ""

    def _connect_values(self, arguments):
        """upsert values from an odoo_connect call's ``arguments``, or None unless they are
        exactly the approved call's (same arguments hash as filed)."""
        self.ensure_one()
        if not isinstance(arguments, dict) or arguments_hash(arguments) != self.arguments_hash:
            return None
        if set(arguments) - set(CONNECT_KEYS) - CONNECT_IGNORED:
            return None
        return {CONNECT_KEYS[key]: value for key, value in arguments.items() if key in CONNECT_KEYS}

    def _four_eyes_broken(self):
        """Why this approval no longer stands at consumption time, or '': the approver must
        differ from the requester and still be an active approver."""
        self.ensure_one()
        approver = self.sudo().approver_id
        if (
            not approver
            or approver == self.requester_id
            or not approver.active
            or not approver.has_group("mcp_guard.group_mcp_approver")
        ):
            return self.env._("Request %s has no valid approval by another approver.", self.name)
        return ""

    @api.model
    def _request_id(self, value):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UserError(self.env._("Invalid request id %s: expected a positive integer.", repr(value)[:60]))
        return value

    @api.model
    def get_states(self, ids):
        if not isinstance(ids, list):
            raise UserError(self.env._("ids must be a list of request ids, not %s.", repr(ids)[:60]))
        reqs = self.search([("id", "in", [self._request_id(i) for i in ids])])  # record rules apply
        return [
            {"id": r.id, "ref": r.name, "state": r.state, "decision_note": r.decision_note or ""}
            for r in reqs
        ]

    @api.model
    def consume(self, request_id, tool, arguments_hash, arguments=None):  # pylint: disable=redefined-outer-name
        """Consume an approval once. The approved -> done change is one atomic UPDATE.

        odoo_connect needs the call's ``arguments``: they must hash to the approved call, and the
        connection is (re)created from them here, in the transaction that ends the old one."""
        req = self.browse(self._request_id(request_id)).exists()
        if not req:
            return {"ok": False, "state": "", "message": self.env._("Request not found.")}
        try:
            req.check_access("read")
        except AccessError:
            # somebody else's request in another scope: answer like a missing one
            return {"ok": False, "state": "", "message": self.env._("Request not found.")}
        if req.requester_id.id != self.env.uid:
            return {"ok": False, "state": req.state, "message": self.env._("Only the requesting user may consume this approval.")}
        if req.state != "approved":
            return {"ok": False, "state": req.state, "message": self.env._("Request %(ref)s is %(state)s, not approved.", ref=req.name, state=req.state)}
        if req.tool != tool or req.arguments_hash != arguments_hash:
            return {"ok": False, "state": req.state, "message": self.env._("Request %s approves a different call (tool or arguments differ).", req.name)}
        new_values = None
        if tool == "odoo_connect":
            new_values = req._connect_values(arguments)
            if new_values is None:
                return {"ok": False, "state": req.state, "message": self.env._(
                    "Request %s approves other connection values: consume needs the call's exact arguments.",
                    req.name)}
        unfit = req._four_eyes_broken()
        if unfit:
            return {"ok": False, "state": req.state, "message": unfit}
        if req.expires_at and req.expires_at <= fields.Datetime.now():
            self.env.cr.execute(
                "UPDATE mcp_approval_request SET state='expired', write_uid=%s, write_date=now() at time zone 'UTC' "
                "WHERE id=%s AND state='approved' RETURNING id",
                (self.env.uid, req.id),
            )
            req.invalidate_recordset()
            req._close_activities()
            req._release_connection()
            return {"ok": False, "state": "expired", "message": self.env._("Approval %s has expired.", req.name)}
        # The single atomic state change: of two concurrent consumptions only one
        # gets a row back (the other waits, then fails its WHERE or serialisation).
        self.env.cr.execute(
            "UPDATE mcp_approval_request SET state='done', consumed_at=now() at time zone 'UTC', "
            "write_uid=%s, write_date=now() at time zone 'UTC' "
            "WHERE id=%s AND state='approved' AND tool=%s AND arguments_hash=%s RETURNING id",
            (self.env.uid, req.id, tool, arguments_hash),
        )
        if not self.env.cr.fetchone():
            req.invalidate_recordset()
            return {"ok": False, "state": req.state, "message": self.env._("Approval %s was already consumed.", req.name)}
        req.invalidate_recordset()
        broken = req._binding_broken()
        if broken:
            with internal_write():
                req.sudo().write({"state": "failed"})
            req._release_connection()
            message = self.env._("Request %(ref)s cannot be carried out: %(why)s. File a new request.",
                                 ref=req.name, why=broken)
            req.sudo().message_post(body=message)
            return {"ok": False, "state": "failed", "message": message}
        conn = req.sudo().connection_id
        if req.tool in CONNECTION_TOOLS and conn:
            # odoo_disconnect removes the connection it was filed for; an approved
            # odoo_connect of an existing alias removes the old one so it can be registered again
            with allow_connection_removal(conn.ids):
                conn.unlink()
        if new_values is not None:
            # the approved values, and only them: a failure rolls the whole consumption back
            self.env["mcp.connection"]._create_for_agent(new_values)
        req.sudo().message_post(body=self.env._("Approval consumed by %s.", self.env.user.name))
        return {"ok": True, "state": "done", "message": self.env._("Approval %s consumed.", req.name)}
