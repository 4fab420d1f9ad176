"""Odoo as the guard's backend: the policy, connections and approvals live in the ``mcp_guard``
add-on, reached only through the RPC contract (ARCHITECTURE.md); the audit is spooled in the
local SQLite database and flushed to Odoo in order, so that no event is lost while Odoo is away.

Each class implements one port of stores/ports.py. What Odoo alone decides (approving,
rejecting, cancelling requests; accepting a changed tool definition) has no port here:
backends.py says where it is done instead. Rate-limit counters stay local: they must cost no
round trip.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from odoo_mcp_guard.catalog import catalog_entry, definition_hash
from odoo_mcp_guard.engines import Database
from odoo_mcp_guard.names import arguments_hash
from odoo_mcp_guard.odoo_rpc import OdooError, OdooRpc
from odoo_mcp_guard.policy import Policy, PolicyError, PolicyUnavailable, load_policy_text
from odoo_mcp_guard.policy_core import ApprovalTerms, canonical_json
from odoo_mcp_guard.stores.local import LocalAudit, LocalPins
from odoo_mcp_guard.stores.models import (
    ApprovalError,
    ApprovalRequest,
    AuditEvent,
    Connection,
    PinnedTool,
    connection_identity,
    request_ref,
)

log = logging.getLogger(__name__)

ODOO_APPROVAL_HINT = "an approver (not you) approves it in Odoo under MCP Guard > Approval Requests"
AUDIT_BATCH = 200


class OdooPolicySource:
    """The policy document of ``mcp.tool.rule.get_policy_document()``, polled in the background.

    ``current()`` never calls Odoo: allowed calls cost no round trip. A policy older than
    ``max_age`` (Odoo unreachable for that long) is not used any more: every call is refused,
    with the cause.
    """

    def __init__(self, client: OdooRpc, *, poll_interval: float = 3.0, max_age: float = 60.0):
        self.client = client
        self.poll_interval = poll_interval
        self.max_age = max_age
        self.last_error: str | None = None
        self._policy: Policy | None = None
        self._fetched_at = 0.0  # monotonic time of the last successful fetch
        self._etag: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def version(self) -> str:
        return self._policy.etag if self._policy else ""

    @property
    def catalog_epoch(self) -> str:
        """Odoo's etag: it also changes when a Manager accepts a tool's new definition, which
        front-ends learn by reporting their catalog again."""
        return self._etag or ""

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._poll, name="odoo-policy", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval):
            self.refresh()

    def refresh(self) -> bool:
        """Fetch the document; True when the policy in force changed."""
        try:
            answer = self.client.call("mcp.tool.rule", "get_policy_document")
            if not isinstance(answer, dict) or not isinstance(answer.get("policy"), dict):
                raise OdooError("protocol", "get_policy_document returned no policy document")
            etag = str(answer.get("etag", ""))
            with self._lock:
                if etag and etag == self._etag and self._policy is not None:
                    self._fetched_at = time.monotonic()
                    self.last_error = None
                    return False
            # the canonical text: what Odoo measured the document by (policy_core.policy_size)
            try:
                text = canonical_json(answer["policy"])
            except (TypeError, ValueError, RecursionError):
                no_json = "get_policy_document returned no JSON document"
                raise OdooError("protocol", no_json) from None
            policy = load_policy_text(text, "odoo:mcp.tool.rule")
        except (OdooError, PolicyError) as exc:
            message = f"the policy cannot be read from Odoo: {exc}"
            if message != self.last_error:
                log.error("%s", message)
            self.last_error = message
            return False
        with self._lock:
            before = self.version
            self._policy = policy
            self._etag = etag
            self._fetched_at = time.monotonic()
            self.last_error = None
            return policy.etag != before

    def current(self) -> Policy:
        policy = self._policy
        if policy is None:
            raise PolicyUnavailable(self.last_error or "the policy was never read from Odoo")
        age = time.monotonic() - self._fetched_at
        if age > self.max_age:
            raise PolicyUnavailable(
                f"the policy from Odoo is {age:.0f} s old, older than the {self.max_age:g} s "
                f"allowed ({self.last_error or 'Odoo is not answering'})"
            )
        return policy


def _call(client: OdooRpc, model: str, method: str, **kwargs: Any) -> Any:
    try:
        return client.call(model, method, **kwargs)
    except OdooError as exc:
        raise ApprovalError(f"Odoo: {exc.message}") from None


class OdooConnections:
    """``mcp.connection``: the connections this agent may use (ConnectionPort)."""

    def __init__(self, client: OdooRpc, *, connections_ttl: float = 3.0):
        self.client = client
        # The last list Odoo gave. Listing and data tools reuse it for ``connections_ttl``
        # seconds (no round trip per call), and while Odoo is unreachable (invariant 6: the
        # policy's maximum age bounds how long). Decisions that change something read fresh.
        self.connections_ttl = connections_ttl
        self._cache: list[Connection] | None = None
        self._cached_at = 0.0
        # Connections an approved odoo_connect created inside Odoo's consume (alias, url, db,
        # login): the tool's add_connection that follows only confirms them.
        self.created_by_consume: set[tuple[Any, ...]] = set()

    def list_connections(self, *, fresh: bool = False) -> list[Connection]:
        cached = self._cache
        if (
            not fresh
            and cached is not None
            and time.monotonic() - self._cached_at < self.connections_ttl
        ):
            return list(cached)
        try:
            rows = self.client.call("mcp.connection", "list_for_agent")
        except OdooError as exc:
            if exc.kind == "unreachable" and cached is not None and not fresh:
                log.warning("Odoo is unreachable; serving the cached connections: %s", exc)
                return list(cached)
            raise ApprovalError(f"Odoo: {exc.message}") from None
        connections = []
        for row in rows:
            try:
                connections.append(
                    Connection(
                        alias=row["alias"],
                        url=row["url"],
                        db=row["db"],
                        username=row["login"],
                        password=row.get("password") or None,
                        api_key=row.get("api_key") or None,
                        protocol=row.get("protocol") or "xmlrpc",
                    )
                )
            except (KeyError, ValueError):
                log.warning("skipping a malformed connection from Odoo: %r", row.get("alias"))
        self._cache = connections
        self._cached_at = time.monotonic()
        return list(connections)

    def forget(self) -> None:
        """Odoo's list may have changed (a request was consumed): read it fresh next time."""
        self._cache = None

    def get_connection(self, alias: str) -> Connection | None:
        # Fresh: whether an alias exists decides whether odoo_connect is a replacement.
        return next((c for c in self.list_connections(fresh=True) if c.alias == alias), None)

    def connection_binding(self, alias: str) -> str:
        """What Odoo lists of the connection under ``alias`` now (Odoo binds a request to its
        connection record itself, and refuses to consume it once that changed)."""
        conn = self.get_connection(alias)
        if conn is None:
            return ""
        return connection_identity(conn.listed())

    def add_connection(
        self, conn: Connection, *, replace: bool = False, replaces: str | None = None
    ) -> bool:
        # Odoo refuses an existing alias. An approved odoo_connect (a replacement among them)
        # was carried out by Odoo's consume, with the approved values, in one transaction.
        key = (conn.alias, conn.url, conn.db, conn.username)
        if key in self.created_by_consume:
            self.created_by_consume.discard(key)
            return True
        values: dict[str, Any] = {
            "alias": conn.alias,
            "url": conn.url,
            "db": conn.db,
            "login": conn.username,
            "protocol": conn.protocol,
        }
        if conn.password:
            values["password"] = conn.password
        if conn.api_key:
            values["api_key"] = conn.api_key
        self.forget()
        answer = _call(self.client, "mcp.connection", "upsert_from_agent", values=values)
        return bool(answer.get("created"))

    def remove_connection(self, alias: str, *, binding: str | None = None) -> bool:
        """In Odoo a connection ends only inside ``consume`` of its approved request, in the
        same transaction (invariant 5), which the gate did before this call: here the removal
        is confirmed, fresh from Odoo."""
        return self.get_connection(alias) is None


