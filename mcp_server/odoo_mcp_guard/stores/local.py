"""The local backend's ports, all over one ``engines.Database`` (a SQLite file, or PostgreSQL
for replicas), and ``Store``: all of them composed, with the operator's decisions. Every
write is one transaction, so a kill -9 leaves the database consistent."""

from __future__ import annotations

import json
import shlex
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from odoo_mcp_guard.engines import (
    WHOLE_STORE,
    Database,
    PostgresEngine,
    SqliteEngine,
    StoreError,
)
from odoo_mcp_guard.identity import is_member, persons_of, principal_key, requester_persons
from odoo_mcp_guard.names import check_decider, is_listed, same_person
from odoo_mcp_guard.policy_core import (
    ApprovalTerms,
    arguments_hash,
    redact,
    redact_arguments,
    redact_text,
    redact_tool,
)
from odoo_mcp_guard.ratelimit import Full, Limit
from odoo_mcp_guard.stores.kept import replay_kept
from odoo_mcp_guard.stores.models import (
    OPEN_STATES,
    ApprovalError,
    ApprovalRequest,
    AuditEvent,
    Connection,
    Outcome,
    PinnedTool,
    connection_identity,
    request_ref,
    utc_iso,
)
from odoo_mcp_guard.stores.ports import GuardStore
from odoo_mcp_guard.stores.schema import MIGRATIONS

DB_FILENAME = "guard.sqlite3"


def open_database(data_dir: Path, database_url: str | None = None) -> Database:
    """The SQLite file in ``data_dir`` (created with safe modes), or the PostgreSQL database at
    ``database_url``; its schema at the newest version."""
    if database_url:
        return Database(PostgresEngine(database_url), MIGRATIONS)
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StoreError(f"cannot create the data directory {data_dir}: {exc.strerror}") from None
    path = data_dir / DB_FILENAME
    try:
        if not path.exists():
            # Connection secrets live here: readable by the owner only.
            path.touch(mode=0o600)
    except OSError as exc:
        raise StoreError(f"cannot create the guard store {path}: {exc.strerror}") from None
    return Database(SqliteEngine(path), MIGRATIONS)


class LocalConnections:
    """Connections in the ``connections`` table."""

    def __init__(self, db: Database):
        self.db = db

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
        rows = self.db.rows("SELECT * FROM connections ORDER BY alias")
        return [self._connection(row) for row in rows]

    def get_connection(self, alias: str) -> Connection | None:
        row = self.db.row("SELECT * FROM connections WHERE alias = ?", (alias,))
        return self._connection(row) if row else None

    @staticmethod
    def _identity(row: Any) -> str:
        """What a request for this row is bound to: its revision (new on every write) and what
        names it; a row written before revisions existed is named by when it was written."""
        return connection_identity(
            {
                "alias": row["alias"],
                "url": row["url"],
                "db": row["db"],
                "username": row["username"],
                "protocol": row["protocol"],
                "verify_ssl": bool(row["verify_ssl"]),
                "updated_at": row["updated_at"],
                "revision": row["revision"],
            }
        )

    def connection_binding(self, alias: str) -> str:
        row = self.db.row("SELECT * FROM connections WHERE alias = ?", (alias,))
        return self._identity(row) if row else ""

    def _still(self, db: Any, alias: str, binding: str | None) -> None:
        """Raise unless the connection under ``alias`` is still the one ``binding`` names
        (None: not bound), read under the row's lock in the caller's transaction."""
        if binding is None:
            return
        row = db.execute(
            "SELECT * FROM connections WHERE alias = ?" + self.db.engine.for_update, (alias,)
        ).fetchone()
        if (self._identity(row) if row else "") != binding:
            raise ApprovalError(
                f"the connection '{alias}' changed since this call was judged; nothing was "
                "changed. Call again to have it judged as it is now"
            )

    def add_connection(
        self, conn: Connection, *, replace: bool = False, replaces: str | None = None
    ) -> bool:
        """Create the connection if its alias is free: True if it was created. An existing
        alias is left as it is (False), unless ``replace``: a replacement removes the old
        connection, so only a call the gate judged as a replacement may ask for it, and
        (``replaces``: its ``connection_binding`` as judged) only while it is that one.

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
            uuid.uuid4().hex,  # a new revision on every write: requests bound to the old fail
        )
        insert = """INSERT INTO connections (alias, url, db, username, password, api_key,
                        protocol, verify_ssl, created_at, updated_at, revision)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
        with self.db.tx(("connection", conn.alias)) as db:
            if not replace:
                return db.execute(insert + " ON CONFLICT (alias) DO NOTHING", values).rowcount > 0
            self._still(db, conn.alias, replaces)
            existed = db.execute(
                "SELECT 1 FROM connections WHERE alias = ?" + self.db.engine.for_update,
                (conn.alias,),
            ).fetchone()
            db.execute(
                insert
                + """ ON CONFLICT (alias) DO UPDATE SET url = excluded.url, db = excluded.db,
                       username = excluded.username, password = excluded.password,
                       api_key = excluded.api_key, protocol = excluded.protocol,
                       verify_ssl = excluded.verify_ssl, updated_at = excluded.updated_at,
                       revision = excluded.revision""",
                values,
            )
        return existed is None

    def remove_connection(self, alias: str, *, binding: str | None = None) -> bool:
        """Remove the connection under ``alias`` (``binding``: only while it is the one the
        call was judged, and approved, for; else ApprovalError, nothing removed)."""
        with self.db.tx(("connection", alias)) as db:
            self._still(db, alias, binding)
            return db.execute("DELETE FROM connections WHERE alias = ?", (alias,)).rowcount > 0


