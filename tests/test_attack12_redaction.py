"""Attack 12 (outside testers) at the front-end: secrets an approver or an agent was shown.

A URL whose password holds "/", "?" or "#" ("http://admin:Pa/ss@h": Python's urlsplit and a
WHATWG parser end the authority at the "/", a looser reader takes "Pa/ss" for the password),
or ends its userinfo with "\\@" (urlsplit reads it as userinfo): refused by odoo_connect and
``connections import`` in one line; one stored before the rule is shown redacted wherever a
connection is shown (``connections list``, ``--json``, odoo_connections, ``approvals show``).
Credentials in a connection's db or login are redacted there too (policy_core.redact, the one
rule; its shapes are golden cases in tests/data/policy_golden.json, run by both halves)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from support.guard import (
    aliases,
    connect_args,
    db_path,
    policy,
    run_cli,
    stdio_client,
    text_of,
    write_policy,
)

from odoo_mcp_guard.store import Store

SECRET = "Hunter2pw"
URLS = [
    f"http://admin:Pa/{SECRET}@erp.example.com",
    f"http://admin:Pa?{SECRET}@erp.example.com",
    f"http://admin:Pa#{SECRET}@erp.example.com/web",
    f"https://admin:{SECRET}\\@erp.example.com/",
    f"https://{SECRET}\\@erp.example.com/",
]


def _import(tmp_path: Path, entries: object):
    path = tmp_path / "connections.json"
    path.write_text(json.dumps(entries))
    return run_cli(tmp_path, "connections", "import", str(path), check=False)


@pytest.mark.anyio
async def test_odoo_connect_refuses_a_url_some_reader_takes_for_userinfo(tmp_path):
    async with stdio_client(tmp_path) as client:
        for url in URLS:
            result = await client.call_tool("odoo_connect", connect_args("prod", url=url))
            assert result.is_error, url
            text = text_of(result)
            assert "url must not contain credentials" in text, text
            assert SECRET not in text and "\n" not in text.strip(), text
    assert aliases(tmp_path) == []


@pytest.mark.parametrize("url", URLS)
def test_connections_import_refuses_a_url_some_reader_takes_for_userinfo(tmp_path, url):
    result = _import(tmp_path, {"connections": [connect_args("prod", url=url)]})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and SECRET not in result.stderr, result.stderr
    assert "url must not contain credentials" in result.stderr
    assert json.loads(run_cli(tmp_path, "connections", "list", "--json").stdout) == []


def _store_legacy(tmp_path: Path, alias: str, url: str, db: str, username: str) -> None:
    """A row written before the URL rule existed (or by an older version)."""
    Store.open(tmp_path).close()  # the store, as the guard creates it
    now = time.time()
    with sqlite3.connect(db_path(tmp_path)) as conn:
        conn.execute(
            "INSERT INTO connections (alias, url, db, username, password, api_key, protocol,"
            " verify_ssl, created_at, updated_at) VALUES (?, ?, ?, ?, 'pw', NULL, 'xmlrpc', 1,"
            " ?, ?)",
            (alias, url, db, username, now, now),
        )


@pytest.mark.anyio
async def test_a_stored_connection_is_shown_redacted_everywhere(tmp_path):
    _store_legacy(tmp_path, "slash", f"http://admin:Pa/{SECRET}@erp.example.com", "prod", "bob")
    _store_legacy(tmp_path, "bslash", f"http://admin:{SECRET}\\@erp.example.com/", "prod", "bob")
    _store_legacy(
        tmp_path,
        "fields",
        "https://erp.example.com",
        f"postgres://u:{SECRET}@db.example.com/prod",
        f"bot password={SECRET}",
    )
    listed = run_cli(tmp_path, "connections", "list").stdout
    as_json = run_cli(tmp_path, "connections", "list", "--json").stdout
    for shown in (listed, as_json):
        assert SECRET not in shown, shown
        assert "slash" in shown and "fields" in shown
    assert {c["alias"] for c in json.loads(as_json)} == {"slash", "bslash", "fields"}
    pol = write_policy(tmp_path / "policy.json", policy())
    async with stdio_client(tmp_path, policy_file=pol) as client:
        result = await client.call_tool("odoo_connections", {})
        assert not result.is_error and SECRET not in text_of(result), text_of(result)
        assert SECRET not in json.dumps(result.structured_content)
        refs = []
        for alias in ("slash", "fields"):
            pending = await client.call_tool("odoo_disconnect", {"alias": alias})
            assert pending.structured_content["status"] == "pending", text_of(pending)
            refs.append(pending.structured_content["request"])
    for ref in refs:
        shown = run_cli(tmp_path, "approvals", "show", ref).stdout
        assert "removes:" in shown and SECRET not in shown, shown
    tail = run_cli(tmp_path, "audit", "tail", "-n", "50").stdout
    assert SECRET not in tail


@pytest.mark.anyio
async def test_a_replacement_s_password_is_hidden_in_its_other_arguments(tmp_path):
    """Outside round 19: an ``odoo_connect`` replacing a connection with ``db`` (and the
    reason) repeating its password filed the request with the password in ``db``: approvers
    read it in ``approvals show``. The call's own secrets are hidden by value in its other
    arguments wherever the request is stored and shown."""
    secret = "Zq7vWk3pLx9TrB2m"
    pol = write_policy(tmp_path / "policy.json", policy())
    async with stdio_client(tmp_path, policy_file=pol) as client:
        first = await client.call_tool("odoo_connect", connect_args("prod"))
        assert not first.is_error, text_of(first)
        again = connect_args("prod", password=secret, db=secret, username=f"bot-{secret}")
        pending = await client.call_tool("odoo_connect", again)
        assert pending.structured_content["status"] == "pending", text_of(pending)
        assert secret not in text_of(pending)
        assert secret not in json.dumps(pending.structured_content)
        ref = pending.structured_content["request"]
    for shown in (
        run_cli(tmp_path, "approvals", "show", ref).stdout,
        run_cli(tmp_path, "approvals", "list", "--json").stdout,
    ):
        assert ref in shown or "MCPR" in shown, shown
        assert secret not in shown, shown
    stored = sqlite3.connect(db_path(tmp_path)).execute("SELECT arguments FROM approval_requests")
    assert all(secret not in row[0] for row in stored), "stored in clear"


@pytest.mark.anyio
async def test_odoo_connect_s_own_answer_hides_its_password_typed_into_its_alias(tmp_path):
    """Outside round 20 (tester B, F5): the answer's top-level ``alias`` repeated the alias as
    given, its own password in it, which the connection shown beside it hid."""
    password = "Tr0ub4dor-xQ9z"
    arguments = {
        "alias": f"x{password}",
        "url": "https://erp.example.com",
        "db": "prod",
        "username": "bob",
        "password": password,
    }
    async with stdio_client(tmp_path, policy_file=write_policy(tmp_path / "p.json", policy())) as c:
        result = await c.call_tool("odoo_connect", arguments)
    assert not result.is_error, text_of(result)
    shown = text_of(result) + json.dumps(result.structured_content)
    assert password not in shown, shown
    assert result.structured_content["alias"] == result.structured_content["connection"]["alias"]
