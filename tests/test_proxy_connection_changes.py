"""The proxy's judgement of connection changes and its handling of upstream secrets, through
the real interface: the SDK client → ``odoo-mcp-guard proxy`` (a subprocess) → the real
odoo-claude-mcp (``/usr/local/bin/odoo-claude-mcp``, its state in a temp dir) or
tests/upstream_server.py.

- A tool that replaces or activates a connection (``identify``, ``user_connection_activate``,
  ``user_connection_add``) is a replacement, governed by the ``odoo_disconnect`` rule whatever
  its own rule says; only ``odoo_connect``, checked against ``odoo_connections``, can be new.
- An upstream that keeps one connection (odoo-claude-mcp with ``SINGLE_CONNECTION=1``)
  replaces it on every ``odoo_connect``.
- Two replicas sharing one store cannot both judge one alias new (a lease in the store).
- Secrets in upstream results never reach the client or the audit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.guard import (
    CONNECTION_POLICY,
    ODOO_CLAUDE_MCP,
    db_path,
    free_port,
    http_process,
    needs_odoo_claude_mcp,
    proxy_args,
    proxy_stdio_client,
    query,
    run_cli,
    text_of,
    upstream_calls,
    upstream_command,
    write_policy,
    write_upstream_state,
)

pytestmark = pytest.mark.anyio

PROD_URL = "https://prod.example.com"
DEFAULT = {
    "alias": "default",
    "url": PROD_URL,
    "db": "proddb",
    "username": "admin",
    "password": "pw",
    "protocol": "xmlrpc",
    "verify_ssl": True,
}
LEAK = "S3CRET-upstream-9f"  # what tests/upstream_server.py's server_info leaks
EVIL = {"url": "http://127.0.0.1:9", "db": "evil", "username": "x", "password": "y"}


def connections(upstream_data: Path) -> dict[str, dict[str, Any]]:
    rows = json.loads((upstream_data / "connections.json").read_text(encoding="utf-8"))
    return {row["alias"]: row for row in rows}


def personal(upstream_data: Path, user: str) -> dict[str, Any]:
    path = upstream_data / "users" / user / "connections.json"
    return json.loads(path.read_text(encoding="utf-8"))


@asynccontextmanager
async def occ(
    tmp_path: Path,
    policy: dict[str, Any] | None,
    *,
    rows: list[dict[str, Any]],
    upstream_env: tuple[str, ...] = (),
) -> AsyncIterator[tuple[Any, Path]]:
    """The SDK client → proxy (stdio) → odoo-claude-mcp holding ``rows`` as connections."""
    upstream_data = tmp_path / "odoo-claude-mcp"
    upstream_data.mkdir(parents=True, exist_ok=True)
    (upstream_data / "connections.json").write_text(json.dumps(rows), encoding="utf-8")
    pol = None if policy is None else write_policy(tmp_path / "policy.json", policy)
    extra = ("--upstream-env", f"ODOO_CLAUDE_MCP_DATA={upstream_data}")
    for item in upstream_env:
        extra += ("--upstream-env", item)
    args = proxy_args(
        tmp_path / "guard", pol, upstream=[ODOO_CLAUDE_MCP], server_name="occ", extra=extra
    )
    async with proxy_stdio_client(tmp_path / "guard", args) as client:
        await client.list_tools()
        yield client, upstream_data


def connection_policy(tmp_path: Path) -> Path:
    """A policy file: connections listed and added freely, a removal (and so a replacement)
    held for approval."""
    return write_policy(tmp_path / "policy.json", CONNECTION_POLICY)


def is_pending(result: Any) -> bool:
    return bool(result.structured_content) and result.structured_content.get("status") == (
        "pending"
    )


@needs_odoo_claude_mcp
async def test_identify_and_activate_are_replacements_even_when_all_is_allowed(
    tmp_path: Path,
) -> None:
    """Finding 02: under ``default: allow`` odoo-claude-mcp's ``identify`` (which loads the
    user's active personal connection over "default") and ``user_connection_activate`` are
    governed by the odoo_disconnect rule: held for approval, "default" untouched."""
    profile = tmp_path / "odoo-claude-mcp" / "users" / "mallory"
    profile.mkdir(parents=True)
    mine = {"m": {"url": "http://127.0.0.1:9", "db": "evil", "user": "x", "api_key": "k"}}
    (profile / "connections.json").write_text(json.dumps(mine), encoding="utf-8")
    (profile / "active_connection.json").write_text('{"alias": "m"}', encoding="utf-8")
    policy = {"version": "1", "default": "allow"}
    async with occ(tmp_path, policy, rows=[DEFAULT]) as (client, upstream_data):
        identify = await client.call_tool("identify", {"name": "mallory"})
        assert is_pending(identify), text_of(identify)
        activate = await client.call_tool("user_connection_activate", {"alias": "m"})
        assert is_pending(activate), text_of(activate)
        assert connections(upstream_data)["default"]["url"] == PROD_URL


@needs_odoo_claude_mcp
async def test_user_connection_add_is_a_replacement_whatever_its_exact_rule(
    tmp_path: Path,
) -> None:
    """Finding 11: ``user_connection_add`` ("Add/update a personal Odoo connection") writes a
    list the proxy cannot check (odoo_connections does not hold personal connections): it
    is a replacement, held by the odoo_disconnect rule although its own rule allows it."""
    profile = tmp_path / "odoo-claude-mcp" / "users" / "alice"
    profile.mkdir(parents=True)
    erp = {"erp": {"url": "https://erp.example.com", "db": "erp", "user": "alice", "api_key": "k"}}
    (profile / "connections.json").write_text(json.dumps(erp), encoding="utf-8")
    policy = {
        "version": "1",
        "default": "deny",
        "rules": {
            "identify": {"action": "allow"},
            "odoo_connect": {"action": "allow"},
            "user_connection_add": {"action": "allow"},
            "odoo_disconnect": {"action": "require_approval"},
        },
    }
    async with occ(tmp_path, policy, rows=[DEFAULT]) as (client, upstream_data):
        await client.call_tool("identify", {"name": "alice"})
        new = {"alias": "erp", "url": "https://evil.example.com", "db": "erp", "user": "alice"}
        added = await client.call_tool("user_connection_add", {**new, "api_key": "x"})
        assert is_pending(added), text_of(added)
        assert personal(upstream_data, "alice")["erp"]["url"] == "https://erp.example.com"


@needs_odoo_claude_mcp
async def test_a_single_connection_upstream_replaces_on_every_connect(tmp_path: Path) -> None:
    """Finding 06: odoo-claude-mcp with SINGLE_CONNECTION=1 writes every odoo_connect over
    "default" (and offers no odoo_disconnect): a "new" alias is a replacement too."""
    async with occ(tmp_path, None, rows=[DEFAULT], upstream_env=("SINGLE_CONNECTION=1",)) as (
        client,
        upstream_data,
    ):
        fresh = await client.call_tool("odoo_connect", {"alias": "brand_new", **EVIL})
        assert is_pending(fresh), text_of(fresh)
        assert connections(upstream_data)["default"]["url"] == PROD_URL


@needs_odoo_claude_mcp
async def test_odoo_connections_never_shows_url_credentials(tmp_path: Path) -> None:
    """Finding 03 (real upstream): a URL's embedded password in odoo_connections is hidden."""
    secret = "S3CRET-in-url-4d"
    row = {**DEFAULT, "alias": "prod", "url": f"https://admin:{secret}@prod.example.com"}
    policy = {"version": "1", "default": "deny", "rules": {"odoo_connections": {"action": "allow"}}}
    async with occ(tmp_path, policy, rows=[row]) as (client, _):
        listed = await client.call_tool("odoo_connections", {})
        shown = text_of(listed) + json.dumps(listed.structured_content)
        assert "prod.example.com" in shown and secret not in shown


