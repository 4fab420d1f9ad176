"""Outside round 32 (HIGH): behind the proxy, tools the policy allows by name, that the catalog
does not recognise as connection tools, removed "prod" with no approval, the connection named
by what the upstream fills in rather than by the call's arguments:

- H1: a schema too large or too deep for the scan of its defaults (1,001 defaulted properties
  after ``target``; ``target``'s default under 70 ``anyOf``): the scan stopped, nothing said;
- H2: a default under an argument the call gives (``{"job": {"kind": "nightly"}}``, the
  schema's ``job.target`` defaulting to prod): the given argument's whole subtree was skipped;
- H3: an argument's name (``{"mode": "x", "prod": true}``): top-level keys were not read;
- H4: a 2025-era client's answer leaving out a field whose requested schema defaults to prod;
- H5: a default under a key the redaction rule hides (``session``): the scan read the
  redacted definition, ``***``.

Each is now a change of prod, held for an approval that names it. The SDK client ->
``odoo-mcp-guard proxy`` (a subprocess) -> tests/schema_upstream.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from support.guard import REPO, proxy_args, proxy_stdio_client, run_cli, text_of, write_policy

pytestmark = pytest.mark.anyio

UPSTREAM = REPO / "tests" / "schema_upstream.py"
CONNECTIONS = {"prod": {"url": "https://prod.example.com"}, "other": {"url": "https://o.example"}}
DROPPERS = ("task_wide", "task_deep", "task_job", "task_flags", "task_session", "task_asked")
POLICY = {
    "version": "1",
    "default": "deny",
    "rules": {
        "odoo_connections": {"action": "allow"},
        "odoo_disconnect": {"action": "require_approval"},
        **{name: {"action": "allow"} for name in DROPPERS},
    },
}


def setup(tmp_path: Path) -> tuple[Path, list[str]]:
    state = tmp_path / "upstream.json"
    state.write_text(json.dumps({"connections": CONNECTIONS, "calls": []}), encoding="utf-8")
    pol = write_policy(tmp_path / "policy.json", POLICY)
    upstream = [sys.executable, str(UPSTREAM), "--state", str(state)]
    return state, proxy_args(tmp_path, pol, upstream=upstream, server_name="schemas")


def reached(state: Path) -> list[dict[str, Any]]:
    return json.loads(state.read_text(encoding="utf-8"))["calls"]


def held(state: Path) -> dict[str, Any]:
    return json.loads(state.read_text(encoding="utf-8"))["connections"]


async def accept_leaving_out(_ctx: Any, _params: Any) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={})


HELD_CALLS = [
    ("task_wide", {}),  # H1
    ("task_deep", {}),  # H1
    ("task_job", {"job": {"kind": "nightly"}}),  # H2
    ("task_flags", {"mode": "x", "prod": True}),  # H3
    ("task_session", {}),  # H5
    # outside round 33: given empty or null, read by the upstream as "the default"
    ("task_session", {"session": ""}),
    ("task_session", {"session": None}),
]


@pytest.mark.parametrize(("tool", "arguments"), HELD_CALLS)
async def test_a_connection_the_upstream_fills_in_or_is_keyed_by_needs_an_approval(
    tmp_path: Path, tool: str, arguments: dict[str, Any]
) -> None:
    state, args = setup(tmp_path)
    async with proxy_stdio_client(tmp_path, args) as client:
        await client.call_tool("odoo_connections", {})
        result = await client.call_tool(tool, arguments)
    content = result.structured_content or {}
    assert result.is_error and content.get("status") == "pending", text_of(result)
    assert reached(state) == []
    assert held(state) == CONNECTIONS
    shown = run_cli(tmp_path, "approvals", "show", str(content["request"])).stdout
    assert "prod" in shown, shown


async def test_an_answer_leaving_a_field_to_a_default_naming_a_connection_is_refused(
    tmp_path: Path,
) -> None:
    """H4: the question's schema defaults ``target`` to prod; the 2025-era client accepts with
    nothing: the upstream would read prod. The answer is not passed on."""
    state, args = setup(tmp_path)
    async with proxy_stdio_client(
        tmp_path, args, mode="legacy", elicitation_callback=accept_leaving_out
    ) as client:
        await client.call_tool("odoo_connections", {})
        result = await client.call_tool("task_asked", {"mode": "x"})
    assert "prod" not in text_of(result), text_of(result)
    assert held(state) == CONNECTIONS


async def test_calls_naming_no_known_connection_still_run(tmp_path: Path) -> None:
    state, args = setup(tmp_path)
    async with proxy_stdio_client(tmp_path, args) as client:
        await client.call_tool("odoo_connections", {})
        for tool, arguments in [
            ("task_session", {"session": "cache-x"}),
            ("task_flags", {"mode": "x", "cache-x": True}),
            ("task_job", {"job": {"kind": "nightly", "target": "cache-x"}}),
        ]:
            result = await client.call_tool(tool, arguments)
            if tool in ("task_job", "task_session"):
                # the schema's default names prod, whatever is given (an upstream may read
                # "" as the default: outside round 33): judged a change of it too
                assert (result.structured_content or {}).get("status") == "pending"
            else:
                assert not result.is_error, (tool, text_of(result))
    assert held(state) == CONNECTIONS
    assert [c["tool"] for c in reached(state)] == ["task_flags"]
