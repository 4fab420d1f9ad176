"""Outside round 22 (tester B): under a policy that lets unknown tools through (``default:
allow``, or an ``odoo_*`` glob), an upstream's tools that end, repoint or switch a connection
in words the catalog did not know (``site_forget``, ``odoo_logout``, ``odoo_set`` of
"instances.prod.url", ``env_switch``...) ran with no approval. Each is now a connection
change: governed by the ``odoo_disconnect`` rule too, so it waits for an approval and nothing
reaches the upstream. The SDK client → ``odoo-mcp-guard proxy`` (a subprocess) →
tests/upstream_server.py with ``UPSTREAM_OTHER_WORDS=1``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.guard import (
    proxy_args,
    proxy_stdio_client,
    text_of,
    upstream_command,
    write_policy,
    write_upstream_state,
)

pytestmark = pytest.mark.anyio

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("site_forget", {"name": "prod"}),
    ("instance_retire", {"name": "prod"}),
    ("odoo_detach", {"name": "prod"}),
    ("odoo_logout", {"name": "prod"}),
    ("odoo_session_end", {"name": "prod"}),
    ("odoo_use", {"name": "prod"}),
    ("odoo_target", {"name": "prod"}),
    ("env_switch", {"target": "prod"}),
    ("odoo_rename", {"old": "prod", "new": "gone"}),
    ("odoo_point", {"name": "prod", "address": "https://evil.example.com"}),
    ("odoo_set", {"key": "instances.prod.url", "value": "https://evil.example.com"}),
]
POLICIES = [
    pytest.param({"default": "allow", "rules": {}}, id="default-allow"),
    pytest.param({"default": "deny", "rules": {"*": {"action": "allow"}}}, id="glob-allow"),
]


@pytest.mark.parametrize("policy", POLICIES)
async def test_a_connection_ended_in_other_words_waits_for_an_approval(
    tmp_path: Path, policy: dict[str, Any]
) -> None:
    state = tmp_path / "upstream.json"
    write_upstream_state(state, ["prod", "scratch"])
    rules = {**policy["rules"], "odoo_disconnect": {"action": "require_approval"}}
    pol = write_policy(
        tmp_path / "policy.json", {"version": "1", "default": policy["default"], "rules": rules}
    )
    args = proxy_args(
        tmp_path,
        pol,
        upstream=upstream_command(state),
        extra=("--upstream-env", "UPSTREAM_OTHER_WORDS=1"),
    )
    async with proxy_stdio_client(tmp_path, args) as client:
        for tool, arguments in CALLS:
            result = await client.call_tool(tool, arguments)
            assert result.is_error, (tool, text_of(result))
            status = (result.structured_content or {}).get("status")
            assert status == "pending", (tool, text_of(result))
    after = json.loads(state.read_text())
    assert after["aliases"] == ["prod", "scratch"]
    assert after["calls"] == []