@needs_odoo_claude_mcp
async def test_a_url_password_holding_a_slash_is_hidden_in_listings_and_removes(
    tmp_path: Path,
) -> None:
    """Attack 12 (real upstream): "http://admin:Pa/X@h" (a reader that runs the userinfo to the
    last "@" takes "Pa/X" for the password) and a DSN in db: hidden in odoo_connections and
    in the "removes:" line an approver reads."""
    secret = "S3CRET-slash-5e"
    row = {
        **DEFAULT,
        "alias": "prod",
        "url": f"http://admin:Pa/{secret}@prod.example.com",
        "db": f"postgres://u:{secret}@db.example.com/prod",
    }
    policy = {
        "version": "1",
        "default": "deny",
        "rules": {
            "odoo_connections": {"action": "allow"},
            "odoo_disconnect": {"action": "require_approval"},
        },
    }
    async with occ(tmp_path, policy, rows=[row]) as (client, _):
        listed = await client.call_tool("odoo_connections", {})
        shown = text_of(listed) + json.dumps(listed.structured_content)
        assert "prod.example.com" in shown and secret not in shown, shown
        pending = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert is_pending(pending), text_of(pending)
    ref = pending.structured_content["request"]
    show = run_cli(tmp_path / "guard", "approvals", "show", ref).stdout
    assert "removes:" in show and "prod.example.com" in show and secret not in show, show
    assert secret not in run_cli(tmp_path / "guard", "audit", "tail", "-n", "50").stdout


