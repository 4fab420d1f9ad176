"""Behind the proxy, an approval is for the connection instance it was filed against (invariant
14), not for what the upstream's listing said of it: once the guard has let a removal or a
(re)creation of that alias through (on any replica), the approval no longer matches, even
when the alias is back with exactly the same values (ABA). It is withdrawn and the call filed
anew, as ``serve`` does.

Outside testers, with the real odoo-claude-mcp: an approved removal of ``prod`` (db v1) later
removed a re-added ``prod`` with the same values, or one re-created after another approved
removal of prod.

The SDK client → ``odoo-mcp-guard proxy`` (a subprocess) → the real odoo-claude-mcp
(``/usr/local/bin/odoo-claude-mcp``) or tests/upstream_server.py over HTTP, shared by two
replicas on one PostgreSQL store.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pg_harness import fresh_database, pg_url
from support.guard import (
    CONNECTION_POLICY,
    ODOO_CLAUDE_MCP,
    db_path,
    free_port,
    guard_command,
    http_client,
    http_process,
    needs_odoo_claude_mcp,
    proxy_args,
    proxy_stdio_client,
    query,
    run_cli,
    text_of,
    upstream_calls,
    upstream_command,
    write_policy,
    write_upstream_state,
)

pytestmark = pytest.mark.anyio

V1 = {
    "alias": "prod",
    "url": "http://127.0.0.1:9",
    "db": "v1",
    "username": "admin",
    "password": "pw",
    "protocol": "xmlrpc",
}
V2 = {**V1, "db": "v2"}


def occ_connections(upstream_data: Path) -> dict[str, dict[str, Any]]:
    rows = json.loads((upstream_data / "connections.json").read_text(encoding="utf-8"))
    return {row["alias"]: row for row in rows}


def pending(result: Any) -> dict[str, Any]:
    content = result.structured_content or {}
    assert result.is_error and content.get("status") == "pending", text_of(result)
    return {**content, "text": text_of(result)}


def withdrawn(result: Any, first: str) -> dict[str, Any]:
    """The call was not carried out: the approval ``first`` was withdrawn, a new one filed."""
    again = pending(result)
    assert again["request"] != first and again["new"] is True, again
    assert f"request {first} was withdrawn" in again["text"], again["text"]
    assert "the connection 'prod' changed since it was filed" in again["text"], again["text"]
    return again


@asynccontextmanager
async def occ_behind_http_proxy(
    tmp_path: Path, rows: list[dict[str, Any]], policy: dict[str, Any] = CONNECTION_POLICY
) -> AsyncIterator[tuple[Any, Any, Path, Path]]:
    """Clients of alice and bob → one proxy over HTTP → the real odoo-claude-mcp."""
    upstream_data = tmp_path / "odoo-claude-mcp"
    upstream_data.mkdir(parents=True)
    (upstream_data / "connections.json").write_text(json.dumps(rows), encoding="utf-8")
    data = tmp_path / "guard"
    port = free_port()
    args = proxy_args(
        data,
        write_policy(tmp_path / "policy.json", policy),
        upstream=[ODOO_CLAUDE_MCP],
        transport="http",
        port=port,
        server_name="occ",
        extra=("--upstream-env", f"ODOO_CLAUDE_MCP_DATA={upstream_data}"),
    )
    with http_process(guard_command(*args), data, port) as running:
        tokens = {
            who: run_cli(data, "tokens", "add", who).stdout.strip().splitlines()[-1]
            for who in ("alice", "bob")
        }
        async with (
            http_client(running.url, tokens["alice"]) as alice,
            http_client(running.url, tokens["bob"]) as bob,
        ):
            yield alice, bob, upstream_data, data


def state_of(data: Path, ref: str) -> str:
    return query(data, "SELECT state FROM approval_requests WHERE ref = ?", ref)[0][0]


@needs_odoo_claude_mcp
async def test_an_approved_removal_does_not_remove_prod_re_created_after_another_removal(
    tmp_path: Path,
) -> None:
    """alice's removal of prod (v1) is approved; bob's, approved too, removes it; prod is
    added again with the same values. alice's approval was for the prod that is gone."""
    async with occ_behind_http_proxy(tmp_path, [V1]) as (alice, bob, upstream_data, data):
        first = pending(await alice.call_tool("odoo_disconnect", {"alias": "prod"}))["request"]
        run_cli(data, "approvals", "approve", first, "--as", "carol")
        other = pending(await bob.call_tool("odoo_disconnect", {"alias": "prod"}))["request"]
        run_cli(data, "approvals", "approve", other, "--as", "carol")
        removed = await bob.call_tool("odoo_disconnect", {"alias": "prod"})
        assert not removed.is_error, text_of(removed)
        assert "prod" not in occ_connections(upstream_data)
        await bob.call_tool("odoo_connect", V1)  # new: allowed (it cannot log in: no Odoo)
        assert occ_connections(upstream_data)["prod"]["db"] == "v1"

        again = withdrawn(await alice.call_tool("odoo_disconnect", {"alias": "prod"}), first)
        assert "prod" in occ_connections(upstream_data)
        assert state_of(data, first) == "expired"
        # asked about the prod that is there now and approved, alice's call removes it
        run_cli(data, "approvals", "approve", again["request"], "--as", "carol")
        done = await alice.call_tool("odoo_disconnect", {"alias": "prod"})
        assert not done.is_error, text_of(done)
        assert "prod" not in occ_connections(upstream_data)
    executed = query(
        data, "SELECT request_ref FROM audit WHERE outcome = 'approved_executed' ORDER BY id"
    )
    assert [row[0] for row in executed] == [other, again["request"]]


