"""The store's behaviour, the same on both engines: the SQLite file and PostgreSQL.

Every test runs twice: on a SQLite file in ``tmp_path`` and on PostgreSQL (a database of this
module, a schema of each test's own). Concurrency is real: threads with a store (and so a
connection) each."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_harness import PG_PORT, fresh_database, fresh_role, pg_url, sql

from odoo_mcp_guard.engines import PostgresEngine
from odoo_mcp_guard.identity import frozen_electorate
from odoo_mcp_guard.leases import Leases
from odoo_mcp_guard.policy_core import ApprovalTerms, arguments_hash
from odoo_mcp_guard.store import (
    MIGRATIONS,
    ApprovalError,
    AuditEvent,
    Connection,
    Store,
    StoreError,
)
from odoo_mcp_guard.stores import local as store_module

ENGINES = ("sqlite", "postgresql")
Opener = Callable[[], Store]


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with fresh_database("unit") as name:
        yield name


_schemas = iter(range(1, 1_000_000))


@pytest.fixture(params=ENGINES)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens stores on one fresh location (as many as a test wants: each is a replica)."""
    if request.param == "sqlite":
        location: dict[str, Any] = {"data_dir": tmp_path}
    else:
        database = request.getfixturevalue("pg_database")
        schema = f"t{next(_schemas)}"
        sql(database, f"CREATE SCHEMA {schema}")
        location = {"data_dir": tmp_path, "database_url": pg_url(database, schema=schema)}
    opened: list[Store] = []

    def open_store() -> Store:
        store = Store.open(**location)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Opener) -> Store:
    return opener()


def event(outcome: str = "allowed", **fields: Any) -> AuditEvent:
    return AuditEvent(
        principal="alice",
        tool="odoo_disconnect",
        arguments_hash="h",
        **{"outcome": outcome, **fields},
    )


def together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released at the same moment; their results."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


# --- connections ---------------------------------------------------------------------------


def conn(alias: str, **overrides: Any) -> Connection:
    values = {
        "alias": alias,
        "url": f"https://{alias}.example.com",
        "db": f"{alias}_db",
        "username": "admin",
        "password": f"pw-{alias}",
    }
    values.update(overrides)
    return Connection(**values)


def test_connections_crud(store: Store) -> None:
    assert store.list_connections() == []
    assert store.add_connection(conn("prod")) is True
    assert store.add_connection(conn("dev", verify_ssl=False, api_key="k")) is True
    assert [c.alias for c in store.list_connections()] == ["dev", "prod"]
    dev = store.get_connection("dev")
    assert dev == conn("dev", verify_ssl=False, api_key="k")
    assert "pw-dev" not in str(dev.public()) and dev.public()["has_api_key"] is True
    # An existing alias is never replaced by an addition, only by an explicit replacement.
    assert store.add_connection(conn("prod", url="https://new.example.com")) is False
    assert store.get_connection("prod").url == "https://prod.example.com"
    assert store.add_connection(conn("prod", url="https://new.example.com"), replace=True) is False
    assert store.get_connection("prod").url == "https://new.example.com"
    assert store.get_connection("nope") is None
    assert store.remove_connection("prod") is True
    assert store.remove_connection("prod") is False
    assert [c.alias for c in store.list_connections()] == ["dev"]


def test_connection_added_by_one_replica_is_seen_by_the_other(opener: Opener) -> None:
    one, two = opener(), opener()
    assert one.add_connection(conn("prod"))
    assert two.get_connection("prod") == conn("prod")
    results = together(
        8,
        lambda i: (one if i % 2 else two).add_connection(
            conn("shared", url=f"https://shared-{i}.example.com")
        ),
    )
    assert results.count(True) == 1  # exactly one replica created it, and nobody replaced it
    assert one.get_connection("shared").url == f"https://shared-{results.index(True)}.example.com"