async def test_upstream_results_are_redacted_for_the_client_and_the_audit(
    tmp_path: Path,
) -> None:
    """Finding 03: secrets in an upstream's result (text, structured content, an error
    result) are replaced before the client or the audit sees them."""
    pol = write_policy(
        tmp_path / "policy.json",
        {"version": "1", "default": "deny", "rules": {"server_info": {"action": "allow"}}},
    )
    state = tmp_path / "upstream.json"
    args = proxy_args(
        tmp_path,
        pol,
        upstream=upstream_command(state),
        extra=("--upstream-env", "UPSTREAM_LEAKY=1"),
    )
    async with proxy_stdio_client(tmp_path, args) as client:
        ok = await client.call_tool("server_info", {})
        failed = await client.call_tool("server_info", {"fail": True})
    assert failed.is_error
    for result in (ok, failed):
        shown = result.model_dump_json()
        assert LEAK not in shown, shown
    assert '"password": "***"' in text_of(ok) and "https://a:***@x.io" in text_of(ok)
    assert ok.structured_content["nested"] == [{"api_key": "***"}]
    rows = query(tmp_path, "SELECT detail FROM audit")
    assert rows and not any(LEAK in str(row) for row in rows)


async def test_two_replicas_cannot_both_add_one_alias(tmp_path: Path) -> None:
    """Finding 10: two proxies sharing one store, one upstream over HTTP. While replica A's
    addition of "new" is at the upstream (held there until the test lets it go), replica B
    cannot judge "new" absent and forward it: B is refused (try again), nothing sent. Once
    A's call answered, B's attempt is a replacement, held for approval."""
    pol = connection_policy(tmp_path)
    state = tmp_path / "upstream.json"
    up_port = free_port()
    command = upstream_command(state, transport="http", port=up_port)
    data = tmp_path / "guard"
    with http_process(command, tmp_path / "up", up_port, env={"UPSTREAM_CONNECT": "1"}) as up:
        args = proxy_args(data, pol, upstream=up.url, server_name="occ")
        async with (
            proxy_stdio_client(data, args) as a,
            proxy_stdio_client(data, args, principal="bob") as b,
        ):
            await a.list_tools()
            await b.list_tools()
            answers: dict[str, Any] = {}

            async def first() -> None:
                answers["a"] = await a.call_tool("odoo_connect", {"alias": "new", "url": "hold"})

            def connects() -> list[dict[str, Any]]:
                return [c for c in upstream_calls(state) if c["tool"] == "odoo_connect"]

            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                with anyio.fail_after(30):
                    while not connects():  # A's call is at the upstream, held there
                        await anyio.sleep(0.02)
                second = await b.call_tool("odoo_connect", {"alias": "new", "url": "b"})
                assert second.is_error and "Try again" in text_of(second), text_of(second)
                assert len(connects()) == 1
                state.with_name(state.name + ".go").touch()  # let A's call finish
            assert text_of(answers["a"]) == "connected new"
            again = await b.call_tool("odoo_connect", {"alias": "new", "url": "b"})
            assert is_pending(again), text_of(again)
    assert [
        c["arguments"]["url"] for c in upstream_calls(state) if c["tool"] == "odoo_connect"
    ] == ["hold"]


