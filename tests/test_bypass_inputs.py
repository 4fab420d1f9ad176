"""Zero bypasses at the operator's and the agent's inputs: four-eyes on look-alike names,
policy files that are not files or hold numbers JSON cannot carry, and connection fields with
control characters or foreign URL schemes. Everything through the real CLI in a subprocess
or an MCP client against a real ``odoo-mcp-guard serve``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import anyio
import pytest
from support.guard import (
    aliases,
    connect_args,
    policy,
    request_state,
    run_cli,
    stdio_client,
    text_of,
    write_policy,
)

from odoo_mcp_guard.store import Connection, Store

# --- four-eyes: a requester cannot sign under a look-alike name ---------------------------

LOOK_ALIKES = [
    ("alice", "stdio:alice"),
    ("alice", "http:alice"),
    ("alice", "HTTP:Alice"),
    ("alice", "\u0430lice"),  # Cyrillic а
    ("alice", "al\u0131ce"),  # dotless ı
    ("alice", "alice\u0301"),  # a combining acute accent
    ("alice", "\uff41\uff4c\uff49\uff43\uff45"),  # full width
    ("alice", "ALICE"),
    ("stdio:root", "r\u043eot"),  # Cyrillic о
    ("stdio:root", "ro0t"),
    ("stdio:alice", "http:\u0430lice"),
]

REFUSED_NAMES = [
    ("alice", "x:alice", "not a transport's"),
    ("alice", "\u200b", "invisible"),
    ("alice", "\u200b\u200b\u200b", "invisible"),
    ("alice", "ali\u200bce", "invisible"),
    ("alice", "\u202ealice", "invisible"),
    ("alice", "alice\x1b[0m", "control"),
    ("alice", "stdio:", "no letter or digit"),
]


def _file(data_dir: Path, principal: str) -> str:
    store = Store.open(data_dir)
    try:
        request, _ = store.file_request("odoo_disconnect", {"alias": "prod"}, principal, None, 3600)
    finally:
        store.close()
    return request.ref


def _one_line_error(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr
    return result.stderr


@pytest.mark.parametrize(("requester", "approver"), LOOK_ALIKES)
def test_requester_cannot_approve_under_a_look_alike_name(tmp_path, requester, approver):
    ref = _file(tmp_path, requester)
    for verb in ("approve", "reject"):
        result = run_cli(tmp_path, "approvals", verb, ref, "--as", approver, check=False)
        error = _one_line_error(result)
        # a name mixing scripts is no plain name since attack 17: refused as such
        assert "cannot approve or reject their own request" in error or (
            "mixes scripts" in error and "use the plain name" in error
        ), error
    assert request_state(tmp_path, ref) == "pending"


@pytest.mark.parametrize(("requester", "approver", "why"), REFUSED_NAMES)
def test_unreadable_or_prefixed_approver_names_are_refused(tmp_path, requester, approver, why):
    ref = _file(tmp_path, requester)
    result = run_cli(tmp_path, "approvals", "approve", ref, "--as", approver, check=False)
    error = _one_line_error(result)
    assert "approver name refused" in error and why in error
    assert request_state(tmp_path, ref) == "pending"


def test_a_different_person_still_approves(tmp_path):
    ref = _file(tmp_path, "stdio:alice")
    out = run_cli(tmp_path, "approvals", "approve", ref, "--as", "bob").stdout
    assert f"{ref} approved by bob" in out
    assert request_state(tmp_path, ref) == "approved"


def test_a_request_filed_under_an_unreadable_name_cannot_be_decided(tmp_path):
    ref = _file(tmp_path, "ali\u200bce")
    result = run_cli(tmp_path, "approvals", "approve", ref, "--as", "bob", check=False)
    assert "cannot be compared" in _one_line_error(result)
    assert request_state(tmp_path, ref) == "pending"


# --- policy files: only regular files, bounded, never waited on ---------------------------

BAD_NUMBERS = [
    ('{"version": "1",\n "rules": {"a": {"action": "allow",\n "rate_limit": '
     '{"max": 1, "window": NaN}}}}', 3, "$.rules.a.rate_limit.window", "NaN"),
    ('{"version": "1",\n "rules": {"a": {"action": "allow",\n "rate_limit": '
     '{"max": 1, "window": Infinity}}}}', 3, "$.rules.a.rate_limit.window", "Infinity"),
    ('{"version": "1",\n "rules": {"a": {"action": "allow",\n "rate_limit": '
     '{"max": 1, "window": -Infinity}}}}', 3, "$.rules.a.rate_limit.window", "-Infinity"),
    ('{"version": "1",\n "rules": {"a": {"action": "allow",\n "rate_limit": '
     '{"max": ' + "9" * 5000 + ', "window": 1}}}}', 3, "$.rules.a.rate_limit.max", "5000 digits"),
    ('{"version": "1",\n "hide": [1e999]}', 2, "$.hide[0]", "out of range"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "path", "fragment"), BAD_NUMBERS)
def test_policy_check_reports_numbers_json_cannot_hold(tmp_path, text, line, path, fragment):
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(text)
    result = run_cli(tmp_path, "policy", "check", str(policy_file), check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    faults = [ln.strip() for ln in result.stderr.splitlines()[1:]]
    assert len(faults) == 1, result.stderr
    assert faults[0].startswith(f"line {line}: {path}: ") and fragment in faults[0]


def _specials(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    return {"FIFO": fifo, "/dev/zero": zero, "directory": tmp_path}


def test_policy_check_refuses_what_is_not_a_regular_file(tmp_path):
    for label, path in _specials(tmp_path).items():
        started = time.monotonic()
        result = run_cli(tmp_path, "policy", "check", str(path), check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr, label
        assert "not a regular file" in result.stderr, (label, result.stderr)
        assert time.monotonic() - started < 30, label
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (2 << 20))
    result = run_cli(tmp_path, "policy", "check", str(big), check=False)
    assert result.returncode == 1 and "larger than 1048576 bytes" in result.stderr


async def _answers_with_the_good_policy(client) -> None:
    """One round of calls, each answered in time, each judged by the good policy."""
    with anyio.fail_after(20):
        listing = await client.call_tool("odoo_connections", {})
        assert not listing.is_error, text_of(listing)
        refused = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert refused.is_error and "managed by IT" in text_of(refused)


@pytest.mark.anyio
async def test_a_running_server_survives_a_policy_path_that_is_not_a_good_file(tmp_path):
    good = policy(odoo_disconnect={"action": "deny", "reason": "Connections are managed by IT"})
    policy_file = write_policy(tmp_path / "policy.json", good)
    bad_numbers = json.dumps(policy(default="allow"))[:-1] + ', "x": NaN}'
    async with stdio_client(tmp_path, policy_file=policy_file) as client:
        await _answers_with_the_good_policy(client)
        for kind in ("FIFO", "/dev/zero", "NaN", "huge integer"):
            policy_file.unlink()
            if kind == "FIFO":
                os.mkfifo(policy_file)
            elif kind == "/dev/zero":
                policy_file.symlink_to("/dev/zero")
            elif kind == "NaN":
                policy_file.write_text(bad_numbers)
            else:
                policy_file.write_text('{"version": "1", "x": ' + "9" * 5000 + "}")
            # The server looks at a changed file at most every 0.5 s: every call until that
            # much time has passed, and one after, must be answered, by the good policy.
            changed_at = time.monotonic()
            while time.monotonic() - changed_at < 0.6:
                await _answers_with_the_good_policy(client)
            await _answers_with_the_good_policy(client)


# --- connections: control characters and foreign schemes refused at every input ----------

FORGED = [
    {"db": "prod\nforged      https://evil.example  db=x"},
    {"username": "\x1b[2J\x1b[1;1Hadmin"},
    {"url": "https://erp.example.com/\x1b]0;pwned\x07"},
    {"db": "prod\u202e"},
    {"username": "\u200b"},
    {"db": "prod\x85"},
    {"username": "ad\u2028min"},
]
BAD_URLS = ["file:///etc/passwd", "javascript:alert(1)", "ftp://erp.example.com", "https://"]
# credentials belong in password/api_key: a URL would show them wherever the URL is shown
CREDENTIAL_URLS = ["https://bot:S3cr3t@erp.example.com", "https://bot@erp.example.com/odoo"]


@pytest.mark.anyio
async def test_odoo_connect_refuses_credentials_in_the_url(tmp_path):
    async with stdio_client(tmp_path) as client:
        for url in CREDENTIAL_URLS:
            result = await client.call_tool("odoo_connect", connect_args("prod", url=url))
            assert result.is_error, url
            text = text_of(result)
            assert "url must not contain credentials" in text and "S3cr3t" not in text, text
    assert aliases(tmp_path) == []
    result = _import(tmp_path, {"connections": [connect_args("prod", url=CREDENTIAL_URLS[0])]})
    assert "url must not contain credentials" in _one_line_error(result)


@pytest.mark.anyio
async def test_odoo_connect_refuses_control_characters_and_foreign_schemes(tmp_path):
    async with stdio_client(tmp_path) as client:
        for overrides in [*FORGED, *({"url": url} for url in BAD_URLS)]:
            result = await client.call_tool("odoo_connect", connect_args("prod", **overrides))
            assert result.is_error, overrides
            text = text_of(result)
            assert "Invalid arguments" in text and "Nothing was done" in text, text
            assert "\x1b" not in text and "\n" not in text.strip(), text
    assert aliases(tmp_path) == []


def _import(tmp_path: Path, entries: object) -> object:
    path = tmp_path / "connections.json"
    path.write_text(json.dumps(entries))
    return run_cli(tmp_path, "connections", "import", str(path), check=False)


@pytest.mark.parametrize("overrides", [*FORGED, *({"url": url} for url in BAD_URLS)])
def test_connections_import_refuses_what_odoo_connect_refuses(tmp_path, overrides):
    entry = {**connect_args("prod"), **overrides}
    result = _import(tmp_path, {"connections": [connect_args("good"), entry]})
    error = _one_line_error(result)
    assert "connections[1]." in error
    listed = run_cli(tmp_path, "connections", "list", "--json").stdout
    assert json.loads(listed) == []  # refused whole


def test_connections_import_reads_regular_files_only(tmp_path):
    for label, path in _specials(tmp_path).items():
        started = time.monotonic()
        result = run_cli(tmp_path, "connections", "import", str(path), check=False)
        assert "not a regular file" in _one_line_error(result), label
        assert time.monotonic() - started < 30, label
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (5 << 20))
    result = run_cli(tmp_path, "connections", "import", str(big), check=False)
    assert "larger than" in _one_line_error(result)
    huge = tmp_path / "huge.json"
    huge.write_text('[{"alias": "a", "verify_ssl": ' + "9" * 5000 + "}]")
    result = run_cli(tmp_path, "connections", "import", str(huge), check=False)
    assert "not valid JSON" in _one_line_error(result)


def test_connections_list_escapes_what_it_prints(tmp_path):
    # A row stored before these checks existed (written straight to the store).
    store = Store.open(tmp_path)
    store.add_connection(
        Connection.model_construct(
            alias="legacy",
            url="https://erp.example.com/\x1b]0;pwned\x07",
            db="prod\nforged           https://evil.example  db=x",
            username="\x1b[2Jadmin\u202e\x9b",
            password="s3cret",
            api_key=None,
            protocol="xmlrpc",
            verify_ssl=True,
        )
    )
    store.close()
    text = run_cli(tmp_path, "connections", "list").stdout
    assert text.count("\n") == 1, text  # one connection, one row
    for raw in ("\x1b", "\x07", "\u202e", "\x9b"):
        assert raw not in text
    assert "\\x1b" in text and "\\n" in text and "s3cret" not in text
    listed = run_cli(tmp_path, "connections", "list", "--json").stdout
    for raw in ("\x1b", "\x07", "\u202e", "\x9b"):
        assert raw not in listed
    (conn,) = json.loads(listed)
    assert conn["db"].startswith("prod\nforged") and conn["username"].endswith("\u202e\x9b")
