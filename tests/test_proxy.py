"""``odoo-mcp-guard proxy`` end to end: the SDK client → the real proxy subprocess → the test
upstream (tests/upstream_server.py) as a real subprocess, over stdio and over HTTP on both
sides, in both protocol eras. What reached the upstream is read from its state file.
"""

from __future__ import annotations

import json
import os
import signal
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from support.guard import (
    MODES,
    approve,
    audit_count,
    free_port,
    guard_command,
    http_client,
    http_process,
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

POLICY = {
    "version": "1",
    "default": "deny",
    "hide": ["crash"],
    "rules": {
        "noop": {"action": "allow"},
        "read_note": {"action": "allow", "rate_limit": {"max": 3, "window": 60}},
        "write_note": {"action": "allow"},
        "slow": {"action": "allow"},
        "grow": {"action": "allow"},
        "extra_tool": {"action": "allow"},
        "confirm_delete": {"action": "allow"},
        "odoo_disconnect": {"action": "require_approval", "reason": "Cannot be undone"},
    },
}


async def accept_all(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    assert "Really delete" in params.message
    return types.ElicitResult(action="accept", content={"confirm": True})


def setup(tmp_path: Path, document: dict[str, Any] | None = None) -> tuple[Path, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    pol = write_policy(tmp_path / "policy.json", document or POLICY)
    return pol, tmp_path / "upstream-state.json"


def calls_of(state: Path, tool: str) -> list[dict[str, Any]]:
    return [call for call in upstream_calls(state) if call["tool"] == tool]


async def check_policy_behaviour(client: Any, data_dir: Path, state: Path) -> None:
    """Hide, deny, unknown, rate limit, approval with exact arguments: the same on every
    transport. ``client`` is an SDK client connected to the proxy as 'alice'."""
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    # Re-exported with the upstream's schemas and annotations, minus the hidden tool.
    assert {"noop", "read_note", "write_note", "odoo_disconnect", "confirm_delete"} <= set(tools)
    assert "crash" not in tools
    assert tools["odoo_disconnect"].annotations.destructive_hint is True
    assert tools["write_note"].input_schema["required"] == ["key", "value"]

    ok = await client.call_tool("write_note", {"key": "k", "value": "v"})
    assert not ok.is_error, text_of(ok)
    assert calls_of(state, "write_note")[-1]["arguments"] == {"key": "k", "value": "v"}

    before = len(upstream_calls(state))
    hidden = await client.call_tool("crash", {})
    assert hidden.is_error and "hidden" in text_of(hidden)
    unknown = await client.call_tool("Write_Note", {"key": "k", "value": "v"})
    assert unknown.is_error and "unknown tool" in text_of(unknown)
    lookalike = await client.call_tool("write_note\u200b", {"key": "k", "value": "v"})
    assert lookalike.is_error and "alphabet" in text_of(lookalike)
    invalid = await client.call_tool("write_note", {"key": "k"})
    assert invalid.is_error and "'value' is a required property" in text_of(invalid)
    assert len(upstream_calls(state)) == before, "a refused call reached the upstream"

    # Rate limit: 3 per minute for read_note, per principal.
    for _ in range(3):
        assert not (await client.call_tool("read_note", {"key": "k"})).is_error
    limited = await client.call_tool("read_note", {"key": "k"})
    assert limited.is_error and "rate limit" in text_of(limited)
    assert limited.structured_content["status"] == "rate_limited"
    assert len(calls_of(state, "read_note")) == 3

    # Approval: pending, approved by someone else, runs once with exactly those arguments.
    pending = await client.call_tool("odoo_disconnect", {"alias": "prod"})
    assert pending.is_error and pending.structured_content["status"] == "pending"
    ref = pending.structured_content["request"]
    other = await client.call_tool("odoo_disconnect", {"alias": "staging"})
    assert (
        other.structured_content["status"] == "pending"
        and other.structured_content["request"] != ref
    )
    assert calls_of(state, "odoo_disconnect") == []
    approve(data_dir, ref, "carol")
    done = await client.call_tool("odoo_disconnect", {"alias": "prod"})
    assert not done.is_error, text_of(done)
    assert [c["arguments"] for c in calls_of(state, "odoo_disconnect")] == [{"alias": "prod"}]
    again = await client.call_tool("odoo_disconnect", {"alias": "prod"})
    assert again.is_error and again.structured_content["status"] == "pending"
    assert len(calls_of(state, "odoo_disconnect")) == 1

    # Elicitation from the upstream reaches this client and its answer goes back.
    asked = await client.call_tool("confirm_delete", {"item": "report"})
    assert not asked.is_error, text_of(asked)
    assert asked.structured_content == {"item": "report", "deleted": True}
    assert calls_of(state, "confirm_delete")[-1]["arguments"] == {
        "item": "report",
        "confirm": True,
    }


@pytest.mark.parametrize("mode", MODES)
async def test_stdio_to_stdio(tmp_path: Path, mode: str) -> None:
    pol, state = setup(tmp_path)
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state))
    async with proxy_stdio_client(tmp_path, args, mode=mode, elicitation_callback=accept_all) as c:
        assert c.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        await check_policy_behaviour(c, tmp_path, state)
    outcomes = dict(query(tmp_path, "SELECT outcome, count(*) FROM audit GROUP BY outcome"))
    assert outcomes["hidden"] == 1 and outcomes["unknown"] == 1 and outcomes["invalid"] >= 2
    assert outcomes["rate_limited"] == 1 and outcomes["approved_executed"] == 1


@pytest.mark.parametrize("mode", MODES)
async def test_http_to_http_and_credentials_stay_apart(tmp_path: Path, mode: str) -> None:
    pol, state = setup(tmp_path)
    up_port, port = free_port(), free_port()
    upstream = http_process(
        upstream_command(state, transport="http", port=up_port), tmp_path / "up", up_port
    )
    with upstream as up:
        args = proxy_args(
            tmp_path,
            pol,
            upstream=up.url,
            transport="http",
            port=port,
            extra=("--upstream-header", "Authorization: Bearer upstream-secret"),
        )
        with http_process(guard_command(*args), tmp_path, port) as proxy:
            token = run_cli(tmp_path, "tokens", "add", "alice").stdout.strip().splitlines()[-1]
            # No token, no call.
            with pytest.raises(Exception):  # noqa: B017  (a 401 fails the connection)
                async with http_client(proxy.url, None, mode=mode) as anonymous:
                    await anonymous.list_tools()
            async with http_client(
                proxy.url, token, mode=mode, elicitation_callback=accept_all
            ) as client:
                await check_policy_behaviour(client, tmp_path, state)
    seen = {call["authorization"] for call in upstream_calls(state)}
    assert seen == {"Bearer upstream-secret"}, seen  # never the client's token
    assert not any(token in json.dumps(call) for call in upstream_calls(state))


async def test_elicitation_declined_and_list_changed(tmp_path: Path) -> None:
    pol, state = setup(tmp_path)
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state))
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async def decline(_ctx: Any, _params: Any) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    async with proxy_stdio_client(
        tmp_path, args, mode="legacy", elicitation_callback=decline, message_handler=on_message
    ) as client:
        declined = await client.call_tool("confirm_delete", {"item": "x"})
        assert declined.is_error  # the upstream aborts a declined question
        assert calls_of(state, "confirm_delete") == []

        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "extra_tool" not in names
        assert not (await client.call_tool("grow", {})).is_error
        with anyio.fail_after(10):
            await changed.wait()
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "extra_tool" in names
        extra = await client.call_tool("extra_tool", {})
        assert not extra.is_error and text_of(extra) == "extra"


