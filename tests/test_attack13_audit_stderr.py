"""Attack 13 (outside testers): an audit event kept in memory while the store is locked is not
lost when the guard exits before the lock goes (invariant 7), and an upstream's own stderr
carries no password onto the proxy's stderr.

4: ``serve`` with the SQLite store held by another process (BEGIN EXCLUSIVE) past
MCP_GUARD_STORE_BUSY_SECONDS refuses calls and keeps their events; the client ends the session
while the lock is still held. At exit the events are written or, if the store still cannot
take them, kept in a file of the data directory (written atomically) and written at the next
start of anything that opens the store (idempotent by uuid), one log line each way.

5: ``proxy --upstream-command odoo-claude-mcp``: odoo-claude-mcp logs the URL it was given
on its stderr; the proxy copies that stderr through the one redaction."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client as mcp_stdio_client
from support.guard import (
    ODOO_CLAUDE_MCP,
    connect_args,
    db_path,
    guard_env,
    needs_odoo_claude_mcp,
    policy,
    proxy_args,
    query,
    run_cli,
    serve_args,
    write_policy,
)
from support.raw_stdio import raw_stdio

from odoo_mcp_guard.store import AuditEvent, Store
from odoo_mcp_guard.stores.kept import KEPT_FILENAME, replay_kept, save_kept

pytestmark = pytest.mark.anyio


async def _refused_while_locked(tmp_path: Path, log: Path) -> tuple[list[str], sqlite3.Connection]:
    """One allowed call, then three refused while another process holds the store; the
    session ends (the guard exits) with the lock still held. Returns the refused tools and
    the connection holding the lock."""
    pol = write_policy(tmp_path / "policy.json", policy())
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "odoo_mcp_guard", *serve_args(tmp_path, pol)],
        env=guard_env(tmp_path, MCP_GUARD_PRINCIPAL="alice", MCP_GUARD_STORE_BUSY_SECONDS="0.3"),
    )
    tools = ["odoo_disconnect", "no_such_tool", "odoo_disconnect"]
    with log.open("w") as errlog:
        async with Client(
            mcp_stdio_client(params, errlog=errlog), read_timeout_seconds=60
        ) as client:
            assert not (await client.call_tool("odoo_connect", connect_args("prod"))).is_error
            # waits for the guard's own writes to end: a lock, not a race
            holder = sqlite3.connect(db_path(tmp_path), isolation_level=None, timeout=30)
            holder.execute("BEGIN EXCLUSIVE")  # another process holds the store
            for tool in tools:
                args = {"alias": "prod"} if tool == "odoo_disconnect" else {}
                assert (await client.call_tool(tool, args)).is_error
    return tools, holder


async def test_events_kept_at_exit_while_the_store_is_locked_are_written_at_next_start(
    tmp_path,
):
    log = tmp_path / "guard.log"
    tools, holder = await _refused_while_locked(tmp_path, log)
    try:
        kept = tmp_path / KEPT_FILENAME
        assert kept.is_file(), log.read_text()
        lines = kept.read_text().splitlines()
        assert [json.loads(line)["tool"] for line in lines] == tools
        assert not list(tmp_path.glob(".audit-kept-*"))  # no temporary file left
        text = log.read_text()
        assert "Traceback" not in text, text
        assert "3 audit events the store has not taken kept in" in text, text
        assert "not written yet (left for the next start)" in text, text
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # the next command that opens the store writes them, once
    shown = run_cli(tmp_path, "audit", "tail", "-n", "100", "--json")
    assert "3 kept audit events written from" in shown.stderr, shown.stderr
    events = json.loads(shown.stdout)
    assert [e["tool"] for e in events] == ["odoo_connect", *tools]
    assert not kept.exists()
    again = run_cli(tmp_path, "audit", "tail", "-n", "100", "--json")
    assert len(json.loads(again.stdout)) == 4
    assert "kept audit events" not in again.stderr


async def test_events_kept_while_the_store_is_locked_survive_a_kill_9(tmp_path):
    """Outside round 20 (tester B, F4): the events were kept in memory and in the file only
    at exit; a guard killed with SIGKILL while the store was locked lost them. Each is now
    also kept in the file at once."""
    pol = write_policy(tmp_path / "policy.json", policy())
    run_cli(tmp_path, "audit", "tail")  # the store exists before it is locked
    # waits for the guard's own first writes (its catalog) to end: a lock, not a race
    holder = sqlite3.connect(db_path(tmp_path), isolation_level=None, timeout=30)
    async with raw_stdio(
        tmp_path, pol, stderr=subprocess.DEVNULL, MCP_GUARD_STORE_BUSY_SECONDS="0.3"
    ) as raw:
        with anyio.fail_after(60):
            await raw.initialize(initialized=False)
            holder.execute("BEGIN EXCLUSIVE")  # another process holds the store
            for rid in (2, 3):
                params = {"name": "odoo_disconnect", "arguments": {}}
                answer = await raw.request(rid, "tools/call", params)
                assert answer["result"]["isError"], answer
            raw.proc.kill()  # SIGKILL: no exit of its own
            await raw.proc.wait()
    holder.execute("ROLLBACK")
    holder.close()
    events = json.loads(run_cli(tmp_path, "audit", "tail", "-n", "100", "--json").stdout)
    assert [e["tool"] for e in events].count("odoo_disconnect") == 2, events


async def test_events_neither_stored_nor_kept_are_named_at_exit(tmp_path):
    """The kept file cannot be written (a directory stands in its place): one loud line
    carrying every event says they were not stored."""
    (tmp_path / KEPT_FILENAME).mkdir(parents=True)
    log = tmp_path / "guard.log"
    _, holder = await _refused_while_locked(tmp_path, log)
    holder.execute("ROLLBACK")
    holder.close()
    text = log.read_text()
    lost = [line for line in text.splitlines() if "audit events NOT stored" in line]
    assert len(lost) == 1, text
    assert lost[0].count('"tool": "odoo_disconnect"') == 2 and '"no_such_tool"' in lost[0]
    assert "Traceback" not in text, text


@pytest.mark.unit
def test_replaying_kept_events_twice_stores_them_once(tmp_path):
    store = Store.open(tmp_path)
    event = AuditEvent(principal="alice", tool="odoo_write", arguments_hash="h", outcome="denied")
    save_kept(tmp_path, [event])
    save_kept(tmp_path, [event])  # kept twice (two exits): one line
    assert len((tmp_path / KEPT_FILENAME).read_text().splitlines()) == 1
    assert replay_kept(tmp_path, store.append_audit) == 1
    save_kept(tmp_path, [event])
    assert replay_kept(tmp_path, store.append_audit) == 1
    assert query(tmp_path, "SELECT count(*) FROM audit WHERE uuid = ?", event.uuid)[0][0] == 1
    store.close()


@needs_odoo_claude_mcp
async def test_an_upstreams_stderr_is_redacted_on_the_proxys_stderr(tmp_path):
    secret = "Hunter2PW_f13"
    upstream_data = tmp_path / "odoo-claude-mcp"
    upstream_data.mkdir()
    data = tmp_path / "guard"
    pol = write_policy(
        tmp_path / "policy.json",
        policy(odoo_connect={"action": "allow"}, odoo_connections={"action": "allow"}),
    )
    args = proxy_args(
        data,
        pol,
        upstream=[ODOO_CLAUDE_MCP],
        server_name="odoo-claude-mcp",
        extra=("--upstream-env", f"ODOO_CLAUDE_MCP_DATA={upstream_data}"),
    )
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "odoo_mcp_guard", *args],
        env=guard_env(data, MCP_GUARD_PRINCIPAL="alice"),
    )
    log = tmp_path / "proxy.log"
    url = f"http://ａ：{secret}＠127.0.0.1:1"
    with log.open("w") as errlog:
        async with Client(
            mcp_stdio_client(params, errlog=errlog), read_timeout_seconds=60
        ) as client:
            result = await client.call_tool(
                "odoo_connect",
                {"alias": "x", "url": url, "db": "d", "username": "admin", "password": "pw"},
            )
            assert secret not in json.dumps(result.model_dump(mode="json"))
    text = log.read_text()
    # the upstream did log the call (its line is there, redacted)
    assert "127.0.0.1" in text, text
    assert secret not in text, text


@pytest.mark.unit
def test_the_guards_own_log_lines_are_redacted():
    """A message (or a traceback) quoting a URL with its password is redacted in both log
    formats, whichever code logged it."""
    import logging

    from odoo_mcp_guard.logs import JsonLogFormatter, RedactedFormatter

    secret = "S3cretPW_log13"
    try:
        raise ValueError(f"cannot reach http://admin:{secret}@odoo:8069")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "odoo_mcp_guard.proxy",
        logging.WARNING,
        __file__,
        1,
        "upstream down: %s",
        (f"http://ａ：{secret}＠127.0.0.1:1",),
        exc_info,
    )
    text = RedactedFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    shown = JsonLogFormatter().format(record)
    assert "upstream down" in text and "Traceback" in text
    assert secret not in text and secret not in shown, (text, shown)


def test_an_upstream_that_cannot_start_has_its_stderr_shown_redacted_first(tmp_path):
    """Its own messages are shown (redacted) above the proxy's one-line refusal."""
    import shlex
    import subprocess

    secret = "S3cretPW_start13"
    script = (
        f"import sys; print('cannot log in to http://admin:{secret}@odoo:8069', file=sys.stderr)"
    )
    command = shlex.join([sys.executable, "-c", script + "; raise SystemExit(3)"])
    result = subprocess.run(
        [sys.executable, "-m", "odoo_mcp_guard", "proxy", "--upstream-command", command],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=guard_env(tmp_path, MCP_GUARD_PRINCIPAL="alice"),
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert secret not in result.stderr, result.stderr
    assert lines[0] == "cannot log in to http://admin:***@odoo:8069", result.stderr
    assert lines[-1].startswith("odoo-mcp-guard: error: the upstream command"), result.stderr
