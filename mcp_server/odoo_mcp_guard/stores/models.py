"""What the stores hold, as every port and caller sees it: connections, approval requests,
audit events, pinned tool definitions, and the errors of the approval rules."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from odoo_mcp_guard.names import check_secret, check_text, check_url
from odoo_mcp_guard.policy_core import arguments_hash, redact, redact_known, redact_text

_REF_RE = re.compile(r"(?i)MCPR-0*([0-9]{1,12})")

# A request in one of these states still speaks for its call; the others are history.
OPEN_STATES = ("pending", "approved", "rejected", "expired")

RequestState = Literal["pending", "approved", "rejected", "cancelled", "expired", "done", "failed"]
Outcome = Literal[
    "allowed",
    "denied",
    "hidden",
    "invalid",
    "unknown",
    "unavailable",
    "rate_limited",
    "approval_pending",
    "approval_rejected",
    "approval_expired",
    "approved_executed",
    "failed",
    # An approver's action on a request (CLI, embedded store), not a call's decision.
    "approved",
    "rejected",
    "cancelled",
]


class ApprovalError(ValueError):
    """An approval action that the rules refuse (four-eyes, wrong state, expired, unknown)."""


class Connection(BaseModel):
    """An Odoo connection as odoo-claude-mcp configures it."""

    model_config = ConfigDict(extra="forbid")

    alias: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    url: str = Field(min_length=1, max_length=2048)
    db: str = Field(min_length=1, max_length=256)
    username: str = Field(min_length=1, max_length=256)
    password: str | None = Field(default=None, max_length=4096)
    api_key: str | None = Field(default=None, max_length=4096)
    protocol: Literal["xmlrpc", "jsonrpc", "json2"] = "xmlrpc"
    verify_ssl: bool = True

    # Every way in (odoo_connect, connections import) builds a Connection: one check for all.
    _url = field_validator("url")(check_url)

    @field_validator("db", "username")
    @classmethod
    def _text(cls, value: str, info: ValidationInfo) -> str:
        return check_text(value, info.field_name or "value")

    @field_validator("password", "api_key")
    @classmethod
    def _secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        return check_secret(value, info.field_name or "secret")

    def listed(self) -> dict[str, Any]:
        """Its fields but the secrets, redacted (what a connection's identity is made of)."""
        data = self.model_dump(exclude={"password", "api_key"})
        data["has_password"] = bool(self.password)
        data["has_api_key"] = bool(self.api_key)
        return redact(data)

    def public(self) -> dict[str, Any]:
        """What an agent or a listing may see: never a password, a key or URL credentials,
        nor its own password or key typed into another field (a username swapped with the
        password), hidden by value (``redact_known``)."""
        return redact_known(self.listed(), (self.password, self.api_key))


class ApprovalRequest(BaseModel):
    id: int
    ref: str
    tool: str
    arguments: dict[str, Any]  # redacted
    arguments_hash: str
    principal: str
    reason: str | None
    state: RequestState
    created_at: float
    expires_at: float
    expires_in: int
    decided_by: str | None = None
    decided_at: float | None = None
    decision_note: str | None = None
    consumed_at: float | None = None
    result_note: str | None = None
    # The rule it was filed under (policy_core.approval_terms): who decides, how many distinct
    # approvers, and the hash an approval is bound to (None: filed before routing existed).
    approver_group: str | None = None
    quorum: int = 1
    rule_binding: str | None = None
    # The bindings of the rules its call also passes, in order (a replacement: odoo_disconnect's);
    # None: not kept by this backend (Odoo judges them itself when it consumes).
    also_bindings: list[str] | None = None
    approvals: list[str] = Field(default_factory=list)  # who approved so far, in order
    # What the call would replace or remove, as the front-end knew it when it filed the
    # request (the proxy: an upstream's connection from its listing), redacted; None: not
    # recorded.
    at_stake: dict[str, Any] | None = None
    # The connection its call removes or replaces, as it was when the request was filed
    # (``connection_identity``; '': none). An approval is for that connection, not for
    # whichever one bears its alias by the time it is used (invariant 14). None: filed before
    # requests were bound (it then answers for no call that removes or replaces one).
    connection_binding: str | None = None
    # The server it was filed on (a proxy's server name, ``serve``'s own): it answers for a
    # call on that server only. '': filed through the store naming none; None: filed before
    # requests were bound to a server (schema v10), it answers for none.
    server: str | None = None

    # Redacted whenever a request is built, so rows stored before the rule was widened are
    # shown redacted too (redaction is idempotent).
    @field_validator("arguments")
    @classmethod
    def _redact_arguments(cls, value: dict[str, Any]) -> dict[str, Any]:
        return redact(value)

    @field_validator("at_stake")
    @classmethod
    def _redact_at_stake(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else redact(value)

    @field_validator("reason", "decision_note", "result_note")
    @classmethod
    def _redact_notes(cls, value: str | None) -> str | None:
        return None if value is None else redact_text(value)

    def summary(self) -> dict[str, Any]:
        return self.model_dump()


class AuditEvent(BaseModel):
    uuid: str = Field(default_factory=lambda: str(uuid.uuid4()))
    time: str = Field(default_factory=lambda: utc_iso(time.time()))
    principal: str
    tool: str
    arguments_hash: str
    outcome: Outcome
    detail: str = ""
    request_ref: str | None = None

    # A failure note quotes an exception, which may quote a URL with its password.
    @field_validator("detail")
    @classmethod
    def _redact_detail(cls, value: str) -> str:
        return redact_text(value)


class PinnedTool(BaseModel):
    """An upstream tool's accepted definition, and a changed one if it awaits acceptance."""

    server: str
    tool: str
    definition_hash: str
    definition: dict[str, Any]
    first_seen: float
    accepted_at: float
    accepted_by: str | None = None
    pending_hash: str | None = None
    pending_definition: dict[str, Any] | None = None
    pending_since: float | None = None

    @property
    def changed(self) -> bool:
        return self.pending_hash is not None


def connection_identity(fields: dict[str, Any]) -> str:
    """The identity of a connection as a request is bound to it: a hash of what names it
    (for the guard's own store its row's revision, which changes on every replacement; for
    an upstream's, what its listing says of it). Never its secrets."""
    return "conn-" + arguments_hash(fields)


def request_ref(key: str) -> str:
    """MCPR-1 and mcpr-00001 name the request MCPR-00001."""
    ref = _REF_RE.fullmatch(key.strip())
    return f"MCPR-{int(ref[1]):05d}" if ref else key.strip().upper()


def utc_iso(timestamp: float) -> str:
    """2026-01-31T12:00:00.000000Z (isoformat: the same text as strftime, at a fraction of
    its cost on every audit row)."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def data_to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