async def test_list_changed_modern_client(tmp_path: Path) -> None:
    pol, state = setup(tmp_path)
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state))
    async with proxy_stdio_client(tmp_path, args) as client:
        async with client.listen(tools_list_changed=True) as subscription:
            assert not (await client.call_tool("grow", {})).is_error
            with anyio.fail_after(10):
                async for _event in subscription:
                    break
        names = {tool.name for tool in (await client.list_tools(cache_mode="bypass")).tools}
        assert "extra_tool" in names


async def test_pinning_refuses_a_changed_definition_until_accepted(tmp_path: Path) -> None:
    pol, state = setup(tmp_path)
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state), server_name="notes")
    async with proxy_stdio_client(tmp_path, args) as client:
        first = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert not (await client.call_tool("write_note", {"key": "a", "value": "1"})).is_error
    listing = json.loads(run_cli(tmp_path, "tools", "list", "--json").stdout)
    assert {pin["tool"] for pin in listing} >= {"write_note", "noop", "crash"}
    assert all(pin["pending_hash"] is None for pin in listing)

    # The upstream changes write_note behind the approval: a new parameter, a new description.
    rug = {"UPSTREAM_VARIANT": "2"}
    args2 = [*args, "--upstream-env", "UPSTREAM_VARIANT=2"]
    async with proxy_stdio_client(tmp_path, args2, env=rug) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        # Still listed as accepted: the new description does not reach the agent.
        assert listed["write_note"].description == first["write_note"].description
        assert "forward_to" not in listed["write_note"].input_schema["properties"]
        refused = await client.call_tool("write_note", {"key": "b", "value": "2"})
        assert refused.is_error
        assert "odoo-mcp-guard tools accept write_note --server notes" in text_of(refused)
        assert refused.structured_content["status"] == "definition_changed"
        assert [c["arguments"]["key"] for c in calls_of(state, "write_note")] == ["a"]
        assert not (await client.call_tool("noop", {})).is_error  # unchanged tools still work

        shown = run_cli(tmp_path, "tools", "list", "--server", "notes").stdout
        assert "write_note" in shown and "CHANGED" in shown
        accepted = run_cli(tmp_path, "tools", "accept", "write_note", "--as", "manager")
        assert "accepted" in accepted.stdout
        # Accepted while the proxy runs: the same call now goes through.
        now = await client.call_tool(
            "write_note", {"key": "b", "value": "2", "forward_to": "x@example.com"}
        )
        assert not now.is_error, text_of(now)
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert "forward_to" in listed["write_note"].input_schema["properties"]
    assert calls_of(state, "write_note")[-1]["arguments"]["forward_to"] == "x@example.com"
    rows = query(
        tmp_path, "SELECT detail FROM audit WHERE outcome = 'denied' AND tool = ?", "write_note"
    )
    assert rows and "changed the definition" in rows[0][0]
    bad = run_cli(tmp_path, "tools", "accept", "write_note", "--server", "notes", check=False)
    assert bad.returncode == 2 and "no changed definition" in bad.stderr


