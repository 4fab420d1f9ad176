"""The store, split by what its callers use: small ports, each implemented by the local
backend (stores/local.py, over one ``engines.Database``) and, where it serves them, by the
Odoo backend (odoo_backend.py). A backend that does not serve a port says so (backends.py:
``Backend.decisions`` is None, with the place where decisions are taken), it never
implements a port with methods that raise.

``GuardStore`` composes the ports the front-end's gate uses, under the method names it
calls (``store.open_request``, ``store.append_audit``...)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from odoo_mcp_guard.engines import Engine
from odoo_mcp_guard.policy import Policy
from odoo_mcp_guard.policy_core import ApprovalTerms
from odoo_mcp_guard.ratelimit import Full, Limit
from odoo_mcp_guard.stores.models import ApprovalRequest, AuditEvent, Connection, PinnedTool


class PolicyPort(Protocol):
    """Where the policy in force comes from (a file, or Odoo), polled in the background."""

    last_error: str | None

    @property
    def version(self) -> str: ...

    @property
    def catalog_epoch(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def refresh(self) -> bool:
        """Read it now; True when the policy in force changed."""
        ...

    def current(self) -> Policy:
        """The policy in force; raises PolicyUnavailable (fail closed)."""
        ...


class ConnectionPort(Protocol):
    """The Odoo connections the guard manages (odoo_connect, odoo_connections, data tools)."""

    def list_connections(self) -> list[Connection]: ...

    def get_connection(self, alias: str) -> Connection | None: ...

    def connection_binding(self, alias: str) -> str:
        """The identity of the connection under ``alias`` now ('' : there is none), which a
        request to remove or replace it is bound to; it changes when the connection is
        replaced (models.connection_identity)."""
        ...

    def add_connection(
        self, conn: Connection, *, replace: bool = False, replaces: str | None = None
    ) -> bool:
        """Create if the alias is free (True); ``replace`` only for a call judged a removal,
        ``replaces``: of the connection with that binding only (else ApprovalError)."""
        ...

    def remove_connection(self, alias: str, *, binding: str | None = None) -> bool:
        """After an approved odoo_disconnect: True when the connection is gone; ``binding``:
        the connection it was approved for, and no other (else ApprovalError)."""
        ...


class ApprovalPort(Protocol):
    """The gate's side of approvals: find, file, consume once, record the outcome."""

    def open_request(
        self,
        tool: str,
        args_hash: str,
        principal: str,
        now: float | None = None,
        *,
        server: str = "",
    ) -> ApprovalRequest | None:
        """The newest request that still answers for this exact call on ``server`` (expiry
        applied); one filed on another server, or before requests named one, never does."""
        ...

    def file_request(
        self,
        tool: str,
        arguments: dict[str, Any],
        principal: str,
        reason: str | None,
        expires_in: int,
        now: float | None = None,
        *,
        terms: ApprovalTerms | None = None,
        also_bindings: Sequence[str] = (),
        at_stake: Mapping[str, Any] | None = None,
        connection_binding: str | None = None,
        requester_persons: Sequence[str] | None = None,
        electorate: Mapping[str, Any] | None = None,
        server: str = "",
    ) -> tuple[ApprovalRequest, bool]:
        """``server``: the server the call is made on, which the request is bound to (a
        pending request of the same call on another server is not this one's). ``terms``:
        the approver group, quorum and rule binding the request is filed under;
        ``also_bindings``: the bindings of the rules the call also passes, in order (a
        backend with its own policy, Odoo, takes its own); ``at_stake``: what the call would
        replace or remove, as the front-end knows it (kept redacted, shown to approvers);
        ``connection_binding``: the connection the call removes or replaces, as it is now
        ('' : none; None: the call is not about a connection). A pending request of the same
        call for another connection is not this one's. ``requester_persons``: who the
        principal is by the policy in force (its ``people``: identity.requester_persons; None:
        no ``people``), frozen on the request for four-eyes; ``electorate``: who may decide it
        by the policy in force (policy_core.CompiledPolicy.electorate), frozen on it too (a
        store that decides by its own users, Odoo, ignores both)."""
        ...

    def retire(self, request_id: int, note: str) -> None:
        """The rule the request was filed under changed: it no longer answers for its call."""
        ...

    def consume(
        self,
        request_id: int,
        event: AuditEvent,
        now: float | None = None,
        *,
        arguments: dict[str, Any] | None = None,
    ) -> bool:
        """Use an approval once; ``arguments`` (the approved call's) serve a backend that
        carries the call out itself (Odoo's odoo_connect)."""
        ...

    def mark_failed(self, request_id: int, note: str) -> None: ...

    def mark_reported(self, request_id: int) -> None: ...


