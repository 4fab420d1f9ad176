"""Short leases in the shared store: one holder at a time for a key, across replicas.

A proxy replica holds the lease of an upstream's connections while it checks whether a
connection upsert is new and forwards it (DESIGN invariants 10 and 11): another replica
sharing the store cannot judge the same alias "new" in between. A lease is taken with one
atomic statement (``INSERT ... ON CONFLICT DO NOTHING``, or taking over an expired lease
with one conditional ``UPDATE``), released when the holder is done, and left to expire when
the holder cannot know what happened (the upstream's answer is in doubt, the process died).

Under that lease, the replicas also keep what they have seen of the upstream's connections
(``guard_upstream_aliases``): every alias a replica's upstream listed, or that a replica's
change created, until a replica removes it. Replicas in front of upstream processes that
share their data (several odoo-claude-mcp on one data directory) each see their own
process's view, loaded at its start: an alias known here but absent from one upstream's
listing says that upstream's view is stale, and it can then tell nothing "new".

Each alias also has a generation (``guard_alias_generations``), never deleted: bumped by every
addition, replacement or removal of that alias the guard lets through (on any replica), and
whenever a replica sees the upstream list the alias differently from the last time it was
seen. An approval request filed behind the proxy is bound to the alias's generation as well as
to what the listing said of it: a connection removed and added again with the same values (ABA)
is another generation, and the approval given for the first does not answer for it
(invariant 14).

The tables live beside the store's own tables on the same engine (engines.py) but are the
lease module's alone: they are created here if absent, so the store's migrations are
untouched.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from odoo_mcp_guard.engines import PostgresEngine, SqliteEngine

_TABLE = """CREATE TABLE IF NOT EXISTS guard_leases (
    key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
)"""
_ALIASES = """CREATE TABLE IF NOT EXISTS guard_upstream_aliases (
    key TEXT NOT NULL,
    alias TEXT NOT NULL,
    PRIMARY KEY (key, alias)
)"""
_GENERATIONS = """CREATE TABLE IF NOT EXISTS guard_alias_generations (
    key TEXT NOT NULL,
    alias TEXT NOT NULL,
    generation INTEGER NOT NULL,
    listed TEXT NOT NULL,
    PRIMARY KEY (key, alias)
)"""

# What a change let through leaves as the alias's last-seen listing: never an identity, so the
# next listing is recorded (and bumps once more, before any request can be bound to it).
_CHANGED = "changed"


def differs(recorded: str | None, now: str) -> bool:
    """Whether a listing showing an alias as ``now`` contradicts the record's ``recorded``:
    the alias is listed, and the record holds what was seen of it (values, or its absence),
    not a change whose outcome was not listed yet (nor nothing: an alias never seen)."""
    return bool(now) and recorded is not None and recorded != _CHANGED and recorded != now


class Leases:
    """Leases on one engine (the store's), through a connection of their own."""

    def __init__(self, engine: SqliteEngine | PostgresEngine):
        self.engine = engine
        self._lock = threading.Lock()
        self._db: Any = engine.connect()
        # In one transaction under one lock: replicas opening the record at the same moment
        # would otherwise race PostgreSQL's CREATE TABLE IF NOT EXISTS (a unique violation on
        # pg_type for the loser, whose call then read "backend unavailable").
        engine.begin(self._db, ("guard_leases", "schema"))
        try:
            for statement in (_TABLE, _ALIASES, _GENERATIONS):
                self._db.execute(engine.ddl(statement))
        except BaseException:
            engine.rollback(self._db)
            self._db.close()
            raise
        engine.commit(self._db)

    def acquire(self, key: str, now: float, ttl: float) -> str | None:
        """A holder token when the lease on ``key`` was free or expired, else None."""
        holder = secrets.token_hex(16)
        expires = now + ttl
        with self._lock:
            inserted = self._db.execute(
                "INSERT INTO guard_leases (key, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING",
                (key, holder, expires),
            ).rowcount
            if inserted == 1:
                return holder
            taken = self._db.execute(
                "UPDATE guard_leases SET holder = ?, expires_at = ? "
                "WHERE key = ? AND expires_at <= ?",
                (holder, expires, key, now),
            ).rowcount
        return holder if taken == 1 else None

    def release(self, key: str, holder: str) -> None:
        """Give the lease back (only its holder can; an expired and retaken one stays)."""
        with self._lock:
            self._db.execute("DELETE FROM guard_leases WHERE key = ? AND holder = ?", (key, holder))

    def known_aliases(self, key: str) -> set[str]:
        """The aliases any replica has seen upstream under ``key`` and none has removed."""
        with self._lock:
            rows = self._db.execute(
                "SELECT alias FROM guard_upstream_aliases WHERE key = ?", (key,)
            ).fetchall()
        return {row[0] for row in rows}

    def saw_aliases(self, key: str, aliases: set[str]) -> None:
        """Remember aliases seen upstream (listed, or created through a replica)."""
        with self._lock:
            for alias in sorted(aliases):
                self._db.execute(
                    "INSERT INTO guard_upstream_aliases (key, alias) VALUES (?, ?) "
                    "ON CONFLICT (key, alias) DO NOTHING",
                    (key, alias),
                )

    def removed_alias(self, key: str, alias: str) -> None:
        """An alias a replica removed upstream."""
        with self._lock:
            self._db.execute(
                "DELETE FROM guard_upstream_aliases WHERE key = ? AND alias = ?", (key, alias)
            )

    def generations(self, key: str) -> dict[str, int]:
        """The generation of every alias recorded under ``key`` (one absent: 0, never
        changed nor seen)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT alias, generation FROM guard_alias_generations WHERE key = ?", (key,)
            ).fetchall()
        return {row[0]: int(row[1]) for row in rows}

    def bump(self, key: str, aliases: set[str] | None) -> None:
        """A new generation for each of ``aliases`` (None: every alias ever recorded under
        ``key``): the guard let a change of it through."""
        with self._lock:
            if aliases is None:
                self._db.execute(
                    "UPDATE guard_alias_generations SET generation = generation + 1 WHERE key = ?",
                    (key,),
                )
                return
            for alias in sorted(aliases):
                self._db.execute(
                    "INSERT INTO guard_alias_generations (key, alias, generation, listed) "
                    "VALUES (?, ?, 1, ?) ON CONFLICT (key, alias) DO UPDATE SET "
                    "generation = guard_alias_generations.generation + 1, listed = ?",
                    (key, alias, _CHANGED, _CHANGED),
                )

    def observed(
        self,
        key: str,
        listing: dict[str, str],
        accept: bool = False,
        kept: frozenset[str] = frozenset(),
    ) -> dict[str, str]:
        """What an upstream's listing says of each alias now (alias -> what it lists of it; an
        alias recorded before and absent from ``listing`` is seen as absent, ''): the
        generation of an alias seen otherwise than the last time is bumped. An alias the
        record holds values of (or holds as absent) and that ``listing`` shows with others is
        not the record's view: unless ``accept`` (the listing after a change the guard let
        through), it is left as recorded and returned (alias -> what the record holds), for
        the call to be judged as a replacement of it; so is an alias of ``kept`` (known to the
        replicas, absent from this stale listing) whose values the record holds."""
        differing: dict[str, str] = {}
        with self._lock:
            rows = self._db.execute(
                "SELECT alias, listed FROM guard_alias_generations WHERE key = ?", (key,)
            ).fetchall()
            before = {row[0]: row[1] for row in rows}
            for alias in sorted(set(before) | set(listing)):
                now = listing.get(alias, "")
                if before.get(alias) == now:
                    continue
                if not accept and (
                    differs(before.get(alias), now)
                    or (alias in kept and before.get(alias) not in (None, "", _CHANGED))
                ):
                    differing[alias] = before[alias]
                    continue
                self._db.execute(
                    "INSERT INTO guard_alias_generations (key, alias, generation, listed) "
                    "VALUES (?, ?, 1, ?) ON CONFLICT (key, alias) DO UPDATE SET "
                    "generation = guard_alias_generations.generation + 1, listed = ?",
                    (key, alias, now, now),
                )
        return differing

    def close(self) -> None:
        with self._lock:
            self._db.close()