async def test_upstream_killed_mid_call_stdio(tmp_path: Path) -> None:
    rules = {**POLICY["rules"], "crash": {"action": "allow"}}
    pol, state = setup(tmp_path, {**POLICY, "hide": [], "rules": rules})
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state))
    async with proxy_stdio_client(tmp_path, args) as client:
        with anyio.fail_after(30):
            result = await client.call_tool("crash", {})
        assert result.is_error
        assert "disconnected during the call" in text_of(result)
        assert "not retried" in text_of(result)
        # The proxy stays up and reconnects (a new upstream process); nothing was retried.
        with anyio.fail_after(30):
            again = await client.call_tool("noop", {})
        assert not again.is_error, text_of(again)
    assert len(calls_of(state, "crash")) == 1
    assert audit_count(tmp_path, "failed") == 1


async def test_upstream_http_killed_mid_call(tmp_path: Path) -> None:
    pol, state = setup(tmp_path)
    up_port = free_port()
    command = upstream_command(state, transport="http", port=up_port)
    args = proxy_args(tmp_path, pol, upstream=f"http://127.0.0.1:{up_port}/mcp")
    # Stopped after the proxy (ExitStack): an upstream stopped under an open listen stream
    # takes seconds to shut down.
    with http_process(command, tmp_path / "up", up_port) as up, ExitStack() as later:
        async with proxy_stdio_client(tmp_path, args) as client:
            assert not (await client.call_tool("noop", {})).is_error

            async def kill_soon() -> None:
                await anyio.sleep(0.7)
                os.kill(up.proc.pid, signal.SIGKILL)

            async with anyio.create_task_group() as tg:
                tg.start_soon(kill_soon)
                with anyio.fail_after(30):
                    result = await client.call_tool("slow", {"seconds": 5})
            assert result.is_error and "not retried" in text_of(result), text_of(result)
            up.proc.wait()
            # The upstream comes back on the same port: the proxy reconnects by itself.
            later.enter_context(http_process(command, tmp_path / "up2", up_port))
            with anyio.fail_after(30):
                while True:
                    again = await client.call_tool("noop", {})
                    if not again.is_error:
                        break
                    said = text_of(again)
                    assert any(w in said for w in ("not reachable", "is down", "disconnected")), (
                        said
                    )
                    await anyio.sleep(0.5)
    assert len(calls_of(state, "slow")) == 1


