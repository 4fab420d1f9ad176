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