class LocalApprovals:
    """Approval requests in the ``approval_requests`` table: the gate's side, the operator's
    view, and the decisions (four-eyes, checked here)."""

    def __init__(self, db: Database):
        self.db = db

    def _request(self, row: sqlite3.Row) -> ApprovalRequest:
        data = dict(row)
        data["arguments"] = json.loads(data["arguments"])
        data.pop("reported", None)
        data["also_bindings"] = (data.get("also_bindings") or "").split()
        stake = data.get("at_stake")
        data["at_stake"] = json.loads(stake) if stake else None
        votes = self.db.rows(
            "SELECT approver FROM approval_votes WHERE request_id = ? ORDER BY at, approver",
            (data["id"],),
        )
        data["approvals"] = [vote["approver"] for vote in votes]
        return ApprovalRequest(**data)

    def get_request(self, key: int | str) -> ApprovalRequest | None:
        """By id (an int or digits) or by reference (MCPR-00001)."""
        if isinstance(key, int) or (str(key).isascii() and str(key).isdigit()):
            row = self.db.row("SELECT * FROM approval_requests WHERE id = ?", (int(key),))
        else:
            row = self.db.row(
                "SELECT * FROM approval_requests WHERE ref = ?", (request_ref(str(key)),)
            )
        return self._request(row) if row else None

    def list_requests(self, state: str | None = None, limit: int = 200) -> list[ApprovalRequest]:
        if state:
            rows = self.db.rows(
                "SELECT * FROM approval_requests WHERE state = ? ORDER BY id DESC LIMIT ?",
                (state, limit),
            )
        else:
            rows = self.db.rows(
                "SELECT * FROM approval_requests ORDER BY id DESC LIMIT ?", (limit,)
            )
        return [self._request(row) for row in rows]

    def open_request(
        self,
        tool: str,
        args_hash: str,
        principal: str,
        now: float | None = None,
        *,
        server: str = "",
    ) -> ApprovalRequest | None:
        """The newest request that still answers for this exact call on ``server``, if any;
        a stale one (pending or approved past its expiry) is marked expired first. One filed
        on another server is not this call's, nor one filed before v10 (server NULL)."""
        self.expire_stale(now)
        placeholders = ",".join("?" * len(OPEN_STATES))
        row = self.db.row(
            f"""SELECT * FROM approval_requests
                WHERE tool = ? AND arguments_hash = ? AND principal = ? AND server = ?
                  AND reported = 0 AND state IN ({placeholders})
                ORDER BY id DESC LIMIT 1""",
            (tool, args_hash, principal, server, *OPEN_STATES),
        )
        return self._request(row) if row else None

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
        """File a request for this call, or return the pending one; True if filed now.
        ``server``: the server the call is made on; the request is bound to it (a pending
        request of this call on another server is not returned);
        ``terms``: the rule's approver group, quorum and binding (None: one approver, anyone);
        ``also_bindings``: those of the rules the call also passes, in order; ``at_stake``:
        what the call would replace or remove, as the front-end knows it (kept redacted);
        ``connection_binding``: the connection it removes or replaces, as it is now (a
        pending request of this call for another connection is not returned);
        ``requester_persons``: who the principal is by the policy in force (None: it declares
        no ``people``), frozen on the request: ``decide`` compares the approver with them;
        ``electorate``: who may decide it (policy_core.CompiledPolicy.electorate; None:
        nothing frozen), frozen too: ``decide`` admits and counts only by it."""
        now = time.time() if now is None else now
        args_hash = arguments_hash(arguments)
        binding = terms.binding if terms else None
        also = " ".join(also_bindings)
        # a pending request filed while the principal was someone else's is not this one's
        persons = (
            None
            if requester_persons is None
            else json.dumps(sorted(set(requester_persons)), ensure_ascii=False)
        )
        # nor one filed while others decided
        voters = None
        if electorate is not None:
            voters = json.dumps(electorate, sort_keys=True, ensure_ascii=False)
        with self.db.tx(("call", tool, args_hash, principal)) as db:
            row = db.execute(
                """SELECT id FROM approval_requests
                   WHERE tool = ? AND arguments_hash = ? AND principal = ? AND server = ?
                     AND state = 'pending'
                     AND expires_at > ? AND COALESCE(rule_binding, '') = ?
                     AND COALESCE(also_bindings, '') = ?
                     AND COALESCE(connection_binding, '-') = ?
                     AND COALESCE(requester_persons, '-') = ?
                     AND COALESCE(electorate, '-') = ?
                   ORDER BY id DESC LIMIT 1""",
                (
                    tool,
                    args_hash,
                    principal,
                    server,
                    now,
                    binding or "",
                    also,
                    "-" if connection_binding is None else connection_binding,
                    "-" if persons is None else persons,
                    "-" if voters is None else voters,
                ),
            ).fetchone()
            if row:
                request_id, created = row["id"], False
            else:
                request_id = db.execute(
                    """INSERT INTO approval_requests (tool, arguments, arguments_hash, principal,
                           reason, state, created_at, expires_at, expires_in, approver_group,
                           quorum, rule_binding, also_bindings, at_stake,
                           connection_binding, requester_persons, electorate, server)
                       VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                       RETURNING id""",
                    (
                        tool,
                        json.dumps(redact_arguments(arguments), ensure_ascii=False),
                        args_hash,
                        principal,
                        reason,
                        now,
                        now + expires_in,
                        expires_in,
                        terms.approver_group if terms else None,
                        terms.quorum if terms else 1,
                        binding,
                        also,
                        None
                        if at_stake is None
                        else json.dumps(redact(dict(at_stake)), ensure_ascii=False),
                        connection_binding,
                        persons,
                        voters,
                        server,
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
        approvers: Sequence[str] | None = None,
        people: Mapping[str, Sequence[str]] | None = None,
    ) -> ApprovalRequest:
        """Approve or reject a pending request. The approver must not be the requester and,
        when ``approvers`` lists the request's group (the policy's ``approvers``), must be
        one of those names (width and case aside: identity.is_listed). With ``people`` (the
        policy's {person: [principals]}), four-eyes is by person, every name in the one
        folded form (identity.principal_key): the requester is the persons recorded when the
        request was filed (the policy then in force) and those whose list has the principal
        now (none, either time: nobody decides it, fail closed); the approver every person of
        the name (more than one: refused); they must not meet, and neither may the persons of
        a quorum's votes (recorded with each vote, and by ``people`` now). Who may decide was
        frozen on the request when it was filed (its electorate, schema v9): the approver must
        be one of the group's members then as well as now (the stricter wins), and the persons
        of the approver and of each earlier vote are also those of the ``people`` entries
        frozen then, so a policy given now cannot split one person into two votes. The
        spelling comparison (identity.same_person) stays as a second fence. An approval is one
        vote: the request is approved once ``quorum`` distinct persons have approved; a
        rejection by any of them rejects it."""
        now = time.time() if now is None else now
        approver = approver.strip()
        if not approver:
            raise ApprovalError("an approver name is required")
        problem = check_decider(approver)
        if problem is not None:
            raise ApprovalError(f"approver name refused: {problem}")
        request = self.get_request(key)
        if request is None:
            raise ApprovalError(f"no approval request {key}")
        if approvers is not None and not any(is_listed(approver, name) for name in approvers):
            raise ApprovalError(
                f"{approver} is not in the approver group {request.approver_group} that decides "
                f"{request.ref} (the policy's approvers list: {', '.join(approvers) or 'nobody'}; "
                "a name is matched as listed)"
            )
        people = None if people is None else {k: list(v) for k, v in people.items()}
        with self.db.tx(None) as db:
            row = db.execute(
                """SELECT state, principal, expires_at, expires_in, quorum, requester_persons,
                          electorate
                   FROM approval_requests WHERE id = ?"""
                + self.db.engine.for_update,
                (request.id,),
            ).fetchone()
            if row["state"] != "pending":
                raise ApprovalError(f"{request.ref} is {row['state']}, not pending")
            unreadable = check_decider(row["principal"])
            if unreadable is not None:
                # Fail closed: a requester whose name is not a person's ("x:alice", unreadable)
                # cannot be told apart from the approver.
                raise ApprovalError(
                    f"{request.ref} was filed under a name that cannot be compared "
                    f"({unreadable}): it cannot be approved or rejected"
                )
            # Who may decide: the group and persons frozen when the guard filed the request.
            frozen_members, frozen_people = _electorate(row["electorate"], request.ref)
            if frozen_members is not None and not is_member(approver, frozen_members):
                raise ApprovalError(
                    f"{approver} is not in the approver group {request.approver_group} as it "
                    f"stood when {request.ref} was filed (its members then: "
                    f"{', '.join(frozen_members) or 'nobody'}): only they decide it"
                )
            # Who the requester is: the persons frozen when the guard filed the request (the
            # policy then in force) AND those of the policy given now; either is refused.
            frozen = _persons(row["requester_persons"])
            if frozen is not None and not frozen:
                raise ApprovalError(
                    f"{request.ref} was filed by the principal {row['principal']}, which no "
                    "person under the policy's people lists (the policy in force when it was "
                    "filed): it cannot be approved or rejected (list it under its person in "
                    "people, in the policy file, and call again: that files a new request)"
                )
            if frozen is not None and people is None:
                raise ApprovalError(
                    f"{request.ref} was filed under a policy that declares people, and the "
                    "policy given here declares none: it cannot be decided here (pass --policy "
                    "FILE as the guard was given it)"
                )
            requesters = set(frozen or ())
            if people is not None:
                now_persons = requester_persons(row["principal"], people)
                if not now_persons:
                    # Fail closed: whose principal it is nobody has said, so nobody can tell
                    # the approver from the requester.
                    raise ApprovalError(
                        f"{request.ref} was filed by the principal {row['principal']}, which no "
                        "person under the policy's people lists: it cannot be approved or "
                        "rejected (list it under its person in people, in the policy file)"
                    )
                requesters |= now_persons
            # the approver's persons, in the one folded form names are listed in: by the
            # policy given now and by the entries frozen when the request was filed
            mine_now = persons_of(approver, people or {})
            mine_then = (
                frozenset() if frozen_people is None else persons_of(approver, frozen_people)
            )
            mine = mine_now | mine_then
            if same_person(approver, row["principal"]) or (
                requesters
                and (
                    mine & requesters
                    or any(same_person(approver, requester) for requester in requesters)
                )
            ):
                who = (
                    f"{row['principal']} ({', '.join(sorted(requesters))})"
                    if requesters
                    else row["principal"]
                )
                raise ApprovalError(
                    f"{request.ref} was requested by {who}: "
                    "the requester cannot approve or reject their own request"
                )
            for persons in (mine_now, mine_then):
                if len(persons) > 1:
                    raise ApprovalError(
                        f"{approver} is more than one person under the policy's people "
                        f"({', '.join(sorted(persons))}): whose decision it is cannot be told; "
                        "decide under a name that is one person's"
                    )
            votes = db.execute(
                "SELECT approver, persons FROM approval_votes WHERE request_id = ? ORDER BY at",
                (request.id,),
            ).fetchall()
            # The persons of the approver and of each earlier voter, as recorded, as the policy
            # given now says, and as the frozen entries say: any one in common is one person.
            ours = mine if people is not None or frozen_people is not None else frozenset()
            for vote in votes:
                theirs = set(_persons(vote["persons"]) or ())
                if people is not None:
                    theirs |= persons_of(vote["approver"], people)
                if frozen_people is not None:
                    theirs |= persons_of(vote["approver"], frozen_people)
                common = ours & theirs
                if same_person(approver, vote["approver"]) or common:
                    who = vote["approver"]
                    if common and principal_key(who) != principal_key(approver):
                        who += f", the same person as {approver} ({', '.join(sorted(common))})"
                    raise ApprovalError(
                        f"{request.ref} was already approved by {who}: a quorum of "
                        f"{row['quorum']} needs {row['quorum']} different approvers"
                    )
            # a vote counts as the persons frozen for its approver, else as those given now
            counted = mine_then if frozen_people is not None else mine_now
            voted = (
                None
                if people is None and frozen_people is None
                else json.dumps(sorted(counted), ensure_ascii=False)
            )
            votes = [vote["approver"] for vote in votes]
            if row["expires_at"] <= now:
                db.execute(
                    "UPDATE approval_requests SET state = 'expired' WHERE id = ?", (request.id,)
                )
                expired = True
            elif approve and len(votes) + 1 < row["quorum"]:
                expired = False
                # one more approval recorded; the request stays pending until the quorum
                db.execute(
                    """INSERT INTO approval_votes (request_id, approver, at, note, persons)
                       VALUES (?, ?, ?, ?, ?)""",
                    (request.id, approver, now, note, voted),
                )
                why = f": {note}" if note else ""
                detail = (
                    f"approval {len(votes) + 1} of {row['quorum']} by {approver}{why} "
                    "(still pending: other approvers are needed)"
                )
                insert_audit(db, _decision_event(request, approver, "approved", detail, now))
            else:
                expired = False
                decided_by = approver
                if approve:
                    db.execute(
                        """INSERT INTO approval_votes (request_id, approver, at, note, persons)
                           VALUES (?, ?, ?, ?, ?)""",
                        (request.id, approver, now, note, voted),
                    )
                    decided_by = ", ".join([*votes, approver])
                # An approval is valid for expires_in from the moment it is given.
                db.execute(
                    """UPDATE approval_requests SET state = ?, decided_by = ?, decided_at = ?,
                           decision_note = ?, expires_at = ?
                       WHERE id = ? AND state = 'pending'""",
                    (
                        "approved" if approve else "rejected",
                        decided_by,
                        now,
                        note,
                        now + row["expires_in"] if approve else row["expires_at"],
                        request.id,
                    ),
                )
                # The approver's action is audited in the transaction that takes it.
                verb = "approved" if approve else "rejected"
                why = f": {note}" if note else ""
                insert_audit(
                    db,
                    _decision_event(request, approver, verb, f"{verb} by {decided_by}{why}", now),
                )
        if expired:
            raise ApprovalError(f"{request.ref} expired before it was decided")
        decided = self.get_request(request.id)
        assert decided is not None
        return decided

    def cancel_request(
        self, key: int | str, *, by: str, note: str | None = None, now: float | None = None
    ) -> ApprovalRequest:
        """Cancel a pending or approved request; ``by`` is who cancels (recorded as the
        decider, in place of an earlier approver) and the audit row's principal."""
        now = time.time() if now is None else now
        by = by.strip()
        problem = check_decider(by) if by else "a name is required"
        if problem is not None:
            raise ApprovalError(f"name refused: {problem}")
        request = self.get_request(key)
        if request is None:
            raise ApprovalError(f"no approval request {key}")
        with self.db.tx(None) as db:
            changed = db.execute(
                """UPDATE approval_requests SET state = 'cancelled', decided_by = ?,
                       decided_at = ?, decision_note = ?
                   WHERE id = ? AND state IN ('pending', 'approved')""",
                (by, now, note, request.id),
            ).rowcount
            if changed:
                was = f" (it was {request.state}"
                was += f", by {request.decided_by})" if request.decided_by else ")"
                why = f": {note}" if note else ""
                detail = f"cancelled by {by}{was}{why}"
                insert_audit(db, _decision_event(request, by, "cancelled", detail, now))
        if not changed:
            raise ApprovalError(f"{request.ref} is {request.state}: it cannot be cancelled")
        cancelled = self.get_request(request.id)
        assert cancelled is not None  # requests are never deleted
        return cancelled

    def consume(
        self,
        request_id: int,
        event: AuditEvent,
        now: float | None = None,
        *,
        arguments: dict[str, Any] | None = None,
    ) -> bool:
        """Use an approval once: one atomic state change, audited in the same transaction.
        False if it was not (or no longer) approved and valid."""
        now = time.time() if now is None else now
        with self.db.tx(None) as db:
            row = db.execute(
                """UPDATE approval_requests SET state = 'done', consumed_at = ?
                   WHERE id = ? AND state = 'approved' AND expires_at > ? RETURNING id""",
                (now, request_id, now),
            ).fetchone()
            if row is None:
                return False
            insert_audit(db, event)
        return True

    def mark_failed(self, request_id: int, note: str) -> None:
        with self.db.tx(None) as db:
            db.execute(
                "UPDATE approval_requests SET state = 'failed', result_note = ? WHERE id = ?",
                (redact_text(note), request_id),
            )

    def retire(self, request_id: int, note: str) -> None:
        """The rule a request was filed under has changed: its approval (given or to come) no
        longer stands. Marked expired with the cause, and told: the next call files anew."""
        with self.db.tx(None) as db:
            db.execute(
                """UPDATE approval_requests SET state = 'expired', result_note = ?, reported = 1
                   WHERE id = ? AND state IN ('pending', 'approved')""",
                (redact_text(note), request_id),
            )

    def mark_reported(self, request_id: int) -> None:
        """A rejection or expiry has been told to the agent; the next call files anew."""
        with self.db.tx(None) as db:
            db.execute("UPDATE approval_requests SET reported = 1 WHERE id = ?", (request_id,))

    def expire_stale(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self.db.tx(None) as db:
            return db.execute(
                """UPDATE approval_requests SET state = 'expired'
                   WHERE state IN ('pending', 'approved') AND expires_at <= ?""",
                (now,),
            ).rowcount


def _electorate(
    recorded: str | None, ref: str
) -> tuple[list[str] | None, dict[str, list[str]] | None]:
    """The approver group's members and the ``people`` entries frozen on a request (schema
    v9, identity.frozen_electorate); (None, None): nothing frozen. A value that is not an
    electorate (a request pending when the store was upgraded to v9) decides nothing: it is
    refused, never guessed at (fail closed)."""
    if recorded is None:
        return None, None
    try:
        value = json.loads(recorded)
    except ValueError:
        value = None
    members = value.get("members") if isinstance(value, dict) else None
    people = value.get("people") if isinstance(value, dict) else None
    if (
        not isinstance(value, dict)
        or set(value) != {"members", "people"}
        or not (
            members is None
            or (isinstance(members, list) and all(isinstance(m, str) for m in members))
        )
        or not (
            people is None
            or (
                isinstance(people, dict)
                and all(
                    isinstance(listed, list) and all(isinstance(p, str) for p in listed)
                    for listed in people.values()
                )
            )
        )
    ):
        raise ApprovalError(
            f"{ref} does not record who could decide it when it was filed (it was pending when "
            "the store was upgraded): it cannot be approved or rejected (cancel it; the "
            "agent's next call files a new request)"
        )
    return members, people


def _persons(recorded: str | None) -> frozenset[str] | None:
    """Persons recorded on a request or a vote (a JSON list, schema v8); None: none recorded.
    A value that is not a list of names reads as no person (nobody decides it: fail closed)."""
    if recorded is None:
        return None
    try:
        value = json.loads(recorded)
    except ValueError:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(each, str) for each in value):
        return frozenset()
    return frozenset(value)


def _decision_event(
    request: ApprovalRequest, who: str, outcome: Outcome, detail: str, now: float
) -> AuditEvent:
    """The audit row of an approver's action on ``request``."""
    return AuditEvent(
        time=utc_iso(now),
        principal=who,
        tool=request.tool,
        arguments_hash=request.arguments_hash,
        outcome=outcome,
        detail=detail,
        request_ref=request.ref,
    )


def insert_audit(db: Any, event: AuditEvent) -> None:
    """Inside a transaction of the caller (an approval consumed and its audit event are one)."""
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


class LocalAudit:
    """The audit trail in the ``audit`` table (with Odoo: the spool, see odoo_backend.py)."""

    def __init__(self, db: Database):
        self.db = db

    def append_audit(self, event: AuditEvent) -> None:
        """Write one audit event; raises if it cannot be stored (never dropped silently)."""
        with self.db.tx(None) as db:
            insert_audit(db, event)

    def audit_tail(self, limit: int = 20) -> list[AuditEvent]:
        rows = self.db.rows("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [
            AuditEvent(**{k: v for k, v in dict(row).items() if k != "id"})
            for row in reversed(rows)
        ]

    def audit_count(self, outcome: str | None = None) -> int:
        if outcome:
            return self.db.row("SELECT count(*) FROM audit WHERE outcome = ?", (outcome,))[0]
        return self.db.row("SELECT count(*) FROM audit")[0]


class LocalPins:
    """Pinned tool definitions in the ``pinned_tools`` table (both backends keep them here)."""

    # ``tools accept`` on this host lifts a refusal (with Odoo, only Odoo's acceptance does).
    accepts_locally = True

    def __init__(self, db: Database):
        self.db = db

    @staticmethod
    def _pinned(row: sqlite3.Row) -> PinnedTool:
        # Redacted as read as well: a pin stored before a redaction rule existed (an older
        # version's store) is never shown with what the rule hides. Idempotent on newer pins.
        data = dict(row)
        data["definition"] = redact_tool(json.loads(data["definition"]))
        if data["pending_definition"] is not None:
            data["pending_definition"] = redact_tool(json.loads(data["pending_definition"]))
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
        with self.db.tx() as db:
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
        with self.db.tx() as db:
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

    def accept_hint(self, server: str, tool: str) -> str:
        """Where a Manager accepts a tool's changed definition."""
        command = f"odoo-mcp-guard tools accept {tool} --server {shlex.quote(server)}"
        return f"`{command}` on the guard's host"

    def catalog_unreported(self, server: str) -> str | None:
        """Why ``server``'s catalog is not where it must be (Odoo); None: it is."""
        return None

    def list_pinned(self, server: str | None = None) -> list[PinnedTool]:
        if server is None:
            rows = self.db.rows("SELECT * FROM pinned_tools ORDER BY server, tool")
        else:
            rows = self.db.rows(
                "SELECT * FROM pinned_tools WHERE server = ? ORDER BY tool", (server,)
            )
        return [self._pinned(row) for row in rows]

    def accept_pinned(
        self,
        server: str,
        tool: str,
        accepted_by: str,
        now: float | None = None,
        *,
        definition: str | None = None,
    ) -> PinnedTool:
        """Make a tool's pending (changed) definition the pinned one; ``definition``: the
        hash (or a prefix of at least 12 digits) of the one the Manager reviewed, which must
        still be the pending one (outside round 17, F10: an upstream that changes again
        between review and acceptance gets nothing accepted)."""
        now = time.time() if now is None else now
        with self.db.tx() as db:
            row = db.execute(
                "SELECT pending_hash FROM pinned_tools WHERE server = ? AND tool = ?",
                (server, tool),
            ).fetchone()
            if row is None:
                raise ApprovalError(f"no pinned tool {tool!r} for server {server!r}")
            if row["pending_hash"] is None:
                raise ApprovalError(f"{tool!r} of {server!r} has no changed definition to accept")
            if definition is not None and (
                len(definition) < 12 or not row["pending_hash"].startswith(definition.lower())
            ):
                raise ApprovalError(
                    f"{tool!r} of {server!r}: the changed definition is now "
                    f"{row['pending_hash'][:12]}, not {definition[:64]!r}: nothing was accepted; "
                    "review it (tools show) and accept that one"
                )
            db.execute(
                """UPDATE pinned_tools SET definition_hash = pending_hash,
                       definition = pending_definition, accepted_at = ?, accepted_by = ?,
                       pending_hash = NULL, pending_definition = NULL, pending_since = NULL
                   WHERE server = ? AND tool = ?""",
                (now, accepted_by, server, tool),
            )
        return next(pin for pin in self.list_pinned(server) if pin.tool == tool)


class LocalRates:
    """Sliding-window rate counters in the ``rate_events`` table."""

    def __init__(self, db: Database):
        self.db = db

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
        with self.db.tx(("rate", principal)) as db:
            for limit in limits:
                db.execute(
                    "DELETE FROM rate_events WHERE principal = ? AND tool = ? AND at <= ?",
                    (principal, limit.tool, now - limit.window),
                )
                # Counted in SQL (at most max_calls index entries), not fetched row by row.
                counted, oldest = db.execute(
                    """SELECT count(*), min(at) FROM (SELECT at FROM rate_events
                       WHERE principal = ? AND tool = ? ORDER BY at LIMIT ?) AS w""",
                    (principal, limit.tool, limit.max_calls),
                ).fetchone()
                if counted >= limit.max_calls:
                    return Full(limit, max(oldest + limit.window - now, 0.001))
            for limit in limits:
                db.execute(
                    "INSERT INTO rate_events (principal, tool, at) VALUES (?, ?, ?)",
                    (principal, limit.tool, now),
                )
        return None


class Store(GuardStore):
    """The local backend: every port over one database, plus what only the operator uses here
    (deciding requests, accepting tool definitions, the integrity check)."""

    def __init__(self, db: Database):
        self.db = db
        self.path = db.path  # the SQLite file (None on PostgreSQL)
        self.requests = LocalApprovals(db)
        self.local_pins = LocalPins(db)
        super().__init__(
            connections=LocalConnections(db),
            approvals=self.requests,
            audit=LocalAudit(db),
            pins=self.local_pins,
            rates=LocalRates(db),
            close=db.close,
            engine=db.engine,
        )

    @classmethod
    def open(cls, data_dir: Path, database_url: str | None = None) -> Store:
        """The SQLite file in ``data_dir``, or the PostgreSQL database at ``database_url``.
        Audit events an earlier run could not store (stores/kept.py) are written first."""
        store = cls(open_database(data_dir, database_url))
        replay_kept(data_dir, store.append_audit)
        return store

    @contextmanager
    def _tx(self, lock: tuple[Any, ...] | None = WHOLE_STORE) -> Iterator[Any]:
        with self.db.tx(lock) as db:
            yield db

    # the operator's view and decisions
    def get_request(self, key: int | str) -> ApprovalRequest | None:
        return self.requests.get_request(key)

    def list_requests(self, state: str | None = None, limit: int = 200) -> list[ApprovalRequest]:
        return self.requests.list_requests(state, limit)

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
    ) -> ApprovalRequest:
        return self.requests.decide(
            key,
            approve=approve,
            approver=approver,
            note=note,
            now=now,
            approvers=approvers,
            people=people,
        )

    def cancel_request(
        self, key: int | str, *, by: str, note: str | None = None, now: float | None = None
    ) -> ApprovalRequest:
        return self.requests.cancel_request(key, by=by, note=note, now=now)

    def expire_stale(self, now: float | None = None) -> int:
        return self.requests.expire_stale(now)

    # pinned tools, as a Manager on this host accepts them
    def repin(
        self,
        server: str,
        tool: str,
        pinned: tuple[str, dict[str, Any]],
        pending: tuple[str, dict[str, Any]] | None,
        now: float | None = None,
    ) -> None:
        self.local_pins.repin(server, tool, pinned, pending, now)

    def accept_pinned(
        self,
        server: str,
        tool: str,
        accepted_by: str,
        now: float | None = None,
        *,
        definition: str | None = None,
    ) -> PinnedTool:
        return self.local_pins.accept_pinned(server, tool, accepted_by, now, definition=definition)

    def integrity_check(self) -> str:
        return self.db.integrity_check()
