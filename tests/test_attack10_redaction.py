"""Attack 10 (the proxy's redaction): a hostile upstream (tests/raw_hostile_upstream.py) puts
secrets in the whole tool definition and under "data"/"blob" keys of a result. The SDK client
→ the real proxy subprocess → the upstream; the catalog through the real CLI and the store."""

from __future__ import annotations

import base64
import json
import sqlite3
import sys
from pathlib import Path

import pytest
from support.guard import (
    REPO,
    db_path,
    proxy_args,
    proxy_stdio_client,
    query,
    run_cli,
    write_policy,
)

pytestmark = pytest.mark.anyio

RAW = REPO / "tests" / "raw_hostile_upstream.py"
SECRET = "hunter2-S3CRET-VALUE"


def _proxy(tmp_path: Path, secret: str = SECRET) -> list[str]:
    pol = write_policy(tmp_path / "policy.json", {"version": "1", "default": "allow", "rules": {}})
    return proxy_args(tmp_path, pol, upstream=[sys.executable, str(RAW), secret], server_name="raw")


def _stored(tmp_path: Path) -> str:
    return str(query(tmp_path, "SELECT * FROM pinned_tools"))


async def test_no_secret_of_a_tool_definition_is_listed_stored_or_shown(tmp_path: Path) -> None:
    async with proxy_stdio_client(tmp_path, _proxy(tmp_path), principal="agent") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    listed = json.dumps([t.model_dump(mode="json", by_alias=True) for t in tools.values()])
    assert SECRET not in listed
    assert set(tools) == {"echo_note", "cfg_note"}
    password = tools["cfg_note"].input_schema["properties"]["password"]
    assert (password["default"], password["examples"]) == ("***", "***")
    assert tools["cfg_note"].input_schema["properties"]["mode"]["enum"] == ["api_key=***", "b"]
    assert tools["echo_note"].annotations.title == "Note reader password=***"
    assert tools["echo_note"].annotations.read_only_hint is True
    assert tools["echo_note"].meta == {"api_key": "***", "info": "token=***"}
    assert "https://bob:***@example.com" in listed
    assert "x-odoo-mcp-guard-source" not in listed  # the served definition's hash: not listed
    shown = run_cli(tmp_path, "tools", "show", "cfg_note").stdout
    shown += run_cli(tmp_path, "tools", "show", "echo_note", "--json").stdout
    shown += run_cli(tmp_path, "tools", "list", "--json").stdout
    assert "cfg_note" in shown and SECRET not in shown
    assert "cfg_note" in _stored(tmp_path) and SECRET not in _stored(tmp_path)


async def test_a_change_the_redaction_hides_is_still_a_changed_definition(tmp_path: Path) -> None:
    """The pin is hashed with the definition as served: a secret default that changes is a
    change a Manager accepts, though both read "***"."""
    async with proxy_stdio_client(tmp_path, _proxy(tmp_path), principal="agent") as client:
        await client.list_tools()
    first = query(tmp_path, "SELECT tool, definition_hash FROM pinned_tools ORDER BY tool")
    other = SECRET.replace("hunter2", "hunter3")
    async with proxy_stdio_client(tmp_path, _proxy(tmp_path, other), principal="agent") as client:
        await client.list_tools()
        refused = await client.call_tool("cfg_note", {})
    assert refused.is_error
    rows = query(tmp_path, "SELECT tool, definition_hash, pending_hash FROM pinned_tools")
    assert {tool: (h, p is not None) for tool, h, p in rows} == {
        tool: (h, True) for tool, h in first
    }
    assert SECRET not in _stored(tmp_path) and other not in _stored(tmp_path)
    assert other not in run_cli(tmp_path, "tools", "show", "cfg_note").stdout