class RequestReader(Protocol):
    """The operator's view of approval requests (CLI ``approvals list|show``)."""

    def get_request(self, key: int | str) -> ApprovalRequest | None: ...

    def list_requests(
        self, state: str | None = None, limit: int = 200
    ) -> list[ApprovalRequest]: ...


class Decisions(Protocol):
    """Deciding requests where the backend keeps them (CLI ``approvals approve|reject|cancel``)."""

    def decide(
        self,
        key: int | str,
        *,
        approve: bool,
        approver: str,
        note: str | None = None,
        now: float | None = None,
        approvers: Sequence[str] | None = None,
        people: Mapping[str, Sequence[str]] | None = None,
    ) -> ApprovalRequest: ...

    def cancel_request(
        self, key: int | str, *, by: str, note: str | None = None, now: float | None = None
    ) -> ApprovalRequest: ...


class ToolAcceptance(Protocol):
    """Accepting a tool's changed definition where the pins are decided (CLI ``tools accept``)."""

    def accept_pinned(
        self,
        server: str,
        tool: str,
        accepted_by: str,
        now: float | None = None,
        *,
        definition: str | None = None,
    ) -> PinnedTool:
        """``definition``: the (prefix of the) hash of the changed definition the Manager
        reviewed; refused when the pending one is another (it changed again since)."""
        ...


class AuditPort(Protocol):
    def append_audit(self, event: AuditEvent) -> None:
        """Store one event; raises if it cannot (never dropped silently)."""
        ...

    def audit_tail(self, limit: int = 20) -> list[AuditEvent]: ...

    def audit_count(self, outcome: str | None = None) -> int: ...


class PinPort(Protocol):
    """The catalog of served tools and their accepted (pinned) definitions."""

    # Whether accepting on this host (``tools accept``) lifts a refusal (not where Odoo decides).
    accepts_locally: bool

    def pin_tools(
        self,
        server: str,
        definitions: dict[str, tuple[str, dict[str, Any]]],
        now: float | None = None,
        *,
        accept_changes: bool = False,
    ) -> dict[str, PinnedTool]: ...

    def list_pinned(self, server: str | None = None) -> list[PinnedTool]: ...

    def accept_hint(self, server: str, tool: str) -> str:
        """Where a Manager accepts a tool's changed definition."""
        ...

    def catalog_unreported(self, server: str) -> str | None:
        """Why ``server``'s catalog is not where it must be; None: it is."""
        ...


class RatePort(Protocol):
    def hit_rate_limit(
        self, principal: str, tool: str, max_calls: int, window: float, now: float | None = None
    ) -> float | None:
        """Count one call in the sliding window. None if it may pass, else seconds to wait."""
        ...

    def hit_rate_limits(self, principal: str, limits: Sequence[Limit], now: float) -> Full | None:
        """Count one call in every limit's window if each has room, else in none (atomic):
        None, or the first full limit and the seconds it needs."""
        ...


