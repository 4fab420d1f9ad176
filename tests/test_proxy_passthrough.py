"""The proxy's fast paths (issue 16), each keeping every check:

* an allowed call to a 2026-07-28 upstream over HTTP is posted as raw JSON-RPC (proxy.py
  ``_send_raw``): against a hostile upstream (tests/hostile_http_upstream.py) nothing gets past
  the gate that way: an answer to an id the proxy never sent, a question on the call's stream,
  an oversized or unreadable frame, a claimed list change (the listing is fetched and pinned
  again, never taken on trust); secrets in an answer are redacted as on the SDK's path;
* a 2025-era HTTP client that declared nothing it could be asked (no elicitation, sampling or
  roots) gets one JSON body per answer; one that declared elicitation keeps its SSE stream
  (sdk_workarounds 4).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from support.guard import (
    INITIALIZE,
    INITIALIZED,
    RAW_HEADERS,
    REPO,
    add_token,
    audit_count,
    free_port,
    guard_command,
    guard_env,
    http_process,
    proxy_args,
    proxy_stdio_client,
    query,
    text_of,
    upstream_command,
    write_policy,
)

pytestmark = pytest.mark.anyio

HOSTILE_HTTP = REPO / "tests" / "hostile_http_upstream.py"
SECRET = "HOSTILE-S3CRET"
TOOLS = {
    "fine",
    "sse_fine",
    "wrong_id",
    "list_claim",
    "ask_back",
    "oversized",
    "not_json",
    "no_answer",
    "error_null_id",
}


def state_of(state: Path) -> dict[str, Any]:
    return json.loads(state.read_text(encoding="utf-8"))


async def test_hostile_answers_on_the_raw_path_never_pass(tmp_path: Path) -> None:
    pol = write_policy(
        tmp_path / "policy.json",
        {"version": "1", "default": "deny", "rules": {"*": {"action": "allow"}}},
    )
    state = tmp_path / "upstream.json"
    port = free_port()
    command = [sys.executable, str(HOSTILE_HTTP), "--state", str(state), "--port", str(port)]
    data = tmp_path / "guard"
    # Answers above 100000 bytes are refused (the upstream's "oversized" sends 300000).
    env = {"MCP_GUARD_UPSTREAM_MAX_ANSWER": "100000"}
    with http_process(command, tmp_path / "up", port) as up:
        args = proxy_args(data, pol, upstream=up.url, server_name="hostile")
        async with proxy_stdio_client(data, args, env=env) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            assert listed == TOOLS

            fine = await client.call_tool("fine", {})
            assert not fine.is_error, text_of(fine)
            assert text_of(fine).startswith("all good") and SECRET not in text_of(fine)
            sse = await client.call_tool("sse_fine", {})
            assert not sse.is_error and text_of(sse) == "sse_fine answered", text_of(sse)

            refused = {
                "wrong_id": "a request the proxy never sent",
                "ask_back": "no way back",
                "oversized": "more than 100000 bytes",
                "not_json": "not valid JSON-RPC",
                "no_answer": "no answer",
            }
            for tool, why in refused.items():
                result = await client.call_tool(tool, {})
                said = text_of(result)
                assert result.is_error and why in said, (tool, said)
                assert "smuggled" not in said and SECRET not in said
            error = await client.call_tool("error_null_id", {})
            assert error.is_error and "answered with an error" in text_of(error)
            assert SECRET not in text_of(error), text_of(error)

            # A claimed list change: the proxy lists again (the upstream counts it) and
            # serves what the listing says, which has not changed.
            lists_before = state_of(state)["lists"]
            claim = await client.call_tool("list_claim", {})
            assert not claim.is_error, text_of(claim)
            with anyio.fail_after(20):
                while state_of(state)["lists"] == lists_before:
                    await anyio.sleep(0.05)
            again = await client.call_tool("fine", {})  # the proxy still serves
            assert not again.is_error, text_of(again)
            assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS
            unknown = await client.call_tool("extra_tool", {})
            assert unknown.is_error
    # Each call reached the upstream once (nothing retried), the unknown one never.
    calls = state_of(state)["calls"]
    assert sorted(calls) == sorted([*TOOLS, "fine"]), calls
    # Every call audited: the refused answers as failures.
    assert audit_count(data, "failed") == len(refused) + 1
    rows = query(data, "SELECT outcome FROM audit WHERE tool = 'wrong_id' ORDER BY id")
    assert rows == [("allowed",), ("failed",)], rows


@pytest.mark.parametrize("passthrough", ["1", "0"])
async def test_the_raw_path_and_the_sdks_agree(tmp_path: Path, passthrough: str) -> None:
    """The same calls to an honest upstream, raw or through the SDK's session: the same
    answers, the output schema checked, an input request handed on to a 2026-07-28 client."""
    pol = write_policy(
        tmp_path / "policy.json",
        {
            "version": "1",
            "default": "deny",
            "rules": {"*": {"action": "allow"}, "confirm_delete": {"action": "allow"}},
        },
    )
    state = tmp_path / "upstream.json"
    port = free_port()
    env = {"MCP_GUARD_UPSTREAM_PASSTHROUGH": passthrough}
    with http_process(upstream_command(state, transport="http", port=port), tmp_path, port) as up:
        args = proxy_args(tmp_path / "guard", pol, upstream=up.url)
        async with proxy_stdio_client(
            tmp_path / "guard", args, env=env, elicitation_callback=accept_all
        ) as client:
            noop = await client.call_tool("noop", {})
            assert not noop.is_error and noop.structured_content == {"result": "ok"}
            wrote = await client.call_tool("write_note", {"key": "k", "value": "hello"})
            assert not wrote.is_error, text_of(wrote)
            read = await client.call_tool("read_note", {"key": "k"})
            assert not read.is_error and text_of(read) == "hello", text_of(read)
            bad = await client.call_tool("read_note", {"key": 3})
            assert bad.is_error and "schema" in text_of(bad), text_of(bad)
            # An input request (raw path: an input_required answer) handed on, answered by
            # this 2026-07-28 client, and the continuation judged and sent as a call.
            asked = await client.call_tool("confirm_delete", {"item": "x"})
            assert not asked.is_error, text_of(asked)
            assert asked.structured_content == {"item": "x", "deleted": True}
    tools = [call["tool"] for call in state_of(state)["calls"]]
    assert tools == ["write_note", "read_note", "confirm_delete"], tools


async def accept_all(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"confirm": True})


def _post(client: httpx2.Client, url: str, headers: dict[str, str], body: Any) -> httpx2.Response:
    return client.post(url, json=body, headers=headers)


@pytest.mark.parametrize("asks", [False, True])
async def test_json_answers_only_to_a_client_that_cannot_be_asked(
    tmp_path: Path, asks: bool
) -> None:
    pol = write_policy(
        tmp_path / "policy.json",
        {"version": "1", "default": "deny", "rules": {"*": {"action": "allow"}}},
    )
    state = tmp_path / "upstream.json"
    port = free_port()
    data = tmp_path / "guard"
    args = proxy_args(data, pol, upstream=upstream_command(state), transport="http", port=port)
    with http_process(guard_command(*args), data, port) as proxy:
        token = add_token(data, "alice")
        headers = {**RAW_HEADERS, "Authorization": f"Bearer {token}"}
        initialize = json.loads(json.dumps(INITIALIZE))
        if asks:
            initialize["params"]["capabilities"] = {"elicitation": {}}
        with httpx2.Client(timeout=60) as http:
            opened = _post(http, proxy.url, headers, initialize)
            assert opened.status_code == 200, opened.text
            # Decided as the initialize is read: its own answer already has the session's form.
            json_answer = opened.headers["content-type"].startswith("application/json")
            assert json_answer is not asks, opened.headers
            headers["Mcp-Session-Id"] = opened.headers["mcp-session-id"]
            _post(http, proxy.url, headers, INITIALIZED)
            call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "noop"}}
            answer = _post(http, proxy.url, headers, call)
            assert answer.status_code == 200, answer.text
            kind = answer.headers["content-type"]
            if asks:
                assert kind.startswith("text/event-stream"), kind
            else:
                assert kind.startswith("application/json"), kind
                body = answer.json()
                assert body["id"] == 7 and body["result"]["structuredContent"] == {"result": "ok"}
            # A hidden or unknown tool is refused either way, and audited.
            unknown = {**call, "id": 8, "params": {"name": "nope"}}
            refused = _post(http, proxy.url, headers, unknown)
            assert '"isError":true' in refused.text.replace(" ", ""), refused.text
    assert audit_count(data, "unknown") == 1


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "MCP_GUARD_UPSTREAM_MAX_ANSWER",
            "lots",
            "expected a whole number from 1 to 1099511627776",
        ),
        ("MCP_GUARD_UPSTREAM_MAX_ANSWER", "0", "expected a whole number from 1 to 1099511627776"),
        ("MCP_GUARD_UPSTREAM_MAX_ANSWER", "-5", "expected a whole number from 1 to 1099511627776"),
        ("MCP_GUARD_UPSTREAM_PASSTHROUGH", "yes", "expected one of 1, 0"),
    ],
)
def test_a_bad_setting_is_one_line(tmp_path: Path, name: str, value: str, expected: str) -> None:
    proc = subprocess.run(
        guard_command("proxy", "--upstream-url", "http://127.0.0.1:9/mcp"),
        env=guard_env(tmp_path, **{name: value}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"odoo-mcp-guard: error: {name}={value!r}: {expected}"
    ]