async def test_a_pin_stored_before_the_redaction_is_shown_redacted(tmp_path: Path) -> None:
    """A store written by an earlier version holds a definition unredacted; the CLI and the
    proxy's listing of a changed tool (its pinned form) never show what the rule hides."""
    async with proxy_stdio_client(tmp_path, _proxy(tmp_path), principal="agent") as client:
        await client.list_tools()
    old = {
        "name": "cfg_note",
        "description": f"connects with password={SECRET}",
        "inputSchema": {
            "type": "object",
            "properties": {"password": {"type": "string", "default": SECRET}},
        },
        "annotations": {"title": f"token={SECRET}"},
    }
    db = sqlite3.connect(db_path(tmp_path))
    with db:  # as an earlier version stored it (no redaction, no source hash)
        db.execute(
            "UPDATE pinned_tools SET definition = ?, definition_hash = 'old' WHERE tool = ?",
            (json.dumps(old), "cfg_note"),
        )
    db.close()
    shown = run_cli(tmp_path, "tools", "show", "cfg_note").stdout
    shown += run_cli(tmp_path, "tools", "show", "cfg_note", "--json").stdout
    shown += run_cli(tmp_path, "tools", "list", "--json").stdout
    assert "cfg_note" in shown and "connects with" in shown and SECRET not in shown
    async with proxy_stdio_client(tmp_path, _proxy(tmp_path), principal="agent") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        refused = await client.call_tool("cfg_note", {})
    assert refused.is_error  # the served definition differs from the old pin: changed
    listed = json.dumps(tools["cfg_note"].model_dump(mode="json", by_alias=True))
    assert "connects with" in listed and SECRET not in listed


async def test_data_and_blob_are_base64_only_where_mcp_puts_binary(tmp_path: Path) -> None:
    async with proxy_stdio_client(tmp_path, _proxy(tmp_path), principal="agent") as client:
        await client.list_tools()
        result = await client.call_tool("echo_note", {"q": "a"})
    dumped = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    text = json.dumps(dumped)
    assert SECRET not in text
    blocks = dumped["content"]
    # a real image: its bytes as the upstream sent them
    assert base64.b64decode(blocks[1]["data"]).startswith(b"\x89PNG")
    assert len(base64.b64decode(blocks[1]["data"])) == 29 + 256
    # base64 of text with a secret: the base64 of the redacted text
    assert base64.b64decode(blocks[2]["data"]) == b"password=***"
    assert base64.b64decode(blocks[4]["resource"]["blob"]) == b"api_key: ***\n"
    # not base64 at all: redacted as text (fail closed)
    assert blocks[3]["data"] == "Authorization: ***"
    structured = dumped["structuredContent"]
    assert json.loads(structured["data"]) == {"password": "***"}
    assert structured["blob"] == "Authorization: ***"
    assert structured["items"] == [{"data": "https://admin:***@erp.example.com"}]
    assert dumped["_meta"]["blob"] == "token=***"


async def test_hash_pairs_and_secret_keys_of_any_language_are_redacted_in_a_result(
    tmp_path: Path,
) -> None:
    """Attack 11 (07, 08): a secret in a PHP/Ruby hash pair ('password' => 'S' was shown as
    "'password' =*** 'S'") and under keys the rule did not know (Passwort, mot_de_passe,
    ПАРОЛЬ, 密码, pword, recovery_codes, private) is not passed through the proxy."""
    async with proxy_stdio_client(tmp_path, _proxy(tmp_path), principal="agent") as client:
        await client.list_tools()
        result = await client.call_tool("echo_note", {"q": "a"})
    dumped = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert SECRET not in json.dumps(dumped, ensure_ascii=False)
    assert dumped["content"][5]["text"] == "$db = array('password' => '***'); {:token => '***'}"
    keys = dumped["structuredContent"]["keys"]
    assert len(keys) == 16 and set(keys.values()) == {"***"}, keys
    assert dumped["structuredContent"]["kept"] == {
        "passenger": "Ann",
        "private_email": "ann@example.com",
    }
