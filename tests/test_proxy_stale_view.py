"""Behind the proxy, an upstream whose view of the connections is not the guard's record
(outside testers, round 13, findings 6 and 7).

6. Two proxies A and B on one PostgreSQL store, each in front of its own odoo-claude-mcp on ONE
   data directory. Through A, prod=X is removed (approved) and prod=Y created (a new alias:
   allowed). B's odoo-claude-mcp still holds prod=X in memory: an odoo_connect of another alias
   through B rewrites connections.json with its whole view, prod=X over Y. A listing that
   shows an alias otherwise than the replicas' record makes the call a replacement of that
   alias too (approval, shown with both views), and the record keeps its view until such a
   call is let through.
7. An upstream that normalises the alias it is given (strip, lower) turns odoo_connect
   alias=PROD into a replacement of prod: a listed alias that folds equal
   (policy_core.fold_alias) is at stake.

The SDK client → ``odoo-mcp-guard proxy`` (a subprocess) → the real odoo-claude-mcp
(``odoo-claude-mcp`` on PATH) or tests/upstream_server.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_harness import fresh_database, pg_url
from support.guard import (
    CONNECTION_POLICY,
    ODOO_CLAUDE_MCP,
    needs_odoo_claude_mcp,
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

X = {"alias": "prod", "url": "http://127.0.0.1:9", "db": "X", "username": "admin", "password": "pw"}
Y = {**X, "url": "http://127.0.0.2:9", "db": "Y"}
Z = {**X, "alias": "z", "db": "Zdb"}


def occ_connections(upstream_data: Path) -> dict[str, dict[str, Any]]:
    rows = json.loads((upstream_data / "connections.json").read_text(encoding="utf-8"))
    return {row["alias"]: row for row in rows}


def pending(result: Any) -> str:
    content = result.structured_content or {}
    assert result.is_error and content.get("status") == "pending", text_of(result)
    return str(content["request"])


@pytest.fixture
def pg_database() -> Iterator[str]:
    with fresh_database("stale") as name:
        yield name


@needs_odoo_claude_mcp
async def test_a_stale_replica_cannot_write_back_a_re_created_connection_unapproved(
    tmp_path: Path, pg_database: str
) -> None:
    pol = write_policy(tmp_path / "policy.json", CONNECTION_POLICY)
    url = pg_url(pg_database)
    env = {"MCP_GUARD_DATABASE_URL": url}
    upstream_data = tmp_path / "odoo-claude-mcp"
    upstream_data.mkdir()
    (upstream_data / "connections.json").write_text(json.dumps([]), encoding="utf-8")
    extra = ("--upstream-env", f"ODOO_CLAUDE_MCP_DATA={upstream_data}")
    args_a = proxy_args(
        tmp_path / "a", pol, upstream=[ODOO_CLAUDE_MCP], server_name="occ", extra=extra
    )
    args_b = proxy_args(
        tmp_path / "b", pol, upstream=[ODOO_CLAUDE_MCP], server_name="occ", extra=extra
    )

    def approve(ref: str) -> None:
        run_cli(tmp_path / "a", "--database-url", url, "approvals", "approve", ref, "--as", "carol")

    async with proxy_stdio_client(tmp_path / "a", args_a, env=env) as a:
        await a.call_tool("odoo_connect", X)  # new: allowed (it cannot log in: no Odoo)
    assert occ_connections(upstream_data)["prod"]["db"] == "X"
    async with (
        proxy_stdio_client(tmp_path / "a", args_a, env=env) as a,
        proxy_stdio_client(tmp_path / "b", args_b, principal="bob", env=env) as b,
    ):
        await a.call_tool("odoo_connections", {})
        await b.call_tool("odoo_connections", {})
        approve(pending(await a.call_tool("odoo_disconnect", {"alias": "prod"})))
        removed = await a.call_tool("odoo_disconnect", {"alias": "prod"})
        assert not removed.is_error, text_of(removed)
        await a.call_tool("odoo_connect", Y)  # new again: allowed
        assert occ_connections(upstream_data)["prod"]["db"] == "Y"

        # B's upstream still lists prod=X: its write of z would put X back over Y.
        ref = pending(await b.call_tool("odoo_connect", Z))
        assert occ_connections(upstream_data)["prod"]["db"] == "Y"
        assert "z" not in occ_connections(upstream_data)
        shown = run_cli(tmp_path / "a", "--database-url", url, "approvals", "show", ref).stdout
        assert "prod: http://127.0.0.2:9  db=Y  user=admin (the guard's record) -> " in shown
        assert "http://127.0.0.1:9  db=X  user=admin (as the upstream listed it" in shown
        # The record kept its view: asked again, the call is the same pending request.
        assert pending(await b.call_tool("odoo_connect", Z)) == ref

        # Approved (the approver accepts B's view), it is carried out, and what B's upstream
        # lists after it is the record's: B's next new alias is allowed.
        approve(ref)
        done = await b.call_tool("odoo_connect", Z)
        assert not done.is_error or "pending" not in text_of(done), text_of(done)
        assert occ_connections(upstream_data)["prod"]["db"] == "X"
        assert "z" in occ_connections(upstream_data)
        later = await b.call_tool("odoo_connect", {**Z, "alias": "w"})
        assert (later.structured_content or {}).get("status") != "pending", text_of(later)
        assert "w" in occ_connections(upstream_data)


async def test_an_alias_the_upstream_normalises_onto_a_listed_one_is_a_replacement(
    tmp_path: Path,
) -> None:
    pol = write_policy(tmp_path / "policy.json", CONNECTION_POLICY)
    state = tmp_path / "upstream.json"
    write_upstream_state(state, {"prod": "https://v1.example.com"})
    args = proxy_args(
        tmp_path,
        pol,
        upstream=upstream_command(state),
        extra=("--upstream-env", "UPSTREAM_CONNECT=1", "--upstream-env", "UPSTREAM_FOLD=1"),
    )
    async with proxy_stdio_client(tmp_path, args) as client:
        for alias in ("PROD", " prod", "ＰＲＯＤ"):
            ref = pending(
                await client.call_tool("odoo_connect", {"alias": alias, "url": "https://evil"})
            )
            shown = run_cli(tmp_path, "approvals", "show", ref).stdout
            assert "replaces:   prod: https://v1.example.com" in shown, shown
        added = await client.call_tool("odoo_connect", {"alias": "Other", "url": "https://o"})
        assert not added.is_error, text_of(added)
    assert json.loads(state.read_text(encoding="utf-8"))["urls"]["prod"] == "https://v1.example.com"
    sent = [c["arguments"]["alias"] for c in upstream_calls(state) if c["tool"] == "odoo_connect"]
    assert sent == ["Other"]
