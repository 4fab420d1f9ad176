import json
import logging
import threading
from datetime import timedelta, timezone

from markupsafe import Markup

from odoo import SUPERUSER_ID, api, fields, http, models
from odoo.exceptions import AccessError, UserError
from odoo.modules import module as odoo_module

from .compat import GROUP_USERS
from .identity import check_approver, check_identity, principal_form, same_person, shown, text_problem
from .policy_core import SERVER_NAME_MAX, arguments_secrets, redact_arguments, redact_known_text, valid_server_name
from .mcp_guard_common import (
    DEFAULT_APPROVER_GROUP,
    REQUIRED,
    RISK_SELECTION,
    URL_CREDENTIALS_MESSAGE,
    TOOL_NAME_RE,
    alias_problem,
    allow_carry_out,
    allow_connection_removal,
    arguments_hash,
    carry_out_allowed_ids,
    check_arguments,
    check_record_ids,
    ensure_one,
    internal_write,
    is_internal_write,
    redact_text,
    url_has_credentials,
)
from .mcp_connection import SECRET_FIELDS, SECRET_GROUPS
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
    "connection_login", "connection_owner_id", "origin", "state", "approver_id",
    "new_url", "new_db", "new_login", "new_protocol", "new_password", "new_api_key",
    "decision_date", "decision_note", "expires_at", "consumed_at", "request_expires_at", "approval_valid_until",
    "requester_match_ids",
    "approver_group_id", "also_approver_group_ids", "quorum", "rule_binding", "also_bindings", "rule_terms",
    "server",
}
CONNECTION_TOOLS = ("odoo_disconnect", "odoo_connect")
# what a request for a connection is bound to besides its id, as the approver saw it
# an odoo_connect call's arguments (the front-end's ConnectArgs) -> upsert_from_agent's values
CONNECT_KEYS = {"alias": "alias", "url": "url", "db": "db", "username": "login", "password": "password",
                "api_key": "api_key", "protocol": "protocol"}
# the fields behind four eyes and the request's binding: written only by the add-on's methods,
# through write or the ORM's low-level _write/_write_multi alike
GUARDED_FIELDS = {"state", "approver_id", "requester_id", "tool", "arguments_hash", "approver_group_id",
                  "also_approver_group_ids", "quorum",
                  "rule_binding", "also_bindings", "requester_match_ids", "principal_user_ids",
                  "requester_name", "server"}
# the hash of the real arguments (secrets included) is an offline oracle for a weak password:
# only the groups that read secrets anyway (the Agent) and the Managers see it, never approvers
# only the agent compares it (consume); to anyone else it is an offline oracle of the one argument
# they are not shown, a password (outside round 21: a manager guessed a weak one)
HASH_GROUPS = "mcp_guard.group_mcp_agent"
CONNECTION_SNAPSHOT = {"connection_alias": "alias", "connection_url": "url", "connection_db": "db",
                       "connection_login": "login", "connection_owner_id": "owner_id"}
ORIGINS = [("agent", "Agent (MCP front-end)"), ("person", "Person in Odoo")]
# a tool the catalog does not know yet still says what it does to a connection
CONNECTION_TOOL_RISK = {"odoo_disconnect": "destructive", "odoo_connect": "destructive"}


def _shown_field(value):
    """A connection's text field as a request keeps it: redacted (policy_core, the one rule)."""
    return redact_text(value) if isinstance(value, str) else value


