"""Behind the proxy, an approval of a data call is bound to the connection the upstream would
act through (invariant 14): the one its connection argument names, or, when it names none or
one the upstream does not list, the one the upstream falls back to (odoo-claude-mcp's only
connection). Once another connection is that one, the approval is withdrawn and the call
filed anew, never used.

Outside tester, round 14 (finding 1), with the real odoo-claude-mcp: ``odoo_create
{connection: "test"}`` approved while test was dbTest; test removed (approved) and connected
again to dbProd; the retry ran on dbProd with the old approval. Likewise with
``connection: "ghost"`` (the upstream falls back to its only connection) and with no
connection argument.

The SDK client → ``odoo-mcp-guard proxy`` (a subprocess, stdio) → tests/upstream_server.py
(its ``odoo_create`` resolves a connection as odoo-claude-mcp does), or the real
odoo-claude-mcp (``/usr/local/bin/odoo-claude-mcp``; no Odoo: its calls fail to log in, the
guard's audit tells whether an approval was used). Approvals through the real CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.guard import (
    CONNECTION_POLICY,
    ODOO_CLAUDE_MCP,
    approve,
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

POLICY = {
    **CONNECTION_POLICY,
    "rules": {
        **CONNECTION_POLICY["rules"],
        "odoo_create": {"action": "require_approval", "reason": "creating records"},
    },
}
CREATE = {"model": "res.partner", "values": {"name": "Acme"}}
# The connection argument of each case: the one connected, one nobody has (the upstream falls
# back to its only connection), none (its default, "default", which nobody has either).
NAMED = {"test": {"connection": "test"}, "ghost": {"connection": "ghost"}, "none": {}}


def pending(result: Any) -> dict[str, Any]:
    content = result.structured_content or {}
    assert result.is_error and content.get("status") == "pending", text_of(result)
    return {**content, "text": text_of(result)}


def withdrawn(result: Any, first: str) -> dict[str, Any]:
    again = pending(result)
    assert again["request"] != first and again["new"] is True, again
    assert f"request {first} was withdrawn" in again["text"], again["text"]
    assert "changed since it was filed" in again["text"], again["text"]
    assert "the approval by carol was not used" in again["text"], again["text"]
    return again


def shown(data: Path, ref: str) -> str:
    """What ``approvals show`` tells an approver of a request."""
    return run_cli(data, "approvals", "show", ref).stdout


def state_of(data: Path, ref: str) -> str:
    return query(data, "SELECT state FROM approval_requests WHERE ref = ?", ref)[0][0]


def executed(data: Path, tool: str) -> list[str]:
    rows = query(
        data,
        "SELECT request_ref FROM audit WHERE tool = ? AND outcome = 'approved_executed' "
        "ORDER BY id",
        tool,
    )
    return [row[0] for row in rows]


async def replace_test(client: Any, data: Path, connect: dict[str, Any]) -> None:
    """test is removed (approved by dave) and connected again (a new alias: allowed)."""
    removal = pending(await client.call_tool("odoo_disconnect", {"alias": "test"}))
    approve(data, removal["request"], "dave")
    removed = await client.call_tool("odoo_disconnect", {"alias": "test"})
    assert not removed.is_error, text_of(removed)
    await client.call_tool("odoo_connect", connect)  # odoo-claude-mcp: saved, cannot log in


def upstream_proxy(tmp_path: Path, policy: dict[str, Any]) -> tuple[Path, Path, list[str]]:
    """The proxy's arguments in front of tests/upstream_server.py (connections and data tools
    on, nothing connected yet) under ``policy``: the upstream's state file, the guard's data
    directory and the arguments."""
    state = tmp_path / "upstream.json"
    write_upstream_state(state, [])
    data = tmp_path / "guard"
    args = proxy_args(
        data,
        write_policy(tmp_path / "policy.json", policy),
        upstream=upstream_command(state),
        extra=("--upstream-env", "UPSTREAM_CONNECT=1", "--upstream-env", "UPSTREAM_DATA=1"),
    )
    return state, data, args


@pytest.mark.parametrize("named", NAMED)
async def test_a_data_approval_is_not_used_for_the_connection_made_since(
    tmp_path: Path, named: str
) -> None:
    state, data, args = upstream_proxy(tmp_path, POLICY)
    call = {**NAMED[named], **CREATE}
    async with proxy_stdio_client(data, args) as client:
        added = await client.call_tool("odoo_connect", {"alias": "test", "url": "http://t/dbTest"})
        assert not added.is_error, text_of(added)
        first = pending(await client.call_tool("odoo_create", call))["request"]
        assert "acts through: test: http://t/dbTest" in shown(data, first)
        approve(data, first, "carol")
        await replace_test(client, data, {"alias": "test", "url": "http://t/dbProd"})

        again = withdrawn(await client.call_tool("odoo_create", call), first)
        assert state_of(data, first) == "expired"
        assert "acts through: test: http://t/dbProd" in shown(data, again["request"])
        assert not [c for c in upstream_calls(state) if c["tool"] == "odoo_create"]

        # asked about test as it is now (dbProd) and approved, the call runs there, once
        approve(data, again["request"], "carol")
        done = await client.call_tool("odoo_create", call)
        assert not done.is_error, text_of(done)
    creates = [c["arguments"] for c in upstream_calls(state) if c["tool"] == "odoo_create"]
    assert [(c["used"], c["url"]) for c in creates] == [("test", "http://t/dbProd")]
    assert executed(data, "odoo_create") == [again["request"]]


@pytest.mark.parametrize("named", NAMED)
async def test_a_data_approval_is_not_used_for_another_only_connection(
    tmp_path: Path, named: str
) -> None:
    """The upstream's only connection is replaced by one under another alias: the call, naming
    test, one nobody has or none, would act on the new one (the upstream's fallback)."""
    state, data, args = upstream_proxy(tmp_path, POLICY)
    call = {**NAMED[named], **CREATE}
    async with proxy_stdio_client(data, args) as client:
        await client.call_tool("odoo_connect", {"alias": "test", "url": "http://t/dbTest"})
        first = pending(await client.call_tool("odoo_create", call))["request"]
        approve(data, first, "carol")
        await replace_test(client, data, {"alias": "other", "url": "http://o/dbProd"})
        withdrawn(await client.call_tool("odoo_create", call), first)
    assert not [c for c in upstream_calls(state) if c["tool"] == "odoo_create"]
    assert executed(data, "odoo_create") == []


@needs_odoo_claude_mcp
@pytest.mark.parametrize("named", NAMED)
async def test_odoo_claude_mcp_a_data_approval_is_not_used_for_test_re_created(
    tmp_path: Path, named: str
) -> None:
    """The outside tester's case, with the real odoo-claude-mcp."""
    upstream_data = tmp_path / "odoo-claude-mcp"
    upstream_data.mkdir(parents=True)
    (upstream_data / "connections.json").write_text("[]", encoding="utf-8")
    data = tmp_path / "guard"
    args = proxy_args(
        data,
        write_policy(tmp_path / "policy.json", POLICY),
        upstream=[ODOO_CLAUDE_MCP],
        server_name="occ",
        extra=("--upstream-env", f"ODOO_CLAUDE_MCP_DATA={upstream_data}"),
    )
    connect = {
        "alias": "test",
        "url": "http://127.0.0.1:9",
        "db": "dbTest",
        "username": "admin",
        "password": "pw",
        "protocol": "xmlrpc",
    }
    call = {**NAMED[named], **CREATE}
    async with proxy_stdio_client(data, args) as client:
        await client.call_tool("odoo_connect", connect)
        first = pending(await client.call_tool("odoo_create", call))["request"]
        approve(data, first, "carol")
        await replace_test(client, data, {**connect, "db": "dbProd"})
        rows = json.loads((upstream_data / "connections.json").read_text(encoding="utf-8"))
        assert [(row["alias"], row["db"]) for row in rows] == [("test", "dbProd")]

        again = withdrawn(await client.call_tool("odoo_create", call), first)
        assert state_of(data, first) == "expired"
        approve(data, again["request"], "carol")
        await client.call_tool("odoo_create", call)  # sent: it cannot log in (no Odoo)
    assert executed(data, "odoo_create") == [again["request"]]


WEB_POLICY = {**POLICY, "rules": {**POLICY["rules"], "odoo_web_login": {"action": "allow"}}}


async def web_login(client: Any, data: Path, url: str) -> None:
    """odoo_web_login under "ghost" (a connection change: approved by dave when it is held)."""
    arguments = {"connection": "ghost", "url": url}
    result = await client.call_tool("odoo_web_login", arguments)
    if result.is_error:
        approve(data, pending(result)["request"], "dave")
        result = await client.call_tool("odoo_web_login", arguments)
    assert not result.is_error, text_of(result)


async def test_a_data_approval_is_not_used_through_a_session_opened_since(tmp_path: Path) -> None:
    """odoo-claude-mcp's odoo_web_login opens a web session under a name it does not list, and
    a data call naming it acts through that session. The approval is bound to that name too: a
    new login under it, a change through the guard, is another binding (outside round 16)."""
    state, data, args = upstream_proxy(tmp_path, WEB_POLICY)
    call = {"connection": "ghost", **CREATE}
    async with proxy_stdio_client(data, args) as client:
        await client.call_tool("odoo_connect", {"alias": "test", "url": "http://t/dbTest"})
        await web_login(client, data, "http://t/dbTest")
        first = pending(await client.call_tool("odoo_create", call))["request"]
        approve(data, first, "carol")
        await web_login(client, data, "http://t/dbProd")
        withdrawn(await client.call_tool("odoo_create", call), first)
    assert not [c for c in upstream_calls(state) if c["tool"] == "odoo_create"]
    assert executed(data, "odoo_create") == []
