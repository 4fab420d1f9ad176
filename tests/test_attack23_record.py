"""Behind the proxy, the replicas' record of the upstream's aliases is also kept from the
listings clients call through the proxy, not only from those the proxy takes for a change
(outside round 23).

1. HIGH: two replicas on one store, B's upstream stale (it does not see ``prod``, written to
   the upstream's data outside the guard after B started). A's client lists the connections
   (``odoo_connections``, a plain call): prod is listed. B's ``odoo_connect alias=prod
   url=evil`` must not be judged new: the record saw prod, B's listing lacks it (stale).
2. MEDIUM: an approved ``odoo_disconnect prod``; prod is removed outside the guard, a client's
   listing shows it gone, and it is re-added with the same values: another generation, the
   approval is not used for it (withdrawn, a new request filed).

The SDK client → ``odoo-mcp-guard proxy`` (a subprocess) → tests/upstream_server.py
(UPSTREAM_CONNECT=1); the state file edited by the test is a change outside the guard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.guard import (
    CONNECTION_POLICY,
    proxy_args,
    proxy_stdio_client,
    run_cli,
    text_of,
    upstream_calls,
    upstream_command,
    write_policy,
    write_upstream_state,
)

pytestmark = pytest.mark.anyio

CONNECT = ("--upstream-env", "UPSTREAM_CONNECT=1")


def write_state(state: Path, urls: dict[str, str]) -> None:
    """The upstream's connections, changed outside the guard (its calls are kept)."""
    write_upstream_state(state, urls)


def pending(result: Any) -> str:
    content = result.structured_content or {}
    assert result.is_error and content.get("status") == "pending", text_of(result)
    return str(content["request"])


def connects(state: Path) -> list[dict[str, Any]]:
    return [c["arguments"] for c in upstream_calls(state) if c["tool"] == "odoo_connect"]


async def test_a_client_listing_on_one_replica_makes_a_stale_replica_unable_to_add_it(
    tmp_path: Path,
) -> None:
    pol = write_policy(tmp_path / "policy.json", CONNECTION_POLICY)
    data = tmp_path / "guard"  # one store for both replicas
    state_a, state_b = tmp_path / "a.json", tmp_path / "b.json"
    write_state(state_a, {"staging": "https://staging"})
    write_state(state_b, {"staging": "https://staging"})
    args_a = proxy_args(data, pol, upstream=upstream_command(state_a), server_name="occ",
                        extra=CONNECT)  # fmt: skip
    args_b = proxy_args(data, pol, upstream=upstream_command(state_b), server_name="occ",
                        extra=CONNECT)  # fmt: skip
    async with proxy_stdio_client(data, args_b, principal="bob") as b:
        await b.list_tools()  # B started; its upstream's view stays without prod
        write_state(state_a, {"staging": "https://staging", "prod": "https://prod"})
        async with proxy_stdio_client(data, args_a) as a:
            listed = await a.call_tool("odoo_connections", {})
            assert not listed.is_error and "prod" in text_of(listed), text_of(listed)
        pending(await b.call_tool("odoo_connect", {"alias": "prod", "url": "https://evil"}))
    assert connects(state_b) == []


async def test_an_unreadable_client_listing_records_nothing(tmp_path: Path) -> None:
    """A listing the proxy cannot read (it says more are to come) is forwarded, not recorded:
    the alias it shows is unknown to the record, and a replica's addition of it is new."""
    pol = write_policy(tmp_path / "policy.json", CONNECTION_POLICY)
    data = tmp_path / "guard"
    state_a, state_b = tmp_path / "a.json", tmp_path / "b.json"
    write_state(state_a, {"prod": "https://prod"})
    write_state(state_b, {})
    partial = json.dumps({"connections": "$connections", "next": "page2"})
    listing = ("--upstream-env", f"UPSTREAM_LISTING={partial}")
    args_a = proxy_args(data, pol, upstream=upstream_command(state_a), server_name="occ",
                        extra=(*CONNECT, *listing))  # fmt: skip
    args_b = proxy_args(data, pol, upstream=upstream_command(state_b), server_name="occ",
                        extra=CONNECT)  # fmt: skip
    async with proxy_stdio_client(data, args_a) as a:
        listed = await a.call_tool("odoo_connections", {})
        assert not listed.is_error and "prod" in text_of(listed), text_of(listed)
    async with proxy_stdio_client(data, args_b, principal="bob") as b:
        added = await b.call_tool("odoo_connect", {"alias": "prod", "url": "https://b"})
        assert not added.is_error, text_of(added)
    assert [c["url"] for c in connects(state_b)] == ["https://b"]


async def test_an_approval_is_not_used_for_a_connection_a_client_listing_saw_gone(
    tmp_path: Path,
) -> None:
    pol = write_policy(tmp_path / "policy.json", CONNECTION_POLICY)
    data = tmp_path / "guard"
    state = tmp_path / "upstream.json"
    write_state(state, {"prod": "https://prod"})
    args = proxy_args(data, pol, upstream=upstream_command(state), server_name="occ",
                      extra=CONNECT)  # fmt: skip
    async with proxy_stdio_client(data, args) as client:
        await client.call_tool("odoo_connections", {})
        ref = pending(await client.call_tool("odoo_disconnect", {"alias": "prod"}))
        run_cli(data, "approvals", "approve", ref, "--as", "carol")

        write_state(state, {})  # removed outside the guard ...
        gone = await client.call_tool("odoo_connections", {})
        assert not gone.is_error and "prod" not in text_of(gone), text_of(gone)
        write_state(state, {"prod": "https://prod"})  # ... and re-added, same values

        again = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert pending(again) != ref
        assert "withdrawn" in text_of(again), text_of(again)
    assert not [c for c in upstream_calls(state) if c["tool"] == "odoo_disconnect"]
    assert json.loads(state.read_text(encoding="utf-8"))["aliases"] == ["prod"]
