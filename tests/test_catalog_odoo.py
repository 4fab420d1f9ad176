"""The tool catalog with Odoo: the proxy reports the upstream's tools to a live Odoo (18 over
XML-RPC, 19 over JSON-2; ``mcp.tool.report_catalog``), a Manager sets a rule from the catalog
with one click and it takes effect within the policy refresh interval, and accepting a changed
definition in Odoo lifts the refusal. Each series not installed is skipped (NOT RUN)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from odoo_live import LiveOdoo, OdooFault, check_no_deprecated_endpoint
from support import live as live_support
from support.guard import (
    EFFECT_WAIT,
    proxy_args,
    run_cli,
    text_of,
    upstream_calls,
    upstream_command,
    within,
)

from odoo_mcp_guard.catalog import definition_hash

pytestmark = [pytest.mark.anyio]
live = live_support.live  # the running Odoo of each series (a module fixture)

APPROVER = ("alice", "alice-pw-1234")
POLL = 0.5  # the front-end's policy refresh interval in these tests (MCP_GUARD_POLICY_POLL)
SERVER = "notes"


@pytest.fixture(autouse=True)
def no_deprecated_endpoint(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    check_no_deprecated_endpoint(request)


@asynccontextmanager
async def proxy(tmp_path: Path, live: LiveOdoo, state: Path, **env: str):
    args = proxy_args(tmp_path, None, upstream=upstream_command(state), server_name=SERVER)
    for key, value in env.items():
        args += ["--upstream-env", f"{key}={value}"]
    async with live.client(
        tmp_path, principal="agent-catalog", args=args, env={"MCP_GUARD_POLICY_POLL": str(POLL)}
    ) as client:
        yield client


def catalog(live: LiveOdoo, server: str = SERVER) -> dict[str, dict[str, Any]]:
    rows = live.admin(
        "mcp.tool",
        "search_read",
        [["server", "=", server]],
        fields=[
            "name",
            "risk_class",
            "risk_reason",
            "state",
            "definition_hash",
            "pending_hash",
            "first_seen",
            "last_seen",
            "served",
        ],
    )
    return {row["name"]: row for row in rows}


# How long a change made in Odoo may take to reach the front-end (it polls every POLL
# seconds): support.guard.EFFECT_WAIT, a bound for a loaded machine, not a speed claim.


async def test_catalog_reaches_odoo_and_a_rule_set_there_takes_effect(
    tmp_path: Path, live: LiveOdoo
) -> None:
    state = tmp_path / "upstream.json"
    async with proxy(tmp_path, live, state) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        tools = catalog(live)
        assert set(listed) <= set(tools), (set(listed), set(tools))
        purge = tools["purge_notes"]
        assert purge["risk_class"] == "destructive" and "purge" in purge["risk_reason"]
        assert tools["read_note"]["risk_class"] == "read"
        assert tools["write_note"]["risk_class"] == "write"
        assert purge["state"] == "pinned" and purge["served"] and purge["first_seen"]
        definition = {
            "name": "purge_notes",
            "description": listed["purge_notes"].description,
            "inputSchema": listed["purge_notes"].input_schema,
            "annotations": listed["purge_notes"].annotations.model_dump(
                by_alias=True, exclude_none=True
            ),
        }
        assert purge["definition_hash"] == definition_hash(definition)

        # Odoo's shipped default is deny: no rule names write_note yet.
        denied = await client.call_tool("write_note", {"key": "a", "value": "1"})
        assert denied.is_error and "not allowed" in text_of(denied)

        # One click in the catalog: allow. It reaches the front-end within the refresh.
        tool_ids = {name: row["id"] for name, row in tools.items()}
        live.admin("mcp.tool", "action_rule_allow", [tool_ids["write_note"]])

        async def allowed() -> bool:
            result = await client.call_tool("write_note", {"key": "a", "value": "1"})
            return not result.is_error

        await within(EFFECT_WAIT, allowed)

        # Allowing a destructive tool by an exact rule is a Manager's explicit decision;
        # 'require approval' from the catalog holds it again.
        live.admin("mcp.tool", "action_rule_require_approval", [tool_ids["purge_notes"]])

        async def held() -> Any:
            result = await client.call_tool("purge_notes", {})
            structured = result.structured_content or {}
            return result.is_error and structured.get("status") == "pending"

        await within(EFFECT_WAIT, held)
        live.admin("mcp.tool", "action_rule_hide", [tool_ids["read_note"]])

        async def hidden() -> bool:
            names = {tool.name for tool in (await client.list_tools()).tools}
            return "read_note" not in names

        await within(EFFECT_WAIT, hidden)
    assert [c["tool"] for c in upstream_calls(state)] == ["write_note"]
    rule = live.admin(
        "mcp.tool.rule", "search_read", [["name", "=", "write_note"]], fields=["action"]
    )
    assert rule and rule[0]["action"] == "allow"


async def test_accepting_a_changed_definition_in_odoo_lifts_the_refusal(
    tmp_path: Path, live: LiveOdoo
) -> None:
    state = tmp_path / "upstream.json"
    server_rules = live.admin("mcp.tool", "search", [["server", "=", SERVER]])
    async with proxy(tmp_path, live, state) as client:
        await client.list_tools()
        write_id = catalog(live)["write_note"]["id"]
        if not server_rules:  # this test alone: allow write_note from the catalog
            live.admin("mcp.tool", "action_rule_allow", [write_id])
    pinned_hash = catalog(live)["write_note"]["definition_hash"]

    # The upstream changes write_note: Odoo keeps the pinned definition, the call is refused.
    async with proxy(tmp_path, live, state, UPSTREAM_VARIANT="2") as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert "forward_to" not in listed["write_note"].input_schema["properties"]
        row = catalog(live)["write_note"]
        assert row["state"] == "changed" and row["definition_hash"] == pinned_hash
        assert row["pending_hash"] and row["pending_hash"] != pinned_hash
        refused = await client.call_tool("write_note", {"key": "b", "value": "2"})
        assert refused.is_error
        assert refused.structured_content["status"] == "definition_changed"
        assert "Tool Catalog" in text_of(refused)
        # Accepting on the guard's host does not count where Odoo decides.
        run_cli(tmp_path, "tools", "accept", "write_note", "--server", SERVER, "--as", "mallory")
        still = await client.call_tool("write_note", {"key": "b", "value": "2"})
        assert still.is_error and still.structured_content["status"] == "definition_changed"
        # A plain User cannot accept; a Manager (the administrator) can.
        with pytest.raises(OdooFault, match="managers"):
            live.rpc(*APPROVER, "mcp.tool", "action_accept_definition", [row["id"]])
        live.admin("mcp.tool", "action_accept_definition", [row["id"]])

        seen: dict[str, Any] = {}

        async def accepted() -> bool:
            result = await client.call_tool(
                "write_note", {"key": "b", "value": "2", "forward_to": "x@example.com"}
            )
            seen["answer"] = (text_of(result), result.structured_content)
            return not result.is_error

        await within(EFFECT_WAIT, accepted, seen)
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert "forward_to" in listed["write_note"].input_schema["properties"]
    row = catalog(live)["write_note"]
    assert row["state"] == "pinned" and not row["pending_hash"]
    assert row["definition_hash"] != pinned_hash
    assert upstream_calls(state)[-1]["arguments"]["forward_to"] == "x@example.com"


async def test_serve_reports_its_own_tools(tmp_path: Path, live: LiveOdoo) -> None:
    async with live.client(
        tmp_path, principal="agent-serve", env={"MCP_GUARD_POLICY_POLL": str(POLL)}
    ) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}

        async def reported() -> dict[str, dict[str, Any]]:
            return catalog(live, "odoo-mcp-guard")

        tools, _ = await within(EFFECT_WAIT, reported)
        assert names <= set(tools)
        assert tools["odoo_disconnect"]["risk_class"] == "destructive"
        assert tools["odoo_connections"]["risk_class"] == "read"
        listed = await client.call_tool("odoo_connections", {})
        assert not listed.is_error, text_of(listed)


async def test_tools_stay_refused_while_odoo_refuses_the_catalog(
    tmp_path: Path, live: LiveOdoo
) -> None:
    """Logged in as a user who may read the policy but is not the Agent: Odoo refuses the
    report, so no tool of this server runs (a changed definition could not be caught)."""
    state = tmp_path / "upstream.json"
    args = proxy_args(tmp_path, None, upstream=upstream_command(state), server_name="rogue")
    approver = {"ODOO_USERNAME": "alice", "ODOO_API_KEY": live.keys["alice"]}
    async with live.client(tmp_path, principal="agent-rogue", args=args, env=approver) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "noop" in names  # listed from the pins, but it must not run
        refused = await client.call_tool("noop", {})
        assert refused.is_error and refused.structured_content["status"] == "unavailable"
        assert "tool catalog cannot be reported to Odoo" in text_of(refused)
        assert "agent" in text_of(refused).lower()
    assert upstream_calls(state) == []
    assert catalog(live, "rogue") == {}


def test_concurrent_reports_of_a_new_server_all_succeed(live: LiveOdoo) -> None:
    """Two replicas (or one front-end's overlapping calls) report the same new server at once:
    each report succeeds and the catalog has one server with each tool once."""
    server = "raced"
    schema = {"type": "object", "properties": {}}
    tools = [
        {
            "name": name,
            "description": f"{name} tool",
            "input_schema": schema,
            "annotations": None,
            "definition_hash": definition_hash(
                {"name": name, "description": f"{name} tool", "inputSchema": schema}
            ),
            "risk_class": "read",
            "risk_reason": "name",
        }
        for name in ("list_a", "list_b")
    ]

    def report(_: int) -> Any:
        try:
            return live.rpc(
                "mcp-agent",
                "agent-pw-1234",
                "mcp.tool",
                "report_catalog",
                server=server,
                tools=tools,
            )
        except OdooFault as fault:
            return fault

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(report, range(6)))
    faults = [result for result in results if isinstance(result, OdooFault)]
    assert not faults, faults
    assert sorted(catalog(live, server)) == ["list_a", "list_b"]
    assert len(live.admin("mcp.tool.server", "search", [["name", "=", server]])) == 1
