"""The proxy in front of a hostile or careless upstream (tests/hostile_upstream.py, written with
the SDK), attacked from outside as an outside tester did (attack 7): the SDK client → the real
proxy subprocess → the upstream; approvals and listings through the real CLI; what reached the
upstream from its own state file."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from support.guard import (
    REPO,
    add_token,
    approve,
    free_port,
    guard_command,
    http_client,
    http_process,
    proxy_args,
    proxy_stdio_client,
    query,
    run_cli,
    text_of,
    write_policy,
)

pytestmark = pytest.mark.anyio

HOSTILE = REPO / "tests" / "hostile_upstream.py"
SECRET = "HOSTILE-S3CRET"


def hostile_command(state: Path, *extra: str) -> list[str]:
    return [sys.executable, str(HOSTILE), "--state", str(state), *extra]


def upstream_state(state: Path) -> dict[str, Any]:
    return json.loads(state.read_text(encoding="utf-8"))


@asynccontextmanager
async def proxied(
    tmp_path: Path, document: dict[str, Any], *, server_name: str | None = "hostile", **kw: Any
) -> AsyncIterator[Any]:
    pol = write_policy(tmp_path / "policy.json", {"version": "1", "default": "deny", **document})
    state = tmp_path / "upstream.json"
    command = kw.pop("command", None) or hostile_command(state)
    args = proxy_args(tmp_path, pol, upstream=command, server_name=server_name)
    async with proxy_stdio_client(tmp_path, args, principal="agent") as client:
        yield client


def secrets_in(text: str) -> list[str]:
    return sorted({word for word in text.replace('"', " ").split() if SECRET in word})


async def test_secrets_outside_text_blocks_never_reach_the_client_or_the_catalog(
    tmp_path: Path,
) -> None:
    """Finding 05: embedded resources (text, URI), resource links, the result's nested _meta
    and the tool's description are redacted like text blocks are, for the client, in the
    pinned catalog and in `tools list`."""
    async with proxied(tmp_path, {"rules": {"get_config": {"action": "allow"}}}) as client:
        listed = await client.list_tools()
        result = await client.call_tool("get_config", {})
    assert not result.is_error, text_of(result)
    seen = listed.model_dump_json(by_alias=True) + result.model_dump_json(by_alias=True)
    assert secrets_in(seen) == []
    assert "admin_passwd = ***" in text_of(result)  # still told what the upstream said
    assert "erp.example.com" in seen and "file:///etc/odoo.conf" in seen
    shown = run_cli(tmp_path, "tools", "list", "--json").stdout
    shown += run_cli(tmp_path, "tools", "show", "get_config").stdout
    stored = str(query(tmp_path, "SELECT * FROM pinned_tools"))
    assert "get_config" in shown and "get_config" in stored
    assert secrets_in(shown + stored) == []


async def test_a_derived_server_name_holds_no_secret_of_the_command(tmp_path: Path) -> None:
    """Finding 08: with no --server-name, the name stored and shown comes from the command,
    never with its arguments: `--api-key X`, `token=X`, a URL's password."""
    state = tmp_path / "upstream.json"
    command = hostile_command(
        state,
        "--api-key",
        f"{SECRET}-option",
        f"token={SECRET}-pair",
        "--url",
        f"https://admin:{SECRET}-url@erp.example.com",
    )
    document = {"rules": {"echo": {"action": "allow"}}}
    async with proxied(tmp_path, document, server_name=None, command=command) as client:
        assert not (await client.call_tool("echo", {"text": "x"})).is_error
    shown = run_cli(tmp_path, "tools", "list").stdout
    stored = str(query(tmp_path, "SELECT * FROM pinned_tools"))
    servers = {row[0] for row in query(tmp_path, "SELECT server FROM pinned_tools")}
    # the program's name and a digest of the whole command (its secrets left out)
    assert len(servers) == 1 and next(iter(servers)).startswith("hostile_upstream~"), servers
    assert secrets_in(shown + stored) == []
    assert shlex.join(command) not in shown


