"""Outside round 23 (tester B, HIGH): what an approver is shown of the connection a call
removes (``approvals show``: ``removes:``, ``approvals list --json``) is what the upstream's
``odoo_connections`` listed, redacted by key and URL only: a secret the proxy knows by value
(the operator's upstream token, a password a client forwarded) in a listed URL, database or
user was stored and shown in full. It is now hidden like in any result. The SDK client →
``odoo-mcp-guard proxy`` (a subprocess) → tests/upstream_server.py with a listing that
carries the secret; then the CLI an approver runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.guard import (
    CONNECTION_POLICY,
    proxy_args,
    proxy_stdio_client,
    run_cli,
    text_of,
    upstream_command,
    write_policy,
    write_upstream_state,
)

pytestmark = pytest.mark.anyio

TOKEN = "Zt7Qm2Xw9Lp4Rk8Vn3Bc"  # the operator's, given to the upstream


async def test_a_listed_secret_is_not_shown_to_approvers(tmp_path: Path) -> None:
    listing = {
        "connections": [
            {
                "alias": "prod",
                "url": f"https://prod.example.com/?k={TOKEN}",
                "db": TOKEN,
                "user": f"ops-{TOKEN}",
            }
        ]
    }
    state = tmp_path / "upstream.json"
    write_upstream_state(state, ["prod"])
    pol = write_policy(tmp_path / "policy.json", CONNECTION_POLICY)
    extra: tuple[str, ...] = ()
    for item in ("UPSTREAM_CONNECT=1", f"UPSTREAM_LISTING={json.dumps(listing)}"):
        extra += ("--upstream-env", item)
    extra += ("--upstream-env", f"UPSTREAM_TOKEN={TOKEN}")
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state), extra=extra)
    async with proxy_stdio_client(tmp_path, args) as client:
        pending = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert (pending.structured_content or {}).get("status") == "pending", text_of(pending)
        ref = pending.structured_content["request"]
    shown = run_cli(tmp_path, "approvals", "show", ref).stdout
    assert "removes:" in shown and "prod" in shown, shown
    listed = run_cli(tmp_path, "approvals", "list", "--json").stdout
    for text in (shown, listed):
        assert TOKEN not in text, text