async def test_a_connection_change_of_unknown_outcome_keeps_the_lease(tmp_path: Path) -> None:
    """Finding 10, the doubtful case: the upstream died during an odoo_connect (it may have
    saved the connection). Until the lease expires no connection change is judged or sent,
    whatever alias it names; other tools are not affected."""
    pol = write_policy(
        tmp_path / "policy.json",
        {
            "version": "1",
            "default": "deny",
            "rules": {
                "odoo_connect": {"action": "allow"},
                "odoo_connections": {"action": "allow"},
                "read_note": {"action": "allow"},
            },
        },
    )
    state = tmp_path / "upstream.json"
    args = proxy_args(
        tmp_path,
        pol,
        upstream=upstream_command(state),
        extra=("--upstream-env", "UPSTREAM_CONNECT=1"),
    )
    async with proxy_stdio_client(tmp_path, args) as client:
        await client.list_tools()
        lost = await client.call_tool("odoo_connect", {"alias": "new", "url": "crash"})
        assert lost.is_error and "Whether it acted is unknown" in text_of(lost)
        note = await client.call_tool("read_note", {"key": "k"})  # the upstream is back
        assert not note.is_error, text_of(note)
        later = await client.call_tool("odoo_connect", {"alias": "other", "url": "x"})
        assert later.is_error and "Try again" in text_of(later), text_of(later)
    sent = [c["arguments"]["url"] for c in upstream_calls(state) if c["tool"] == "odoo_connect"]
    assert sent == ["crash"]


async def test_a_connection_change_refused_before_it_is_sent_releases_the_lease(
    tmp_path: Path,
) -> None:
    """Outside round 21 (LOW): an odoo_disconnect whose approval request the backend refuses
    to file (Odoo's add-on raises, e.g. for an alias it does not know; here the store refuses
    the insert) was sent nowhere: the lease on the upstream's connections is released at once,
    and the next connection change is judged and sent, not refused as busy for minutes."""
    pol = connection_policy(tmp_path)
    state = tmp_path / "upstream.json"
    data = tmp_path / "guard"
    args = proxy_args(
        data,
        pol,
        upstream=upstream_command(state),
        server_name="occ",
        extra=("--upstream-env", "UPSTREAM_CONNECT=1"),
    )
    async with proxy_stdio_client(data, args) as client:
        await client.list_tools()
        db = sqlite3.connect(db_path(data), timeout=30)
        try:  # the backend refuses to file any approval request
            db.execute(
                "CREATE TRIGGER refuse_filing BEFORE INSERT ON approval_requests "
                "BEGIN SELECT RAISE(ABORT, 'the backend refuses to file it'); END"
            )
            db.commit()
        finally:
            db.close()
        refused = await client.call_tool("odoo_disconnect", {"alias": "nosuch"})
        assert refused.is_error and "refuses to file" in text_of(refused), text_of(refused)
        later = await client.call_tool("odoo_connect", {"alias": "new", "url": "x"})
        assert not later.is_error, text_of(later)
        assert text_of(later) == "connected new"
    assert [(c["tool"], c["arguments"].get("alias")) for c in upstream_calls(state)] == [
        ("odoo_connect", "new")
    ]