@pytest.mark.parametrize(
    "tool",
    [
        "set_connection",
        "user_connection_add",
        "odoo_connection_edit",
        "odoo_profile_save",
        "odoo_login",
    ],
)
async def test_an_upsert_worded_otherwise_is_a_replacement(tmp_path: Path, tool: str) -> None:
    """Finding 02 (attack 7), and 06 (attack 10: "save a profile under a name", "log in and
    remember it under an alias"): behind the proxy, a tool that overwrites a connection is
    governed by the removal rule too, whatever its name and description say, even when its
    own rule allows; and it is never classified read."""
    document = {
        "rules": {
            "odoo_connections": {"action": "allow"},
            tool: {"action": "allow"},
            "odoo_disconnect": {"action": "require_approval"},
        }
    }
    async with proxied(tmp_path, document) as client:
        await client.list_tools()
        result = await client.call_tool(tool, {"alias": "prod", "url": "https://evil.example.com"})
        assert result.is_error and result.structured_content["status"] == "pending", text_of(result)
        ref = result.structured_content["request"]
        approve(tmp_path, ref)
        again = await client.call_tool(tool, {"alias": "prod", "url": "https://evil.example.com"})
        assert not again.is_error, text_of(again)
    state = upstream_state(tmp_path / "upstream.json")
    # the approved call only (and the proxy's own listings of the connections, on the
    # client's behalf: what the upstream holds is observed when the call is judged)
    assert [call for call in state["calls"] if call != "odoo_connections"] == [tool]
    listed = json.loads(run_cli(tmp_path, "tools", "list", "--json").stdout)
    assert next(row for row in listed if row["tool"] == tool)["risk_class"] != "read"
    assert state["connections"]["prod"] == "https://evil.example.com"


@pytest.mark.parametrize("lister", ["hidden", "denied", "require_approval", "allow"])
async def test_the_proxys_own_upstream_calls_pass_the_gate(tmp_path: Path, lister: str) -> None:
    """Finding 07: to judge an `odoo_connect`, the proxy lists the upstream's connections on
    the client's behalf. That call passes the gate like the client's: a hidden, denied or gated
    `odoo_connections` is not called (the connect is then judged a replacement), an allowed one
    is audited as the proxy's call for the client's."""
    rules: dict[str, Any] = {
        "odoo_connect": {"action": "allow"},
        "odoo_disconnect": {"action": "require_approval"},
    }
    document: dict[str, Any] = {"rules": rules}
    if lister == "hidden":
        document["hide"] = ["odoo_connections"]
    else:
        rules["odoo_connections"] = {"action": {"denied": "deny"}.get(lister, lister)}
    async with proxied(tmp_path, document) as client:
        hidden = await client.call_tool("odoo_connections", {})
        connect = await client.call_tool("odoo_connect", {"alias": "new1", "url": "https://a.io"})
    assert connect.is_error and connect.structured_content["status"] == "pending"
    called = upstream_state(tmp_path / "upstream.json")["calls"]
    rows = query(
        tmp_path, "SELECT principal, outcome, detail FROM audit WHERE tool = 'odoo_connections'"
    )
    if lister == "allow":
        assert not hidden.is_error
        assert called == ["odoo_connections", "odoo_connections"]
        assert rows[-1][:2] == ("agent", "allowed")
        assert "on behalf of 'odoo_connect'" in rows[-1][2]
    else:
        assert hidden.is_error
        assert called == []  # neither the client nor the proxy reached it
        assert len(rows) == 2 and rows[-1][0] == "agent"
        assert rows[-1][1] == {"hidden": "hidden"}.get(lister, "denied")
        if lister == "require_approval":
            assert "on behalf of 'odoo_connect'" in rows[-1][2]
            filed = "SELECT COUNT(*) FROM approval_requests WHERE tool = 'odoo_connections'"
            assert query(tmp_path, filed) == [(1,)]  # the client's call's, none for the proxy's