@needs_odoo_claude_mcp
async def test_an_approved_removal_does_not_remove_prod_re_added_with_the_same_values(
    tmp_path: Path,
) -> None:
    """alice's removal of prod (v1) is approved; prod is replaced by v2, then by v1 again
    (each replacement approved on its own): the same values, another connection."""
    async with occ_behind_http_proxy(tmp_path, [V1]) as (alice, _bob, upstream_data, data):
        first = pending(await alice.call_tool("odoo_disconnect", {"alias": "prod"}))["request"]
        run_cli(data, "approvals", "approve", first, "--as", "carol")
        for values in (V2, V1):
            swap = pending(await alice.call_tool("odoo_connect", values))["request"]
            run_cli(data, "approvals", "approve", swap, "--as", "dave")
            await alice.call_tool("odoo_connect", values)
            assert occ_connections(upstream_data)["prod"]["db"] == values["db"]

        withdrawn(await alice.call_tool("odoo_disconnect", {"alias": "prod"}), first)
        assert occ_connections(upstream_data)["prod"]["db"] == "v1"
        assert state_of(data, first) == "expired"
    assert not query(
        data, "SELECT 1 FROM audit WHERE tool = 'odoo_disconnect' AND outcome = 'approved_executed'"
    )


@needs_odoo_claude_mcp
async def test_a_quorum_given_to_one_instance_is_not_completed_for_the_next(
    tmp_path: Path,
) -> None:
    """A removal needing two approvers: one approves for prod (v1); prod is replaced by v2 and
    back by v1. The same call is then a new request: the first vote does not count for it."""
    quorum = {
        **CONNECTION_POLICY,
        "rules": {
            **CONNECTION_POLICY["rules"],
            "odoo_disconnect": {"action": "require_approval", "approval": {"quorum": 2}},
        },
    }
    async with occ_behind_http_proxy(tmp_path, [V1], quorum) as (alice, _bob, upstream_data, data):
        first = pending(await alice.call_tool("odoo_disconnect", {"alias": "prod"}))
        assert first["quorum"] == 2, first
        run_cli(data, "approvals", "approve", first["request"], "--as", "carol")
        for values in (V2, V1):
            swap = pending(await alice.call_tool("odoo_connect", values))["request"]
            run_cli(data, "approvals", "approve", swap, "--as", "dave")
            run_cli(data, "approvals", "approve", swap, "--as", "erin")
            await alice.call_tool("odoo_connect", values)
        again = pending(await alice.call_tool("odoo_disconnect", {"alias": "prod"}))
        assert again["request"] != first["request"] and again["approvals"] == 0, again
        assert occ_connections(upstream_data)["prod"]["db"] == "v1"


@pytest.fixture
def pg_database() -> Iterator[str]:
    with fresh_database("aba") as name:
        yield name


