from datetime import datetime, timedelta, timezone

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from .compat import Constraint
from .identity import find_unsafe, shown
from .mcp_guard_common import REQUIRED, check_arguments, redact_text

OUTCOMES = [
    ("allowed", "Allowed"),
    ("denied", "Denied"),
    ("hidden", "Hidden tool called"),
    ("invalid", "Invalid call"),
    ("unknown", "Unknown tool"),
    ("unavailable", "Policy or backend unavailable"),
    ("rate_limited", "Rate limited"),
    ("approval_pending", "Approval pending"),
    ("approval_rejected", "Approval rejected"),
    ("approval_expired", "Approval expired"),
    ("approved_executed", "Approved and executed"),
    ("failed", "Failed"),
]
# outcomes where the call went through (or was let through and failed); the rest are refusals
PASSED_OUTCOMES = ("allowed", "approved_executed", "failed")
# a front-end's uuids are 32 hex digits; anything longer is not one
MAX_UUID_LENGTH = 64
EVENT_KEYS = {"uuid", "time", "principal", "tool", "arguments_hash", "outcome", "detail", "request_ref"}
REQUIRED_KEYS = ("uuid", "time", "principal", "tool", "arguments_hash", "outcome")
# The reported event time must lie in [receipt - AUDIT_MAX_AGE, receipt + AUDIT_CLOCK_SKEW]:
# a front-end's spool reaches Odoo within the first (README), clocks differ by less than the
# second. Beside it every row keeps the server's own receipt time (create_date, "Received").
AUDIT_MAX_AGE = timedelta(days=30)
AUDIT_CLOCK_SKEW = timedelta(minutes=5)


def _parse_time(value):
    """ISO-8601 (``...Z`` or with an offset) to a naive UTC datetime."""
    if not isinstance(value, str):
        raise ValueError(value)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(value)
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


