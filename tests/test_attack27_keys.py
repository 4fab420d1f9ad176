"""Outside round 27 (HIGH): behind the proxy, an upstream that keys its connections otherwise
than by the ``alias`` argument replaced or removed "prod" with no approval, or with one shown
for another connection:

- ``odoo_connect {"alias": "pr\\u03bfd"}`` (a Greek omicron): judged a new alias, and the
  upstream, reading keys as ASCII slugs, wrote it over prod; ``purge_cache`` given the Cyrillic
  look-alike removed prod; an approval of ``odoo_disconnect "pr\\u03bfd"`` showed "not listed";
- ``odoo_connect {"alias": "label1", "name": "prod"}`` and ``odoo_disconnect {"alias": "ghost",
  "name": "prod"}``: the upstream's key is ``name``; the proxy judged (and showed) the alias;
- ``purge_default`` called with nothing: its schema's default names prod;
- an alias of four words inside a text ("disconnect main eu prod db").

Each is now a change of the connection it names, held for an approval that names it. The SDK
client -> ``odoo-mcp-guard proxy`` (a subprocess) -> tests/keyed_upstream.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from support.guard import REPO, proxy_args, proxy_stdio_client, run_cli, text_of, write_policy

pytestmark = pytest.mark.anyio

KEYED = REPO / "tests" / "keyed_upstream.py"
CONNECTIONS = {
    "prod": {"url": "https://prod.example.com"},
    "main eu prod db": {"url": "https://eu.example.com"},
}
POLICY = {
    "version": "1",
    "default": "deny",
    "rules": {
        "odoo_connections": {"action": "allow"},
        "odoo_connect": {"action": "allow"},
        "purge_cache": {"action": "allow"},
        "purge_default": {"action": "allow"},
        "purge_nested": {"action": "allow"},
        "odoo_disconnect": {"action": "require_approval"},
    },
}


def setup(tmp_path: Path) -> tuple[Path, list[str]]:
    state = tmp_path / "upstream.json"
    state.write_text(json.dumps({"connections": CONNECTIONS, "calls": []}), encoding="utf-8")
    pol = write_policy(tmp_path / "policy.json", POLICY)
    upstream = [sys.executable, str(KEYED), "--state", str(state)]
    return state, proxy_args(tmp_path, pol, upstream=upstream, server_name="keyed")


def reached(state: Path) -> list[dict[str, Any]]:
    return json.loads(state.read_text(encoding="utf-8"))["calls"]


def held(state: Path) -> dict[str, Any]:
    return json.loads(state.read_text(encoding="utf-8"))["connections"]


def pending(result: Any) -> str:
    content = result.structured_content or {}
    assert result.is_error and content.get("status") == "pending", text_of(result)
    return str(content["request"])


HELD_CALLS = [
    ("odoo_connect", {"alias": "pr\u03bfd", "url": "https://evil.example.net"}),
    ("odoo_connect", {"alias": "\u0440rod", "url": "https://evil.example.net"}),
    ("odoo_connect", {"alias": "label1", "name": "prod", "url": "https://evil.example.net"}),
    ("odoo_disconnect", {"alias": "ghost", "name": "prod"}),
    ("odoo_disconnect", {"alias": "pr\u03bfd"}),
    ("purge_cache", {"target": "pr\u043ed"}),
    ("purge_default", {}),
    ("purge_cache", {"target": "disconnect main eu prod db"}),
    # outside round 28: the key is `db`; a default in $defs; a one-value enum
    ("odoo_connect", {"alias": "fresh", "url": "https://x.example.com", "db": "prod"}),
    ("odoo_connect", {"alias": "staging", "url": "https://x.example.com", "db": "prod"}),
    ("odoo_disconnect", {"alias": "ghost", "db": "prod"}),
    ("odoo_disconnect", {"db": "prod"}),
    ("purge_nested", {"opts": {}}),
]


@pytest.mark.parametrize(("tool", "arguments"), HELD_CALLS)
async def test_a_change_of_a_connection_keyed_otherwise_needs_an_approval_naming_it(
    tmp_path: Path, tool: str, arguments: dict[str, Any]
) -> None:
    state, args = setup(tmp_path)
    async with proxy_stdio_client(tmp_path, args) as client:
        ref = pending(await client.call_tool(tool, arguments))
    assert [c for c in reached(state) if c["tool"] == tool] == []
    assert held(state) == CONNECTIONS
    shown = run_cli(tmp_path, "approvals", "show", ref).stdout
    named = "main eu prod db" if "main" in json.dumps(arguments) else "prod"
    assert f"{named}: " in shown or f"{named} (" in shown, shown


async def test_new_connections_and_other_targets_run_as_their_rules_say(tmp_path: Path) -> None:
    state, args = setup(tmp_path)
    async with proxy_stdio_client(tmp_path, args) as client:
        added = await client.call_tool(
            "odoo_connect", {"alias": "new1", "url": "https://new.example.com"}
        )
        assert not added.is_error, text_of(added)
        purged = await client.call_tool("purge_cache", {"target": "cache-x"})
        assert not purged.is_error, text_of(purged)
    assert set(held(state)) == {*CONNECTIONS, "new1"}