class McpApprovalRequest(models.Model):
    _name = "mcp.approval.request"
    _description = "MCP Approval Request"
    _inherit = ["mcp.guard.chatter", "mail.activity.mixin"]
    _order = "id desc"
    _check_company_auto = True
    # anybody who can read a request may comment on it; state changes go through methods
    _mail_post_access = "read"

    name = fields.Char("Reference", required=True, readonly=True, copy=False, default="/")
    tool = fields.Char(required=True, readonly=True, tracking=True)
    arguments = fields.Text("Arguments (redacted)", readonly=True)
    arguments_hash = fields.Char(readonly=True, index=True, groups=HASH_GROUPS)
    principal = fields.Char(readonly=True, help="Identity of the agent as seen by the MCP front-end.")
    # an agent's request is bound to it: only a call through the same server consumes it
    server = fields.Char(
        "MCP server", readonly=True, tracking=True, copy=False,
        help="The MCP server the agent's call came through (the front-end's server name: a proxy's "
             "--server-name or the name derived from its upstream, serve's own). Only a call through "
             "this server can use the approval.")
    reason = fields.Text(readonly=True)
    requester_id = fields.Many2one("res.users", "Requested by", required=True, readonly=True, index=True)
    # frozen when the request is filed: the approvers who then read as the requester (the
    # principal, or the requesting person); renaming oneself later does not let one decide
    requester_match_ids = fields.Many2many(
        "res.users", "mcp_approval_request_match_rel", "request_id", "user_id",
        string="Approvers who are the requester", readonly=True, copy=False,
    )
    # frozen when the request is filed: the persons (users) whose MCP principals a Manager set
    # to the request's principal; four-eyes compares user ids with them. Sticky: a user who
    # claims it later is added when the request is judged, nobody is ever taken off. A
    # principal nobody claims cannot be approved (fail closed).
    principal_user_ids = fields.Many2many(
        "res.users", "mcp_approval_request_principal_user_rel", "request_id", "user_id",
        string="Persons of the principal", readonly=True, copy=False,
    )
    # the requesting person's name when the request was filed (renaming oneself later in
    # Preferences does not change who asked)
    requester_name = fields.Char("Requester's name when filed", readonly=True, copy=False)
    cannot_approve_reason = fields.Char(compute="_compute_cannot_approve_reason")
    company_id = fields.Many2one("res.company", required=True, readonly=True, default=lambda self: self.env.company)
    connection_id = fields.Many2one("mcp.connection", readonly=True, ondelete="set null", check_company=True)
    connection_alias = fields.Char(readonly=True)
    # the connection as it was when the request was filed: a later change voids the request
    connection_url = fields.Char("Connection URL", readonly=True)
    connection_db = fields.Char("Connection database", readonly=True)
    connection_login = fields.Char("Connection login", readonly=True)
    connection_owner_id = fields.Many2one("res.users", "Connection owner", readonly=True)
    origin = fields.Selection(
        ORIGINS, default="agent", required=True, readonly=True,
        help="A person's request is carried out by Odoo when it is approved; an agent's when the agent calls again.",
    )
    # a person's "Request change": the values that replace the connection's once approved,
    # written as they were given (they are hashed with the approved call, _change_values), so
    # read by the add-on and the Agent only, as the new secrets: a login or database that
    # repeats the new password would show it. What people read is shown_new_*, the arguments'.
    new_url = fields.Char("New URL", readonly=True, groups=SECRET_GROUPS)
    new_db = fields.Char("New database", readonly=True, groups=SECRET_GROUPS)
    new_login = fields.Char("New login", readonly=True, groups=SECRET_GROUPS)
    shown_new_url = fields.Char("New URL", compute="_compute_shown_new")
    shown_new_db = fields.Char("New database", compute="_compute_shown_new")
    shown_new_login = fields.Char("New login", compute="_compute_shown_new")
    new_protocol = fields.Char("New protocol", readonly=True)
    new_password = fields.Char(groups=SECRET_GROUPS, readonly=True, copy=False, exportable=False)
    new_api_key = fields.Char(groups=SECRET_GROUPS, readonly=True, copy=False, exportable=False)
    changes_secrets = fields.Char("New secrets", readonly=True)
    summary = fields.Char("Request", compute="_compute_summary")
    risk_class = fields.Selection(RISK_SELECTION, compute="_compute_risk_class")
    state = fields.Selection(STATES, default="pending", required=True, readonly=True, tracking=True, index=True)
    approver_id = fields.Many2one("res.users", "Decided by", readonly=True, tracking=True)
    decision_date = fields.Datetime(readonly=True)
    decision_note = fields.Text(readonly=True, tracking=True)
    expires_at = fields.Datetime(readonly=True, tracking=True)
    # the request's own deadline while pending, then the approval's: both kept for the approver
    request_expires_at = fields.Datetime("Request expires", readonly=True)
    approval_valid_until = fields.Datetime("Approval valid until", readonly=True)
    consumed_at = fields.Datetime(readonly=True)
    # the rule it was filed under: who decides, how many different approvers, and the hash of
    # that rule (policy_core.approval_terms); a rule changed since voids the approval
    approver_group_id = fields.Many2one("res.groups", "Decided by group", readonly=True)
    # the other rules' groups a call also passes (a replacement: odoo_disconnect's), when they
    # differ: an approver must be in each of them too (policy_core.gating_terms)
    also_approver_group_ids = fields.Many2many(
        "res.groups", "mcp_approval_request_also_group_rel", "request_id", "group_id",
        string="Also decided by groups", readonly=True, copy=False,
    )
    quorum = fields.Integer("Approvals needed", default=1, readonly=True)
    rule_binding = fields.Char(readonly=True, copy=False)
    # the bindings of the other rules the call passes, in order (_approval_tools: a replacement
    # is also an odoo_disconnect), space separated; a change of any of them voids it too
    also_bindings = fields.Char(readonly=True, copy=False)
    rule_terms = fields.Char("Rule", readonly=True, help="The rule the request was filed under.")
    vote_ids = fields.One2many("mcp.approval.vote", "request_id", "Approvals", readonly=True)
    approval_count = fields.Integer("Approvals given", compute="_compute_approval_count")
    can_decide = fields.Boolean(compute="_compute_user_rights")
    # whether the current user may approve it now: a decider, and nothing that stops anybody
    # from approving it (cannot_approve_reason); rejecting needs only can_decide
    can_approve = fields.Boolean(compute="_compute_user_rights")
    can_cancel = fields.Boolean(compute="_compute_user_rights")

    @api.depends("arguments")
    def _compute_shown_new(self):
        """A replacement's new URL, database and login as its arguments show them
        (redact_arguments: a secret-looking text, or the request's own new password or API key
        repeated in them, hidden): what the approver reads beside the arguments is hidden alike."""
        for req in self:
            shown_args = {}
            if req.sudo().new_url and req.arguments:
                try:
                    shown_args = json.loads(req.arguments)
                except ValueError:
                    shown_args = {}
            if not isinstance(shown_args, dict):
                shown_args = {}
            for name in ("url", "db", "login"):
                value = shown_args.get(name)
                req[f"shown_new_{name}"] = value if isinstance(value, str) else False

    @api.depends("vote_ids")
    def _compute_approval_count(self):
        for req in self:
            req.approval_count = len(req.sudo().vote_ids)

    @api.depends_context("uid")
    @api.depends("state", "requester_id", "principal", "approver_group_id", "vote_ids")
    def _compute_user_rights(self):
        is_manager = self.env.user.has_group("mcp_guard.group_mcp_manager")
        names = self._decider_names()
        for req in self:
            mine = req.requester_id.id == self.env.uid
            req.can_decide = (
                req.state == "pending" and not req._not_a_decider(names)
                and self.env.user not in req.sudo().vote_ids.user_id
            )
            req.can_cancel = req.state in ("pending", "approved") and (mine or is_manager)
            req.can_approve = req.can_decide and not req.cannot_approve_reason

    @api.depends_context("uid")
    @api.depends("state", "origin", "principal", "requester_id", "principal_user_ids", "tool", "server")
    def _compute_cannot_approve_reason(self):
        """Why nobody can approve this request as it stands, shown on its form and checked by
        action_approve (_cannot_approve: the one check)."""
        for req in self:
            req.cannot_approve_reason = (req._cannot_approve() if req.state == "pending" and req.id else "") or False

    def _cannot_approve(self):
        """Why nobody can approve this request now, or '': an agent's request whose principal no
        user claims (res.users.mcp_principals), or a rule in force that no longer asks for an
        approval of its call (_rule_unfit)."""
        self.ensure_one()
        return self._unbound_problem() or self._unclaimed_problem() or self._rule_unfit()

    def _unbound_problem(self):
        """Why an agent's request can never be used because it names no MCP server, or '': filed
        before requests were bound to the server their call came through (18.0/19.0.1.2.0), it
        binds to nothing, so no call consumes it; the agent's next call files a request of its own."""
        self.ensure_one()
        if self.origin != "agent" or self.server:
            return ""
        return self.env._(
            "Request %s was filed before requests were bound to the MCP server their call came "
            "through: no call can use it, so it cannot be approved. The agent's next call files a "
            "new request.", self.name)

    def _rule_unfit(self):
        """Why the policy in force lets nobody approve or use this request, or '': a rule its
        call passes (the call's own, or a replacement's odoo_disconnect) hides or denies its
        tool, or none asks for an approval (policy_core.gating_terms, as the front-end's gate)."""
        self.ensure_one()
        tools = self._approval_tools(self.tool, self.connection_url)
        refusal = self.env["mcp.tool.rule"]._approval_terms(tools).refusal
        if not refusal:
            return ""
        return self.env._(
            "Request %(ref)s cannot be approved or used: %(why)s. An approval holds only while the "
            "rule in force asks for one.", ref=self.name, why=refusal)

    def _approver_groups(self):
        """The groups an approver of this request must be in: its rule's, and those of the
        other rules its call passes."""
        self.ensure_one()
        return self.sudo().approver_group_id | self.sudo().also_approver_group_ids

    def _lifetime(self):
        """How long an approval of this request holds, in seconds: the shortest of the rules its
        call passes (a replacement: odoo_connect's and odoo_disconnect's)."""
        self.ensure_one()
        tools = self._approval_tools(self.tool, self.connection_url)
        return self.env["mcp.tool.rule"]._approval_terms(tools).expires_in

    @api.model
    def _claimants(self, principal):
        """The users (active or not) whose MCP principals, as a Manager set them, name
        ``principal`` exactly (transport prefixes aside: identity.principal_form)."""
        form = principal_form(principal or "")
        if not form:
            return self.env["res.users"].browse()
        users = self.env["res.users"].sudo().with_context(active_test=False).search(
            [("mcp_principals", "ilike", form)])
        return users.filtered(lambda u: form in {
            principal_form(p) for p in (u.mcp_principals or "").replace("\n", ",").split(",")})

    @api.model
    def _accounts_of(self, user):
        """``user`` and the accounts a Manager bound to the same person: those that claim one of
        the MCP principals ``user`` claims (res.users.mcp_principals). Two accounts of one
        human that share no principal are two persons to the guard (the spelling fence
        aside): the administrator's to prevent, or to bind this way."""
        user = user.sudo()
        accounts = user
        for principal in (user.mcp_principals or "").replace("\n", ",").split(","):
            if principal_form(principal):
                accounts |= self._claimants(principal)
        return accounts

    def _is_agent_request(self):
        """An agent's request: filed through file_request by the Agent user, for a principal."""
        self.ensure_one()
        return self.origin == "agent" and self.sudo().requester_id.has_group("mcp_guard.group_mcp_agent")

    def _principal_users(self):
        """The persons of this request's principal: those frozen when it was filed and those
        who claim it now (sticky: nobody is taken off by editing a user later)."""
        self.ensure_one()
        return self.sudo().principal_user_ids | self._claimants(self.principal)

    def _unclaimed_problem(self):
        """Why an agent's request cannot be approved because no person claims its principal,
        or ''."""
        self.ensure_one()
        if not self._is_agent_request() or self._principal_users():
            return ""
        return self.env._(
            "Nobody can approve %(ref)s: no user claims the MCP principal %(who)r. A Manager "
            "sets it on that person's user (Settings > Users > MCP principals).",
            ref=self.name, who=self.principal or "")

    @api.depends("tool", "principal", "requester_id", "origin", "connection_alias", "connection_url",
                 "connection_db", "connection_owner_id")
    def _compute_summary(self):
        for req in self:
            who = (req.principal if req.origin == "agent" and req.principal else req.requester_id.name) or ""
            if req.tool in CONNECTION_TOOLS and req.connection_url:
                verb = self.env._("remove") if req.tool == "odoo_disconnect" else self.env._("replace")
                # shown(): a name is its user's to choose; a bidi override or a newline in it
                # must not rewrite what an approver reads
                req.summary = shown(self.env._(
                    "%(who)s asks to %(verb)s connection %(alias)s (%(url)s, db %(db)s), owned by %(owner)s",
                    who=who, verb=verb, alias=req.connection_alias, url=redact_text(req.connection_url),
                    db=req.connection_db, owner=req.connection_owner_id.name or "?",
                ))
            else:
                req.summary = shown(self.env._("%(who)s asks to call %(tool)s", who=who, tool=req.tool or ""))

    @api.depends("tool")
    def _compute_risk_class(self):
        ranks = {key: rank for rank, (key, _label) in enumerate(RISK_SELECTION)}
        tools = self.env["mcp.tool"].sudo().search([("name", "in", list(set(self.mapped("tool"))))])
        for req in self:
            classes = [t.risk_class for t in tools if t.name == req.tool and t.risk_class]
            req.risk_class = max(classes, key=ranks.get) if classes else CONNECTION_TOOL_RISK.get(req.tool, False)

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
    def _set_connection_state(self, state):
        """A pending disconnect or back to connected; ending is _end's alone (inside consume)."""
        if state not in ("connected", "disconnect_pending"):
            raise UserError(self.env._("A connection can only be ended by consuming an approved disconnect request."))
        conns = self.sudo().connection_id.filtered(lambda c: c.active and c.state not in (state, "disconnected"))
        if conns:
            with internal_write():
                conns.write({"state": state})

    def _release_connection(self):
        """Put a connection back to connected when its disconnect request ends without effect."""
        self._wipe_secrets()
        for req in self.filtered(lambda r: r.tool == "odoo_disconnect" and r.connection_id):
            others = self.sudo().search_count([
                ("id", "!=", req.id),
                ("connection_id", "=", req.connection_id.id),
                ("tool", "=", "odoo_disconnect"),
                ("state", "in", ("pending", "approved")),
            ])
            if not others:
                req._set_connection_state("connected")

    def _freeze_requester_matches(self):
        """Record which approvers read as the requester now (see _principal_problem)."""
        approvers = self.env.ref("mcp_guard.group_mcp_approver").sudo()[GROUP_USERS]
        for req in self.sudo():
            matches = approvers.browse()
            for user in approvers:
                try:
                    names = self._person_names(user)
                except AccessError:
                    # a name that cannot be compared now could be renamed later: fail closed,
                    # this account reads as the requester for this request
                    matches |= user
                    continue
                if user == req.requester_id or req._principal_problem(names):
                    matches |= user
            vals = {"requester_name": req.requester_id.name}
            if matches:
                vals["requester_match_ids"] = [(6, 0, matches.ids)]
            claimants = req._claimants(req.principal) if req.principal else req.browse()
            if claimants:
                vals["principal_user_ids"] = [(6, 0, claimants.ids)]
            with internal_write():
                req.write(vals)

    def _in_approver_group(self, user):
        """Whether ``user`` belongs to the group that decides this request (besides being an
        MCP Guard Approver, which deciding always needs)."""
        self.ensure_one()
        return all(user in group[GROUP_USERS] for group in self._approver_groups())

    def _approvers(self):
        """Who is asked to decide: active internal users of the request's company who are MCP
        Guard Approvers and members of the rule's approver group, never the requester, nor
        anyone who has already approved."""
        self.ensure_one()
        users = self.env.ref("mcp_guard.group_mcp_approver").sudo()[GROUP_USERS]
        for group in self._approver_groups():
            users &= group[GROUP_USERS]
        voted = self.sudo().vote_ids.user_id
        return users.filtered(
            lambda u: u.active and not u.share and self.company_id in u.company_ids and u != self.requester_id
            and u not in voted
        )

    def _notifier(self):
        """These requests as the sender of messages and activities: the acting person, or
        OdooBot when the acting user is the technical Agent user (or has no address), whose
        mail would go out without a sender and come back as an "Email Failure"."""
        user = self.env.user
        if user.has_group("mcp_guard.group_mcp_agent") or not user.email:
            return self.with_user(SUPERUSER_ID)
        return self.sudo()

    def _notify_approvers(self):
        for req in self._notifier():
            for user in req._approvers():
                req.activity_schedule(
                    act_type_xmlid="mcp_guard.mail_act_mcp_approval",
                    summary=self.env._("Approve %(ref)s: %(summary)s", ref=req.name, summary=req.summary),
                    note=Markup("<p>%s</p><p>%s</p>") % (req.summary, req.reason or ""),
                    user_id=user.id,
                    date_deadline=fields.Date.context_today(req),
                )

    def _people_to_tell(self):
        """The requester and the connection's owner, when they are people: the technical Agent
        user has no mailbox (a message to it only makes "Email Failure" entries), nor has the
        person acting right now any need to be told what they just did."""
        self.ensure_one()
        people = (self.requester_id | self.connection_owner_id).sudo()
        return people.filtered(lambda u: not u.has_group("mcp_guard.group_mcp_agent") and u != self.env.user)

    def _notify_requester(self, body):
        for req in self._notifier():
            req._post_own(
                body=body,
                partner_ids=req._people_to_tell().partner_id.ids,
                subtype_xmlid="mail.mt_comment",
                message_type="notification",
            )

    def _notify_owner(self):
        """Tell a connection's owner that somebody asked to end or replace it."""
        for req in self._notifier().filtered(
                lambda r: r.connection_owner_id and r.connection_owner_id != r.requester_id):
            owner = req._people_to_tell() & req.connection_owner_id
            if owner:
                req._post_own(
                    body=self.env._("%(summary)s (%(ref)s).", summary=req.summary, ref=req.name),
                    partner_ids=owner.partner_id.ids,
                    subtype_xmlid="mail.mt_comment",
                    message_type="notification",
                )

    def _creation_subtype(self):
        return self.env.ref("mcp_guard.mt_mcp_request_filed")

    def unlink(self):  # pylint: disable=method-required-super
        # refused in unlink itself, not @api.ondelete: _force_unlink skips those (invariant 14);
        # the table goes only with the module, dropped whole
        raise AccessError(self.env._("A request is kept with its trail: cancel it instead."))  # pylint: disable=no-raise-unlink

    def _track_subtype(self, init_values):
        self.ensure_one()
        if "state" in init_values:
            subtype = {"approved": "mt_mcp_request_approved", "rejected": "mt_mcp_request_rejected"}.get(self.state)
            if subtype:
                return self.env.ref(f"mcp_guard.{subtype}")
        return super()._track_subtype(init_values)

    def _wipe_secrets(self):
        """A request keeps new secrets only until it is carried out or closed."""
        stored = self.sudo().filtered(lambda r: r.new_password or r.new_api_key)
        if stored:
            with internal_write():
                stored.write({"new_password": False, "new_api_key": False})

    def _close_activities(self, user=None):
        # the decision itself is tracked on the state; the to-dos simply go away (one
        # approver's own when they approved and others are still needed)
        self.sudo().activity_unlink(["mcp_guard.mail_act_mcp_approval"], user_id=user.id if user else None)

    @api.model
    def _authenticated_uid(self):
        """The user the current RPC or HTTP request authenticated, or None outside of one.

        Checked in the Odoo 18 and 19 source: ``odoo.service.model.dispatch`` (XML-RPC,
        JSON-RPC ``execute_kw``) sets ``threading.current_thread().uid`` to the uid whose
        password or API key it checked; ``Request.update_env`` does the same for the web
        client's and JSON-2's routes once the session or bearer is authenticated; each HTTP
        request starts with it deleted. ``with_user()`` in a server action changes env.uid but
        not this."""
        uid = getattr(threading.current_thread(), "uid", None)
        if uid is None and http.request and getattr(http.request, "session", None):
            uid = http.request.session.uid
        return uid

    def _check_real_caller(self):
        """The decider is the person who is calling: env.uid must be the authenticated caller's
        (a server action's ``with_user(<approver>)`` is not that approver)."""
        caller = self._authenticated_uid()
        if caller is None:
            if odoo_module.current_test:
                return  # the add-on's own tests decide as with_user(); no server runs them
            raise AccessError(self.env._("Requests are approved or rejected by a signed-in person only."))
        if caller != self.env.uid:
            raise AccessError(self.env._(
                "Requests are approved or rejected by the signed-in person only, not on behalf of another user."))

    @api.model
    def _decider_names(self):
        """The current user's names (_person_names), or None when they cannot be compared; read
        once, then given to _not_a_decider for each request."""
        try:
            return self._person_names(self.env.user)
        except AccessError:
            return None  # a user whose name cannot be compared decides nothing

    def _not_a_decider(self, names):
        """Why the current user is not one of those who decide this request, whatever its state,
        or '': four eyes (an approver, never the requester nor anyone who reads as them,
        administrators included) and the rule's approver group. ``names``: _decider_names().
        Deciding (the buttons, the methods) and what only deciders see (a data tool's records
        and values) are both judged by it."""
        self.ensure_one()
        user = self.env.user
        if not user.has_group("mcp_guard.group_mcp_approver"):
            return self.env._("Only MCP Guard approvers can approve or reject requests.")
        # env.uid, not a context key: sudo() and contexts cannot change it
        if self.requester_id.id == self.env.uid:
            return self.env._("You cannot approve or reject your own request %s.", self.name)
        if names is None:
            return self.env._("Your user name cannot be compared with a requester: "
                              "you cannot approve or reject requests.")
        problem = self._principal_problem(names, user)
        if problem:
            return problem
        if not self._in_approver_group(user):
            return self.env._(
                "Request %(ref)s is decided by the group %(group)s, which you are not in.",
                ref=self.name, group=", ".join(self._approver_groups().mapped("display_name")))
        return ""

    def _check_can_decide(self):
        """Four eyes: an approver, and never the requester (administrators included)."""
        self._check_real_caller()
        if not self.env.user.has_group("mcp_guard.group_mcp_approver"):
            raise AccessError(self.env._("Only MCP Guard approvers can approve or reject requests."))
        names = self._person_names(self.env.user)  # raises, saying which name cannot be compared
        for req in self:
            problem = req._not_a_decider(names)
            if problem:
                raise AccessError(problem)
            if req.state != "pending":
                raise UserError(self.env._("Request %(ref)s is %(state)s, not pending.", ref=req.name, state=req.state))
            if req.expires_at and req.expires_at <= fields.Datetime.now():
                # past its deadline before anybody decided: expired, whether or not the cron ran yet
                raise UserError(self.env._(
                    "Request %s expired before anybody decided it: it cannot be approved or rejected.", req.name))

    @api.model
    def _person_names(self, user, principals=True):
        """The names a user goes by (login, name, full email and its local part, and the MCP
        principals a Manager recorded for them), each one a principal could be spelled as. A
        name that cannot be compared fails closed."""
        user = user.sudo()  # the principals mapping is a Manager's field
        email = (user.email or "").strip()
        mapped = [p.strip() for p in (user.mcp_principals or "").replace("\n", ",").split(",")] if principals else []
        names = [name for name in (user.login, user.name, email, email.split("@")[0], *mapped)
                 if name and name.strip()]
        for name in names:
            problem = check_identity(name)
            if problem:
                raise AccessError(self.env._(
                    "Your user name %(name)r cannot be compared with a requester (%(why)s): "
                    "you cannot approve or reject requests.", name=name, why=problem))
        return names

    def _principal_problem(self, names, user=None):
        """Why the person going by ``names`` may not decide this request, or None. The person
        behind the agent is the MCP principal, not the technical Odoo user that filed for it:
        compared as the front-end compares (identity.py: TR39 skeleton, prefixes, case). A
        person's request compares the names of both people the same way (a twin account whose
        login reads as the requester's is the requester). Those who read as the requester when
        it was filed stay so (requester_match_ids): renaming oneself later does not help."""
        self.ensure_one()
        if user is not None and user in self.sudo().requester_match_ids:
            return self.env._(
                "Request %(ref)s was filed by someone who reads as you (%(who)s): "
                "you cannot approve or reject it.", ref=self.name,
                who=self.principal or self.sudo().requester_id.name)
        if self._is_agent_request():
            # the person behind the agent: the users who claim its principal, by id
            unclaimed = self._unclaimed_problem()
            if unclaimed and user is not None:
                return unclaimed  # (when freezing who reads as the requester: spelling only)
            persons = self._principal_users()
            if user is not None and user in persons:
                return self.env._(
                    "Request %(ref)s was made under the MCP principal %(who)s, which is yours: "
                    "you cannot approve or reject your own request.", ref=self.name, who=self.principal)
            # the spelling fence: an account that reads as one of them is them (their own
            # names; the principal itself is compared below)
            for person in persons:
                try:
                    theirs = self._person_names(person, principals=False)
                except AccessError:
                    theirs = []
                if not theirs or any(same_person(mine, other) for mine in names for other in theirs):
                    return self.env._(
                        "Request %(ref)s was made under the MCP principal %(who)s of %(person)s, "
                        "who reads as you: you cannot approve or reject it.",
                        ref=self.name, who=self.principal, person=person.name)
        else:
            if user is not None and user in self._accounts_of(self.sudo().requester_id):
                return self.env._(
                    "Request %(ref)s was made by %(who)s, whose account is bound to yours (a shared "
                    "MCP principal): you cannot approve or reject it.",
                    ref=self.name, who=self.sudo().requester_id.name)
            # a person (not the Agent user) is the requester, whatever principal they wrote:
            # their names now, their login (which Preferences cannot change) and their name
            # when they filed (renaming oneself before or after does not help)
            try:
                theirs = self._person_names(self.sudo().requester_id)
            except AccessError:
                theirs = []
            if theirs and self.requester_name and not check_identity(self.requester_name):
                theirs.append(self.requester_name)
            if not theirs or any(same_person(mine, other) for mine in names for other in theirs):
                return self.env._(
                    "Request %(ref)s was made by %(who)s, who reads as you: "
                    "you cannot approve or reject it.", ref=self.name, who=self.sudo().requester_id.name)
            if self.origin == "person":
                return None
            # a person's own file_request: the principal they wrote is compared too
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
        check_record_ids(self)
        self.check_access("read")
        self._check_can_decide()
        names = self._person_names(self.env.user)
        now = fields.Datetime.now()
        for req in self:
            problem = req._cannot_approve()
            if problem:
                raise UserError(problem)
            # one approval per approver; the request is approved at its quorum of different ones.
            # The request's own row is updated before the votes are counted (a lock alone leaves
            # this transaction's snapshot as it was): of two approvals at once, the second fails
            # with a serialization error, which Odoo retries, and its retry counts the first vote
            # (outside round 27a: both counted only their own, and the request stayed pending)
            self.env.cr.execute("UPDATE mcp_approval_request SET write_date = write_date WHERE id = %s", (req.id,))
            if self.env.user in req.sudo().vote_ids.user_id:
                raise UserError(self.env._("You have already approved %s: it needs other approvers.", req.name))
            if req._votes_as_same_person(names):
                raise UserError(self.env._(
                    "An account that reads as you has already approved %s: it needs other approvers.", req.name))
            with internal_write():
                self.env["mcp.approval.vote"].sudo().create({"request_id": req.id, "user_id": self.env.uid})
            req.invalidate_recordset(["vote_ids", "approval_count"])
            # votes of people still able to give them (a voter who left the group counts no more)
            given = len(req._valid_voters())
            if given < (req.quorum or 1):
                req._close_activities(self.env.user)
                req.sudo()._post_own(body=self.env._(
                    "Approval %(given)s of %(quorum)s given by %(user)s; other approvers are still needed.",
                    given=given, quorum=req.quorum, user=self.env.user.name))
                continue
            with internal_write():
                req.sudo().write({
                    "state": "approved",
                    "approver_id": self.env.uid,
                    "decision_date": now,
                    "request_expires_at": req.expires_at,
                    "expires_at": now + timedelta(seconds=req._lifetime()),
                    "approval_valid_until": now + timedelta(seconds=req._lifetime()),
                })
            req._close_activities()
            req._notify_requester(
                self.env._("Request %(ref)s was approved by %(user)s.", ref=req.name, user=self.env.user.name)
            )
            if req.origin == "person":
                # nobody will call again: Odoo carries it out now, in this transaction, after
                # the checks the agent's consume makes (the same method)
                problem = req._approval_problem()
                if problem:
                    with internal_write():
                        req.sudo().write({"state": "expired"})
                    req._release_connection()
                    req._wipe_secrets()
                    req.sudo()._post_own(body=problem)
                    continue
                with allow_carry_out(req.ids):
                    req._carry_out(req.tool, req.sudo().arguments_hash)
        return True

    def action_reject(self, note=None):
        if note not in (None, False) and (problem := text_problem(note, "note", lines=True)):
            raise UserError(problem)
        check_record_ids(self)
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
                # the note as stored: redacted before anybody reads it in the chatter
                body = Markup("%s<br/>%s") % (body, redact_text(note))
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
        ensure_one(self)
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
    def file_request(self, tool=REQUIRED, arguments=REQUIRED, principal=REQUIRED, reason=REQUIRED, server=None):
        """File a request for one exact call through the MCP server ``server`` (the front-end's
        server name), or return the pending one of an identical call through that same server:
        a call through another server is never answered with it, it files its own.

        The agent's call (the MCP front-end's technical user) and nobody else's, administrators
        included: a person files from the connection's form (Request disconnect, Request change)."""
        check_arguments(self, "file_request", tool=tool, arguments=arguments, principal=principal, reason=reason)
        if not self.env.user.has_group("mcp_guard.group_mcp_agent"):
            raise AccessError(self.env._(
                "file_request is for the MCP Agent user only: people request a disconnect or a change "
                "from the connection's form."))
        if not isinstance(tool, str) or not TOOL_NAME_RE.fullmatch(tool):
            raise UserError(self.env._("Invalid tool name."))
        if not isinstance(arguments, dict):
            raise UserError(self.env._("arguments must be an object"))
        if not valid_server_name(server):
            raise UserError(self.env._(
                "server must name the MCP server the call came through (1 to %s printable characters); "
                "a front-end older than this add-on names none: upgrade it.", SERVER_NAME_MAX))
        principal = principal if isinstance(principal, str) else ""
        problem = check_approver(principal)
        if problem:
            # it would be compared with approvers: a name that cannot be is refused here
            raise UserError(self.env._("Invalid principal: %s", problem))
        reason = reason if isinstance(reason, str) else ""
        call = self._connection_call(arguments) if tool == "odoo_connect" else {}
        url = call.get("url") if isinstance(call, dict) else None
        if isinstance(url, str) and url_has_credentials(url):
            raise UserError(URL_CREDENTIALS_MESSAGE)  # as the connection itself refuses it
        for name in ("url", "db", "username"):  # as the connection itself refuses them
            value = call.get(name) if isinstance(call, dict) else None
            if isinstance(value, str) and (problem := text_problem(value, name)):
                raise UserError(problem)
        # bound to the server as to the connection: found again (and consumed) through it only
        binding = {**self._connection_binding(tool, arguments), "server": server}
        req = self._file(tool, arguments, principal, reason, binding, "agent")
        return {"id": req.id, "ref": req.name, "state": req.state}

    @api.model
    def _file_from_odoo(self, connection, tool, arguments, reason=""):
        """A person's request, filed from a connection's form for that very record."""
        binding = {"connection_id": connection.id,
                   **self._snapshot(connection.sudo())}
        return self._file(tool, arguments, "", reason or self.env._("Requested in Odoo"), binding, "person")

    @api.model
    def _file_change(self, connection, new, secrets, reason):
        """A person's replacement of a connection an agent uses: an odoo_connect of its alias
        with the new values, carried out by Odoo once another person approves it."""
        connection._check_values({**new, **secrets})  # against its stored secrets too
        arguments = {"alias": connection.alias, **new, **secrets}
        binding = {
            "connection_id": connection.id,
            **self._snapshot(connection.sudo()),
            **{f"new_{name}": value for name, value in new.items()},
            **{f"new_{name}": value for name, value in secrets.items()},
            "changes_secrets": ", ".join(sorted(secrets)),
        }
        return self._file("odoo_connect", arguments, "", reason or self.env._("Requested in Odoo"), binding, "person")

    @api.model
    def _snapshot(self, conn):
        """The connection as the request shows it to approvers: its text fields redacted (a db or
        login may hold a DSN or a password), the owner as an id."""
        return {name: conn[key].id if key == "owner_id" else _shown_field(conn[key])
                for name, key in CONNECTION_SNAPSHOT.items()}

    @api.model
    def _file(self, tool, arguments, principal, reason, binding, origin):
        # shown to approvers as written: lines may stay, a bidi override may not
        if isinstance(reason, str) and (problem := text_problem(reason, "reason", lines=True)):
            raise UserError(problem)
        tools = self._approval_tools(tool, binding.get("connection_url"))
        terms = self.env["mcp.tool.rule"]._approval_terms(tools)
        if terms.refusal:
            raise UserError(self.env._("No request was filed for %(tool)s: %(why)s.", tool=tool, why=terms.refusal))
        groups = self.env["res.groups"]
        for xmlid in terms.approver_groups:
            group = self.env.ref(xmlid, raise_if_not_found=False)
            groups |= group if group is not None and group._name == "res.groups" else self.env.ref(
                "mcp_guard.group_mcp_approver")  # a policy checked on import
        group, also_groups = groups[:1], groups[1:]
        if also_groups:
            deciders = self.env.ref("mcp_guard.group_mcp_approver").sudo()[GROUP_USERS]
            for each in groups.sudo():
                deciders &= each[GROUP_USERS]
            if not deciders:
                raise UserError(self.env._(
                    "No request was filed for %(tool)s: it needs an approver in each of the groups "
                    "%(groups)s (the rules it passes), and no MCP Guard approver is in all of them.",
                    tool=tool, groups=", ".join(groups.sudo().mapped("display_name"))))
        digest = arguments_hash(arguments)
        now = fields.Datetime.now()
        existing = self.sudo().search([
            ("tool", "=", tool),
            ("arguments_hash", "=", digest),
            ("requester_id", "=", self.env.uid),
            ("principal", "=", principal),
            ("state", "=", "pending"),
            ("expires_at", ">", now),
            *[(name, "=", value) for name, value in binding.items()],
        ], limit=1)
        if existing and existing._rule_changed():
            # filed under a rule changed since: withdrawn, and filed anew under the rule in force
            with internal_write():
                existing.sudo().write({"state": "expired"})
            existing._close_activities()
            existing.sudo()._post_own(body=existing._rule_changed())
            existing = self.browse()
        if existing:
            return existing
        names = ", ".join(groups.sudo().mapped("display_name"))
        vals = {
            "origin": origin,
            "tool": tool,
            "approver_group_id": group.id,
            "also_approver_group_ids": [(6, 0, also_groups.ids)],
            "quorum": terms.quorum,
            "rule_binding": self.env["mcp.tool.rule"]._rule_bindings(tools)[0],
            "also_bindings": " ".join(self.env["mcp.tool.rule"]._rule_bindings(tools)[1:]),
            "rule_terms": (
                self.env._("%(group)s, 1 approval", group=names) if terms.quorum == 1
                else self.env._("%(group)s, %(quorum)s approvals", group=names, quorum=terms.quorum)
            ),
            "arguments": json.dumps(redact_arguments(arguments), sort_keys=True, indent=2, ensure_ascii=False),
            "arguments_hash": digest,
            "principal": principal,
            # shown to approvers (form, activity): no secret in clear, whatever the caller wrote
            "reason": redact_known_text(reason, arguments_secrets(arguments)),
            "requester_id": self.env.uid,
            # a request about a connection belongs to the connection's company (its approvers
            # decide; an agent of several companies files for any of its connections)
            "company_id": self.env["mcp.connection"].sudo().browse(binding.get("connection_id")).company_id.id
            or self.env.company.id,
            "expires_at": now + timedelta(seconds=terms.expires_in),
            **binding,
        }
        with internal_write():
            # not the creator as a follower: the technical Agent user has no mailbox
            req = self.sudo().with_context(mail_create_nosubscribe=True).create(vals)
        req.message_subscribe(partner_ids=req._people_to_tell().partner_id.ids + (
            [] if req.origin == "agent" else self.env.user.partner_id.ids))
        req._freeze_requester_matches()
        if req.tool == "odoo_disconnect":
            req._set_connection_state("disconnect_pending")
        req._notify_approvers()
        req._notify_owner()
        return req

    @api.model
    def _connection_binding(self, tool, arguments):
        """The caller's connection a request for ``tool`` acts on: its id and, as the approver
        sees it, its alias, URL, database and login. Consumption acts on that record only
        (never on whichever connection bears the alias by then) and only while these are
        unchanged."""
        call = self._connection_call(arguments)
        # any other tool naming a connection (a data tool's alias) acts through that connection
        through = tool not in CONNECTION_TOOLS and isinstance(call, dict) and "alias" in call
        if tool not in CONNECTION_TOOLS and not through:
            return {}
        alias = call.get("alias")
        if not isinstance(alias, str) or not alias:
            if tool == "odoo_disconnect":
                raise UserError(self.env._("odoo_disconnect needs the alias of a connection (a string)."))
            if through:
                raise UserError(self.env._("%s names its connection by alias: a non-empty string.", tool))
            return {}  # an odoo_connect without an alias replaces nothing
        # the connections' alias rule and message (as upsert_from_agent refuses it): an alias
        # with a NUL, a space or a zero-width space names no connection, and is no search term
        if problem := alias_problem(alias):
            raise UserError(problem)
        # among the connections in use by the caller: its own and those shared with it
        Connection = self.env["mcp.connection"]
        conn = Connection.sudo().search([("alias", "=", alias), *Connection._usable_domain()], limit=1)
        if not conn:
            if tool == "odoo_disconnect":
                raise UserError(self.env._("There is no connection with alias %s to disconnect.", alias))
            if through:
                # a call that could never run files nothing: an approval of it would be used
                # against whatever connection takes the alias later (invariant 14)
                raise UserError(self.env._(
                    "There is no connection with alias %(alias)s: %(tool)s could never run; no request "
                    "was filed.", alias=alias, tool=tool))
            return {"connection_alias": alias, "connection_id": False}  # a new alias replaces nothing
        return {"connection_id": conn.id, **self._snapshot(conn)}

    def _binding_broken(self):
        """Why the connection this request was filed for can no longer be acted on, or ''."""
        self.ensure_one()
        if self.tool == "odoo_connect" and not self.connection_url and self.connection_alias:
            # filed as a new connection: creating it must not meet one made since
            # among those in use by the requester (an ended connection frees its alias)
            Connection = self.env["mcp.connection"]
            taken = Connection.sudo().search_count(
                [("alias", "=", self.connection_alias), *Connection._usable_domain(self.requester_id)])
            return self.env._("connection %s was created since the request was filed",
                              self.connection_alias) if taken else ""
        if self.tool != "odoo_disconnect" and not self.connection_url and not self.connection_alias:
            return ""  # not about a connection
        conn = self.sudo().connection_id
        if not conn:
            return self.env._("connection %s no longer exists", self.connection_alias)
        # lock the row: a rename committed meanwhile is seen, a concurrent one waits or fails
        self.env.cr.execute("SELECT id FROM mcp_connection WHERE id = %s FOR NO KEY UPDATE", (conn.id,))
        conn.invalidate_recordset()
        # requests filed before the owner was recorded were bound to their requester's own connection
        expected_owner = self.connection_owner_id or self.requester_id
        changed = [key.removesuffix("_id") for name, key in CONNECTION_SNAPSHOT.items()
                   if name != "connection_owner_id" and _shown_field(conn[key]) != self[name]]
        if conn.owner_id != expected_owner:
            changed.append("owner")
        if not conn.active or conn.state == "disconnected":
            changed.append("disconnected")
        elif self.origin == "agent" and self.requester_id not in conn.owner_id | conn.agent_user_ids:
            changed.append("no longer shared with the requester")
        if changed:
            return self.env._(
                "connection %(alias)s changed since the request was filed (%(fields)s)",
                alias=self.connection_alias, fields=", ".join(changed),
            )
        return ""

    @api.model
    def _connection_call(self, arguments):
        """The connection tool's own arguments in what was filed: the call's, or for a
        continuation (the client's answers to an upstream's input request, which the front-end's
        gate binds as ``{"arguments": ..., "continuation": ...}``) those of the call it continues."""
        if (isinstance(arguments, dict) and set(arguments) == {"arguments", "continuation"}
                and isinstance(arguments["arguments"], dict)):
            return arguments["arguments"]
        return arguments

    def _connect_values(self, arguments):
        """upsert values from an odoo_connect call's ``arguments``, or None unless they are
        exactly the approved call's (same arguments hash as filed). Keys a connection has no
        field for (an upstream's own options behind the proxy, a continuation's answers) were
        approved with the call, by its hash, and are not kept."""
        self.ensure_one()
        if not isinstance(arguments, dict) or arguments_hash(arguments) != self.sudo().arguments_hash:
            return None
        call = self._connection_call(arguments)
        return {CONNECT_KEYS[key]: value for key, value in call.items() if key in CONNECT_KEYS}

    def _change_values(self):
        """A person's approved change as connection values, or None unless they hash, with the
        alias, to the approved call (what the approver saw is what is written)."""
        self.ensure_one()
        stored = self.sudo()
        new = {name: stored[f"new_{name}"] for name in ("url", "db", "login", "protocol")}
        secrets = {name: stored[f"new_{name}"] for name in SECRET_FIELDS if stored[f"new_{name}"]}
        if arguments_hash({"alias": self.connection_alias, **new, **secrets}) != stored.arguments_hash:
            return None
        return {**new, **secrets}

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
        if self._is_agent_request() and (not self._principal_users() or approver in self._principal_users()):
            # nobody claims its principal (fail closed), or the approver is its person
            return self._unclaimed_problem() or self.env._(
                "Request %s was approved by the person of its own principal.", self.name)
        if not self.sudo().vote_ids and (self.quorum or 1) <= 1:
            return ""  # approved before approvals were recorded one by one
        # the quorum: that many different approvers who still are approvers of its group
        voters = self._valid_voters()
        if len(voters) < (self.quorum or 1):
            return self.env._(
                "Request %(ref)s has %(given)s valid approvals of the %(quorum)s its rule needs.",
                ref=self.name, given=len(voters), quorum=self.quorum)
        return ""

    def _valid_voters(self):
        """The voters whose approval still counts: not the requester, active, still approvers of
        the request's group, not a person of its principal."""
        self.ensure_one()
        persons = self._principal_users() if self._is_agent_request() else self.env["res.users"]
        return self.sudo().vote_ids.user_id.filtered(
            lambda u: u != self.requester_id and u not in persons and u.active
            and u.has_group("mcp_guard.group_mcp_approver") and self._in_approver_group(u)
        )

    def _votes_as_same_person(self, names):
        """Whether a voter already counted reads as the person going by ``names`` (one person,
        two accounts, is one vote). A voter whose names cannot be compared reads as them."""
        self.ensure_one()
        mine = self._accounts_of(self.env.user)
        for voter in self.sudo().vote_ids.user_id:
            if voter in mine:
                return True
            try:
                theirs = self._person_names(voter)
            except AccessError:
                return True
            try:
                if any(same_person(mine, other) for mine in names for other in theirs):
                    return True
            except ValueError:
                return True
        return False

    def _approval_problem(self):
        """THE "is this approval still valid" check, or '': four eyes with the quorum re-counted,
        then the rule binding. Used by consume (the agent) and by execution at approval (a person)."""
        return self._four_eyes_broken() or self._rule_changed() or self._rule_unfit()

    @api.model
    def _approval_tools(self, tool, connection_url):
        """The tools whose rules a request for ``tool`` is filed and judged under: the call's
        own, then what it also does. An odoo_connect of an existing connection (one it was
        filed for: ``connection_url``) is also its odoo_disconnect (DESIGN.md invariant 11).
        The one list for filing (_file) and for the approval's validity (_rule_changed)."""
        return [tool, "odoo_disconnect"] if tool == "odoo_connect" and connection_url else [tool]

    def _rule_changed(self):
        """Why the approval no longer stands under the policy in force, or '': a rule the
        request was filed under (its action, approver group, quorum), the call's own or one it
        also passes (a replacement: odoo_disconnect's), has changed since."""
        self.ensure_one()
        if not self.rule_binding:
            return ""  # filed before approvals were bound to their rule
        tools = self._approval_tools(self.tool, self.connection_url)
        filed = [self.rule_binding, *(self.also_bindings or "").split()]
        now = self.env["mcp.tool.rule"]._rule_bindings(tools)
        # a binding missing (filed before the other rules were bound) reads as changed: fail closed
        changed = next((tool for index, tool in enumerate(tools)
                        if index >= len(filed) or filed[index] != now[index]), None)
        if changed is None:
            return ""
        return self.env._(
            "Request %(ref)s was approved under a rule for %(tool)s that has changed since (filed under: "
            "%(then)s): an approval holds only under the rule it was given under. Call again to file a "
            "new request.", ref=self.name, tool=changed, then=self.rule_terms or "-")

    @api.model
    def _request_id(self, value):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UserError(self.env._("Invalid request id %s: expected a positive integer.", repr(value)[:60]))
        return value

    @api.model
    def get_states(self, request_ids=REQUIRED):
        check_arguments(self, "get_states", request_ids=request_ids)
        if not isinstance(request_ids, list):
            raise UserError(
                self.env._("request_ids must be a list of request ids, not %s.", repr(request_ids)[:60])
            )
        reqs = self.search([("id", "in", [self._request_id(i) for i in request_ids])])  # record rules apply
        return [
            {"id": r.id, "ref": r.name, "state": r.state, "decision_note": r.decision_note or ""}
            for r in reqs
        ]

    @staticmethod
    def _epoch(value):
        return value.replace(tzinfo=timezone.utc).timestamp() if value else False

    def _agent_view(self):
        """A request as the front-end shows it: Odoo's own expiry and decider."""
        self.ensure_one()
        try:
            arguments = json.loads(self.arguments or "{}")
        except ValueError:
            arguments = {}
        return {
            "id": self.id,
            "ref": self.name,
            "tool": self.tool,
            "arguments": arguments if isinstance(arguments, dict) else {},
            "arguments_hash": self.sudo().arguments_hash or "",
            "principal": self.principal or "",
            "reason": self.reason or "",
            "state": self.state,
            "created_at": self._epoch(self.create_date),
            "expires_at": self._epoch(self.expires_at),
            "expires_in": self._lifetime(),
            # the approver's name only, read as the system: the agent may not read users
            "decided_by": self.sudo().approver_id.name or "",
            "decided_at": self._epoch(self.decision_date),
            "decision_note": self.decision_note or "",
            "consumed_at": self._epoch(self.consumed_at),
            "approver_group": self._group_xmlid(),
            "quorum": self.quorum or 1,
            "rule_binding": self.rule_binding or "",
            "server": self.server or "",
            # who approved, by name, read as the system: the agent may not read users
            "approvals": self.sudo().vote_ids.user_id.mapped("name"),
        }

    def _group_xmlid(self):
        group = self.sudo().approver_group_id
        if not group:
            return DEFAULT_APPROVER_GROUP
        return (group._get_external_ids().get(group.id) or [DEFAULT_APPROVER_GROUP])[0]

    @api.model
    def list_for_agent(self, request_ids=False, state=False, limit=200, ref=False):
        """The caller's requests (record rules apply), newest first: by ``request_ids``, by
        ``ref``, or all, optionally in one ``state``. (Not ``ids``: JSON-2 takes that name for
        the records of a record method, and this one is a model method.)

        The front-end's call (the RPC contract): the Agent group only, and only its own requests,
        since a view carries the arguments hash, an offline oracle for the secrets of the call
        that approvers and owners must never get (they read requests in Odoo's views)."""
        if not self.env.user.has_group("mcp_guard.group_mcp_agent"):
            raise AccessError(self.env._("Only the MCP Guard Agent user lists requests this way."))
        domain = [("requester_id", "=", self.env.uid)]
        if request_ids is not False:
            if not isinstance(request_ids, list):
                raise UserError(
                    self.env._("request_ids must be a list of request ids, not %s.", repr(request_ids)[:60])
                )
            domain.append(("id", "in", [self._request_id(i) for i in request_ids]))
        if ref is not False:
            # a NUL would reach PostgreSQL, which refuses it with a traceback (attack 17, finding 2)
            if not isinstance(ref, str) or text_problem(ref, "ref"):
                raise UserError(self.env._("ref must be a request reference."))
            domain.append(("name", "=ilike", ref.strip()))
        if state is not False:
            if not isinstance(state, str) or state not in dict(STATES):
                raise UserError(self.env._("Unknown state %s.", repr(state)[:60]))
            domain.append(("state", "=", state))
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= 1000:
            raise UserError(self.env._("limit must be an integer from 1 to 1000."))
        return [req._agent_view() for req in self.search(domain, limit=limit, order="id desc")]

    @api.model
    def report_failure(self, request_id=REQUIRED, note=REQUIRED):
        """The requester's approved call failed after its approval was consumed: done -> failed,
        with the cause in the chatter."""
        check_arguments(self, "report_failure", request_id=request_id, note=note)
        req = self.browse(self._request_id(request_id)).exists()
        if not req or req.requester_id.id != self.env.uid:
            return False
        if req.tool in CONNECTION_TOOLS:
            # Odoo ended (or replaced) the connection itself, in the transaction that consumed
            # the approval: nothing of it runs after, and its trail says what Odoo did
            raise UserError(self.env._(
                "Request %s was carried out by Odoo itself when it was consumed (a connection it "
                "ends or replaces): its failure cannot be reported.", req.name))
        # shown(): the agent's words, read by people in the chatter
        note = shown(redact_text(note if isinstance(note, str) else "")[:500])
        self.env.cr.execute(
            "UPDATE mcp_approval_request SET state='failed', write_uid=%s, write_date=now() at time zone 'UTC' "
            "WHERE id=%s AND state='done' RETURNING id",
            (self.env.uid, req.id),
        )
        if not self.env.cr.fetchone():
            return False
        req.invalidate_recordset()
        req.sudo()._post_own(body=self.env._("The approved call failed: %s", note or "-"))
        return True

    @api.model
    def consume(self, request_id=REQUIRED, tool=REQUIRED, arguments_hash=REQUIRED, arguments=None, server=None):  # pylint: disable=redefined-outer-name
        """Consume an approval once, for a call through the MCP server ``server`` it was filed
        through. The approved -> done change is one atomic UPDATE.

        odoo_connect needs the call's ``arguments``: they must hash to the approved call, and the
        connection is (re)created from them here, in the transaction that ends the old one."""
        check_arguments(self, "consume", request_id=request_id, tool=tool, arguments_hash=arguments_hash)
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
        unbound = req._server_mismatch(server)
        if unbound:
            return {"ok": False, "state": req.state, "message": unbound}
        if req.state != "approved":
            return {"ok": False, "state": req.state, "message": self.env._("Request %(ref)s is %(state)s, not approved.", ref=req.name, state=req.state)}
        if req.tool != tool or req.sudo().arguments_hash != arguments_hash:
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
        changed = req._rule_changed() or req._rule_unfit()
        if changed:
            # bound to the policy in force: the approval is spent without effect
            req._expire_approved(changed)
            return {"ok": False, "state": "expired", "message": changed}
        if req.expires_at and req.expires_at <= fields.Datetime.now():
            req._expire_approved(self.env._("Approved → Expired: the approval expired before it was used."))
            return {"ok": False, "state": "expired", "message": self.env._("Approval %s has expired.", req.name)}
        with allow_carry_out(req.ids):
            return req._carry_out(tool, arguments_hash, new_values)

    def _server_mismatch(self, server):
        """Why a call through the MCP server ``server`` cannot consume this request, or ''. An
        agent's request binds to the server it was filed through; one filed before that binding
        (no server) binds to nothing (_unbound_problem)."""
        self.ensure_one()
        if self.origin != "agent":
            return ""
        if not self.server:
            return self._unbound_problem()
        if server != self.server:
            return self.env._(
                "Request %(ref)s approves a call through the MCP server %(server)s, not through this one: "
                "a call through another server files its own request.", ref=self.name, server=repr(self.server))
        return ""

    def _expire_approved(self, message):
        """approved -> expired without effect, in one UPDATE (no tracking), ``message`` in the
        chatter: the approval's to-dos closed, its connection back to connected."""
        self.ensure_one()
        self.env.cr.execute(
            "UPDATE mcp_approval_request SET state='expired', write_uid=%s, write_date=now() at time zone 'UTC' "
            "WHERE id=%s AND state='approved' RETURNING id",
            (self.env.uid, self.id),
        )
        self.invalidate_recordset()
        self._close_activities()
        self._release_connection()
        # the raw UPDATE left no tracking: say it in the chatter
        self.sudo()._post_own(body=message)

    def _carry_out(self, tool, digest, new_values=None):
        """Consume this approved request and do what it approved, in the caller's transaction.

        ``new_values``: an agent's odoo_connect, checked against the approved hash by consume."""
        req = self
        req.ensure_one()
        # only from consume() or action_approve(), after their checks (requester, server, rule,
        # quorum, expiry): a server action calling it directly is refused (outside round, admin)
        if req.id not in carry_out_allowed_ids():
            raise UserError(self.env._(
                "Request %s can only be carried out by consuming its approval (or by approving it in Odoo).", req.name))
        # The single atomic state change: of two concurrent consumptions only one
        # gets a row back (the other waits, then fails its WHERE or serialisation).
        self.env.cr.execute(
            "UPDATE mcp_approval_request SET state='done', consumed_at=now() at time zone 'UTC', "
            "write_uid=%s, write_date=now() at time zone 'UTC' "
            "WHERE id=%s AND state='approved' AND tool=%s AND arguments_hash=%s RETURNING id",
            (self.env.uid, req.id, tool, digest),
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
            req.sudo()._post_own(body=message)
            return {"ok": False, "state": "failed", "message": message}
        conn = req.sudo().connection_id
        if req.origin == "person" and req.tool == "odoo_connect" and conn:
            values = req._change_values()
            if values is None:
                with internal_write():
                    req.sudo().write({"state": "failed"})
                req._wipe_secrets()
                message = self.env._("Request %s: the stored new values are not the approved ones.", req.name)
                req.sudo()._post_own(body=message)
                return {"ok": False, "state": "failed", "message": message}
            moved, forgotten = conn._secrets_forgotten_by(values)
            if moved:
                values = {**forgotten, **values}
            with internal_write():
                conn.write(values)  # tracked: the old values stay in the connection's chatter
            conn._post_own(body=self.env._("Connection %(alias)s was changed by request %(ref)s.",
                                              alias=conn.alias, ref=req.name))
            req._wipe_secrets()
        elif req.tool in CONNECTION_TOOLS and conn:
            # odoo_disconnect ends the connection it was filed for; an approved odoo_connect
            # of an existing alias ends the old one so it can be registered again
            with allow_connection_removal(conn.ids):
                conn._end()
            ended = self.env._("Connection %(alias)s (%(url)s, db %(db)s) was disconnected by request %(ref)s.",
                               alias=req.connection_alias, url=redact_text(req.connection_url), db=req.connection_db, ref=req.name)
            conn._post_own(body=ended)
            # the owner (and a person who asked) hear of it in Odoo; never the Agent user
            req._notifier()._post_own(body=ended, partner_ids=req._people_to_tell().partner_id.ids,
                                    subtype_xmlid="mail.mt_comment", message_type="notification")
        if new_values is not None:
            # an agent's odoo_connect: the approved values, and only them, in the transaction that
            # ended the old connection (a failure rolls the whole consumption back)
            # in the company of the connection it replaces (its approvers approved it)
            self.env["mcp.connection"]._create_for_agent(new_values, company=conn.company_id if conn else None)
        # the raw UPDATE above left no tracking: say Approved -> Done in the chatter
        req.sudo()._post_own(body=self.env._("Approved → Done: approval consumed by %s.", self.env.user.name))
        return {"ok": True, "state": "done", "message": self.env._("Approval %s consumed.", req.name)}