class McpAuditLog(models.Model):
    """Append-only trail of the front-end's decisions: nobody edits or deletes it."""

    _name = "mcp.audit.log"
    _inherit = ["mcp.guard.values"]
    _description = "MCP Audit Log"
    _order = "event_time desc, id desc"
    _rec_name = "uuid"

    uuid = fields.Char("Event UUID", required=True, readonly=True)
    event_time = fields.Datetime("Time", required=True, readonly=True, index=True,
                                 help="When the front-end says the event happened.")
    create_date = fields.Datetime("Received", readonly=True, help="When Odoo received the event.")
    principal = fields.Char(readonly=True, index=True)
    tool = fields.Char(readonly=True, index=True)
    # like the request's: an offline oracle for the secrets hashed in, so not for approvers
    # the agent's only: an unsalted hash of arguments whose password nobody else is shown
    arguments_hash = fields.Char(readonly=True, groups="mcp_guard.group_mcp_agent")
    outcome = fields.Selection(OUTCOMES, required=True, readonly=True, index=True)
    detail = fields.Text(readonly=True)
    request_ref = fields.Char("Request", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True, default=lambda self: self.env.company)
    # the Odoo user who sent the event (env.uid in record_batch); ``principal`` is only what
    # that front-end says about its own client
    sender_id = fields.Many2one("res.users", "Sent by", required=True, readonly=True, index=True)
    # computed once at creation (record_batch writes it in its INSERT): the log stays append-only
    refused = fields.Boolean(compute="_compute_refused", store=True, readonly=True, index=True)

    # per sender: one front-end cannot take a uuid away from another's events
    _sender_uuid_unique = Constraint(
        "UNIQUE (sender_id, uuid)", "This audit event was already recorded."
    )

    @api.depends("outcome")
    def _compute_refused(self):
        for log in self:
            log.refused = bool(log.outcome) and log.outcome not in PASSED_OUTCOMES

    @api.model_create_multi
    def create(self, vals_list):  # pylint: disable=method-required-super
        # record_batch inserts the rows itself (receipt time and sender are the server's):
        # a plain create would let a client choose them
        raise AccessError(self.env._("Audit events are recorded with record_batch()."))

    # append-only: there is deliberately no super() call, no write ever reaches the table
    def write(self, vals):  # pylint: disable=method-required-super
        raise AccessError(self.env._("The MCP audit log is append-only."))

    def unlink(self):  # pylint: disable=method-required-super
        # refused in unlink itself, not @api.ondelete: _force_unlink skips those (invariant 14);
        # the table goes only with the module, dropped whole
        raise AccessError(self.env._("The MCP audit log is append-only."))  # pylint: disable=no-raise-unlink

    @api.model
    def _validate_event(self, index, event):
        if not isinstance(event, dict):
            raise UserError(self.env._("Audit event %s is not an object.", index))
        unknown = set(event) - EVENT_KEYS
        if unknown:
            raise UserError(self.env._("Audit event %(i)s: unknown key %(k)s", i=index, k=sorted(unknown)[0]))
        for key in REQUIRED_KEYS:
            if not isinstance(event.get(key), str) or (key in ("uuid", "outcome") and not event[key]):
                raise UserError(self.env._("Audit event %(i)s: %(k)s must be a string", i=index, k=key))
        if event["outcome"] not in dict(OUTCOMES):
            raise UserError(self.env._("Audit event %(i)s: unknown outcome %(o)s", i=index, o=event["outcome"]))
        try:
            moment = _parse_time(event["time"])
        except ValueError as exc:
            raise UserError(self.env._("Audit event %(i)s: time must be ISO-8601 UTC", i=index)) from exc
        now = fields.Datetime.now()
        if moment > now + AUDIT_CLOCK_SKEW:
            raise UserError(self.env._("Audit event %(i)s: time %(t)s is in the future", i=index, t=event["time"]))
        if moment < now - AUDIT_MAX_AGE:
            raise UserError(self.env._(
                "Audit event %(i)s: time %(t)s is older than %(d)s days", i=index, t=event["time"],
                d=AUDIT_MAX_AGE.days))
        for key in ("detail", "request_ref"):
            if event.get(key) is not None and not isinstance(event[key], str):
                raise UserError(self.env._("Audit event %(i)s: %(k)s must be a string", i=index, k=key))
        if len(event["uuid"]) > MAX_UUID_LENGTH or find_unsafe(event["uuid"]) is not None:
            raise UserError(self.env._(
                "Audit event %(i)s: uuid must be at most %(n)s printable characters", i=index, n=MAX_UUID_LENGTH))
        return moment

    @api.model
    def record_batch(self, events=REQUIRED):
        """Store a batch of events as sent by the caller, secrets in its texts redacted; returns
        how many were new (idempotent on the caller's uuids)."""
        check_arguments(self, "record_batch", events=events)
        self.check_access("create")
        if not isinstance(events, list):
            raise UserError(self.env._("events must be a list"))
        rows = [(event, self._validate_event(i, event)) for i, event in enumerate(events)]
        stored = 0
        for event, moment in rows:
            # ON CONFLICT makes a replayed spool (or two concurrent ones) harmless
            self.env.cr.execute(
                """
                INSERT INTO mcp_audit_log
                    (uuid, event_time, principal, tool, arguments_hash, outcome, detail, request_ref,
                     company_id, refused, sender_id, create_uid, create_date, write_uid, write_date)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                        now() at time zone 'UTC', %s, now() at time zone 'UTC')
                ON CONFLICT (sender_id, uuid) DO NOTHING
                RETURNING id
                """,
                (
                    # shown(): kept as sent, but a bidi override, a zero-width space or an ESC is
                    # written as an escape, so no row reads as another (the detail keeps its lines);
                    # redact_text(): no secret the agent sent in any text field is stored, its
                    # uuid included (a front-end's are hex digits, which it keeps as sent; two
                    # that differ only in a secret are one event: the sender's own to keep apart)
                    redact_text(event["uuid"]), moment, shown(redact_text(event["principal"])), shown(redact_text(event["tool"])),
                    shown(event["arguments_hash"]), event["outcome"],
                    "\n".join(shown(line) for line in redact_text(event.get("detail") or "").split("\n")) or None,
                    shown(redact_text(event.get("request_ref") or "")) or None,
                    self.env.company.id, event["outcome"] not in PASSED_OUTCOMES, self.env.uid, self.env.uid, self.env.uid,
                ),
            )
            if self.env.cr.fetchone():
                stored += 1
        return stored
