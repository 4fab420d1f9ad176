"""Two replicas of the guard on one PostgreSQL store: two real ``odoo-mcp-guard serve
--transport http`` processes (each with a data directory of its own, for its tokens) and the
real CLI of either, all with ``MCP_GUARD_DATABASE_URL`` / ``--database-url``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from pg_harness import fresh_database, pg_url, sql
from support.guard import (
    HttpGuard,
    connect_args,
    guard_command,
    guard_env,
    http_client,
    http_guard,
    policy,
    run_cli,
    text_of,
    write_policy,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database("replicas") as name:
        yield name


@pytest.fixture(scope="module")
def url(database: str) -> str:
    return pg_url(database)


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, url: str
) -> Iterator[tuple[HttpGuard, HttpGuard]]:
    shared = tmp_path_factory.mktemp("pg-policy")
    pol = write_policy(
        shared / "policy.json",
        policy(odoo_connections={"action": "allow", "rate_limit": {"max": 3, "window": 30}}),
    )
    env = {"MCP_GUARD_DATABASE_URL": url}
    one, two = tmp_path_factory.mktemp("replica-a"), tmp_path_factory.mktemp("replica-b")
    with http_guard(one, pol, env=env) as first, http_guard(two, pol, env=env) as second:
        yield first, second


@pytest.fixture(scope="module")
def tokens(replicas: tuple[HttpGuard, HttpGuard]) -> list[dict[str, str]]:
    """Per replica (each keeps its own tokens file): the tokens of alice, bob and dave."""
    return [{name: guard.token(name) for name in ("alice", "bob", "dave")} for guard in replicas]


def cli(guard: HttpGuard, url: str, *args: str) -> str:
    """The CLI beside one replica (its data directory), on the shared database."""
    return run_cli(guard.data_dir, "--database-url", url, *args).stdout


def rows(database: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    return sql(database, statement, *params)


def aliases(database: str) -> list[str]:
    return [row[0] for row in rows(database, "SELECT alias FROM connections ORDER BY alias")]


def state(database: str, ref: str) -> str:
    return rows(database, "SELECT state FROM approval_requests WHERE ref = %s", ref)[0][0]


def audit_count(database: str, outcome: str, ref: str | None = None) -> int:
    if ref is None:
        return rows(database, "SELECT count(*) FROM audit WHERE outcome = %s", outcome)[0][0]
    return rows(
        database,
        "SELECT count(*) FROM audit WHERE outcome = %s AND request_ref = %s",
        outcome,
        ref,
    )[0][0]


async def pending_ref(client: Any, alias: str) -> str:
    result = await client.call_tool("odoo_disconnect", {"alias": alias})
    assert result.is_error and result.structured_content["status"] == "pending", text_of(result)
    return result.structured_content["request"]


async def connect_then_disconnect(guard: HttpGuard, token: str, alias: str) -> str:
    """Add a connection through one replica and ask to remove it: the pending request."""
    async with http_client(guard.url, token) as client:
        connected = await client.call_tool("odoo_connect", connect_args(alias))
        assert not connected.is_error, text_of(connected)
        return await pending_ref(client, alias)


async def test_twenty_concurrent_calls_over_two_replicas_execute_once(
    replicas: tuple[HttpGuard, HttpGuard], tokens: list[dict[str, str]], database: str, url: str
) -> None:
    a, b = replicas
    ref = await connect_then_disconnect(a, tokens[0]["alice"], "prod")
    # The other replica sees the connection and the same pending request.
    async with http_client(b.url, tokens[1]["alice"]) as client:
        assert await pending_ref(client, "prod") == ref
    cli(b, url, "approvals", "approve", ref, "--as", "carol")
    assert state(database, ref) == "approved"

    results: list[Any] = []

    async def one(index: int) -> None:
        guard, token = (a, tokens[0]["alice"]) if index % 2 else (b, tokens[1]["alice"])
        async with http_client(guard.url, token) as client:
            results.append(await client.call_tool("odoo_disconnect", {"alias": "prod"}))

    async with anyio.create_task_group() as tg:
        for index in range(20):
            tg.start_soon(one, index)

    succeeded = [r for r in results if not r.is_error]
    assert len(results) == 20 and len(succeeded) == 1, [text_of(r) for r in results]
    assert succeeded[0].structured_content == {"alias": "prod", "removed": True}
    # Every other call was either told to get an approval of its own (one new request, filed
    # once) or, once the connection was gone, refused at once with nothing to approve.
    gone = [r for r in results if r.is_error and r.structured_content is None]
    assert all("There is no connection named 'prod'" in text_of(r) for r in gone)
    refused = [r.structured_content for r in results if r.is_error and r not in gone]
    assert {s["status"] for s in refused} <= {"pending"}, refused
    assert len({s["request"] for s in refused}) <= 1 and ref not in {s["request"] for s in refused}
    assert [s["new"] for s in refused].count(True) == (1 if refused else 0)
    assert aliases(database) == []
    assert state(database, ref) == "done"
    assert audit_count(database, "approved_executed", ref) == 1


async def test_approval_through_one_replicas_cli_honoured_by_the_other(
    replicas: tuple[HttpGuard, HttpGuard], tokens: list[dict[str, str]], database: str, url: str
) -> None:
    a, b = replicas
    ref = await connect_then_disconnect(b, tokens[1]["bob"], "stage")
    listed = json.loads(cli(a, url, "approvals", "list", "--state", "pending", "--json"))
    assert ref in [request["ref"] for request in listed]
    # Four eyes hold across replicas too.
    refused = run_cli(
        a.data_dir, "--database-url", url, "approvals", "approve", ref, "--as", "bob", check=False
    )
    assert refused.returncode == 2 and "cannot approve or reject their own" in refused.stderr
    cli(a, url, "approvals", "approve", ref, "--as", "carol")
    async with http_client(b.url, tokens[1]["bob"]) as client:
        done = await client.call_tool("odoo_disconnect", {"alias": "stage"})
        assert not done.is_error, text_of(done)
        # A second identical call finds nothing to remove: refused at once, nothing filed.
        again = await client.call_tool("odoo_disconnect", {"alias": "stage"})
        assert again.is_error and "There is no connection named 'stage'" in text_of(again)
    assert "stage" not in aliases(database)
    assert state(database, ref) == "done"
    tail = cli(a, url, "audit", "tail", "-n", "50")
    assert ref in tail and "approved_executed" in tail


async def test_rejection_with_the_variable_only(
    replicas: tuple[HttpGuard, HttpGuard], tokens: list[dict[str, str]], database: str, url: str
) -> None:
    """The CLI honours MCP_GUARD_DATABASE_URL as well as --database-url."""
    a, b = replicas
    ref = await connect_then_disconnect(a, tokens[0]["dave"], "qa")
    elsewhere = a.data_dir / "another-dir"
    proc = subprocess.run(
        guard_command("approvals", "reject", ref, "--as", "carol", "--note", "QA still needs it"),
        env=guard_env(elsewhere, MCP_GUARD_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert not (elsewhere / "guard.sqlite3").exists()  # nothing went to a local file
    async with http_client(b.url, tokens[1]["dave"]) as client:
        result = await client.call_tool("odoo_disconnect", {"alias": "qa"})
        assert result.is_error and result.structured_content["status"] == "rejected"
        assert "QA still needs it" in text_of(result)
    assert "qa" in aliases(database)


async def test_rate_limit_counts_over_both_replicas(
    replicas: tuple[HttpGuard, HttpGuard], tokens: list[dict[str, str]]
) -> None:
    a, b = replicas
    outcomes = []
    for index in range(4):
        guard, token = (a, tokens[0]["alice"]) if index < 2 else (b, tokens[1]["alice"])
        async with http_client(guard.url, token) as client:
            result = await client.call_tool("odoo_connections", {})
            outcomes.append(
                "limited"
                if result.is_error and result.structured_content.get("status") == "rate_limited"
                else ("ok" if not result.is_error else text_of(result))
            )
    assert outcomes == ["ok", "ok", "ok", "limited"], outcomes
    async with http_client(b.url, tokens[1]["bob"]) as client:  # another principal: own count
        assert not (await client.call_tool("odoo_connections", {})).is_error


async def test_database_lost_while_serving_fails_closed_then_recovers(
    replicas: tuple[HttpGuard, HttpGuard], tokens: list[dict[str, str]], database: str
) -> None:
    a, _b = replicas
    async with http_client(a.url, tokens[0]["dave"]) as client:
        # An alias that exists: a disconnect of a missing one is refused before any approval.
        assert not (await client.call_tool("odoo_connect", connect_args("anything"))).is_error
        sql(
            "postgres",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'odoo-mcp-guard'",
            database,
        )
        lost = await client.call_tool("odoo_disconnect", {"alias": "anything"})
        assert lost.is_error and "unreachable" in text_of(lost), text_of(lost)
        # The next call reconnects and is judged as usual.
        again = await client.call_tool("odoo_disconnect", {"alias": "anything"})
        assert again.is_error and again.structured_content["status"] == "pending", text_of(again)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://root:hunter2@127.0.0.1:1/x", "cannot connect to the guard database"),
        ("postgresql://mcpg_store_nobody:hunter2@127.0.0.1:5432/x", "does not exist"),
        ("mysql://root:hunter2@127.0.0.1/x", "malformed database URL"),
    ],
)
def test_serve_and_cli_refuse_a_bad_database_in_one_line(
    tmp_path: Path, url: str, expected: str
) -> None:
    for args in (
        ["serve", "--transport", "http", "--port", "0", "--database-url", url],
        ["--database-url", url, "approvals", "list"],
    ):
        proc = subprocess.run(
            guard_command("--data-dir", str(tmp_path), *args),
            env=guard_env(tmp_path),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr
        assert "hunter2" not in proc.stderr and "Traceback" not in proc.stderr
