"""A continuation through the proxy is a call (DESIGN invariant 9).

The SDK client (2026-07-28) → the real proxy subprocess → tests/upstream_server.py, whose
``confirm_delete`` asks the user through an input request before it acts. The client answers
with ``inputResponses`` + ``requestState``; how often the tool acted is counted on the
upstream's side (its state file), what the guard decided in the proxy's audit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from support.guard import (
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
    upstream_calls,
    upstream_command,
    write_policy,
)

pytestmark = pytest.mark.anyio

YES = types.ElicitResult(action="accept", content={"confirm": True})


def policy(rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "1",
        "default": "deny",
        "hide": [],
        "rules": {"noop": {"action": "allow"}, "confirm_delete": rule},
    }


def deletions(state: Path) -> list[str]:
    """The items the upstream's confirm_delete acted on (it records only when it runs)."""
    return [c["arguments"]["item"] for c in upstream_calls(state) if c["tool"] == "confirm_delete"]


@asynccontextmanager
async def proxied(tmp_path: Path, rule: dict[str, Any], transport: str) -> AsyncIterator[Any]:
    pol = write_policy(tmp_path / "policy.json", policy(rule))
    state = tmp_path / "upstream.json"
    if transport == "stdio":
        args = proxy_args(tmp_path, pol, upstream=upstream_command(state))
        async with proxy_stdio_client(tmp_path, args) as client:
            yield client
        return
    port = free_port()
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state), transport="http", port=port)
    with http_process(guard_command(*args), tmp_path, port) as running:
        token = run_cli(tmp_path, "tokens", "add", "alice").stdout.strip().splitlines()[-1]
        async with http_client(running.url, token) as client:
            yield client


async def ask(client: Any, item: str) -> types.InputRequiredResult:
    first = await client.session.call_tool(
        "confirm_delete", {"item": item}, allow_input_required=True
    )
    assert isinstance(first, types.InputRequiredResult), first
    assert first.request_state and first.input_requests
    return first


async def answer(client: Any, item: str, asked: types.InputRequiredResult) -> Any:
    responses = dict.fromkeys(asked.input_requests or {}, YES)
    return await client.session.call_tool(
        "confirm_delete",
        {"item": item},
        input_responses=responses,
        request_state=asked.request_state,
        allow_input_required=True,
    )


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_replayed_continuation_runs_once(tmp_path: Path, transport: str) -> None:
    state = tmp_path / "upstream.json"
    async with proxied(tmp_path, {"action": "allow"}, transport) as client:
        assert client.protocol_version == "2026-07-28"
        asked = await ask(client, "report")
        results = [await answer(client, "report", asked) for _ in range(5)]
    done, *replays = results
    assert isinstance(done, types.CallToolResult) and not done.is_error, done
    assert done.structured_content == {"item": "report", "deleted": True}
    for replay in replays:
        assert isinstance(replay, types.CallToolResult) and replay.is_error
        assert "requestState was already used" in text_of(replay)
    assert deletions(state) == ["report"]
    audited = query(
        tmp_path,
        "SELECT outcome, detail FROM audit WHERE tool = 'confirm_delete' ORDER BY id",
    )
    assert [outcome for outcome, _ in audited] == ["allowed", "allowed"] + ["invalid"] * 4
    assert "continuation" in audited[1][1]


async def test_a_continuation_counts_against_the_rate_limit(tmp_path: Path) -> None:
    state = tmp_path / "upstream.json"
    limited = {"action": "allow", "rate_limit": {"max": 3, "window": 600}}
    async with proxied(tmp_path, limited, "stdio") as client:
        first = await ask(client, "a")  # 1
        second = await ask(client, "b")  # 2
        ran = await answer(client, "a", first)  # 3: the last call of the window
        assert not ran.is_error, text_of(ran)
        refused = await answer(client, "b", second)
        assert refused.is_error and "rate limit" in text_of(refused)
        assert refused.structured_content["status"] == "rate_limited"
    assert deletions(state) == ["a"]


async def test_a_continuation_needs_its_own_approval(tmp_path: Path) -> None:
    """The approval is spent by the call that asked; the answer to its question is a call of
    its own, and cannot run on that spent approval."""
    state = tmp_path / "upstream.json"
    gated = {"action": "require_approval", "reason": "deletes"}
    async with proxied(tmp_path, gated, "stdio") as client:
        pending = await client.call_tool("confirm_delete", {"item": "x"})
        assert pending.structured_content["status"] == "pending"
        approve(tmp_path, pending.structured_content["request"])
        asked = await ask(client, "x")  # consumes the approval; the upstream asks

        again = await answer(client, "x", asked)
        assert again.is_error and again.structured_content["status"] == "pending"
        ref = again.structured_content["request"]
        assert ref != pending.structured_content["request"]
        assert deletions(state) == []

        approve(tmp_path, ref)
        done = await answer(client, "x", asked)
        assert not done.is_error, text_of(done)
        replay = await answer(client, "x", asked)
        assert replay.is_error and "already used" in text_of(replay)
    assert deletions(state) == ["x"]
    outcomes = [row[0] for row in query(tmp_path, "SELECT outcome FROM audit ORDER BY id")]
    assert outcomes.count("approved_executed") == 2 and outcomes[-1] == "invalid"