def _when(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def request_from_odoo(view: dict[str, Any]) -> ApprovalRequest:
    """A request as ``list_for_agent`` gives it: Odoo's expiry, decider and notes."""
    expires_at = _when(view.get("expires_at"))
    created_at = _when(view.get("created_at"))
    if expires_at is None or created_at is None:
        raise ApprovalError(f"Odoo: request {view.get('ref')!r} has no filing or expiry time")
    return ApprovalRequest(
        id=view["id"],
        ref=view["ref"],
        tool=view["tool"],
        arguments=view.get("arguments") or {},
        arguments_hash=view.get("arguments_hash") or "",
        principal=view.get("principal") or "",
        reason=view.get("reason") or None,
        state=view["state"],
        created_at=created_at,
        expires_at=expires_at,
        expires_in=int(view.get("expires_in") or 0),
        decided_by=view.get("decided_by") or None,
        decided_at=_when(view.get("decided_at")),
        decision_note=view.get("decision_note") or None,
        consumed_at=_when(view.get("consumed_at")),
        approver_group=view.get("approver_group") or None,
        quorum=int(view.get("quorum") or 1),
        rule_binding=view.get("rule_binding") or None,
        approvals=[name for name in view.get("approvals") or [] if isinstance(name, str)],
        server=view.get("server") or None,
    )


class OdooApprovals:
    """``mcp.approval.request`` (ApprovalPort and RequestReader). The local ``remote_requests``
    table remembers which Odoo request answers which call of this front-end."""

    def __init__(
        self,
        client: OdooRpc,
        db: Database,
        audit: LocalAudit,
        connections: OdooConnections,
    ):
        self.client = client
        self.db = db
        self.audit = audit
        self.connections = connections

    def _read(self, **query: Any) -> list[ApprovalRequest]:
        views = _call(self.client, "mcp.approval.request", "list_for_agent", **query)
        if not isinstance(views, list):
            raise ApprovalError("Odoo: list_for_agent returned no list")
        found = [request_from_odoo(view) for view in views]
        # the server each was filed through: Odoo's (the contract's file_request names it), else
        # as this front-end recorded it (an add-on older than the binding keeps none)
        ids = [request.id for request in found]
        servers: dict[int, str | None] = {}
        if ids:
            marks = ",".join("?" * len(ids))
            rows = self.db.rows(
                f"SELECT remote_id, server FROM remote_requests WHERE remote_id IN ({marks})",
                tuple(ids),
            )
            servers = {int(row["remote_id"]): row["server"] for row in rows}
        return [
            request.model_copy(update={"server": request.server or servers.get(request.id)})
            for request in found
        ]

    # --- the operator's view ---------------------------------------------------------

    def get_request(self, key: int | str) -> ApprovalRequest | None:
        """By Odoo id (an int or digits) or by reference."""
        if isinstance(key, int) or (str(key).isascii() and str(key).isdigit()):
            found = self._read(request_ids=[int(key)])
        else:
            found = self._read(ref=request_ref(str(key)))
        return found[0] if found else None

    def list_requests(self, state: str | None = None, limit: int = 200) -> list[ApprovalRequest]:
        query: dict[str, Any] = {"limit": limit}
        if state:
            query["state"] = state
        return self._read(**query)

    # --- the gate's side -------------------------------------------------------------

    def open_request(
        self,
        tool: str,
        args_hash: str,
        principal: str,
        now: float | None = None,
        *,
        server: str = "",
    ) -> ApprovalRequest | None:
        """Odoo's state of the request filed for this call on ``server`` (Odoo's cron expires
        stale ones, and ``consume`` refuses an expired approval). Odoo binds the request to
        its server too (file_request, consume); here ``remote_requests`` says which request
        answers this server's call (NULL before v10: none)."""
        row = self.db.row(
            """SELECT remote_id, connection_binding FROM remote_requests
               WHERE tool = ? AND arguments_hash = ? AND principal = ? AND server = ?
                 AND reported = 0
               ORDER BY remote_id DESC LIMIT 1""",
            (tool, args_hash, principal, server),
        )
        if row is None:
            return None
        request = self.get_request(int(row["remote_id"]))
        if request is None or request.state in ("done", "failed", "cancelled"):
            self.mark_reported(row["remote_id"])  # history: the next call files anew
            return None
        # the connection this front-end filed it for (Odoo binds its own connections itself;
        # an upstream's behind a proxy only this front-end knows)
        return request.model_copy(
            update={"connection_binding": row["connection_binding"], "server": server}
        )

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
        """File in Odoo (which applies its own rules' expiry, approver group, quorum and
        bindings, not ``expires_in``, ``terms`` or ``also_bindings``; ``at_stake`` is not
        kept: Odoo shows the connections it holds itself); ``connection_binding`` is kept
        here, in ``remote_requests``; ``requester_persons`` and ``electorate`` are not: Odoo
        binds principals to its users and decides by its own groups itself. ``server`` is
        passed to Odoo, which binds the request to it: an identical call through another
        server gets a request of its own, and only a call through this server consumes this
        one; it is kept here too, in ``remote_requests``."""
        now = time.time() if now is None else now
        answer = _call(
            self.client,
            "mcp.approval.request",
            "file_request",
            tool=tool,
            arguments=arguments,
            principal=principal,
            reason=reason or "",
            server=server,
        )
        remote_id = int(answer["id"])
        with self.db.tx() as db:
            created = (
                db.execute(
                    """INSERT INTO remote_requests (remote_id, ref, tool, arguments_hash, principal,
                           created_at, connection_binding, server)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (remote_id) DO NOTHING""",
                    (
                        remote_id,
                        answer["ref"],
                        tool,
                        arguments_hash(arguments),
                        principal,
                        now,
                        connection_binding,
                        server,
                    ),
                ).rowcount
                > 0
            )
        request = self.get_request(remote_id)
        if request is None:
            raise ApprovalError(f"Odoo: request {answer['ref']} cannot be read back")
        bound = self.db.row("SELECT server FROM remote_requests WHERE remote_id = ?", (remote_id,))
        update = {"connection_binding": connection_binding, "server": bound and bound["server"]}
        return request.model_copy(update=update), created

    def consume(
        self,
        request_id: int,
        event: AuditEvent,
        now: float | None = None,
        *,
        arguments: dict[str, Any] | None = None,
    ) -> bool:
        row = self.db.row(
            "SELECT tool, arguments_hash, server FROM remote_requests WHERE remote_id = ?",
            (request_id,),
        )
        if row is None or row["server"] is None:
            return False  # filed before v10: bound to no server, used by no call
        self.connections.forget()  # consuming may remove a connection in Odoo
        call: dict[str, Any] = {
            "request_id": request_id,
            "tool": row["tool"],
            "arguments_hash": row["arguments_hash"],
            # Odoo consumes it only for a call through the server it was filed through
            "server": row["server"],
        }
        if row["tool"] == "odoo_connect":
            # Odoo (re)creates the connection from these, only if they hash to the approved call
            call["arguments"] = arguments
        answer = _call(self.client, "mcp.approval.request", "consume", **call)
        if not answer.get("ok"):
            log.info("Odoo did not consume request %s: %s", request_id, answer.get("message"))
            return False
        if row["tool"] == "odoo_connect" and isinstance(arguments, dict):
            self.connections.created_by_consume.add(
                tuple(arguments.get(key) for key in ("alias", "url", "db", "username"))
            )
        self.audit.append_audit(event)
        return True

    def mark_failed(self, request_id: int, note: str) -> None:
        # A removal that fails inside consume is marked failed by Odoo itself; this is the
        # approved call failing here, after the approval was consumed. It must not hide that
        # failure: if Odoo cannot take it, the failure stays in the audit (outcome failed).
        try:
            recorded = self.client.call(
                "mcp.approval.request", "report_failure", request_id=request_id, note=note
            )
        except OdooError as exc:
            recorded, note = False, f"{note} ({exc.message})"
        if not recorded:
            log.warning("Odoo did not record the failure of request %s: %s", request_id, note)

    def retire(self, request_id: int, note: str) -> None:
        """Odoo refuses to consume it under a changed rule and expires it itself: here it no
        longer answers for its call."""
        log.info("request %s no longer stands: %s", request_id, note)
        self.mark_reported(request_id)

    def mark_reported(self, request_id: int) -> None:
        with self.db.tx() as db:
            db.execute("UPDATE remote_requests SET reported = 1 WHERE remote_id = ?", (request_id,))


class OdooPins:
    """The tool catalog (PinPort): pinned locally, reported to Odoo
    (``mcp.tool.report_catalog``), and made Odoo's: a tool Odoo holds as changed is refused
    until a Manager accepts it in Odoo."""

    # Only Odoo's acceptance lifts a refusal; it arrives with the next catalog report.
    accepts_locally = False

    def __init__(self, client: OdooRpc, local: LocalPins):
        self.client = client
        self.local = local
        # Servers whose last catalog report failed, with the cause: their tools are refused.
        self._faults: dict[str, str] = {}

    def list_pinned(self, server: str | None = None) -> list[PinnedTool]:
        return self.local.list_pinned(server)

    def pin_tools(
        self,
        server: str,
        definitions: dict[str, tuple[str, dict[str, Any]]],
        now: float | None = None,
        *,
        accept_changes: bool = False,
    ) -> dict[str, PinnedTool]:
        pins = self.local.pin_tools(server, definitions, now, accept_changes=accept_changes)
        entries = [
            catalog_entry(definition, digest).model_dump(mode="json")
            for digest, definition in definitions.values()
        ]
        try:
            answer = self.client.call("mcp.tool", "report_catalog", server=server, tools=entries)
            if not isinstance(answer, dict) or not isinstance(answer.get("changed"), list):
                raise OdooError("protocol", "report_catalog returned no verdict")
        except OdooError as exc:
            message = f"the tool catalog cannot be reported to Odoo: {exc.message}"
            if self._faults.get(server) != message:
                log.error("%s", message)
            self._faults[server] = message
            return pins
        self._faults.pop(server, None)
        changed = set(answer["changed"]) if not accept_changes else set()
        held = answer.get("pinned") if isinstance(answer.get("pinned"), dict) else {}
        for name, (digest, definition) in definitions.items():
            if name in changed:
                pinned = held.get(name) or {}
                accepted = pinned.get("definition")
                if not isinstance(accepted, dict) or definition_hash(accepted) != pinned.get(
                    "definition_hash"
                ):
                    log.error("Odoo gave no valid accepted definition of %s; refusing it", name)
                    accepted = {"name": name, "description": "(withheld: definition changed)"}
                self.local.repin(
                    server,
                    name,
                    (definition_hash(accepted), accepted),
                    (digest, definition),
                )
            elif pins[name].changed:  # accepted in Odoo
                self.local.accept_pinned(server, name, "odoo")
        current = {pin.tool: pin for pin in self.local.list_pinned(server)}
        return {name: current[name] for name in definitions}

    def accept_hint(self, server: str, tool: str) -> str:
        return f"in Odoo under MCP Guard > Tool Catalog: {tool} of {server}, Accept"

    def catalog_unreported(self, server: str) -> str | None:
        return self._faults.get(server)


class AuditSpool(LocalAudit):
    """The audit trail (AuditPort) as a local spool: written here first, exported to Odoo by
    ``flush_audit``."""

    def __init__(self, db: Database, client: OdooRpc):
        super().__init__(db)
        self.client = client

    def flush_audit(self) -> int:
        """Send the spool to Odoo in order, in batches; returns how many were exported.
        Idempotent on each event's uuid, so a crash between send and mark loses nothing and
        duplicates nothing. A batch Odoo refuses is sent again event by event: an event Odoo
        refuses for good (older than it accepts, after a long outage) is kept here only
        (``exported = 2``, said in the log), so it cannot hold back every later event."""
        exported = 0
        while True:
            rows = self.db.rows(
                "SELECT * FROM audit WHERE exported = 0 ORDER BY id LIMIT ?", (AUDIT_BATCH,)
            )
            if not rows:
                return exported
            if len(rows) == 1:
                exported += self._send_one(rows[0])
                continue
            try:
                self.client.call("mcp.audit.log", "record_batch", events=_events(rows))
            except OdooError as exc:
                if exc.kind != "user":
                    raise
                exported += sum(self._send_one(row) for row in rows)
                continue
            self._mark(rows, AUDIT_EXPORTED)
            exported += len(rows)

    def _send_one(self, row: Any) -> int:
        try:
            self.client.call("mcp.audit.log", "record_batch", events=_events([row]))
        except OdooError as exc:
            # A clock ahead of Odoo's is waited out (the add-on's own wording); any other
            # refusal of this one event is for good: kept here only, and said.
            if exc.kind != "user" or "in the future" in exc.message:
                raise
            log.error(
                "audit event %s (%s, %s %s) refused by Odoo: %s; it is kept in the local spool "
                "only (odoo-mcp-guard audit tail)",
                row["uuid"],
                row["time"],
                row["outcome"],
                row["tool"],
                exc.message,
            )
            self._mark([row], AUDIT_REFUSED)
            return 0
        self._mark([row], AUDIT_EXPORTED)
        return 1

    def _mark(self, rows: list[Any], state: int) -> None:
        with self.db.tx() as db:
            db.executemany(
                "UPDATE audit SET exported = ? WHERE id = ?", [(state, row["id"]) for row in rows]
            )


AUDIT_EXPORTED, AUDIT_REFUSED = 1, 2
AUDIT_EVENT_KEYS = ("uuid", "time", "principal", "tool", "arguments_hash", "outcome", "detail")


def _events(rows: list[Any]) -> list[dict[str, Any]]:
    events = []
    for row in rows:
        event = {key: row[key] for key in AUDIT_EVENT_KEYS}
        if row["request_ref"]:
            event["request_ref"] = row["request_ref"]
        events.append(event)
    return events


class AuditFlusher:
    """Exports the audit spool to Odoo every ``interval`` seconds, in a background thread."""

    def __init__(self, spool: AuditSpool, *, interval: float = 1.0):
        self.spool = spool
        self.interval = interval
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="odoo-audit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, final_flush: bool = True) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if final_flush:
            self.flush_once()

    def flush_once(self) -> int:
        try:
            count = self.spool.flush_audit()
        except OdooError as exc:
            if exc.message != self.last_error:
                log.warning("audit kept in the local spool: %s", exc.message)
            self.last_error = exc.message
            return 0
        self.last_error = None
        return count

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush_once()