def test_proxy_cli_mistakes(tmp_path: Path) -> None:
    both = run_cli(
        tmp_path, "proxy", "--upstream-command", "x", "--upstream-url", "http://h", check=False
    )
    assert both.returncode == 2 and "not allowed with" in both.stderr
    none = run_cli(tmp_path, "proxy", check=False)
    assert none.returncode == 2 and "exactly one of" in none.stderr
    assert len(none.stderr.strip().splitlines()) == 1
    bad_env = run_cli(
        tmp_path, "proxy", "--upstream-command", "x", "--upstream-env", "NOEQUALS", check=False
    )
    assert bad_env.returncode == 2 and "KEY=VALUE" in bad_env.stderr
    bad_url = run_cli(tmp_path, "proxy", "--upstream-url", "ftp://x", check=False)
    assert bad_url.returncode == 2 and "http" in bad_url.stderr
    for name in ("", "x" * 201, "notes\n"):
        bad_name = run_cli(
            tmp_path, "proxy", "--upstream-command", "x", "--server-name", name, check=False
        )
        assert bad_name.returncode == 2 and "--server-name must be" in bad_name.stderr
    for level in (("proxy",), ("tools",), ("tools", "list"), ("tools", "accept")):
        shown = run_cli(tmp_path, *level, "--help")
        assert "usage:" in shown.stdout


async def test_elicitation_from_a_2025_era_upstream(tmp_path: Path) -> None:
    """An upstream session in the 2025-11-25 era asks with elicitation/create mid-call: the
    proxy passes it to the 2025-era client whose call is in flight; a 2026-07-28 client has no
    channel for it mid-call, and the question is refused (the upstream then fails the call)."""
    pol, state = setup(tmp_path)
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state))
    legacy_upstream = {"MCP_GUARD_UPSTREAM_MODE": "legacy"}
    async with proxy_stdio_client(
        tmp_path, args, mode="legacy", env=legacy_upstream, elicitation_callback=accept_all
    ) as client:
        asked = await client.call_tool("confirm_delete", {"item": "old"})
        assert not asked.is_error, text_of(asked)
        assert asked.structured_content == {"item": "old", "deleted": True}
    async with proxy_stdio_client(
        tmp_path, args, env=legacy_upstream, elicitation_callback=accept_all
    ) as client:
        refused = await client.call_tool("confirm_delete", {"item": "new"})
        assert refused.is_error
    assert [c["arguments"]["item"] for c in calls_of(state, "confirm_delete")] == ["old"]
