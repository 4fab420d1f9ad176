"""The one database layer under every store port: ``Database`` (one connection, its lock,
write transactions, the schema migrations) over one of two engines: the embedded SQLite file
(the default) or a shared PostgreSQL database (``MCP_GUARD_DATABASE_URL``, for several
replicas).

The ports (stores/local.py, and the Odoo backend's local part) all run their SQL through a
``Database``; an engine supplies just what differs between the two: the connection, the
placeholder style (``?`` is translated to ``%s``), how a write transaction starts and what
it serialises, where the schema version is kept, the integrity check, and a mechanical
translation of the SQLite DDL in ``MIGRATIONS``, so that a migration appended later runs on
both engines unchanged.

Write transactions: SQLite's ``BEGIN IMMEDIATE`` serialises every writer of the file. On
PostgreSQL a transaction takes a transaction-level advisory lock on the key the port names:
by default one key for the whole store (the same serialisation as SQLite, so a method added
later is safe without thinking about PostgreSQL), a narrower key (the call, the principal and
tool of a rate limit) on the hot paths, or none where one atomic statement decides (consuming
an approval is one ``UPDATE ... WHERE state = 'approved' ... RETURNING``)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from odoo_mcp_guard.settings import env_number

DATABASE_URL_ENV = "MCP_GUARD_DATABASE_URL"
# How long a SQLite store waits for another process's write lock before refusing the call.
STORE_BUSY_ENV = "MCP_GUARD_STORE_BUSY_SECONDS"

# Lock keys for ``Database.tx``: the whole store (the default), and the schema migration.
WHOLE_STORE: tuple[str, ...] = ("store",)
MIGRATION: tuple[str, ...] = ("migration",)


class StoreError(RuntimeError):
    """The store cannot be used (unreadable, locked, unreachable, not a guard database)."""


def configured_database_url() -> str | None:
    """The PostgreSQL URL from the environment, if one is set (else the SQLite file)."""
    return os.environ.get(DATABASE_URL_ENV) or None


class SqliteEngine:
    """One SQLite file (WAL): the default, for one process (and the CLI beside it)."""

    name = "sqlite"
    for_update = ""  # BEGIN IMMEDIATE already holds the write lock of the whole file

    def __init__(self, path: Path):
        self.path = path
        self.location = str(path)

    def connect(self) -> sqlite3.Connection:
        busy = env_number(STORE_BUSY_ENV, 30.0, low=0, high=3600)
        db = sqlite3.connect(self.path, timeout=busy, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        # Switching a new file to WAL is not covered by the busy timeout: several processes
        # opening it for the first time at once may get "database is locked"; try again.
        deadline = time.monotonic() + 30
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    db.close()
                    raise
                time.sleep(0.01)
        # WAL + NORMAL: a commit survives a killed process (kill -9 leaves the store
        # consistent and every acknowledged write in it); only a power cut may lose the
        # last commits, and then atomically. FULL would fsync every audit write.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @staticmethod
    def begin(db: sqlite3.Connection, lock: tuple[Any, ...] | None) -> None:
        db.execute("BEGIN IMMEDIATE")

    @staticmethod
    def commit(db: sqlite3.Connection) -> None:
        db.execute("COMMIT")

    @staticmethod
    def rollback(db: sqlite3.Connection) -> None:
        db.execute("ROLLBACK")

    @staticmethod
    def schema_version(db: sqlite3.Connection) -> int:
        return db.execute("PRAGMA user_version").fetchone()[0]

    @staticmethod
    def set_schema_version(db: sqlite3.Connection, version: int) -> None:
        db.execute(f"PRAGMA user_version = {int(version)}")

    @staticmethod
    def ddl(statement: str) -> str:
        return statement

    @staticmethod
    def integrity_check(db: sqlite3.Connection) -> str:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


# SQLite DDL → PostgreSQL, applied in order to every statement of MIGRATIONS. Type names are
# written in upper case there (lower-case identifiers are never touched).
_PG_DDL = [
    (re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"), "BIGSERIAL PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
]


def lock_id(key: tuple[Any, ...]) -> int:
    """A stable signed 64-bit advisory-lock id for a key."""
    digest = hashlib.sha256(json.dumps(key, default=str).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresEngine:
    """A PostgreSQL database shared by several replicas (psycopg2)."""

    name = "postgresql"
    for_update = " FOR UPDATE"

    def __init__(self, url: str):
        self.url = url
        self.path = None
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise StoreError(f"malformed database URL ({exc})") from None
        self._password = unquote(parts.password) if parts.password else None
        if parts.scheme not in ("postgresql", "postgres"):
            raise StoreError(
                "malformed database URL: expected postgresql://USER@HOST:PORT/DATABASE, "
                f"got scheme {parts.scheme or 'none'!r}"
            )
        self.user = unquote(parts.username) if parts.username else None
        host = parts.hostname or "localhost"
        where = f"{host}:{port}" if port else host
        user = f"{self.user}@" if self.user else ""
        self.location = f"{parts.scheme}://{user}{where}{parts.path}"

    def _clean(self, text: str) -> str:
        """One line, never the password."""
        line = " ".join(str(text).split())
        if self._password:
            line = line.replace(self._password, "***")
        return line

    def error(self, exc: Exception) -> StoreError:
        import psycopg2

        diag = getattr(exc, "diag", None)
        primary = getattr(diag, "message_primary", None) if diag is not None else None
        message = self._clean(primary or str(exc) or type(exc).__name__)
        if getattr(exc, "pgcode", None) == "42501":  # insufficient_privilege
            role = f"the role {self.user!r}" if self.user else "the database role"
            return StoreError(f"guard database {self.location}: {role} lacks rights: {message}")
        if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
            return StoreError(f"guard database {self.location} is unreachable: {message}")
        return StoreError(f"guard database {self.location}: {message}")

    def connect(self) -> PgConnection:
        return PgConnection(self)

    @staticmethod
    def begin(db: PgConnection, lock: tuple[Any, ...] | None) -> None:
        db.begin()
        if lock is not None:
            db.execute("SELECT pg_advisory_xact_lock(?)", (lock_id(lock),))

    @staticmethod
    def commit(db: PgConnection) -> None:
        db.end("COMMIT")

    @staticmethod
    def rollback(db: PgConnection) -> None:
        db.end("ROLLBACK")

    @staticmethod
    def schema_version(db: PgConnection) -> int:
        # Read before any CREATE, so that a role with data rights only can run a migrated store.
        present = db.execute("SELECT to_regclass('guard_schema_version') IS NOT NULL").fetchone()
        if not present[0]:
            db.execute("CREATE TABLE guard_schema_version (version INTEGER NOT NULL)")
            db.execute("INSERT INTO guard_schema_version (version) VALUES (0)")
            return 0
        return db.execute("SELECT version FROM guard_schema_version").fetchone()[0]

    @staticmethod
    def set_schema_version(db: PgConnection, version: int) -> None:
        db.execute("UPDATE guard_schema_version SET version = ?", (version,))

    @staticmethod
    def ddl(statement: str) -> str:
        for pattern, replacement in _PG_DDL:
            statement = pattern.sub(replacement, statement)
        return statement

    @staticmethod
    def integrity_check(db: PgConnection) -> str:
        db.execute("SELECT 1").fetchone()
        return "ok"


class PgConnection:
    """A psycopg2 connection that speaks like sqlite3's: ``execute(sql, params)`` with ``?``
    placeholders, rows readable by name and by index. Autocommit outside ``begin``/``end``;
    reconnects on the next use after the server went away. Every error is a one-line
    ``StoreError`` without the password."""

    def __init__(self, engine: PostgresEngine):
        self.engine = engine
        self._conn: Any = None
        self._in_tx = False
        self._open()

    def _open(self) -> None:
        import psycopg2

        try:
            conn = psycopg2.connect(
                self.engine.url, connect_timeout=10, application_name="odoo-mcp-guard"
            )
        except psycopg2.Error as exc:
            raise StoreError(
                f"cannot connect to the guard database {self.engine.location}: "
                f"{self.engine._clean(str(exc))}"
            ) from None
        conn.autocommit = True
        self._conn = conn

    @staticmethod
    def _translate(sql: str, has_params: bool) -> str:
        return sql.replace("%", "%%").replace("?", "%s") if has_params else sql

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        import psycopg2
        import psycopg2.extras

        try:
            if self._conn.closed and not self._in_tx:
                self._open()
            cursor = self._conn.cursor(cursor_factory=psycopg2.extras.DictCursor)
            cursor.execute(self._translate(sql, bool(params)), tuple(params) or None)
        except psycopg2.Error as exc:
            raise self.engine.error(exc) from None
        return cursor

    def begin(self) -> None:
        self.execute("BEGIN")
        self._in_tx = True

    def end(self, command: str) -> None:
        """COMMIT (an error is raised: the outcome is not known) or ROLLBACK (best effort:
        a lost connection has no transaction left, and is reopened on the next use)."""
        try:
            self.execute(command)
        except StoreError:
            if command == "COMMIT":
                raise
            self.close()
        finally:
            self._in_tx = False

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()


def postgres_store_exists(engine: PostgresEngine) -> bool:
    """Whether the database holds a guard store (its schema table, as ``schema_version``
    looks for it); reads only, creates nothing."""
    db = engine.connect()
    try:
        found = db.execute("SELECT to_regclass('guard_schema_version') IS NOT NULL").fetchone()
    finally:
        db.close()
    return bool(found[0])


def sqlite_store_exists(path: Path) -> bool:
    """Whether ``path`` holds a guard store: a schema version and the guard's tables (a 0-byte
    file or another program's database has neither). Opened read-only: creates and changes
    nothing. A file SQLite cannot read counts as a store, so that opening it says why."""
    if not path.is_file():
        return False
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return True
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'approval_requests'"
        ).fetchone()[0]
    except sqlite3.Error:
        return True
    finally:
        db.close()
    return version > 0 and tables > 0


Engine = SqliteEngine | PostgresEngine


class Database:
    """One open guard database, shared by the ports over it (connections, approvals, audit,
    pinned tools, rate counters): one connection and one lock per process, write transactions
    taken before any read, and the schema brought to the newest version on open."""

    def __init__(self, engine: Engine, migrations: list[str]):
        self.engine = engine
        self.path = engine.path  # the SQLite file (None on PostgreSQL)
        self.location = engine.location
        self._lock = threading.RLock()
        try:
            self._db: Any = engine.connect()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the guard store {engine.location}: {exc}") from None
        try:
            self._migrate(migrations)  # SQLite's errors arrive as StoreError (_sqlite_errors)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def tx(self, lock: tuple[Any, ...] | None = WHOLE_STORE) -> Iterator[Any]:
        """One write transaction, taken before any read so that decisions are serialised.

        SQLite serialises every write transaction (BEGIN IMMEDIATE). On PostgreSQL ``lock``
        names what is serialised (an advisory lock): by default the whole store, a narrower
        key where only one call or counter is at stake, or None where the transaction is
        one atomic statement (row locks do the rest)."""
        with self._lock, self._sqlite_errors():
            self.engine.begin(self._db, lock)
            try:
                yield self._db
            except BaseException:
                self.engine.rollback(self._db)
                raise
            else:
                self.engine.commit(self._db)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """A read outside any write transaction."""
        with self._lock, self._sqlite_errors():
            return self._db.execute(sql, params).fetchall()

    def row(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self._lock, self._sqlite_errors():
            return self._db.execute(sql, params).fetchone()

    @contextmanager
    def _sqlite_errors(self) -> Iterator[None]:
        """SQLite's errors (a file locked by another process past the busy timeout, a disk
        full, a file that is no database) as the one-line StoreError the guard refuses
        with, as PgConnection does for PostgreSQL's."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"guard store {self.location}: {exc}") from None

    def integrity_check(self) -> str:
        with self._lock:
            return self.engine.integrity_check(self._db)

    def _migrate(self, migrations: list[str]) -> None:
        """Bring the schema to the newest version; idempotent, and serialised between
        processes that open the database at once."""
        with self.tx(MIGRATION) as db:
            version = self.engine.schema_version(db)
            if version > len(migrations):
                raise StoreError(
                    f"{self.engine.location} has schema version {version}, newer than this "
                    "guard knows"
                )
            for number, script in enumerate(migrations[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(self.engine.ddl(statement))
                self.engine.set_schema_version(db, number)