def test_a_connection_s_binding_changes_on_every_replacement(opener: Opener) -> None:
    """What a request is bound to (invariant 14): new on every write, even an identical one;
    a removal or replacement bound to one connection never acts on another under its alias."""
    one, two = opener(), opener()
    assert one.connection_binding("prod") == ""
    one.add_connection(conn("prod"))
    first = one.connection_binding("prod")
    assert first.startswith("conn-") and two.connection_binding("prod") == first
    assert "pw-prod" not in first
    assert one.add_connection(conn("prod"), replace=True, replaces=first) is False
    second = two.connection_binding("prod")
    assert second not in ("", first)  # the same values, another connection
    for stale in (one, two):
        with pytest.raises(ApprovalError, match="changed since this call was judged"):
            stale.remove_connection("prod", binding=first)
        with pytest.raises(ApprovalError, match="changed since this call was judged"):
            stale.add_connection(conn("prod", db="v3"), replace=True, replaces=first)
    assert one.get_connection("prod") == conn("prod")
    assert one.connection_binding("prod") == second
    with pytest.raises(ApprovalError):  # bound to 'none': one that appeared since is not it
        one.remove_connection("prod", binding="")
    assert two.remove_connection("prod", binding=second) is True
    assert one.connection_binding("prod") == ""


def test_a_pending_request_is_shared_only_for_the_same_connection(store: Store) -> None:
    first, _ = file(store, connection_binding="conn-a")
    assert first.connection_binding == "conn-a"
    assert file(store, connection_binding="conn-a")[0].id == first.id
    other, created = file(store, connection_binding="conn-b")
    assert created and other.id != first.id and other.connection_binding == "conn-b"
    assert file(store)[0].connection_binding is None  # not about a connection: not bound


# --- approval requests -----------------------------------------------------------------------


def file(store: Store, alias: str = "prod", principal: str = "alice", **kwargs: Any):
    return store.file_request(
        "odoo_disconnect", {"alias": alias}, principal, "cannot be undone", 3600, **kwargs
    )


def test_identical_pending_calls_share_one_request(store: Store) -> None:
    first, created = file(store)
    assert created and first.ref == f"MCPR-{first.id:05d}" and first.state == "pending"
    again, created_again = file(store)
    assert (again.id, created_again) == (first.id, False)
    assert file(store, alias="dev")[0].id != first.id  # other arguments
    assert file(store, principal="bob")[0].id != first.id  # other principal
    assert store.get_request(first.ref) == store.get_request(first.id) == first
    assert store.get_request(first.ref.lower()) == first
    assert [r.id for r in store.list_requests(state="pending")][-1] == first.id
    assert store.open_request("odoo_disconnect", first.arguments_hash, "alice") == first