async def test_no_question_reaches_the_client_during_a_connection_removal(tmp_path: Path) -> None:
    """Finding 06, then outside round 21: an upstream's removal tool asks which alias to remove.
    An answer could name another connection than the one the approval was given for (an
    approval filed for the answer 'scratch' served for 'prod', or the approver shown one alias
    and the answer another), so the question is not passed on: the approved call fails, with
    its approval spent, and nothing is removed."""
    document = {
        "rules": {
            "remove_connection": {"action": "require_approval"},
            "odoo_disconnect": {"action": "require_approval"},
        }
    }

    async with proxied(tmp_path, document) as client:

        async def call(**kwargs: Any) -> Any:
            return await client.session.call_tool(
                "remove_connection", {}, allow_input_required=True, **kwargs
            )

        first = await call()
        ref = first.structured_content["request"]
        approve(tmp_path, ref)
        asked = await call()  # the upstream asks which alias: not passed on
        assert not isinstance(asked, types.InputRequiredResult), asked
        assert asked.is_error and "changes a connection" in text_of(asked), text_of(asked)
        again = await call()
        assert again.is_error and again.structured_content["status"] == "pending", text_of(again)
        assert again.structured_content["request"] != ref
    assert "prod" in upstream_state(tmp_path / "upstream.json")["connections"]
    calls = upstream_state(tmp_path / "upstream.json")["calls"]
    assert [c for c in calls if c.startswith("remove_connection ") and "asked" not in c] == []
    shown = json.loads(run_cli(tmp_path, "approvals", "show", ref, "--json").stdout)
    assert shown["state"] == "failed", shown


NOTES = {"rules": {"ask_note": {"action": "allow"}, "hold_note": {"action": "allow"}}}
LEGACY_UPSTREAM = {"MCP_GUARD_UPSTREAM_MODE": "legacy"}  # the upstream asks elicitation/create


async def wait_for_call(state: Path, call: str) -> None:
    """Until the upstream has recorded ``call`` (it is then in flight upstream)."""
    with anyio.fail_after(30):
        while not state.exists() or call not in upstream_state(state)["calls"]:
            await anyio.sleep(0.02)


async def test_an_upstream_question_reaches_only_the_client_of_its_call(tmp_path: Path) -> None:
    """Attack 10, finding 04: over HTTP, a 2025-era upstream asks (elicitation/create) during
    alice's call (a 2026-07-28 client); bob's call (a 2025-era client that can be asked) is the
    only 2025-era call in flight. Nothing says whose the question is: it is refused, never
    passed to bob, and bob's answer never becomes alice's."""
    pol = write_policy(tmp_path / "policy.json", {"version": "1", "default": "deny", **NOTES})
    state = tmp_path / "upstream.json"
    port = free_port()
    args = proxy_args(tmp_path, pol, upstream=hostile_command(state), transport="http", port=port)
    bob_saw: list[str] = []

    async def bob_answers(_ctx: Any, params: Any) -> types.ElicitResult:
        bob_saw.append(params.message)
        return types.ElicitResult(action="accept", content={"ok": "answered by bob"})

    results: dict[str, Any] = {}
    with http_process(guard_command(*args), tmp_path, port, LEGACY_UPSTREAM) as running:
        alice, bob = add_token(tmp_path, "alice"), add_token(tmp_path, "bob")

        async def bob_calls() -> None:
            async with http_client(
                running.url, bob, mode="legacy", elicitation_callback=bob_answers
            ) as client:
                results["bob"] = await client.call_tool("hold_note", {"q": "b"})

        async with anyio.create_task_group() as tg:
            tg.start_soon(bob_calls)
            await wait_for_call(state, "hold_note b")
            async with http_client(running.url, alice) as client:
                results["alice"] = await client.call_tool("ask_note", {"q": "a"})
            state.with_name(state.name + ".go").touch()  # bob's call may end now
    assert bob_saw == []
    assert "answered by bob" not in text_of(results["alice"])
    assert results["alice"].is_error
    assert not results["bob"].is_error and text_of(results["bob"]) == "note b"


