"""The embedded store: one SQLite file (WAL) for connections, approval requests, audit and
rate-limit counters. Every write is one transaction, so a kill -9 leaves it consistent."""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from odoo_mcp_guard.engines import (
    MIGRATION,
    WHOLE_STORE,
    PostgresEngine,
    SqliteEngine,
    StoreError,
)
from odoo_mcp_guard.names import (
    check_approver,
    check_text,
    check_url,
    same_person,
)
from odoo_mcp_guard.policy_core import arguments_hash, redact, redact_text
from odoo_mcp_guard.ratelimit import Full, Limit

DB_FILENAME = "guard.sqlite3"
_REF_RE = re.compile(r"(?i)MCPR-0*(\d{1,12})")

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
    protocol: Literal["xmlrpc", "jsonrpc"] = "xmlrpc"
    verify_ssl: bool = True

    # Every way in (odoo_connect, connections import) builds a Connection: one check for all.
    _url = field_validator("url")(check_url)

    @field_validator("db", "username")
    @classmethod
    def _text(cls, value: str, info: ValidationInfo) -> str:
        return check_text(value, info.field_name or "value")

    def public(self) -> dict[str, Any]:
        """What an agent or a listing may see: never a password, a key or URL credentials."""
        data = self.model_dump(exclude={"password", "api_key"})
        data["has_password"] = bool(self.password)
        data["has_api_key"] = bool(self.api_key)
        return redact(data)


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

    # Redacted whenever a request is built, so rows stored before the rule was widened are
    # shown redacted too (redaction is idempotent).
    @field_validator("arguments")
    @classmethod
    def _redact_arguments(cls, value: dict[str, Any]) -> dict[str, Any]:
        return redact(value)

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


def utc_iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_SCHEMA_V1 = """
CREATE TABLE connections (
    alias TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    db TEXT NOT NULL,
    username TEXT NOT NULL,
    password TEXT,
    api_key TEXT,
    protocol TEXT NOT NULL,
    verify_ssl INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE approval_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ref TEXT UNIQUE,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    arguments_hash TEXT NOT NULL,
    principal TEXT NOT NULL,
    reason TEXT,
    state TEXT NOT NULL CHECK (state IN
        ('pending','approved','rejected','cancelled','expired','done','failed')),
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    expires_in INTEGER NOT NULL,
    decided_by TEXT,
    decided_at REAL,
    decision_note TEXT,
    consumed_at REAL,
    result_note TEXT,
    reported INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX approval_requests_call ON approval_requests (tool, arguments_hash, principal, state);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    time TEXT NOT NULL,
    principal TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments_hash TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    request_ref TEXT
);
CREATE TABLE rate_events (
    principal TEXT NOT NULL,
    tool TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX rate_events_key ON rate_events (principal, tool, at);
"""

# v2: the Odoo backend keeps its audit spool in ``audit`` (``exported`` once Odoo stored it) and
# remembers which Odoo request answers which call.
_SCHEMA_V2 = """
ALTER TABLE audit ADD COLUMN exported INTEGER NOT NULL DEFAULT 0;
CREATE INDEX audit_unexported ON audit (exported, id);
CREATE TABLE remote_requests (
    remote_id INTEGER PRIMARY KEY,
    ref TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments_hash TEXT NOT NULL,
    principal TEXT NOT NULL,
    reported INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX remote_requests_call ON remote_requests (tool, arguments_hash, principal);
"""

# v3: tool-definition pinning for the proxy (both backends keep it here): the accepted
# definition of each upstream tool, and a changed one waiting for a Manager's acceptance.
_SCHEMA_V3 = """
CREATE TABLE pinned_tools (
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    definition TEXT NOT NULL,
    first_seen REAL NOT NULL,
    accepted_at REAL NOT NULL,
    accepted_by TEXT,
    pending_hash TEXT,
    pending_definition TEXT,
    pending_since REAL,
    PRIMARY KEY (server, tool)
);
"""

# Versioned migrations, applied in order in one transaction (SQLite: PRAGMA user_version;
# PostgreSQL: the guard_schema_version table, under an advisory lock). Written in SQLite's
# dialect with upper-case type names; engines.PostgresEngine.ddl translates them.
MIGRATIONS: list[str] = [_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3]

# A request in one of these states still speaks for its call; the others are history.
_OPEN_STATES = ("pending", "approved", "rejected", "expired")


