"""Outside round 23 (HIGH): the pinned catalog kept a forwarded password in plain text.

An agent's ``odoo_connect`` sends a password through the proxy; the (hostile) upstream then
lists tools whose description, a parameter's name, an ``enum``, a ``pattern`` or ``$defs``
repeat it, and announces tools/list_changed. The client's listing hid it, but the pins held
it: ``tools list --json`` and ``tools show`` printed it (and, with Odoo, the catalog report put
it in ``mcp.tool``, readable by a Manager). Pinned definitions now hide every secret known by
value, the forwarded ones too, except a value the listed definitions already held before it
was sent (a word such as "every": hiding it would change every pin with each call).

Through the real interfaces: the SDK client → ``odoo-mcp-guard proxy`` (a subprocess) →
tests/upstream_server.py with ``UPSTREAM_ECHO_SECRET=1``; the pins read with the real CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
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

SECRET = "Hk4Wq9Tz2Lr6Mxp1Vb7D"
ECHOED = ("echo_description", "echo_title", "echo_parameter", "echo_enum", "echo_pattern")
ECHOED += ("echo_defs", "echo_meta")


def _args(tmp_path: Path) -> list[str]:
    pol = write_policy(tmp_path / "policy.json", CONNECTION_POLICY)
    state = tmp_path / "upstream.json"
    write_upstream_state(state, [])
    extra = ("--upstream-env", "UPSTREAM_CONNECT=1", "--upstream-env", "UPSTREAM_ECHO_SECRET=1")
    return proxy_args(tmp_path, pol, upstream=upstream_command(state), extra=extra)


async def _connect(tmp_path: Path, password: str) -> list[types.Tool]:
    """``odoo_connect`` with ``password`` through the proxy; the tools listed after the
    upstream's tools/list_changed (the catalog is pinned before the client is told)."""
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    args = _args(tmp_path)
    async with proxy_stdio_client(tmp_path, args, mode="legacy", message_handler=on_message) as c:
        await c.list_tools()
        connect = {"alias": "fresh", "url": "https://fresh.example.com", "password": password}
        result = await c.call_tool("odoo_connect", connect)
        assert not result.is_error, text_of(result)
        with anyio.fail_after(60):
            await changed.wait()
        return list((await c.list_tools()).tools)


def _pins(tmp_path: Path) -> list[dict[str, Any]]:
    return json.loads(run_cli(tmp_path, "tools", "list", "--json").stdout)


def _leaks(text: str, secret: str) -> bool:
    half = len(secret) // 2
    return any(part in text for part in (secret, secret[:half], secret[half:]))


async def test_a_forwarded_password_echoed_in_definitions_is_not_pinned(tmp_path: Path) -> None:
    listed = await _connect(tmp_path, SECRET)
    assert {tool.name for tool in listed} >= set(ECHOED)
    shown = json.dumps([tool.model_dump(mode="json", by_alias=True) for tool in listed])
    assert not _leaks(shown, SECRET)  # as it was: the client's listing hides it

    pins = _pins(tmp_path)
    assert {pin["tool"] for pin in pins} >= set(ECHOED)
    texts = {
        "tools list --json": json.dumps(pins),
        "tools list": run_cli(tmp_path, "tools", "list").stdout,
    }
    for name in ECHOED:
        texts[f"tools show {name}"] = run_cli(tmp_path, "tools", "show", name).stdout
    assert [where for where, text in texts.items() if _leaks(text, SECRET)] == []
    # The secret is hidden, not the definition: its shape is still there to review.
    shown = texts["tools show echo_description"]
    assert "Show notes ***" in shown, shown
    assert "***" in texts["tools show echo_enum"] and "enum" in texts["tools show echo_enum"]


async def test_a_password_the_definitions_already_held_changes_no_pin(tmp_path: Path) -> None:
    """A forwarded password that is a word of the definitions listed before it was sent
    ("every") is no news from the upstream: the pins of the tools that held it stay as they
    were, accepted, across a restart; only the upstream's new tools are new."""
    args = _args(tmp_path)
    async with proxy_stdio_client(tmp_path, args, mode="legacy") as client:
        await client.list_tools()
    before = {pin["tool"]: pin for pin in _pins(tmp_path)}
    assert "every" in json.dumps(before["purge_notes"]).lower()

    await _connect(tmp_path, "every")
    after = {pin["tool"]: pin for pin in _pins(tmp_path)}
    for name, pin in before.items():
        assert after[name]["pending_hash"] is None, name
        assert after[name]["definition_hash"] == pin["definition_hash"], name
    assert "Show notes every" in run_cli(tmp_path, "tools", "show", "echo_description").stdout

    # A restart (the forwarded password forgotten) pins every tool as before.
    async with proxy_stdio_client(tmp_path, args, mode="legacy") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "read_note" in names
    again = {pin["tool"]: pin for pin in _pins(tmp_path)}
    assert all(
        again[name]["definition_hash"] == pin["definition_hash"] for name, pin in before.items()
    )
    assert all(pin["pending_hash"] is None for pin in again.values())
