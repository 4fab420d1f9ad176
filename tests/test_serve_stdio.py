"""End to end over stdio: the real server in a subprocess, the SDK client, the real CLI."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from support.guard import (
    MODES,
    aliases,
    approve,
    audit_count,
    connect_args,
    connection_row,
    move_expiry_to_the_past,
    policy,
    query,
    reject,
    request_state,
    run_cli,
    stdio_client,
    text_of,
    write_policy,
)
from support.raw_stdio import raw_stdio

pytestmark = pytest.mark.anyio


async def pending(client: Any, tool: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, text_of(result)
    assert result.structured_content is not None, text_of(result)
    assert result.structured_content["status"] == "pending", result.structured_content
    ref = result.structured_content["request"]
    assert ref in text_of(result) and "pending" in text_of(result)
    return ref


async def ok(client: Any, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments or {})
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content


@pytest.mark.parametrize("mode", MODES)
async def test_tools_connect_and_list_without_secrets(tmp_path: Path, mode: str) -> None:
    async with stdio_client(tmp_path, mode=mode) as client:
        expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
        assert client.protocol_version == expected
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert {"odoo_connect", "odoo_connections", "odoo_disconnect"} <= set(tools)
        assert {"odoo_search_read", "odoo_write", "odoo_unlink"} <= set(tools)  # data tools
        assert tools["odoo_connections"].annotations.read_only_hint is True
        disconnect = tools["odoo_disconnect"]
        assert disconnect.annotations is not None
        assert disconnect.annotations.destructive_hint is True
        assert disconnect.annotations.idempotent_hint is False
        assert disconnect.input_schema["required"] == ["alias"]
        assert disconnect.input_schema.get("additionalProperties") is False

        created = await ok(client, "odoo_connect", connect_args("prod", api_key="k3y-prod"))
        assert created["created"] is True and created["alias"] == "prod"
        listing = await client.call_tool("odoo_connections", {})
        assert not listing.is_error
        (conn,) = listing.structured_content["connections"]
        assert conn["alias"] == "prod" and conn["has_password"] and conn["has_api_key"]
        for result in (listing,):
            dumped = result.model_dump_json()
            assert "s3cret-prod" not in dumped and "k3y-prod" not in dumped
        assert "password" not in conn and "api_key" not in conn
    # Secrets are not in the audit either.
    rows = query(tmp_path, "SELECT detail, arguments_hash FROM audit")
    assert rows and not any("s3cret" in detail for detail, _ in rows)


async def test_hidden_tool_absent_and_refused(tmp_path: Path) -> None:
    pol = write_policy(tmp_path / "policy.json", policy(hide=["odoo_disconnect"]))
    async with stdio_client(tmp_path, policy_file=pol) as client:
        await ok(client, "odoo_connect", connect_args("prod"))
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert "odoo_disconnect" not in names and "odoo_connect" in names
        result = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert result.is_error and "hidden" in text_of(result)
        # Invalid arguments do not reveal the schema of a hidden tool: still 'hidden'.
        result = await client.call_tool("odoo_disconnect", {"nope": 1})
        assert result.is_error and "hidden" in text_of(result)
    assert aliases(tmp_path) == ["prod"]
    assert audit_count(tmp_path, "hidden") == 2
    assert query(tmp_path, "SELECT count(*) FROM approval_requests")[0][0] == 0


async def test_deny_with_reason(tmp_path: Path) -> None:
    pol = write_policy(
        tmp_path / "policy.json",
        policy(odoo_disconnect={"action": "deny", "reason": "Connections are managed by IT"}),
    )
    async with stdio_client(tmp_path, policy_file=pol) as client:
        await ok(client, "odoo_connect", connect_args("prod"))
        result = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert result.is_error
        assert "not allowed" in text_of(result) and "Connections are managed by IT" in text_of(
            result
        )
        # Replacing an alias removes the old connection: denied by the same rule.
        result = await client.call_tool("odoo_connect", connect_args("prod", db="other"))
        assert result.is_error and "Connections are managed by IT" in text_of(result)
    assert connection_row(tmp_path, "prod")["db"] == "prod_db"
    assert audit_count(tmp_path, "denied") == 2


async def test_default_deny_and_unknown_tools(tmp_path: Path) -> None:
    doc = policy(odoo_execute_kw={"action": "allow"})  # a rule for a tool this server lacks
    del doc["rules"]["odoo_connections"]  # served, no rule: the default (deny) applies
    pol = write_policy(tmp_path / "policy.json", doc)
    async with stdio_client(tmp_path, policy_file=pol) as client:
        result = await client.call_tool("odoo_connections", {})
        assert result.is_error and "not allowed" in text_of(result)
        for name in ("odoo_execute_kw", "odoo_shell", "odoo_connections_all"):
            result = await client.call_tool(name, {})
            assert result.is_error and f"unknown tool '{name}'" in text_of(result), name
    assert audit_count(tmp_path, "unknown") == 3
    assert audit_count(tmp_path, "denied") == 1


async def test_rate_limit_exact_sliding_and_per_principal(tmp_path: Path) -> None:
    pol = write_policy(
        tmp_path / "policy.json",
        policy(odoo_connections={"action": "allow", "rate_limit": {"max": 3, "window": 6}}),
    )
    async with (
        stdio_client(tmp_path, policy_file=pol, principal="alice") as alice,
        stdio_client(tmp_path, policy_file=pol, principal="bob") as bob,
    ):
        started = time.monotonic()
        for _ in range(3):
            await ok(alice, "odoo_connections")
        refused = await alice.call_tool("odoo_connections", {})
        assert refused.is_error and "rate limit" in text_of(refused)
        assert refused.structured_content["status"] == "rate_limited"
        # Bob has a window of his own.
        for _ in range(3):
            await ok(bob, "odoo_connections")
        assert (await bob.call_tool("odoo_connections", {})).is_error
        # The window slides: six seconds after the first calls, alice passes again. (Six, not
        # two: the eight calls above must fit inside the window on a loaded machine.)
        await anyio.sleep(max(0.0, 6.2 - (time.monotonic() - started)))
        await ok(alice, "odoo_connections")
    assert audit_count(tmp_path, "rate_limited") == 2


@pytest.mark.parametrize("mode", MODES)
async def test_approval_flow_execute_once_then_replay_refused(tmp_path: Path, mode: str) -> None:
    async with stdio_client(tmp_path, mode=mode) as client:
        await ok(client, "odoo_connect", connect_args("prod"))
        ref = await pending(client, "odoo_disconnect", {"alias": "prod"})
        # Asking again before a decision finds the same pending request.
        assert await pending(client, "odoo_disconnect", {"alias": "prod"}) == ref
        assert aliases(tmp_path) == ["prod"]

        approve(tmp_path, ref, "carol")
        assert request_state(tmp_path, ref) == "approved"
        done = await ok(client, "odoo_disconnect", {"alias": "prod"})
        assert done == {"alias": "prod", "removed": True}
        assert aliases(tmp_path) == []
        assert request_state(tmp_path, ref) == "done"

        # Replay: the approval was used; the same call needs a new one.
        await ok(client, "odoo_connect", connect_args("prod"))
        ref2 = await pending(client, "odoo_disconnect", {"alias": "prod"})
        assert ref2 != ref
        assert aliases(tmp_path) == ["prod"]
    assert audit_count(tmp_path, "approved_executed") == 1


async def test_approval_is_bound_to_its_arguments(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as client:
        await ok(client, "odoo_connect", connect_args("alpha"))
        await ok(client, "odoo_connect", connect_args("beta"))
        ref_a = await pending(client, "odoo_disconnect", {"alias": "alpha"})
        approve(tmp_path, ref_a)
        # The approval for alpha does not remove beta: beta gets a request of its own.
        ref_b = await pending(client, "odoo_disconnect", {"alias": "beta"})
        assert ref_b != ref_a
        assert aliases(tmp_path) == ["alpha", "beta"]
        assert request_state(tmp_path, ref_a) == "approved"
    # Another principal cannot use alice's approval either.
    async with stdio_client(tmp_path, principal="mallory") as mallory:
        ref_m = await pending(mallory, "odoo_disconnect", {"alias": "alpha"})
        assert ref_m not in (ref_a, ref_b)
    assert aliases(tmp_path) == ["alpha", "beta"]
    assert request_state(tmp_path, ref_a) == "approved"


async def test_expired_approval_is_refused(tmp_path: Path) -> None:
    pol = write_policy(
        tmp_path / "policy.json",
        policy(odoo_disconnect={"action": "require_approval", "approval": {"expires_in": 60}}),
    )
    async with stdio_client(tmp_path, policy_file=pol) as client:
        await ok(client, "odoo_connect", connect_args("prod"))
        ref = await pending(client, "odoo_disconnect", {"alias": "prod"})
        approve(tmp_path, ref)
        # The clock moves past the approval's validity: its expiry is set into the past in the
        # store rather than slept through, so a slow approve subprocess cannot race it.
        move_expiry_to_the_past(tmp_path, ref)
        result = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert result.is_error and "expired" in text_of(result)
        assert result.structured_content["status"] == "expired"
        assert aliases(tmp_path) == ["prod"]
        # Calling again files a new request.
        assert await pending(client, "odoo_disconnect", {"alias": "prod"}) != ref
    assert request_state(tmp_path, ref) == "expired"


async def test_requester_cannot_approve_own_request(tmp_path: Path) -> None:
    async with stdio_client(tmp_path, principal="alice") as client:
        await ok(client, "odoo_connect", connect_args("prod"))
        ref = await pending(client, "odoo_disconnect", {"alias": "prod"})
        for name in ("alice", "ALICE", " alice", "ａｌｉｃｅ"):
            proc = run_cli(tmp_path, "approvals", "approve", ref, "--as", name, check=False)
            assert proc.returncode != 0, name
            assert "cannot approve" in proc.stderr, proc.stderr
            proc = run_cli(tmp_path, "approvals", "reject", ref, "--as", name, check=False)
            assert proc.returncode != 0, name
        assert request_state(tmp_path, ref) == "pending"
        again = await pending(client, "odoo_disconnect", {"alias": "prod"})
        assert again == ref
    assert aliases(tmp_path) == ["prod"]


async def test_rejected_request_answers_with_the_note(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as client:
        await ok(client, "odoo_connect", connect_args("prod"))
        ref = await pending(client, "odoo_disconnect", {"alias": "prod"})
        reject(tmp_path, ref, "carol", note="Prod is closing the month")
        result = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert result.is_error
        assert "rejected" in text_of(result) and "Prod is closing the month" in text_of(result)
        assert result.structured_content["status"] == "rejected"
        assert result.structured_content["note"] == "Prod is closing the month"
        # The rejection was reported: the next call files a fresh request.
        assert await pending(client, "odoo_disconnect", {"alias": "prod"}) != ref
    assert aliases(tmp_path) == ["prod"]


@pytest.mark.parametrize("mode", MODES)
async def test_concurrent_calls_consume_one_approval_once(tmp_path: Path, mode: str) -> None:
    async with stdio_client(tmp_path, mode=mode) as client:
        await ok(client, "odoo_connect", connect_args("prod"))
        ref = await pending(client, "odoo_disconnect", {"alias": "prod"})
        approve(tmp_path, ref)
        results: list[types.CallToolResult] = []

        async def one() -> None:
            results.append(await client.call_tool("odoo_disconnect", {"alias": "prod"}))

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
    succeeded = [r for r in results if not r.is_error]
    assert len(results) == 20 and len(succeeded) == 1, [text_of(r) for r in results]
    assert succeeded[0].structured_content == {"alias": "prod", "removed": True}
    # The others were told to get an approval of their own, or, judged once prod was gone,
    # that there is nothing to remove; none ran.
    for result in results:
        if result.is_error:
            status = (result.structured_content or {}).get("status")
            assert status == "pending" or "no connection named 'prod'" in text_of(result)
    assert aliases(tmp_path) == []
    assert audit_count(tmp_path, "approved_executed") == 1
    assert request_state(tmp_path, ref) == "done"


async def test_overwriting_an_alias_is_gated(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as client:
        await ok(client, "odoo_connect", connect_args("prod"))
        replacement = connect_args("prod", url="https://evil.example.net", db="evil")
        ref = await pending(client, "odoo_connect", replacement)
        assert connection_row(tmp_path, "prod") == {
            "alias": "prod",
            "url": "https://prod.example.com",
            "db": "prod_db",
        }
        approve(tmp_path, ref)
        replaced = await ok(client, "odoo_connect", replacement)
        assert replaced["created"] is False
        assert connection_row(tmp_path, "prod")["url"] == "https://evil.example.net"
        # A new alias is a plain addition: no approval needed.
        assert (await ok(client, "odoo_connect", connect_args("stage")))["created"] is True


async def test_unknown_alias_is_a_clear_tool_error(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as client:
        # Not there when asked: refused at once, no request (tests/test_newcomer.py).
        result = await client.call_tool("odoo_disconnect", {"alias": "ghost"})
        assert result.is_error and "no connection named 'ghost'" in text_of(result)
        # Gone between the approval and the retry: refused the same way; the approval is
        # not spent on a call that could not run.
        await ok(client, "odoo_connect", connect_args("ghost"))
        ref = await pending(client, "odoo_disconnect", {"alias": "ghost"})
        approve(tmp_path, ref)
        from odoo_mcp_guard.store import Store

        store = Store.open(tmp_path)
        assert store.remove_connection("ghost")
        store.close()
        result = await client.call_tool("odoo_disconnect", {"alias": "ghost"})
        assert result.is_error and "no connection named 'ghost'" in text_of(result)
    assert request_state(tmp_path, ref) == "approved"
    assert (audit_count(tmp_path, "invalid"), audit_count(tmp_path, "failed")) == (2, 0)


async def test_tools_list_changed_on_policy_change_legacy(tmp_path: Path) -> None:
    pol = write_policy(tmp_path / "policy.json", policy())
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        root = getattr(message, "root", message)
        if isinstance(root, types.ToolListChangedNotification):
            changed.set()

    async with stdio_client(
        tmp_path, policy_file=pol, mode="legacy", message_handler=on_message
    ) as client:
        assert "odoo_disconnect" in [t.name for t in (await client.list_tools()).tools]
        write_policy(pol, policy(hide=["odoo_disconnect"]))
        with anyio.fail_after(10):
            await changed.wait()
        assert "odoo_disconnect" not in [t.name for t in (await client.list_tools()).tools]
        # A broken policy never replaces the good one.
        pol.write_text("{not json", encoding="utf-8")
        await anyio.sleep(1.2)
        names = [t.name for t in (await client.list_tools()).tools]
        assert "odoo_disconnect" not in names and "odoo_connections" in names
        result = await client.call_tool("odoo_disconnect", {"alias": "x"})
        assert result.is_error and "hidden" in text_of(result)


async def test_tools_list_changed_on_policy_change_modern(tmp_path: Path) -> None:
    pol = write_policy(tmp_path / "policy.json", policy())
    async with stdio_client(tmp_path, policy_file=pol, mode="auto") as client:
        assert client.protocol_version == "2026-07-28"
        assert "odoo_disconnect" in [t.name for t in (await client.list_tools()).tools]
        async with client.listen(tools_list_changed=True) as subscription:
            write_policy(pol, policy(hide=["odoo_disconnect"]))
            with anyio.fail_after(10):
                event = await subscription.__anext__()
            assert "ToolsListChanged" in type(event).__name__
        assert "odoo_disconnect" not in [t.name for t in (await client.list_tools()).tools]


async def test_data_tools_answer_clearly_without_an_odoo(tmp_path: Path) -> None:
    """The data tools (served next to the connection tools) fail as tool errors, never as
    tracebacks; writes wait for an approval before anything is sent to Odoo."""
    async with stdio_client(tmp_path) as client:
        await ok(client, "odoo_connect", connect_args("down", url="http://127.0.0.1:9"))
        result = await client.call_tool(
            "odoo_read", {"alias": "nowhere", "model": "res.partner", "ids": [1]}
        )
        assert result.is_error and "no connection named 'nowhere'" in text_of(result)
        result = await client.call_tool(
            "odoo_search_read", {"alias": "down", "model": "res.partner", "limit": 1}
        )
        assert result.is_error and "cannot be reached" in text_of(result), text_of(result)
        assert "Traceback" not in text_of(result) and "s3cret" not in text_of(result)
        result = await client.call_tool(
            "odoo_search_read", {"alias": "down", "model": "Res Partner"}
        )
        assert result.is_error and "Invalid arguments" in text_of(result)
        ref = await pending(
            client, "odoo_unlink", {"alias": "down", "model": "res.partner", "ids": [1]}
        )
        assert ref.startswith("MCPR-")
    # the unreachable Odoo failed; the unknown alias was refused before anything ran
    assert audit_count(tmp_path, "failed") == 1


async def test_unparseable_request_gets_an_error_answer(tmp_path: Path) -> None:
    """A line the SDK cannot parse (a lone surrogate) is answered with a JSON-RPC error for
    its id, quoting nothing of it; the session goes on."""
    import json

    secret = "s3cret-beside-the-surrogate"
    async with raw_stdio(tmp_path) as raw:
        with anyio.fail_after(30):
            await raw.initialize()
            await raw.send(
                '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":'
                '"odoo_connections","arguments":{"x":"\\ud800","p":"' + secret + '"}}}'
            )
            bad = await raw.answer()
            assert bad["id"] == 5 and bad["error"]["code"] in (-32700, -32600), bad
            assert "\n" not in bad["error"]["message"]
            assert secret not in json.dumps(bad) and "ud800" not in json.dumps(bad)
            call = {"name": "odoo_connections", "arguments": {}}
            await raw.send({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": call})
            good = await raw.answer()
            assert good["id"] == 6 and "result" in good, good
            errors = await raw.close()
    assert "Traceback" not in errors and secret not in errors