def builtin_data_dir() -> Path:
    """The data directory when nothing names one: what a shell on this host finds too."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "odoo-mcp-guard"


def default_data_dir() -> Path:
    configured = os.environ.get("MCP_GUARD_DATA_DIR")
    if configured:
        return Path(configured).expanduser()
    return builtin_data_dir()


class Store:
    """The guard's store, on SQLite (a file; safe to share between the server and CLI
    processes: WAL, busy timeout) or PostgreSQL (one database for several replicas).
    The engine (engines.py) supplies only what differs between the two."""

    def __init__(self, location: Path | SqliteEngine | PostgresEngine):
        if not isinstance(location, SqliteEngine | PostgresEngine):
            location = SqliteEngine(Path(location))
        self.engine = location
        self.path = location.path  # the SQLite file (None on PostgreSQL)
        self._lock = threading.RLock()
        try:
            self._db: Any = location.connect()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the guard store {location.location}: {exc}") from None
        try:
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"cannot open the guard store {location.location}: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def open(cls, data_dir: Path, database_url: str | None = None) -> Store:
        """The SQLite file in ``data_dir``, or the PostgreSQL database at ``database_url``."""
        if database_url:
            return cls(PostgresEngine(database_url))
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(
                f"cannot create the data directory {data_dir}: {exc.strerror}"
            ) from None
        path = data_dir / DB_FILENAME
        try:
            if not path.exists():
                # Connection secrets live here: readable by the owner only.
                path.touch(mode=0o600)
        except OSError as exc:
            raise StoreError(f"cannot create the guard store {path}: {exc.strerror}") from None
        return cls(path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self, lock: tuple[Any, ...] | None = WHOLE_STORE) -> Iterator[Any]:
        """One write transaction, taken before any read so that decisions are serialised.

        SQLite serialises every write transaction (BEGIN IMMEDIATE). On PostgreSQL ``lock``
        names what is serialised (an advisory lock): by default the whole store, a narrower
        key where only one call or counter is at stake, or None where the transaction is
        one atomic statement (row locks do the rest)."""
        with self._lock:
            self.engine.begin(self._db, lock)
            try:
                yield self._db
            except BaseException:
                self.engine.rollback(self._db)
                raise
            else:
                self.engine.commit(self._db)

    def _migrate(self) -> None:
        """Bring the schema to the newest version; idempotent, and serialised between
        processes that open the store at once."""
        with self._tx(MIGRATION) as db:
            version = self.engine.schema_version(db)
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"{self.engine.location} has schema version {version}, newer than this "
                    "guard knows"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(self.engine.ddl(statement))
                self.engine.set_schema_version(db, number)

    # --- connections -------------------------------------------------------------------

    @staticmethod
    def _connection(row: sqlite3.Row) -> Connection:
        # Validated when it came in; a row stored before a check existed is still listed
        # (the CLI escapes what it prints) rather than making the whole listing fail.
        return Connection.model_construct(
            alias=row["alias"],
            url=row["url"],
            db=row["db"],
            username=row["username"],
            password=row["password"],
            api_key=row["api_key"],
            protocol=row["protocol"],
            verify_ssl=bool(row["verify_ssl"]),
        )

    def list_connections(self) -> list[Connection]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM connections ORDER BY alias").fetchall()
        return [self._connection(row) for row in rows]

    def get_connection(self, alias: str) -> Connection | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM connections WHERE alias = ?", (alias,)).fetchone()
        return self._connection(row) if row else None

    def add_connection(self, conn: Connection, *, replace: bool = False) -> bool:
        """Create the connection if its alias is free: True if it was created. An existing
        alias is left as it is (False), unless ``replace``: a replacement removes the old
        connection, so only a call the gate judged as a replacement may ask for it.

        The check and the write are one statement in one transaction (serialised per alias):
        of concurrent creations of one alias, on any replica, exactly one wins."""
        now = time.time()
        values = (
            conn.alias,
            conn.url,
            conn.db,
            conn.username,
            conn.password,
            conn.api_key,
            conn.protocol,
            int(conn.verify_ssl),
            now,
            now,
        )
        insert = """INSERT INTO connections (alias, url, db, username, password, api_key,
                        protocol, verify_ssl, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
        with self._tx(("connection", conn.alias)) as db:
            if not replace:
                return db.execute(insert + " ON CONFLICT (alias) DO NOTHING", values).rowcount > 0
            existed = db.execute(
                "SELECT 1 FROM connections WHERE alias = ?" + self.engine.for_update, (conn.alias,)
            ).fetchone()
            db.execute(
                insert
                + """ ON CONFLICT (alias) DO UPDATE SET url = excluded.url, db = excluded.db,
                       username = excluded.username, password = excluded.password,
                       api_key = excluded.api_key, protocol = excluded.protocol,
                       verify_ssl = excluded.verify_ssl, updated_at = excluded.updated_at""",
                values,
            )
        return existed is None

    def remove_connection(self, alias: str) -> bool:
        with self._tx(None) as db:
            return db.execute("DELETE FROM connections WHERE alias = ?", (alias,)).rowcount > 0

    # --- approval requests -----------------------------------------------------------

    @staticmethod
    def _request(row: sqlite3.Row) -> ApprovalRequest:
        data = dict(row)
        data["arguments"] = json.loads(data["arguments"])
        data.pop("reported", None)
        return ApprovalRequest(**data)

    def get_request(self, key: int | str) -> ApprovalRequest | None:
        """By id (an int or digits) or by reference (MCPR-00001)."""
        with self._lock:
            if isinstance(key, int) or str(key).isdigit():
                row = self._db.execute(
                    "SELECT * FROM approval_requests WHERE id = ?", (int(key),)
                ).fetchone()
            else:
                # MCPR-1 and mcpr-00001 name the request MCPR-00001.
                ref = _REF_RE.fullmatch(str(key).strip())
                wanted = f"MCPR-{int(ref[1]):05d}" if ref else str(key).upper()
                row = self._db.execute(
                    "SELECT * FROM approval_requests WHERE ref = ?", (wanted,)
                ).fetchone()
        return self._request(row) if row else None

    def list_requests(self, state: str | None = None, limit: int = 200) -> list[ApprovalRequest]:
        with self._lock:
            if state:
                rows = self._db.execute(
                    "SELECT * FROM approval_requests WHERE state = ? ORDER BY id DESC LIMIT ?",
                    (state, limit),
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT * FROM approval_requests ORDER BY id DESC LIMIT ?", (limit,)
                ).fetchall()
        return [self._request(row) for row in rows]

    def open_request(self, tool: str, args_hash: str, principal: str) -> ApprovalRequest | None:
        """The newest request that still answers for this exact call, if any."""
        placeholders = ",".join("?" * len(_OPEN_STATES))
        with self._lock:
            row = self._db.execute(
                f"""SELECT * FROM approval_requests
                    WHERE tool = ? AND arguments_hash = ? AND principal = ? AND reported = 0
                      AND state IN ({placeholders})
                    ORDER BY id DESC LIMIT 1""",
                (tool, args_hash, principal, *_OPEN_STATES),
            ).fetchone()
        return self._request(row) if row else None

    def file_request(
        self,
        tool: str,
        arguments: dict[str, Any],
        principal: str,
        reason: str | None,
        expires_in: int,
        now: float | None = None,
    ) -> tuple[ApprovalRequest, bool]:
        """File a request for this call, or return the pending one; True if filed now."""
        now = time.time() if now is None else now
        args_hash = arguments_hash(arguments)
        with self._tx(("call", tool, args_hash, principal)) as db:
            row = db.execute(
                """SELECT id FROM approval_requests
                   WHERE tool = ? AND arguments_hash = ? AND principal = ? AND state = 'pending'
                     AND expires_at > ? ORDER BY id DESC LIMIT 1""",
                (tool, args_hash, principal, now),
            ).fetchone()
            if row:
                request_id, created = row["id"], False
            else:
                request_id = db.execute(
                    """INSERT INTO approval_requests (tool, arguments, arguments_hash, principal,
                           reason, state, created_at, expires_at, expires_in)
                       VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?) RETURNING id""",
                    (
                        tool,
                        json.dumps(redact(arguments), ensure_ascii=False),
                        args_hash,
                        principal,
                        reason,
                        now,
                        now + expires_in,
                        expires_in,
                    ),
                ).fetchone()["id"]
                db.execute(
                    "UPDATE approval_requests SET ref = ? WHERE id = ?",
                    (f"MCPR-{request_id:05d}", request_id),
                )
                created = True
        request = self.get_request(request_id)
        assert request is not None
        return request, created

    def decide(
        self,
        key: int | str,
        *,
        approve: bool,
        approver: str,
        note: str | None = None,
        now: float | None = None,
    ) -> ApprovalRequest:
        """Approve or reject a pending request. The approver must not be the requester."""
        now = time.time() if now is None else now
        approver = approver.strip()
        if not approver:
            raise ApprovalError("an approver name is required")
        problem = check_approver(approver)
        if problem is not None:
            raise ApprovalError(f"approver name refused: {problem}")
        request = self.get_request(key)
        if request is None:
            raise ApprovalError(f"no approval request {key}")
        with self._tx(None) as db:
            row = db.execute(
                """SELECT state, principal, expires_at, expires_in FROM approval_requests
                   WHERE id = ?"""
                + self.engine.for_update,
                (request.id,),
            ).fetchone()
            if row["state"] != "pending":
                raise ApprovalError(f"{request.ref} is {row['state']}, not pending")
            unreadable = check_approver(row["principal"])
            if unreadable is not None:
                # Fail closed: a requester whose name is not a person's ("x:alice", unreadable)
                # cannot be told apart from the approver.
                raise ApprovalError(
                    f"{request.ref} was filed under a name that cannot be compared "
                    f"({unreadable}): it cannot be approved or rejected"
                )
            if same_person(approver, row["principal"]):
                raise ApprovalError(
                    f"{request.ref} was requested by {row['principal']}: "
                    "the requester cannot approve or reject their own request"
                )
            if row["expires_at"] <= now:
                db.execute(
                    "UPDATE approval_requests SET state = 'expired' WHERE id = ?", (request.id,)
                )
                expired = True
            else:
                expired = False
                # An approval is valid for expires_in from the moment it is given.
                db.execute(
                    """UPDATE approval_requests SET state = ?, decided_by = ?, decided_at = ?,
                           decision_note = ?, expires_at = ?
                       WHERE id = ? AND state = 'pending'""",
                    (
                        "approved" if approve else "rejected",
                        approver,
                        now,
                        note,
                        now + row["expires_in"] if approve else row["expires_at"],
                        request.id,
                    ),
                )
        if expired:
            raise ApprovalError(f"{request.ref} expired before it was decided")
        decided = self.get_request(request.id)
        assert decided is not None
        return decided

    def cancel_request(self, key: int | str) -> ApprovalRequest:
        request = self.get_request(key)
        if request is None:
            raise ApprovalError(f"no approval request {key}")
        with self._tx(None) as db:
            changed = db.execute(
                """UPDATE approval_requests SET state = 'cancelled'
                   WHERE id = ? AND state IN ('pending', 'approved')""",
                (request.id,),
            ).rowcount
        if not changed:
            raise ApprovalError(f"{request.ref} is {request.state}: it cannot be cancelled")
        return self.get_request(request.id)  # type: ignore[return-value]

    def consume(
        self,
        request_id: int,
        event: AuditEvent,
        now: float | None = None,
        *,
        arguments: dict[str, Any] | None = None,
    ) -> bool:
        """Use an approval once: one atomic state change, audited in the same transaction.
        False if it was not (or no longer) approved and valid. ``arguments`` (the approved
        call's) serve a backend that carries the call out itself (OdooStore's odoo_connect);
        here the guard runs the very call it hashed."""
        now = time.time() if now is None else now
        with self._tx(None) as db:
            row = db.execute(
                """UPDATE approval_requests SET state = 'done', consumed_at = ?
                   WHERE id = ? AND state = 'approved' AND expires_at > ? RETURNING id""",
                (now, request_id, now),
            ).fetchone()
            if row is None:
                return False
            self._insert_audit(db, event)
        return True

    def mark_failed(self, request_id: int, note: str) -> None:
        with self._tx(None) as db:
            db.execute(
                "UPDATE approval_requests SET state = 'failed', result_note = ? WHERE id = ?",
                (redact_text(note), request_id),
            )

    def mark_reported(self, request_id: int) -> None:
        """A rejection or expiry has been told to the agent; the next call files anew."""
        with self._tx(None) as db:
            db.execute("UPDATE approval_requests SET reported = 1 WHERE id = ?", (request_id,))

    def expire_stale(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._tx(None) as db:
            return db.execute(
                """UPDATE approval_requests SET state = 'expired'
                   WHERE state IN ('pending', 'approved') AND expires_at <= ?""",
                (now,),
            ).rowcount

    # --- audit -----------------------------------------------------------------------

    @staticmethod
    def _insert_audit(db: sqlite3.Connection, event: AuditEvent) -> None:
        db.execute(
            """INSERT INTO audit (uuid, time, principal, tool, arguments_hash, outcome, detail,
                   request_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (uuid) DO NOTHING""",
            (
                event.uuid,
                event.time,
                event.principal,
                event.tool,
                event.arguments_hash,
                event.outcome,
                event.detail,
                event.request_ref,
            ),
        )

    def append_audit(self, event: AuditEvent) -> None:
        """Write one audit event; raises if it cannot be stored (never dropped silently)."""
        with self._tx(None) as db:
            self._insert_audit(db, event)

    def audit_tail(self, limit: int = 20) -> list[AuditEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [
            AuditEvent(**{k: v for k, v in dict(row).items() if k != "id"})
            for row in reversed(rows)
        ]

    def audit_count(self, outcome: str | None = None) -> int:
        with self._lock:
            if outcome:
                return self._db.execute(
                    "SELECT count(*) FROM audit WHERE outcome = ?", (outcome,)
                ).fetchone()[0]
            return self._db.execute("SELECT count(*) FROM audit").fetchone()[0]

    # --- pinned tool definitions (proxy) ----------------------------------------------

    @staticmethod
    def _pinned(row: sqlite3.Row) -> PinnedTool:
        data = dict(row)
        data["definition"] = json.loads(data["definition"])
        if data["pending_definition"] is not None:
            data["pending_definition"] = json.loads(data["pending_definition"])
        return PinnedTool(**data)

    def pin_tools(
        self,
        server: str,
        definitions: dict[str, tuple[str, dict[str, Any]]],
        now: float | None = None,
        *,
        accept_changes: bool = False,
    ) -> dict[str, PinnedTool]:
        """Record what a server serves now: ``{tool: (hash, definition)}``.

        A tool seen for the first time is pinned as it is; a tool whose definition differs
        from the pinned one keeps its pinned definition and gets the new one as pending
        (until ``accept_pinned``); a tool back at its pinned definition loses any pending one.
        ``accept_changes`` pins changed definitions at once (the guard's own tools).
        One transaction. Returns the pins of the given tools."""
        now = time.time() if now is None else now
        with self._tx() as db:
            for tool, (digest, definition) in definitions.items():
                text = json.dumps(definition, sort_keys=True, ensure_ascii=False)
                row = db.execute(
                    "SELECT definition_hash, pending_hash FROM pinned_tools "
                    "WHERE server = ? AND tool = ?",
                    (server, tool),
                ).fetchone()
                if row is None:
                    db.execute(
                        """INSERT INTO pinned_tools (server, tool, definition_hash, definition,
                               first_seen, accepted_at) VALUES (?, ?, ?, ?, ?, ?)""",
                        (server, tool, digest, text, now, now),
                    )
                elif accept_changes and row["definition_hash"] != digest:
                    db.execute(
                        """UPDATE pinned_tools SET definition_hash = ?, definition = ?,
                               accepted_at = ?, accepted_by = NULL, pending_hash = NULL,
                               pending_definition = NULL, pending_since = NULL
                           WHERE server = ? AND tool = ?""",
                        (digest, text, now, server, tool),
                    )
                elif row["definition_hash"] == digest:
                    if row["pending_hash"] is not None:
                        db.execute(
                            """UPDATE pinned_tools SET pending_hash = NULL,
                                   pending_definition = NULL, pending_since = NULL
                               WHERE server = ? AND tool = ?""",
                            (server, tool),
                        )
                elif row["pending_hash"] != digest:
                    db.execute(
                        """UPDATE pinned_tools SET pending_hash = ?, pending_definition = ?,
                               pending_since = ? WHERE server = ? AND tool = ?""",
                        (digest, text, now, server, tool),
                    )
        pins = {pin.tool: pin for pin in self.list_pinned(server)}
        return {tool: pins[tool] for tool in definitions}

    def repin(
        self,
        server: str,
        tool: str,
        pinned: tuple[str, dict[str, Any]],
        pending: tuple[str, dict[str, Any]] | None,
        now: float | None = None,
    ) -> None:
        """Make this store's pin of a tool the one an authority (Odoo) holds: ``pinned`` is
        the accepted ``(hash, definition)``, ``pending`` the changed one awaiting acceptance."""
        now = time.time() if now is None else now
        pinned_text = json.dumps(pinned[1], sort_keys=True, ensure_ascii=False)
        pending_hash, pending_text = None, None
        if pending is not None:
            pending_hash = pending[0]
            pending_text = json.dumps(pending[1], sort_keys=True, ensure_ascii=False)
        with self._tx() as db:
            row = db.execute(
                "SELECT pending_hash, pending_since FROM pinned_tools "
                "WHERE server = ? AND tool = ?",
                (server, tool),
            ).fetchone()
            if row is None:
                return
            since = None
            if pending_hash is not None:
                same = row["pending_hash"] == pending_hash and row["pending_since"] is not None
                since = row["pending_since"] if same else now
            db.execute(
                """UPDATE pinned_tools SET definition_hash = ?, definition = ?,
                       pending_hash = ?, pending_definition = ?, pending_since = ?
                   WHERE server = ? AND tool = ?""",
                (pinned[0], pinned_text, pending_hash, pending_text, since, server, tool),
            )

    # Whether ``accept_pinned`` on this store lifts a refusal (not where Odoo decides).
    accepts_locally = True

    def accept_hint(self, server: str, tool: str) -> str:
        """Where a Manager accepts a tool's changed definition."""
        command = f"odoo-mcp-guard tools accept {tool} --server {shlex.quote(server)}"
        return f"`{command}` on the guard's host"

    def catalog_unreported(self, server: str) -> str | None:
        """Why ``server``'s catalog is not where it must be (Odoo); None: it is."""
        return None

    def list_pinned(self, server: str | None = None) -> list[PinnedTool]:
        with self._lock:
            if server is None:
                rows = self._db.execute(
                    "SELECT * FROM pinned_tools ORDER BY server, tool"
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT * FROM pinned_tools WHERE server = ? ORDER BY tool", (server,)
                ).fetchall()
        return [self._pinned(row) for row in rows]

    def accept_pinned(
        self, server: str, tool: str, accepted_by: str, now: float | None = None
    ) -> PinnedTool:
        """Make a tool's pending (changed) definition the pinned one."""
        now = time.time() if now is None else now
        with self._tx() as db:
            row = db.execute(
                "SELECT pending_hash FROM pinned_tools WHERE server = ? AND tool = ?",
                (server, tool),
            ).fetchone()
            if row is None:
                raise ApprovalError(f"no pinned tool {tool!r} for server {server!r}")
            if row["pending_hash"] is None:
                raise ApprovalError(f"{tool!r} of {server!r} has no changed definition to accept")
            db.execute(
                """UPDATE pinned_tools SET definition_hash = pending_hash,
                       definition = pending_definition, accepted_at = ?, accepted_by = ?,
                       pending_hash = NULL, pending_definition = NULL, pending_since = NULL
                   WHERE server = ? AND tool = ?""",
                (now, accepted_by, server, tool),
            )
        return next(pin for pin in self.list_pinned(server) if pin.tool == tool)

    # --- rate limits -----------------------------------------------------------------

    def hit_rate_limit(
        self, principal: str, tool: str, max_calls: int, window: float, now: float | None = None
    ) -> float | None:
        """Count one call in the sliding window. None if it may pass, else seconds to wait."""
        now = time.time() if now is None else now
        full = self.hit_rate_limits(principal, [Limit(tool, max_calls, window)], now)
        return None if full is None else full.wait

    def hit_rate_limits(self, principal: str, limits: Sequence[Limit], now: float) -> Full | None:
        """Count one call in every limit's window if each has room, else in none (one
        transaction): None, or the first full limit and the seconds it needs."""
        with self._tx(("rate", principal)) as db:
            for limit in limits:
                db.execute(
                    "DELETE FROM rate_events WHERE principal = ? AND tool = ? AND at <= ?",
                    (principal, limit.tool, now - limit.window),
                )
                rows = db.execute(
                    """SELECT at FROM rate_events WHERE principal = ? AND tool = ?
                       ORDER BY at LIMIT ?""",
                    (principal, limit.tool, limit.max_calls),
                ).fetchall()
                if len(rows) >= limit.max_calls:
                    return Full(limit, max(rows[0]["at"] + limit.window - now, 0.001))
            for limit in limits:
                db.execute(
                    "INSERT INTO rate_events (principal, tool, at) VALUES (?, ?, ?)",
                    (principal, limit.tool, now),
                )
        return None

    def integrity_check(self) -> str:
        with self._lock:
            return self.engine.integrity_check(self._db)


def data_to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
