"""The proxy in front of the real odoo-claude-mcp (``/usr/local/bin/odoo-claude-mcp``, its
odoo-rpc-mcp server over stdio), with the built-in policy: an add-or-update of an existing
alias is a removal of the old connection (DESIGN invariant 11), as in ``serve``.

odoo-claude-mcp keeps its connections in ``$ODOO_CLAUDE_MCP_DATA/connections.json`` (a temp
dir here); its ``odoo_connect`` saves the connection before it tries to log in, so no Odoo is
needed to see what it wrote. Those tests are skipped (NOT RUN) without the wrapper; the last
one uses tests/upstream_server.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.guard import (
    ODOO_CLAUDE_MCP,
    approve,
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
)

pytestmark = pytest.mark.anyio

PROD = {
    "alias": "prod",
    "url": "http://127.0.0.1:9",
    "db": "proddb",
    "username": "admin",
    "password": "orig-secret",
    "protocol": "xmlrpc",
}


def connections(upstream_data: Path) -> dict[str, dict[str, Any]]:
    rows = json.loads((upstream_data / "connections.json").read_text(encoding="utf-8"))
    return {row["alias"]: row for row in rows}


def connect_args(alias: str | None, db: str) -> dict[str, Any]:
    args = {"url": "http://127.0.0.1:8", "db": db, "username": "mallory", "password": "new-pw"}
    return args if alias is None else {"alias": alias, **args}


def odoo_claude_proxy(tmp_path: Path, **options: Any) -> tuple[Path, Path, list[str]]:
    """odoo-claude-mcp's data directory (holding the connection PROD), the guard's, and
    ``odoo-mcp-guard proxy`` arguments (built-in policy) in front of odoo-claude-mcp."""
    upstream_data = tmp_path / "odoo-claude-mcp"
    upstream_data.mkdir(parents=True)
    (upstream_data / "connections.json").write_text(json.dumps([PROD]), encoding="utf-8")
    data = tmp_path / "guard"
    args = proxy_args(
        data,
        None,  # the built-in policy
        upstream=[ODOO_CLAUDE_MCP],
        server_name="odoo-claude-mcp",
        extra=("--upstream-env", f"ODOO_CLAUDE_MCP_DATA={upstream_data}"),
        **options,
    )
    return upstream_data, data, args


@asynccontextmanager
async def proxied(tmp_path: Path, transport: str) -> AsyncIterator[tuple[Any, Path]]:
    """The SDK client → ``odoo-mcp-guard proxy`` (built-in policy) → odoo-claude-mcp."""
    upstream_data, data, args = odoo_claude_proxy(
        tmp_path, transport=transport, port=free_port() if transport == "http" else 0
    )
    if transport == "stdio":
        async with proxy_stdio_client(data, args) as client:
            yield client, upstream_data
        return
    port = int(args[args.index("--port") + 1])
    with http_process(guard_command(*args), data, port) as running:
        token = run_cli(data, "tokens", "add", "alice").stdout.strip().splitlines()[-1]
        async with http_client(running.url, token) as client:
            yield client, upstream_data


@needs_odoo_claude_mcp
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_replacing_a_connection_needs_the_disconnect_approval(
    tmp_path: Path, transport: str
) -> None:
    async with proxied(tmp_path, transport) as (client, upstream_data):
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"odoo_connect", "odoo_connections"} <= names
        assert "odoo_disconnect" in names

        # A replacement of 'prod' is a removal: pending, and nothing written upstream.
        replace = connect_args("prod", "evil")
        pending = await client.call_tool("odoo_connect", replace)
        assert pending.is_error and pending.structured_content["status"] == "pending"
        assert "Removing a connection cannot be undone" in text_of(pending)
        assert connections(upstream_data)["prod"].items() >= PROD.items()

        # A new alias is an addition: allowed (the upstream then fails to log in, but saved it).
        added = await client.call_tool("odoo_connect", connect_args("staging", "stage"))
        assert "Approval required" not in text_of(added)
        assert connections(upstream_data)["staging"]["db"] == "stage"
        # Once it exists, updating it is a replacement too.
        again = await client.call_tool("odoo_connect", connect_args("staging", "other"))
        assert again.structured_content["status"] == "pending"
        assert connections(upstream_data)["staging"]["db"] == "stage"

        # No alias: the upstream's default, "default", is the one judged.
        unnamed = await client.call_tool("odoo_connect", connect_args(None, "d1"))
        assert "Approval required" not in text_of(unnamed)
        assert connections(upstream_data)["default"]["db"] == "d1"
        unnamed_again = await client.call_tool("odoo_connect", connect_args(None, "d2"))
        assert unnamed_again.structured_content["status"] == "pending"
        assert connections(upstream_data)["default"]["db"] == "d1"

        # An approver (not the requester) approves: the exact replacement runs, once.
        approve(tmp_path / "guard", pending.structured_content["request"])
        done = await client.call_tool("odoo_connect", replace)
        assert "Approval required" not in text_of(done)
        assert connections(upstream_data)["prod"]["db"] == "evil"
        after = await client.call_tool("odoo_connect", replace)
        assert after.structured_content["status"] == "pending"

    rows = query(
        tmp_path / "guard",
        "SELECT outcome FROM audit WHERE tool = 'odoo_connect' ORDER BY id",
    )
    assert [row[0] for row in rows] == [
        "approval_pending",
        "allowed",
        "approval_pending",
        "allowed",
        "approval_pending",
        "approved",  # the approver's action (carol), audited by the CLI
        "approved_executed",
        "approval_pending",
    ]


@needs_odoo_claude_mcp
async def test_two_additions_of_one_alias_at_once_are_one_addition(tmp_path: Path) -> None:
    """Both calls see 'twin' missing if they look at once; the proxy judges connection
    upserts one at a time, so the second sees the first's connection and is a replacement."""
    async with proxied(tmp_path, "stdio") as (client, upstream_data):
        await client.list_tools()
        answers: dict[str, Any] = {}

        async def connect(db: str) -> None:
            answers[db] = await client.call_tool("odoo_connect", connect_args("twin", db))

        async with anyio.create_task_group() as tg:
            tg.start_soon(connect, "first")
            tg.start_soon(connect, "second")
        pending = [db for db, result in answers.items() if "Approval required" in text_of(result)]
        assert len(pending) == 1, {db: text_of(result) for db, result in answers.items()}
        (written,) = set(answers) - set(pending)
        assert connections(upstream_data)["twin"]["db"] == written


