"""The proxy with the Odoo backend: the policy and the approvals come from a live Odoo (18, 19) with
``mcp_guard`` (tests/odoo_live.py), exactly as for ``serve``. Skipped (NOT RUN) without Odoo.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from odoo_live import LiveOdoo, check_no_deprecated_endpoint
from support import live as live_support
from support.guard import EFFECT_WAIT, proxy_args, text_of, upstream_calls, upstream_command

from odoo_mcp_guard.policy_core import arguments_hash

pytestmark = [pytest.mark.anyio]
live = live_support.live  # the running Odoo of each series (a module fixture)

APPROVER = ("alice", "alice-pw-1234")
RULES = {
    "noop": {"action": "allow"},
    "read_note": {"action": "allow", "hidden": True},
    "slow": {"action": "deny", "reason": "no sleeping on the job"},
    "write_note": {"action": "require_approval", "reason": "notes are records"},
}


@pytest.fixture(autouse=True)
def no_deprecated_endpoint(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    check_no_deprecated_endpoint(request)


@pytest.fixture(scope="module", autouse=True)
def rules(live: LiveOdoo) -> Iterator[None]:
    """The test rules, in each series' Odoo."""
    rule_ids = [
        live.admin("mcp.tool.rule", "create", {"name": name, **values})
        for name, values in RULES.items()
    ]
    try:
        yield
    finally:
        live.admin("mcp.tool.rule", "unlink", rule_ids)


async def test_proxy_with_odoo_backend(tmp_path: Path, live: LiveOdoo) -> None:
    state = tmp_path / "upstream.json"
    args = proxy_args(tmp_path, None, upstream=upstream_command(state))
    async with live.client(tmp_path, principal="agent-proxy", args=args) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "noop" in names and "write_note" in names
        assert "read_note" not in names  # hidden in Odoo

        assert not (await client.call_tool("noop", {})).is_error
        hidden = await client.call_tool("read_note", {"key": "k"})
        assert hidden.is_error and "hidden" in text_of(hidden)
        denied = await client.call_tool("slow", {"seconds": 0})
        assert denied.is_error and "no sleeping on the job" in text_of(denied)

        arguments = {"key": "q4", "value": "approved value"}
        pending = await client.call_tool("write_note", arguments)
        assert pending.is_error and pending.structured_content["status"] == "pending"
        request_id = pending.structured_content["id"]
        assert "Odoo" in text_of(pending)
        assert upstream_calls(state) == []

        live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [request_id])
        changed = await client.call_tool("write_note", {**arguments, "value": "other"})
        assert changed.is_error and changed.structured_content["status"] == "pending"
        done = await client.call_tool("write_note", arguments)
        assert not done.is_error, text_of(done)
        assert [c["arguments"] for c in upstream_calls(state)] == [arguments]
        again = await client.call_tool("write_note", arguments)
        assert again.is_error and again.structured_content["status"] == "pending"

    state_of = live.admin("mcp.approval.request", "read", [request_id], ["state"])[0]["state"]
    assert state_of == "done"
    # The audit reached Odoo (spooled, flushed every 0.5 s while the proxy ran).
    deadline = time.monotonic() + EFFECT_WAIT
    while True:
        outcomes = {
            row["outcome"]
            for row in live.admin(
                "mcp.audit.log",
                "search_read",
                [["principal", "=", "agent-proxy"]],
                fields=["outcome"],
            )
        }
        if {"hidden", "denied", "approval_pending", "approved_executed"} <= outcomes:
            break
        assert time.monotonic() < deadline, outcomes
        await anyio.sleep(0.5)


async def test_an_approval_is_bound_to_the_server_it_was_filed_through(
    tmp_path: Path, live: LiveOdoo
) -> None:
    """As on the embedded store (schema v10), a request in Odoo is bound to the MCP server its
    call came through: the same call by the same principal through another server (its own
    --server-name, its own data directory) is not told it is pending under the first server's
    request, and cannot use that request's approval: it files (and waits for) its own."""
    arguments = {"key": "srv18", "value": "through a"}
    dirs = {name: tmp_path / name for name in ("a", "b")}
    for folder in dirs.values():
        folder.mkdir()
    states = {name: folder / "upstream.json" for name, folder in dirs.items()}
    clients = {
        name: live.client(
            folder,
            principal="agent-server18",
            args=proxy_args(
                folder, None, upstream=upstream_command(states[name]), server_name=f"notes-{name}"
            ),
        )
        for name, folder in dirs.items()
    }
    async with clients["a"] as a, clients["b"] as b:
        first = await a.call_tool("write_note", arguments)
        assert first.is_error and first.structured_content["status"] == "pending"
        second = await b.call_tool("write_note", arguments)
        assert second.is_error and second.structured_content["status"] == "pending"
        ref_a, id_a = first.structured_content["request"], first.structured_content["id"]
        ref_b, id_b = second.structured_content["request"], second.structured_content["id"]
        assert ref_b != ref_a and ref_a not in text_of(second)
        rows = live.admin("mcp.approval.request", "read", [id_a, id_b], ["server", "state"])
        assert {row["id"]: (row["server"], row["state"]) for row in rows} == {
            id_a: ("notes-a", "pending"),
            id_b: ("notes-b", "pending"),
        }

        live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [id_a])
        still = await b.call_tool("write_note", arguments)
        assert still.is_error and still.structured_content["status"] == "pending", text_of(still)
        assert still.structured_content["request"] == ref_b
        assert upstream_calls(states["b"]) == []
        # nor by asking Odoo directly, as the Agent user, naming the other server
        answer = live.rpc(
            "mcp-agent",
            live.agent_key,
            "mcp.approval.request",
            "consume",
            request_id=id_a,
            tool="write_note",
            arguments_hash=arguments_hash(arguments),
            server="notes-b",
        )
        assert answer["ok"] is False and "notes-a" in answer["message"], answer

        done = await a.call_tool("write_note", arguments)
        assert not done.is_error, text_of(done)
        assert [call["arguments"] for call in upstream_calls(states["a"])] == [arguments]
    rows = live.admin("mcp.approval.request", "read", [id_a, id_b], ["state"])
    assert {row["id"]: row["state"] for row in rows} == {id_a: "done", id_b: "pending"}