async def test_two_replicas_an_approval_is_not_used_for_prod_re_created_on_the_other(
    tmp_path: Path, pg_database: str
) -> None:
    """Two proxies on one PostgreSQL store, one upstream over HTTP. alice's removal of prod is
    approved on replica A; bob's, approved too, removes prod on replica B, which then adds prod
    again with the same URL. alice's call on A is filed anew; prod stays."""
    pol = write_policy(tmp_path / "policy.json", CONNECTION_POLICY)
    url = pg_url(pg_database)
    env = {"MCP_GUARD_DATABASE_URL": url}
    state = tmp_path / "upstream.json"
    write_upstream_state(state, {"prod": "https://v1.example.com"})
    up_port = free_port()
    command = upstream_command(state, transport="http", port=up_port)

    def approve(ref: str) -> None:
        run_cli(tmp_path / "a", "--database-url", url, "approvals", "approve", ref, "--as", "carol")

    with http_process(command, tmp_path / "up", up_port, env={"UPSTREAM_CONNECT": "1"}) as up:
        args_a = proxy_args(tmp_path / "a", pol, upstream=up.url, server_name="occ")
        args_b = proxy_args(tmp_path / "b", pol, upstream=up.url, server_name="occ")
        async with (
            proxy_stdio_client(tmp_path / "a", args_a, env=env) as a,
            proxy_stdio_client(tmp_path / "b", args_b, principal="bob", env=env) as b,
        ):
            await a.list_tools()
            await b.list_tools()
            first = pending(await a.call_tool("odoo_disconnect", {"alias": "prod"}))["request"]
            approve(first)
            other = pending(await b.call_tool("odoo_disconnect", {"alias": "prod"}))["request"]
            approve(other)
            removed = await b.call_tool("odoo_disconnect", {"alias": "prod"})
            assert not removed.is_error, text_of(removed)
            added = await b.call_tool(
                "odoo_connect", {"alias": "prod", "url": "https://v1.example.com"}
            )
            assert not added.is_error, text_of(added)

            withdrawn(await a.call_tool("odoo_disconnect", {"alias": "prod"}), first)
    disconnects = [c for c in upstream_calls(state) if c["tool"] == "odoo_disconnect"]
    assert len(disconnects) == 1
    assert json.loads(state.read_text(encoding="utf-8"))["aliases"] == ["prod"]


async def test_a_removal_is_refused_when_the_record_of_aliases_cannot_be_read(
    tmp_path: Path,
) -> None:
    """Fail closed: without the guard's record of the alias (its generation), which instance
    an approval is for cannot be told: the approved removal is refused, nothing is sent, and
    the approval stays unused."""
    pol = write_policy(tmp_path / "policy.json", CONNECTION_POLICY)
    state = tmp_path / "upstream.json"
    write_upstream_state(state, {"prod": "https://v1.example.com"})
    args = proxy_args(
        tmp_path,
        pol,
        upstream=upstream_command(state),
        extra=("--upstream-env", "UPSTREAM_CONNECT=1"),
    )
    async with proxy_stdio_client(tmp_path, args) as client:
        await client.list_tools()
        first = pending(await client.call_tool("odoo_disconnect", {"alias": "prod"}))["request"]
        run_cli(tmp_path, "approvals", "approve", first, "--as", "carol")
        db = sqlite3.connect(db_path(tmp_path), timeout=30)
        try:
            db.execute("DROP TABLE guard_alias_generations")
            db.commit()
        finally:
            db.close()
        refused = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert refused.is_error and refused.structured_content["status"] == "unavailable"
        assert "record of the upstream's connections cannot be read" in text_of(refused)
    assert not [c for c in upstream_calls(state) if c["tool"] == "odoo_disconnect"]
    assert state_of(tmp_path, first) == "approved"


async def test_a_removal_behind_the_guard_seen_in_a_listing_is_another_instance(
    tmp_path: Path,
) -> None:
    """prod is removed upstream behind the guard's back, a listing the guard makes (for an
    addition of another alias) sees it gone, and it is put back with the same values, again
    behind the guard's back: the approval given before is for the prod that was removed."""
    pol = write_policy(tmp_path / "policy.json", CONNECTION_POLICY)
    state = tmp_path / "upstream.json"
    write_upstream_state(state, {"prod": "https://v1.example.com"})

    def behind_the_guard(aliases: list[str]) -> None:
        current = json.loads(state.read_text(encoding="utf-8"))
        state.write_text(json.dumps({**current, "aliases": aliases}), encoding="utf-8")

    args = proxy_args(
        tmp_path,
        pol,
        upstream=upstream_command(state),
        extra=("--upstream-env", "UPSTREAM_CONNECT=1"),
    )
    async with proxy_stdio_client(tmp_path, args) as client:
        await client.list_tools()
        first = pending(await client.call_tool("odoo_disconnect", {"alias": "prod"}))["request"]
        run_cli(tmp_path, "approvals", "approve", first, "--as", "carol")
        behind_the_guard([])
        added = await client.call_tool("odoo_connect", {"alias": "x", "url": "https://x"})
        assert not added.is_error, text_of(added)
        behind_the_guard(["prod", "x"])
        withdrawn(await client.call_tool("odoo_disconnect", {"alias": "prod"}), first)
    assert not [c for c in upstream_calls(state) if c["tool"] == "odoo_disconnect"]