@pytest.mark.parametrize("upstream_mode", ["legacy", "auto"])
async def test_an_upstream_question_to_a_2025_client_is_redacted(
    tmp_path: Path, upstream_mode: str
) -> None:
    """Attack 10, finding 03: a question the upstream asks a 2025-era client, whether as
    elicitation/create (a 2025-era upstream) or as an input request the proxy asks for it (a
    2026-07-28 upstream), passes the one redaction rule: its message, its requested schema's
    texts and a secret field's default; the schema keeps its shape and the answer flows."""
    pol = write_policy(tmp_path / "policy.json", {"version": "1", "default": "deny", **NOTES})
    args = proxy_args(tmp_path, pol, upstream=hostile_command(tmp_path / "upstream.json"))
    asked: list[Any] = []

    async def answer(_ctx: Any, params: Any) -> types.ElicitResult:
        asked.append(params)
        return types.ElicitResult(action="accept", content={"ok": "yes", "password": "pw"})

    env = {"MCP_GUARD_UPSTREAM_MODE": upstream_mode}
    async with proxy_stdio_client(
        tmp_path, args, principal="agent", mode="legacy", env=env, elicitation_callback=answer
    ) as client:
        result = await client.call_tool("ask_note", {"q": "n1"})
    assert not result.is_error, text_of(result)
    assert text_of(result) == "asked n1; answer=yes"
    assert len(asked) == 1
    seen = asked[0].model_dump_json(by_alias=True)
    assert secrets_in(seen) == [], seen
    assert "Confirm for note n1" in asked[0].message and "erp.example.com" in asked[0].message
    properties = asked[0].requested_schema["properties"]
    assert set(properties) == {"ok", "password"}
    assert properties["ok"]["type"] == "string" and properties["password"]["default"] == "***"


async def test_a_backtracking_pattern_in_the_upstreams_schema_cannot_hold_the_proxy(
    tmp_path: Path,
) -> None:
    """Attack 10, finding 09: the upstream's schema says `code` matches `^(a|a)+$`; 35
    characters that almost match would hold the proxy for hours under a backtracking check.
    The check has a time limit: the call is refused (nothing sent upstream), and the proxy
    answers the next calls at once."""
    document = {"rules": {"pat_note": {"action": "allow"}, "echo": {"action": "allow"}}}
    async with proxied(tmp_path, document) as client:
        with anyio.fail_after(30):
            slow = await client.call_tool("pat_note", {"code": "a" * 34 + "!"})
            assert slow.is_error and "took too long" in text_of(slow), text_of(slow)
            assert "a" * 34 not in text_of(slow)  # never the argument's value
            assert not (await client.call_tool("echo", {"text": "still here"})).is_error
            short = await client.call_tool("pat_note", {"code": "ab"})
            assert short.is_error and "fails the tool's schema (pattern)" in text_of(short)
            fits = await client.call_tool("pat_note", {"code": "aaa"})
            assert not fits.is_error and text_of(fits) == "note aaa", text_of(fits)
    assert upstream_state(tmp_path / "upstream.json")["calls"] == ["echo", "pat_note aaa"]
    rows = query(tmp_path, "SELECT outcome FROM audit WHERE tool = 'pat_note' ORDER BY id")
    assert [row[0] for row in rows] == ["invalid", "invalid", "allowed"]


async def test_the_operator_declares_a_connection_tool(tmp_path: Path) -> None:
    """Attack 10, finding 06: whatever a tool's wording, the operator can declare it a
    connection change (`--connection-tool`): it is then governed by the removal rule too."""
    pol = write_policy(
        tmp_path / "policy.json",
        {
            "version": "1",
            "default": "deny",
            "rules": {
                "echo": {"action": "allow"},
                "odoo_disconnect": {"action": "require_approval", "reason": "no undo"},
            },
        },
    )
    state = tmp_path / "upstream.json"
    declared = ("--connection-tool", "echo")
    args = proxy_args(tmp_path, pol, upstream=hostile_command(state), extra=declared)
    async with proxy_stdio_client(tmp_path, args, principal="agent") as client:
        held = await client.call_tool("echo", {"text": "x"})
    assert held.is_error and held.structured_content["status"] == "pending", text_of(held)
    assert "no undo" in text_of(held)
    assert upstream_state(state)["calls"] == []
    bad = run_cli(
        tmp_path, "proxy", "--upstream-command", "x", "--connection-tool", "a b", check=False
    )
    assert bad.returncode == 2 and "--connection-tool 'a b': not a tool name" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