class GuardStore:
    """The ports the front-end uses, composed; each method is the port's own."""

    def __init__(
        self,
        *,
        connections: ConnectionPort,
        approvals: ApprovalPort,
        audit: AuditPort,
        pins: PinPort,
        rates: RatePort,
        close: Callable[[], None],
        engine: Engine | None = None,
    ):
        self.connections = connections
        self.approvals = approvals
        self.audit = audit
        self.pins = pins
        self.rates = rates
        self._close = close
        # The engine of the local database, where one is shared between processes on this
        # host or between replicas (the proxy's leases, leases.py); None: this process only.
        self.engine = engine

    def close(self) -> None:
        self._close()

    # connections
    def list_connections(self) -> list[Connection]:
        return self.connections.list_connections()

    def get_connection(self, alias: str) -> Connection | None:
        return self.connections.get_connection(alias)

    def connection_binding(self, alias: str) -> str:
        return self.connections.connection_binding(alias)

    def add_connection(
        self, conn: Connection, *, replace: bool = False, replaces: str | None = None
    ) -> bool:
        return self.connections.add_connection(conn, replace=replace, replaces=replaces)

    def remove_connection(self, alias: str, *, binding: str | None = None) -> bool:
        return self.connections.remove_connection(alias, binding=binding)

    # approvals (the gate's side)
    def open_request(
        self,
        tool: str,
        args_hash: str,
        principal: str,
        now: float | None = None,
        *,
        server: str = "",
    ) -> ApprovalRequest | None:
        return self.approvals.open_request(tool, args_hash, principal, now, server=server)

    def file_request(
        self,
        tool: str,
        arguments: dict[str, Any],
        principal: str,
        reason: str | None,
        expires_in: int,
        now: float | None = None,
        *,
        terms: ApprovalTerms | None = None,
        also_bindings: Sequence[str] = (),
        at_stake: Mapping[str, Any] | None = None,
        connection_binding: str | None = None,
        requester_persons: Sequence[str] | None = None,
        electorate: Mapping[str, Any] | None = None,
        server: str = "",
    ) -> tuple[ApprovalRequest, bool]:
        return self.approvals.file_request(
            tool,
            arguments,
            principal,
            reason,
            expires_in,
            now,
            terms=terms,
            also_bindings=also_bindings,
            at_stake=at_stake,
            connection_binding=connection_binding,
            requester_persons=requester_persons,
            electorate=electorate,
            server=server,
        )

    def retire(self, request_id: int, note: str) -> None:
        self.approvals.retire(request_id, note)

    def consume(
        self,
        request_id: int,
        event: AuditEvent,
        now: float | None = None,
        *,
        arguments: dict[str, Any] | None = None,
    ) -> bool:
        return self.approvals.consume(request_id, event, now, arguments=arguments)

    def mark_failed(self, request_id: int, note: str) -> None:
        self.approvals.mark_failed(request_id, note)

    def mark_reported(self, request_id: int) -> None:
        self.approvals.mark_reported(request_id)

    # audit
    def append_audit(self, event: AuditEvent) -> None:
        self.audit.append_audit(event)

    def audit_tail(self, limit: int = 20) -> list[AuditEvent]:
        return self.audit.audit_tail(limit)

    def audit_count(self, outcome: str | None = None) -> int:
        return self.audit.audit_count(outcome)

    # pinned tools
    @property
    def accepts_locally(self) -> bool:
        return self.pins.accepts_locally

    def pin_tools(
        self,
        server: str,
        definitions: dict[str, tuple[str, dict[str, Any]]],
        now: float | None = None,
        *,
        accept_changes: bool = False,
    ) -> dict[str, PinnedTool]:
        return self.pins.pin_tools(server, definitions, now, accept_changes=accept_changes)

    def list_pinned(self, server: str | None = None) -> list[PinnedTool]:
        return self.pins.list_pinned(server)

    def accept_hint(self, server: str, tool: str) -> str:
        return self.pins.accept_hint(server, tool)

    def catalog_unreported(self, server: str) -> str | None:
        return self.pins.catalog_unreported(server)

    # rate counters
    def hit_rate_limit(
        self, principal: str, tool: str, max_calls: int, window: float, now: float | None = None
    ) -> float | None:
        return self.rates.hit_rate_limit(principal, tool, max_calls, window, now)

    def hit_rate_limits(self, principal: str, limits: Sequence[Limit], now: float) -> Full | None:
        return self.rates.hit_rate_limits(principal, limits, now)
