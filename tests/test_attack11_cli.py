"""Attack 11 through the CLI: a token under a principal the guard gives itself ('anonymous',
'stdio:<OS user>') would share that principal's approvals with every client without a token,
or with the local stdio agent. Refused wherever a token is named: `tokens add`, tokens.json,
MCP_GUARD_TOKENS; one line each."""

from __future__ import annotations

import os
import sqlite3
import sys

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client as mcp_stdio_client
from support.guard import (
    connect_args,
    db_path,
    guard_env,
    policy,
    query,
    serve_args,
    stdio_client,
    text_of,
    write_policy,
)
from test_attack10_cli import run

pytestmark = pytest.mark.anyio

RESERVED = ["anonymous", "Anonymous", "stdio:root", "STDIO:alice"]


@pytest.mark.parametrize("principal", RESERVED)
def test_tokens_add_refuses_a_reserved_principal(tmp_path, principal):
    result = run(tmp_path, "tokens", "add", principal)
    assert result.returncode == 2, result.stdout
    assert "refused" in result.stderr and "mcpg_" not in result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (
        not (tmp_path / "tokens.json").exists()
        or principal not in (tmp_path / "tokens.json").read_text()
    )
    # an ordinary name still gets its token
    assert run(tmp_path, "tokens", "add", "claude-code").returncode == 0


@pytest.mark.parametrize("principal", RESERVED)
def test_serve_on_stdio_refuses_a_reserved_env_principal(tmp_path, principal):
    """MCP_GUARD_PRINCIPAL names the stdio agent: 'anonymous' would share the approvals of
    every client without a token, 'stdio:bob' those of bob's own stdio agent."""
    result = run(
        tmp_path,
        "serve",
        "--transport",
        "stdio",
        env={"MCP_GUARD_PRINCIPAL": principal},
        timeout=20,
    )
    assert result.returncode == 2, result.stdout
    assert "MCP_GUARD_PRINCIPAL" in result.stderr and "refused" in result.stderr, result.stderr
    if principal.islower():  # "STDIO:alice" is refused first for its prefix's spelling
        assert "reserved" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# --- the store or Redis cannot be used: refused naming the cause, never a traceback ------


async def test_a_locked_sqlite_store_refuses_naming_the_store(tmp_path):
    pol = write_policy(tmp_path / "policy.json", policy())
    busy = {"MCP_GUARD_STORE_BUSY_SECONDS": "0.5"}
    async with stdio_client(tmp_path, policy_file=pol, env=busy) as client:
        await client.list_tools()
        holder = sqlite3.connect(db_path(tmp_path), isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the store
        try:
            refused = await client.call_tool("odoo_connections", {})
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert refused.is_error
        assert "guard store" in text_of(refused) and "locked" in text_of(refused)
        assert "internal error" not in text_of(refused)
        # the lock gone, the same call runs
        assert not (await client.call_tool("odoo_connections", {})).is_error


async def test_an_unavailable_refusal_is_audited_once_the_store_is_back(tmp_path):
    """The store locked past MCP_GUARD_STORE_BUSY_SECONDS: the agent gets a one-line refusal,
    the log one line carrying the whole event (no traceback), and the event reaches the audit
    trail with the next write once the lock is gone: an audit event is never dropped."""
    pol = write_policy(tmp_path / "policy.json", policy())
    busy = {"MCP_GUARD_STORE_BUSY_SECONDS": "0.5"}
    log = tmp_path / "guard.log"
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "odoo_mcp_guard", *serve_args(tmp_path, pol)],
        env=guard_env(tmp_path, MCP_GUARD_PRINCIPAL="alice", **busy),
    )
    with log.open("w") as errlog:
        async with Client(
            mcp_stdio_client(params, errlog=errlog), read_timeout_seconds=60
        ) as client:
            assert not (await client.call_tool("odoo_connect", connect_args("prod"))).is_error
            holder = sqlite3.connect(db_path(tmp_path), isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")  # another process holds the store
            try:
                refused = await client.call_tool("odoo_disconnect", {"alias": "prod"})
                assert refused.is_error
                assert refused.structured_content["status"] == "unavailable"
                assert len(text_of(refused).splitlines()) == 1, text_of(refused)
                assert "locked" in text_of(refused)
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            lost = query(tmp_path, "SELECT count(*) FROM audit WHERE outcome = 'unavailable'")[0][0]
            # the next decision writes what could not be written before it
            assert not (await client.call_tool("odoo_connections", {})).is_error
            rows = query(
                tmp_path,
                "SELECT tool, principal, outcome, detail FROM audit WHERE outcome = 'unavailable'",
            )
    assert lost == 0
    assert len(rows) == 1 and rows[0][:3] == ("odoo_disconnect", "alice", "unavailable"), rows
    assert "locked" in rows[0][3]
    text = log.read_text()
    assert "Traceback" not in text, text
    kept = [line for line in text.splitlines() if "audit event kept" in line]
    assert len(kept) == 1, text
    assert '"outcome": "unavailable"' in kept[0] and '"tool": "odoo_disconnect"' in kept[0]
    assert "written now that the store takes it" in text, text


async def test_a_redis_url_option_that_breaks_the_client_is_named(tmp_path):
    pol = write_policy(
        tmp_path / "policy.json",
        policy(odoo_connections={"action": "allow", "rate_limit": {"max": 5, "window": 60}}),
    )
    env = {
        "MCP_GUARD_REDIS_URL": "redis://127.0.0.1:6379/0?socket_timeout=nan",
        "MCP_GUARD_REDIS_PREFIX": f"atk11-{os.getpid()}:",
    }
    async with stdio_client(tmp_path, policy_file=pol, env=env) as client:
        refused = await client.call_tool("odoo_connections", {})
    assert refused.is_error
    assert "Redis at redis://127.0.0.1:6379/0" in text_of(refused), text_of(refused)
    assert "internal error" not in text_of(refused)
