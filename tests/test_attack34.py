"""Outside round 34 (HIGH): behind the proxy, an upstream whose connection listing the proxy could
not read (the SDK's own form of a tool returning a list, ``{"result": [...]}``, or a page that
says there may be more) left a tool the catalog does not recognise unjudged: ``t_plain
{"target": "prod"}``, allowed by its exact rule, ended prod with no approval. The SDK's form is
read now; a listing that cannot be read makes such a call a change of whichever connection it
names (fail closed, as for the recognised connection tools). (MEDIUM) ``{"Name": "Password",
"Value": ...}``, capitalised as AWS and .NET write it, was not redacted. The SDK client ->
``odoo-mcp-guard proxy`` -> tests/shaped_listing_upstream.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from support.guard import REPO, proxy_args, proxy_stdio_client, run_cli, text_of, write_policy

from odoo_mcp_guard.policy_core import redact

UPSTREAM = REPO / "tests" / "shaped_listing_upstream.py"
CONNECTIONS = {"prod": {"url": "https://prod.example.com"}, "staging": {"url": "https://s.io"}}
POLICY = {
    "version": "1",
    "default": "deny",
    "rules": {
        "odoo_connections": {"action": "allow"},
        "odoo_disconnect": {"action": "require_approval"},
        "t_plain": {"action": "allow"},
    },
}


def setup(tmp_path: Path, shape: str) -> tuple[Path, list[str]]:
    state = tmp_path / "upstream.json"
    state.write_text(json.dumps({"connections": CONNECTIONS, "calls": []}), encoding="utf-8")
    pol = write_policy(tmp_path / "policy.json", POLICY)
    upstream = [sys.executable, str(UPSTREAM), "--state", str(state), "--shape", shape]
    return state, proxy_args(tmp_path, pol, upstream=upstream, server_name="listing")


def held(state: Path) -> dict[str, Any]:
    return json.loads(state.read_text(encoding="utf-8"))["connections"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("shape", "target"), [("sdk-list", "prod"), ("paged", "prod"), ("paged", "cache-x")]
)
async def test_a_call_the_proxy_cannot_tell_or_that_names_a_connection_needs_approval(
    tmp_path: Path, shape: str, target: str
) -> None:
    state, args = setup(tmp_path, shape)
    async with proxy_stdio_client(tmp_path, args) as client:
        await client.call_tool("odoo_connections", {})
        result = await client.call_tool("t_plain", {"target": target})
    content = result.structured_content or {}
    assert result.is_error and content.get("status") == "pending", text_of(result)
    assert held(state) == CONNECTIONS
    shown = run_cli(tmp_path, "approvals", "show", str(content["request"])).stdout
    assert "removes" in shown, shown


@pytest.mark.anyio
async def test_a_call_naming_no_listed_connection_still_runs(tmp_path: Path) -> None:
    state, args = setup(tmp_path, "sdk-list")
    async with proxy_stdio_client(tmp_path, args) as client:
        result = await client.call_tool("t_plain", {"target": "cache-x"})
    assert not result.is_error, text_of(result)
    assert held(state) == CONNECTIONS


@pytest.mark.parametrize(
    "value",
    [
        {"NV_obj": {"Name": "Password", "Value": "Hunter2-Quokka"}},
        {"name": "Password", "Value": "Hunter2-Quokka"},
        {"Key": "api_key", "Value": "Hunter2-Quokka"},
        {"NAME": "Authorization", "DATA": "Hunter2-Quokka"},
    ],
)
def test_a_named_value_is_redacted_in_any_case(value: Any) -> None:
    assert "Hunter2-Quokka" not in json.dumps(redact(value))
