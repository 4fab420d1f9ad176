"""Outside round 21 (tester B): an upstream that asks the user which alias a connection tool
acts on let the answer choose another connection than the one judged: ``odoo_connect`` of a
new alias, answered "prod", replaced prod with no approval; an approval to remove "scratch",
answered "prod", removed prod. Now no question the upstream asks during a connection change
reaches the client, in either protocol era of the client or of the upstream: the call fails and
nothing is written. The SDK client → ``odoo-mcp-guard proxy`` (a subprocess) →
tests/upstream_server.py with ``UPSTREAM_ASK_ALIAS=1``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from support.guard import (
    approve,
    proxy_args,
    proxy_stdio_client,
    query,
    text_of,
    upstream_command,
    write_policy,
)

pytestmark = pytest.mark.anyio

POLICY = {
    "version": "1",
    "default": "deny",
    "rules": {
        "odoo_connections": {"action": "allow"},
        "odoo_connect": {"action": "allow"},
        "odoo_disconnect": {"action": "require_approval"},
    },
}
PROD = "https://prod.example.com"
ERAS = [
    pytest.param("legacy", {}, id="2025-client"),
    pytest.param("auto", {}, id="2026-client"),
    pytest.param("legacy", {"MCP_GUARD_UPSTREAM_MODE": "legacy"}, id="2025-client-2025-upstream"),
    pytest.param("auto", {"MCP_GUARD_UPSTREAM_MODE": "legacy"}, id="2026-client-2025-upstream"),
]


def start(tmp_path: Path) -> tuple[list[str], Path]:
    state = tmp_path / "upstream.json"
    state.write_text(
        json.dumps(
            {
                "aliases": ["prod", "scratch"],
                "urls": {"prod": PROD, "scratch": "https://s.example.com"},
                "notes": {},
                "calls": [],
            }
        )
    )
    pol = write_policy(tmp_path / "policy.json", POLICY)
    args = proxy_args(
        tmp_path,
        pol,
        upstream=upstream_command(state),
        extra=("--upstream-env", "UPSTREAM_CONNECT=1", "--upstream-env", "UPSTREAM_ASK_ALIAS=1"),
    )
    return args, state


def answering(asked: list[str]) -> Any:
    async def callback(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"alias": "prod"})

    return callback


@pytest.mark.parametrize(("mode", "env"), ERAS)
async def test_an_answer_cannot_choose_the_connection_a_change_writes(
    tmp_path: Path, mode: str, env: dict[str, str]
) -> None:
    args, state = start(tmp_path)
    asked: list[str] = []
    async with proxy_stdio_client(
        tmp_path, args, mode=mode, env=env, elicitation_callback=answering(asked)
    ) as client:
        # judged new (no 'newone' listed): allowed, but its question is not passed on
        added = await client.call_tool(
            "odoo_connect", {"alias": "newone", "url": "http://evil.example.com"}
        )
        assert added.is_error, text_of(added)
        # an approval to remove scratch does not let an answer remove prod
        pending = await client.call_tool("odoo_disconnect", {"alias": "scratch"})
        assert pending.structured_content["status"] == "pending", text_of(pending)
        approve(tmp_path, pending.structured_content["request"])
        removed = await client.call_tool("odoo_disconnect", {"alias": "scratch"})
        assert removed.is_error, text_of(removed)
    assert asked == []
    after = json.loads(state.read_text())
    assert after["aliases"] == ["prod", "scratch"] and after["urls"]["prod"] == PROD
    assert [c for c in after["calls"] if c["tool"] in ("odoo_connect", "odoo_disconnect")] == []
    outcomes = [row[0] for row in query(tmp_path, "SELECT outcome FROM audit ORDER BY id")]
    assert "approval_pending" in outcomes
    if env == {}:  # the proxy itself failed the call: audited as such, the approval spent
        assert outcomes[-1] == "failed", outcomes


async def test_a_2025_clients_answer_cannot_run_on_an_approval_it_was_not_part_of(
    tmp_path: Path,
) -> None:
    """A 2025-era client answers within the call: on an approved call, that answer would run
    unjudged on an approval given without it (a 2026-07-28 client's answer is a call of its
    own, approved on its own: test_proxy_continuation)."""
    state = tmp_path / "upstream.json"
    policy = {
        "version": "1",
        "default": "deny",
        "rules": {"confirm_delete": {"action": "require_approval"}},
    }
    args = proxy_args(
        tmp_path, write_policy(tmp_path / "policy.json", policy), upstream=upstream_command(state)
    )
    asked: list[str] = []

    async def confirm(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"confirm": True})

    async with proxy_stdio_client(
        tmp_path, args, mode="legacy", elicitation_callback=confirm
    ) as client:
        pending = await client.call_tool("confirm_delete", {"item": "report"})
        approve(tmp_path, pending.structured_content["request"])
        done = await client.call_tool("confirm_delete", {"item": "report"})
        assert done.is_error and "runs on approval" in text_of(done), text_of(done)
    assert asked == []
    assert [
        c for c in json.loads(state.read_text())["calls"] if c["tool"] == "confirm_delete"
    ] == []


async def test_a_call_cut_short_by_its_client_is_audited_as_such(tmp_path: Path) -> None:
    """Tester B, LOW 2: the client went away during an approved slow call; the trail said
    only approved_executed. It now says the call was cancelled, and that nobody knows whether
    it acted."""
    state = tmp_path / "upstream.json"
    policy = {"version": "1", "default": "deny", "rules": {"slow": {"action": "require_approval"}}}
    args = proxy_args(
        tmp_path, write_policy(tmp_path / "policy.json", policy), upstream=upstream_command(state)
    )
    async with proxy_stdio_client(tmp_path, args) as client:
        pending = await client.call_tool("slow", {"seconds": 30})
        approve(tmp_path, pending.structured_content["request"])
        async with anyio.create_task_group() as group:
            group.start_soon(client.call_tool, "slow", {"seconds": 30})
            with anyio.fail_after(30):
                while not state.exists() or not any(
                    c["tool"] == "slow" for c in json.loads(state.read_text())["calls"]
                ):
                    await anyio.sleep(0.05)
            group.cancel_scope.cancel()  # the client goes away while the upstream sleeps
    with anyio.fail_after(30):
        while "failed" not in [row[0] for row in query(tmp_path, "SELECT outcome FROM audit")]:
            await anyio.sleep(0.05)
    rows = query(tmp_path, "SELECT outcome, detail FROM audit ORDER BY id")
    assert rows[-2][0] == "approved_executed" and rows[-1][0] == "failed", rows
    assert "whether it acted is unknown" in rows[-1][1], rows