@needs_odoo_claude_mcp
async def test_show_names_the_upstream_connection_a_request_replaces_or_removes(
    tmp_path: Path,
) -> None:
    """Attack 11 (01, 03, 06): an odoo_connect without 'alias' targets the upstream's schema
    default, "default"; as it exists, the call is a replacement (pending, nothing written).
    `approvals show` of it names what it replaces as odoo_connections listed it (redacted),
    that of an odoo_disconnect what it removes, and that of user_connection_activate (which
    writes over "default" whatever alias it names) that the proxy cannot tell which."""
    url = "https://admin:pw-in-url-7c@prod.example.com"
    prod = {**DEFAULT, "alias": "prod", "db": "prod2"}
    policy = {
        "version": "1",
        "default": "deny",
        "rules": {
            "odoo_connections": {"action": "allow"},
            "odoo_connect": {"action": "allow"},
            "user_connection_activate": {"action": "allow"},
            "odoo_disconnect": {"action": "require_approval"},
        },
    }
    rows = [{**DEFAULT, "url": url}, prod]
    async with occ(tmp_path, policy, rows=rows) as (client, upstream_data):
        calls = {
            "connect": await client.call_tool("odoo_connect", EVIL),
            "disconnect": await client.call_tool("odoo_disconnect", {"alias": "prod"}),
            "activate": await client.call_tool("user_connection_activate", {"alias": "mine"}),
        }
        assert connections(upstream_data)["default"]["db"] == "proddb"
        assert connections(upstream_data)["prod"]["db"] == "prod2"
    shows = {}
    for name, result in calls.items():
        assert is_pending(result), (name, text_of(result))
        ref = result.structured_content["request"]
        shows[name] = run_cli(tmp_path / "guard", "approvals", "show", ref).stdout
    assert "pw-in-url-7c" not in "".join(shows.values())
    replaced = "replaces:   default: https://admin:***@prod.example.com  db=proddb  user=admin"
    assert replaced in shows["connect"], shows["connect"]
    removed = f"removes:    prod: {PROD_URL}  db=prod2  user=admin"
    assert removed in shows["disconnect"], shows["disconnect"]
    unknown = "replaces:   unknown connection (which connection 'user_connection_activate'"
    assert unknown in shows["activate"], shows["activate"]


async def test_an_upsert_without_its_alias_targets_the_schema_default(tmp_path: Path) -> None:
    """Attack 11 (01), with tests/upstream_server.py: its odoo_connect's 'alias' defaults to
    "default" in its schema. With "default" listed, a call without 'alias' replaces it: held
    for the odoo_disconnect approval, nothing sent, and show names "default" as listed."""
    pol = connection_policy(tmp_path)
    state = tmp_path / "upstream.json"
    write_upstream_state(state, {"default": "https://u:pw-9@erp.example.com"})
    args = proxy_args(
        tmp_path,
        pol,
        upstream=upstream_command(state),
        extra=("--upstream-env", "UPSTREAM_CONNECT=1"),
    )
    async with proxy_stdio_client(tmp_path, args) as client:
        await client.list_tools()
        held = await client.call_tool("odoo_connect", {"url": "http://evil"})
        assert is_pending(held), text_of(held)
        added = await client.call_tool("odoo_connect", {"alias": "new", "url": "http://n"})
        assert not added.is_error, text_of(added)
    sent = [c["arguments"] for c in upstream_calls(state) if c["tool"] == "odoo_connect"]
    assert sent == [{"alias": "new", "url": "http://n"}]
    shown = run_cli(tmp_path, "approvals", "show", held.structured_content["request"]).stdout
    assert "replaces:   default: https://u:***@erp.example.com" in shown, shown