@needs_odoo_claude_mcp
async def test_a_replica_whose_upstream_view_is_stale_cannot_call_an_alias_new(
    tmp_path: Path,
) -> None:
    """Attack 10, finding 05: two proxy replicas on one store, each in front of its own
    odoo-claude-mcp on one data directory (each process keeps what it loaded at start).
    Replica 1 adds 'staging'; replica 2's upstream does not list it. Replica 2's
    `odoo_connect staging` would replace it, and even a new alias from it would write back a
    file without 'staging': both are judged replacements (odoo_disconnect approval), as the
    replicas' shared record knows an alias its upstream does not list."""
    upstream_data, data, args = odoo_claude_proxy(tmp_path)
    async with proxy_stdio_client(data, args) as one, proxy_stdio_client(data, args) as two:
        await one.list_tools()
        await two.list_tools()  # both upstreams have loaded the file: prod only
        added = await one.call_tool("odoo_connect", connect_args("staging", "stage"))
        assert "Approval required" not in text_of(added)
        assert connections(upstream_data)["staging"]["db"] == "stage"

        replace = await two.call_tool("odoo_connect", connect_args("staging", "evil"))
        assert replace.is_error and replace.structured_content["status"] == "pending"
        other = await two.call_tool("odoo_connect", connect_args("other", "other"))
        assert other.is_error and other.structured_content["status"] == "pending"
        assert connections(upstream_data)["staging"]["db"] == "stage"
        assert "other" not in connections(upstream_data)

        # Replica 1's own upstream sees 'staging': its new alias is an addition.
        fresh = await one.call_tool("odoo_connect", connect_args("fresh", "fresh"))
        assert "Approval required" not in text_of(fresh), text_of(fresh)
    assert set(connections(upstream_data)) == {"prod", "staging", "fresh"}


async def test_an_upsert_the_proxy_cannot_check_is_judged_as_a_replacement(
    tmp_path: Path,
) -> None:
    """An upstream that adds-or-updates connections but cannot say which exist (no list
    tool): every such call is governed by the odoo_disconnect rule too (fail closed)."""
    pol = write_policy(
        tmp_path / "policy.json",
        {
            "version": "1",
            "default": "deny",
            "rules": {
                "save_connection": {"action": "allow"},
                "odoo_disconnect": {"action": "require_approval", "reason": "no undo"},
            },
        },
    )
    state = tmp_path / "upstream.json"
    args = proxy_args(
        tmp_path,
        pol,
        upstream=upstream_command(state),
        extra=("--upstream-env", "UPSTREAM_UPSERT=1"),
    )
    async with proxy_stdio_client(tmp_path, args, env={"UPSTREAM_UPSERT": "1"}) as client:
        held = await client.call_tool("save_connection", {"alias": "new", "url": "http://x"})
        assert held.is_error and held.structured_content["status"] == "pending", text_of(held)
        assert "no undo" in text_of(held)
    assert upstream_calls(state) == []


@needs_odoo_claude_mcp
async def test_an_approved_removal_does_not_remove_the_connection_that_replaced_it(
    tmp_path: Path,
) -> None:
    """Attack 11, finding 16: carol approves removing 'prod' (db proddb) as the upstream listed
    it; prod is then replaced (db v2) under a replacement dave approved. Carol's approval is
    for proddb: used now, it would remove v2, which no approver was asked to remove. The call
    is filed anew for prod as the upstream lists it now; once that is approved, v2 goes."""
    upstream_data, data, args = odoo_claude_proxy(tmp_path)
    async with proxy_stdio_client(data, args) as client:
        first = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert first.structured_content["status"] == "pending", text_of(first)
        ref = first.structured_content["request"]
        shown = run_cli(data, "approvals", "show", ref).stdout
        assert "db=proddb" in shown
        approve(data, ref, "carol")
        swap = await client.call_tool("odoo_connect", connect_args("prod", "v2"))
        assert swap.structured_content["status"] == "pending", text_of(swap)
        approve(data, swap.structured_content["request"], "dave")
        replaced = await client.call_tool("odoo_connect", connect_args("prod", "v2"))
        assert "Approval required" not in text_of(replaced), text_of(replaced)
        assert connections(upstream_data)["prod"]["db"] == "v2"

        again = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert again.is_error and again.structured_content["status"] == "pending", text_of(again)
        assert again.structured_content["request"] not in (ref, swap.structured_content["request"])
        assert f"request {ref} was withdrawn" in text_of(again)
        assert "the approval by carol was not used" in text_of(again)
        assert connections(upstream_data)["prod"]["db"] == "v2"
        renewed = again.structured_content["request"]
        assert "db=v2" in run_cli(data, "approvals", "show", renewed).stdout

        approve(data, renewed, "carol")
        done = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert not done.is_error, text_of(done)
    assert "prod" not in connections(upstream_data)
    state = query(data, "SELECT state FROM approval_requests WHERE ref = ?", ref)
    assert state == [("expired",)]