def test_concurrent_identical_calls_file_one_request(opener: Opener) -> None:
    stores = [opener() for _ in range(8)]
    results = together(8, lambda i: file(stores[i]))
    assert len({request.id for request, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1


def test_redacted_arguments_and_hash(store: Store) -> None:
    request, _ = store.file_request(
        "odoo_connect", {"alias": "x", "password": "hunter2"}, "alice", None, 60
    )
    assert "hunter2" not in str(request.arguments)
    assert request.arguments["alias"] == "x"


@pytest.mark.parametrize(
    "approver", ["alice", "ALICE", " alice ", "ａｌｉｃｅ", "stdio:alice", "a-l-i-c-e"]
)
def test_requester_cannot_decide(store: Store, approver: str) -> None:
    request, _ = file(store, principal="stdio:alice")
    for approve in (True, False):
        with pytest.raises(ApprovalError, match="cannot approve or reject their own"):
            store.decide(request.ref, approve=approve, approver=approver)
    assert store.get_request(request.id).state == "pending"


def test_decide_once(store: Store) -> None:
    request, _ = file(store)
    with pytest.raises(ApprovalError, match="approver name is required"):
        store.decide(request.id, approve=True, approver="  ")
    with pytest.raises(ApprovalError, match="no approval request"):
        store.decide("MCPR-99999", approve=True, approver="bob")
    given = request.created_at + 600
    decided = store.decide(request.ref, approve=True, approver="bob", note="ok", now=given)
    assert (decided.state, decided.decided_by, decided.decision_note) == ("approved", "bob", "ok")
    # Valid for expires_in from the moment it was given.
    assert decided.expires_at == given + 3600
    with pytest.raises(ApprovalError, match="is approved, not pending"):
        store.decide(request.ref, approve=False, approver="carol")
    rejected, _ = file(store, alias="dev")
    assert store.decide(rejected.id, approve=False, approver="bob").state == "rejected"


def test_concurrent_decisions_one_wins(opener: Opener) -> None:
    request, _ = file(opener())
    stores = [opener() for _ in range(6)]

    def decide(i: int) -> str:
        try:
            return stores[i].decide(request.id, approve=i % 2 == 0, approver=f"bob{i}").state
        except ApprovalError:
            return "refused"

    results = together(6, decide)
    assert results.count("refused") == 5, results
    assert store_state(stores[0], request.id) in ("approved", "rejected")


def store_state(store: Store, request_id: int) -> str:
    return store.get_request(request_id).state


def test_expiry(store: Store) -> None:
    now = time.time()
    request, _ = file(store, now=now - 7200)  # expired an hour ago
    with pytest.raises(ApprovalError, match="expired before it was decided"):
        store.decide(request.id, approve=True, approver="bob", now=now)
    assert store_state(store, request.id) == "expired"
    # An expired pending request is not reused: the same call files a new one.
    fresh, created = file(store, now=now)
    assert created and fresh.id != request.id
    approved = store.decide(fresh.id, approve=True, approver="bob", now=now)
    assert not store.consume(approved.id, event("approved_executed"), now=now + 3601)
    assert store.expire_stale(now=now + 3601) == 1
    assert store_state(store, fresh.id) == "expired"
    assert store.expire_stale(now=now + 3601) == 0


def test_cancel_and_failed_and_reported(store: Store) -> None:
    request, _ = file(store)
    assert store.cancel_request(request.ref, by="bob").state == "cancelled"
    with pytest.raises(ApprovalError, match="cannot be cancelled"):
        store.cancel_request(request.ref, by="bob")
    other, _ = file(store, alias="dev")
    store.decide(other.id, approve=True, approver="bob")
    assert store.consume(other.id, event("approved_executed"))
    store.mark_failed(other.id, "upstream said no")
    assert store.get_request(other.id).result_note == "upstream said no"
    rejected, _ = file(store, alias="qa")
    store.decide(rejected.id, approve=False, approver="bob")
    assert store.open_request("odoo_disconnect", rejected.arguments_hash, "alice").id == rejected.id
    store.mark_reported(rejected.id)
    assert store.open_request("odoo_disconnect", rejected.arguments_hash, "alice") is None


def test_consume_exactly_once_under_concurrency(opener: Opener) -> None:
    first = opener()
    stores = [opener() for _ in range(10)]
    for round_ in range(3):
        request, _ = file(first, alias=f"prod{round_}")
        first.decide(request.id, approve=True, approver="bob")
        results = together(
            10,
            lambda i, request=request: stores[i].consume(
                request.id, event("approved_executed", request_ref=request.ref)
            ),
        )
        assert results.count(True) == 1, results
        assert store_state(first, request.id) == "done"
    # The audit event of each consumption was written in the same transaction, once.
    assert first.audit_count("approved_executed") == 3
    assert not first.consume(request.id, event("approved_executed"))
    pending, _ = file(first, alias="never-approved")
    assert not first.consume(pending.id, event("approved_executed"))


# --- rate limits -----------------------------------------------------------------------------


def test_rate_limit_window_is_exact(store: Store) -> None:
    t0 = 1_000_000.0
    assert [store.hit_rate_limit("alice", "tool", 3, 10, t0 + i) for i in range(3)] == [None] * 3
    assert store.hit_rate_limit("alice", "tool", 3, 10, t0 + 3) == pytest.approx(7.0)
    assert store.hit_rate_limit("alice", "tool", 3, 10, t0 + 9.999) == pytest.approx(0.001)
    # At t0 + 10 the first call has left the window (an event at exactly now - window is out).
    assert store.hit_rate_limit("alice", "tool", 3, 10, t0 + 10) is None
    assert store.hit_rate_limit("alice", "tool", 3, 10, t0 + 10.5) == pytest.approx(0.5)


def test_rate_limit_per_principal_and_tool(store: Store) -> None:
    t0 = 2_000_000.0
    assert store.hit_rate_limit("alice", "tool", 1, 60, t0) is None
    assert store.hit_rate_limit("alice", "tool", 1, 60, t0) is not None
    assert store.hit_rate_limit("bob", "tool", 1, 60, t0) is None
    assert store.hit_rate_limit("alice", "other", 1, 60, t0) is None
    assert store.hit_rate_limit("bob", "tool", 1, 60, t0) is not None


def test_rate_limit_exact_under_concurrency(opener: Opener) -> None:
    stores = [opener() for _ in range(12)]
    now = time.time()
    results = together(12, lambda i: stores[i].hit_rate_limit("alice", "tool", 5, 60, now))
    assert results.count(None) == 5, results


# --- audit -----------------------------------------------------------------------------------


def test_audit_append_idempotent_and_tail(store: Store) -> None:
    events = [event("allowed", detail=f"call {i}") for i in range(5)]
    for item in events:
        store.append_audit(item)
    store.append_audit(events[2])  # the same uuid again: stored once
    assert store.audit_count() == 5
    assert store.audit_count("allowed") == 5 and store.audit_count("denied") == 0
    tail = store.audit_tail(3)
    assert [e.detail for e in tail] == ["call 2", "call 3", "call 4"]  # oldest first
    assert tail[-1] == events[-1]
    store.append_audit(event("denied", request_ref="MCPR-00001"))
    assert store.audit_tail(1)[0].request_ref == "MCPR-00001"


def test_audit_from_many_replicas(opener: Opener) -> None:
    stores = [opener() for _ in range(6)]
    together(6, lambda i: [stores[i].append_audit(event(detail=f"{i}")) for _ in range(10)])
    assert stores[0].audit_count() == 60


# --- who decides, frozen when filed (schema v9) ---------------------------------------------

PEOPLE = {"alice": ["alice"], "carol": ["carol", "carol2"], "dave": ["dave"]}
SPLIT = {"alice": ["alice"], "carol": ["carol"], "x": ["carol2"], "dave": ["dave"]}


def test_votes_are_counted_by_the_persons_frozen_at_filing(store: Store) -> None:
    terms = ApprovalTerms("ops", 2, "binding")
    electorate = frozen_electorate(["carol", "carol2", "dave"], PEOPLE)
    members_only = {"carol": ["carol", "carol2"], "dave": ["dave"]}  # not the requester's
    assert electorate == {"members": ["carol", "carol2", "dave"], "people": members_only}
    request, _ = file(store, terms=terms, requester_persons=["alice"], electorate=electorate)
    ops = ["carol", "carol2", "dave", "mallory"]
    store.decide(request.id, approve=True, approver="carol", approvers=ops, people=PEOPLE)
    with pytest.raises(ApprovalError, match="already approved by carol, the same person as"):
        store.decide(request.id, approve=True, approver="carol2", approvers=ops, people=SPLIT)
    with pytest.raises(ApprovalError, match="as it stood when MCPR-00001 was filed"):
        store.decide(request.id, approve=True, approver="Mallory", approvers=ops, people=SPLIT)
    assert store_state(store, request.id) == "pending"
    decided = store.decide(request.id, approve=True, approver="dave", approvers=ops, people=SPLIT)
    assert (decided.state, decided.approvals) == ("approved", ["carol", "dave"])


def test_the_electorate_keeps_the_entries_of_its_members() -> None:
    people = {**PEOPLE, "erin": ["erin"], "Bob": ["robert", "DAVE-2"]}
    frozen = frozen_electorate(["CAROL2", "dave-2"], people)
    assert frozen == {
        "members": ["carol2", "dave-2"],
        "people": {"carol": ["carol", "carol2"], "Bob": ["robert", "DAVE-2"]},
    }
    assert frozen_electorate(None, people) == {"members": None, "people": people}
    assert frozen_electorate(["carol"], None) == {"members": ["carol"], "people": None}


def test_a_request_pending_before_v9_is_decided_by_nobody(
    opener: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:8])
    before = opener()
    with before._tx() as db:
        for state in ("pending", "approved"):
            db.execute(
                """INSERT INTO approval_requests (ref, tool, arguments, arguments_hash,
                       principal, state, created_at, expires_at, expires_in, approver_group,
                       quorum, requester_persons)
                   VALUES (?, 'odoo_disconnect', '{"alias": "prod"}', 'h', 'alice', ?, ?, ?,
                       3600, 'ops', 2, '["alice"]')""",
                (
                    f"MCPR-0000{1 if state == 'pending' else 2}",
                    state,
                    time.time(),
                    time.time() + 3600,
                ),
            )
    before.close()
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    upgraded = opener()
    assert schema_version(upgraded) == len(MIGRATIONS) == 10
    with pytest.raises(ApprovalError, match="does not record who could decide it"):
        upgraded.decide("MCPR-00001", approve=True, approver="carol", people=PEOPLE)
    with upgraded._tx() as db:
        kept = db.execute("SELECT electorate FROM approval_requests WHERE ref = 'MCPR-00002'")
        assert kept.fetchone()["electorate"] is None  # decided already: nothing to refuse
    assert upgraded.get_request("MCPR-00001").state == "pending"
    # the same call, filed now, is a new request with its electorate
    electorate = frozen_electorate(["carol", "dave"], PEOPLE)
    again, created = upgraded.file_request(
        "odoo_disconnect",
        {"alias": "prod"},
        "alice",
        None,
        3600,
        terms=ApprovalTerms("ops", 2, "b"),
        requester_persons=["alice"],
        electorate=electorate,
    )
    assert created and again.ref != "MCPR-00001"


def test_a_request_filed_before_v10_answers_for_no_server(
    opener: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside round 17, F5: requests are bound to the server they were filed on; one filed
    before v10 names none, and is used by no call on any server (fail closed)."""
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:9])
    before = opener()
    digest = arguments_hash({})
    with before._tx() as db:
        db.execute(
            """INSERT INTO approval_requests (ref, tool, arguments, arguments_hash, principal,
                   state, created_at, expires_at, expires_in, decided_by)
               VALUES ('MCPR-00001', 'purge_notes', '{}', ?, 'alice', 'approved', ?, ?, 3600,
                   'carol')""",
            (digest, time.time(), time.time() + 3600),
        )
    before.close()
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    upgraded = opener()
    assert upgraded.get_request("MCPR-00001").server is None
    for server in ("", "staging", "odoo-mcp-guard"):
        assert upgraded.open_request("purge_notes", digest, "alice", server=server) is None
    # filed now on a server: bound to it, and found by that server only
    again, created = upgraded.file_request("purge_notes", {}, "alice", None, 3600, server="a")
    assert created and again.server == "a"
    other, created = upgraded.file_request("purge_notes", {}, "alice", None, 3600, server="b")
    assert created and other.id != again.id
    assert upgraded.open_request("purge_notes", digest, "alice", server="a").id == again.id
    assert upgraded.open_request("purge_notes", digest, "alice", server="b").id == other.id


# --- migrations ------------------------------------------------------------------------------


def schema_version(store: Store) -> int:
    with store._tx() as db:
        return store.engine.schema_version(db)


def test_migrations_idempotent(opener: Opener) -> None:
    first = opener()
    first.add_connection(conn("prod"))
    first.close()
    again = opener()
    assert schema_version(again) == len(MIGRATIONS)
    assert [c.alias for c in again.list_connections()] == ["prod"]
    assert again.integrity_check() == "ok"


def test_concurrent_first_opens(opener: Opener) -> None:
    stores = together(6, lambda i: opener())
    assert {schema_version(s) for s in stores} == {len(MIGRATIONS)}
    stores[0].add_connection(conn("prod"))
    assert stores[5].get_connection("prod") is not None


def test_a_migration_appended_later_runs_on_both_engines(
    opener: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = opener()
    file(first)
    first.close()
    later = """
    ALTER TABLE approval_requests ADD COLUMN weight REAL;
    CREATE TABLE later_things (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        counter INTEGER NOT NULL DEFAULT 0,
        at REAL NOT NULL
    );
    """
    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, later])
    upgraded = opener()
    assert schema_version(upgraded) == len(MIGRATIONS) + 1
    with upgraded._tx() as db:
        new_id = db.execute(
            "INSERT INTO later_things (counter, at) VALUES (?, ?) RETURNING id", (2**40, 0.5)
        ).fetchone()["id"]
        row = db.execute("SELECT counter, at FROM later_things WHERE id = ?", (new_id,)).fetchone()
    assert (row["counter"], row["at"]) == (2**40, 0.5)
    assert upgraded.list_requests()[0].ref == "MCPR-00001"
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    upgraded.close()
    with pytest.raises(StoreError, match="newer than this guard knows"):
        opener()


def test_postgres_ddl_translation() -> None:
    translated = PostgresEngine.ddl(
        "CREATE TABLE x (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER, at REAL, b BLOB, "
        "remote_id INTEGER PRIMARY KEY, real_name TEXT)"
    )
    assert translated == (
        "CREATE TABLE x (id BIGSERIAL PRIMARY KEY, n BIGINT, at DOUBLE PRECISION, b BYTEA, "
        "remote_id BIGINT PRIMARY KEY, real_name TEXT)"
    )


# --- clear errors (PostgreSQL) ---------------------------------------------------------------


def open_url(url: str) -> Store:
    return Store.open(Path("/nonexistent"), url)


def test_unreachable_server_is_one_clear_line() -> None:
    with pytest.raises(StoreError) as caught:
        open_url(pg_url("postgres", password="hunter2", port=1 if PG_PORT != 1 else 2))
    message = str(caught.value)
    assert "cannot connect to the guard database" in message and "refused" in message
    assert "\n" not in message and "hunter2" not in message


def test_unknown_role_or_database(pg_database: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_url(pg_url(pg_database, user="mcpg_no_such_role", password="s3cr3t-pw"))
    assert 'role "mcpg_no_such_role" does not exist' in str(caught.value)
    assert "s3cr3t-pw" not in str(caught.value)
    with pytest.raises(StoreError, match='database "mcpg_store_absent" does not exist'):
        open_url(pg_url("mcpg_store_absent"))


@pytest.mark.parametrize(
    ("url", "fault"),
    [
        ("mysql://root@127.0.0.1/x", "expected postgresql://"),
        ("127.0.0.1:5432/x", "expected postgresql://"),
        ("postgresql://root@127.0.0.1:99999/x", "Port out of range"),
        ("postgresql://root:pw@[::1/x", "malformed database URL"),
        ("postgresql://root@127.0.0.1:5432/x?nonsense=1", "invalid URI query parameter"),
    ],
)
def test_malformed_url(url: str, fault: str) -> None:
    with pytest.raises(StoreError, match=r"malformed|cannot connect") as caught:
        open_url(url)
    assert fault in str(caught.value)
    assert "\n" not in str(caught.value)


def test_role_without_rights(pg_database: str) -> None:
    with fresh_role("norights") as role:
        with pytest.raises(StoreError) as caught:
            open_url(pg_url(pg_database, user=role))
        message = str(caught.value)
        assert f"the role {role!r} lacks rights" in message, message
        assert "permission denied" in message


def test_role_with_data_rights_only_uses_a_migrated_store(pg_database: str) -> None:
    """Least privilege: an owner migrates, the replicas run as a role that cannot CREATE."""
    with fresh_role("runtime") as role:
        sql(pg_database, "CREATE SCHEMA runtime_test")
        owner = open_url(pg_url(pg_database, schema="runtime_test"))
        owner.close()
        for statement in (
            f'GRANT USAGE ON SCHEMA runtime_test TO "{role}"',
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA runtime_test "
            f'TO "{role}"',
            f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA runtime_test TO "{role}"',
        ):
            sql(pg_database, statement)
        runtime = open_url(pg_url(pg_database, user=role, schema="runtime_test"))
        try:
            request, created = file(runtime)
            assert created
            runtime.decide(request.id, approve=True, approver="bob")
            assert runtime.consume(request.id, event("approved_executed"))
        finally:
            runtime.close()


def test_database_gone_during_use_fails_closed_then_recovers(pg_database: str) -> None:
    sql(pg_database, "CREATE SCHEMA gone_test")
    store = open_url(pg_url(pg_database, schema="gone_test"))
    try:
        sql(
            "postgres",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'odoo-mcp-guard'",
            pg_database,
        )
        with pytest.raises(StoreError, match="unreachable"):
            file(store)
        # The next use reconnects.
        request, created = file(store)
        assert created and request.state == "pending"
    finally:
        store.close()


# --- pinned tool definitions (the proxy's) ---------------------------------------------------


def test_pinned_tools_on_both_engines(opener: Opener) -> None:
    one, two = opener(), opener()
    v1 = {"name": "t", "inputSchema": {"type": "object"}}
    v2 = {"name": "t", "inputSchema": {"type": "object", "required": ["x"]}}
    # Two replicas meeting the same upstream at once pin it once.
    results = together(6, lambda i: (one if i % 2 else two).pin_tools("up", {"t": ("h1", v1)}))
    assert {pins["t"].definition_hash for pins in results} == {"h1"}
    changed = two.pin_tools("up", {"t": ("h2", v2)})["t"]
    assert changed.changed and changed.definition == v1 and changed.pending_definition == v2
    accepted = one.accept_pinned("up", "t", "manager")
    assert (accepted.definition_hash, accepted.accepted_by, accepted.changed) == (
        "h2",
        "manager",
        False,
    )
    assert [pin.tool for pin in two.list_pinned()] == ["t"]
    with pytest.raises(ApprovalError):
        one.accept_pinned("up", "t", "manager")


def test_own_tools_and_an_authority_s_pins_on_both_engines(opener: Opener) -> None:
    store = opener()
    v1 = {"name": "t", "inputSchema": {"type": "object"}}
    v2 = {"name": "t", "inputSchema": {"type": "object", "required": ["x"]}}
    store.pin_tools("own", {"t": ("h1", v1)})
    # The guard's own tools: a new definition is pinned at once, never left pending.
    own = store.pin_tools("own", {"t": ("h2", v2)}, accept_changes=True)["t"]
    assert (own.definition_hash, own.changed, own.definition) == ("h2", False, v2)
    # Odoo holds v1 as accepted and v2 as pending: the local pin becomes Odoo's.
    store.repin("own", "t", ("h1", v1), ("h2", v2), now=100.0)
    pin = store.list_pinned("own")[0]
    assert (pin.definition_hash, pin.pending_hash, pin.pending_since) == ("h1", "h2", 100.0)
    store.repin("own", "t", ("h1", v1), ("h2", v2), now=200.0)  # still the same change
    assert store.list_pinned("own")[0].pending_since == 100.0
    store.repin("own", "t", ("h2", v2), None)
    pin = store.list_pinned("own")[0]
    assert (pin.definition_hash, pin.changed, pin.pending_since) == ("h2", False, None)
    store.repin("own", "absent", ("h1", v1), None)  # nothing to align: no row is made
    assert [p.tool for p in store.list_pinned("own")] == ["t"]


# --- leases ------------------------------------------------------------------------------


def test_replicas_opening_the_lease_record_at_once_all_get_it(opener: Opener) -> None:
    """Proxy replicas whose first connection change comes at the same moment each open the
    lease record (its tables created if absent): none is refused for it (on PostgreSQL, a
    concurrent ``CREATE TABLE IF NOT EXISTS`` failed on ``pg_type``, and the loser's call read
    "the approval backend is unavailable" instead of "another call is changing ...")."""
    engine = opener().engine
    leases = together(4, lambda _i: Leases(engine))
    holders = [lease.acquire("connections:x", 100.0, 30.0) for lease in leases]
    assert sum(holder is not None for holder in holders) == 1, holders
    for lease in leases:
        lease.close()
