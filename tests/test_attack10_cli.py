"""Attack 10 (the operator's side): numbers beyond what a store holds, bad MCP_GUARD_* values,
tokens files that are not files or not of the right shape, and a requester approving her own
request under a spelling a person reads as her. Through the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from odoo_mcp_guard.auth import token_hash
from odoo_mcp_guard.policy_core import DEFAULT_APPROVER_GROUP, ApprovalTerms
from odoo_mcp_guard.store import Store

GUARD = [sys.executable, "-m", "odoo_mcp_guard"]


def run(data_dir, *args, env=None, timeout=30):
    result = subprocess.run(
        [*GUARD, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def store_dir(tmp_path):
    store = Store.open(tmp_path)
    store.close()
    return tmp_path


# --- 08: an id or a count beyond 64 bits ----------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["approvals", "show", "99999999999999999999999"],
        ["approvals", "show", "9223372036854775808"],
        ["approvals", "approve", "99999999999999999999999", "--as", "bob"],
        ["approvals", "reject", "MCPR-99999999999999999999999", "--as", "bob"],
        ["approvals", "cancel", "9" * 5000, "--as", "bob"],
        ["audit", "tail", "-n", "9223372036854775808"],
        ["audit", "tail", "-n", "9" * 5000],
        ["approvals", "list", "--limit", "99999999999999999999"],
        ["approvals", "list", "--limit", "-1"],
    ],
    ids=lambda a: " ".join(a)[:50],
)
def test_a_number_beyond_the_store_is_one_line(store_dir, args):
    result = run(store_dir, *args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("odoo-mcp-guard ")
    assert "argument" in result.stderr


# --- 11: serve options and MCP_GUARD_* values ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["serve", "--transport", "http", "--port", "99999999999999999999"], {}, "--port"),
        (["serve", "--transport", "http", "--port", "-1"], {}, "--port"),
        (
            ["proxy", "--upstream-command", "true"],
            {"MCP_GUARD_UPSTREAM_TIMEOUT": "abc"},
            "MCP_GUARD_UPSTREAM_TIMEOUT='abc'",
        ),
        (
            ["proxy", "--upstream-command", "true"],
            {"MCP_GUARD_UPSTREAM_WAIT": "nan"},
            "MCP_GUARD_UPSTREAM_WAIT='nan'",
        ),
        (
            ["proxy", "--upstream-command", "true"],
            {"MCP_GUARD_UPSTREAM_MODE": "sideways"},
            "MCP_GUARD_UPSTREAM_MODE='sideways'",
        ),
        (["serve"], {"MCP_GUARD_LOG_LEVEL": "loud"}, "MCP_GUARD_LOG_LEVEL='loud'"),
        (["serve"], {"MCP_GUARD_LOG_FORMAT": "xml"}, "MCP_GUARD_LOG_FORMAT='xml'"),
        (["serve"], {"MCP_GUARD_EVENT_LOOP": "trio"}, "MCP_GUARD_EVENT_LOOP='trio'"),
        (
            ["--backend", "odoo", "approvals", "list"],
            {
                "ODOO_URL": "http://127.0.0.1:1",
                "ODOO_DB": "d",
                "ODOO_USERNAME": "u",
                "ODOO_API_KEY": "k",
                "MCP_GUARD_POLICY_POLL": "-3",
            },
            "MCP_GUARD_POLICY_POLL='-3'",
        ),
        (
            ["--backend", "odoo", "serve"],
            {
                "ODOO_URL": "http://127.0.0.1:1",
                "ODOO_DB": "d",
                "ODOO_USERNAME": "u",
                "ODOO_API_KEY": "k",
                "MCP_GUARD_AUDIT_FLUSH": "inf",
            },
            "MCP_GUARD_AUDIT_FLUSH='inf'",
        ),
    ],
    ids=lambda v: str(v)[:40],
)
def test_a_bad_option_or_setting_is_one_line_naming_it(tmp_path, args, env, message):
    result = run(tmp_path, *args, env=env)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr


# --- 10, 07: the tokens file -------------------------------------------------------------


def _fifo(path):
    os.mkfifo(path)


def _dev_zero(path):
    path.symlink_to("/dev/zero")


def _huge(path):
    with path.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of nothing


@pytest.mark.parametrize("make", [_fifo, _dev_zero, _huge], ids=["fifo", "dev-zero", "huge"])
@pytest.mark.parametrize(
    "args",
    [["tokens", "list"], ["tokens", "add", "bob"], ["serve", "--transport", "http", "--port", "0"]],
    ids=lambda a: " ".join(a),
)
def test_a_tokens_file_that_is_no_file_is_refused_at_once(tmp_path, make, args):
    make(tmp_path / "tokens.json")
    result = run(tmp_path, *args, timeout=20)  # a hang is a TimeoutExpired: the test fails
    assert result.returncode == 2
    assert "tokens.json: the tokens file is refused" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


_RESERVED_DIGEST = token_hash("mcpg_some-token")


@pytest.mark.parametrize(
    ("content", "env", "fault"),
    [
        ('{"alice": 5}', None, "alice: Extra inputs are not permitted"),
        ("[]", None, "Input should be an object"),
        ('{"tokens": {"alice": "not-a-hash"}}', None, "expected the sha256 hex"),
        # attack 11: a principal the guard gives itself ('anonymous', 'stdio:<OS user>')
        (json.dumps({"tokens": {"anonymous": _RESERVED_DIGEST}}), None, "reserved"),
        (None, {"MCP_GUARD_TOKENS": f"stdio:root={_RESERVED_DIGEST}"}, "reserved"),
    ],
    ids=["extra-key", "not-an-object", "not-a-hash", "reserved-in-file", "reserved-in-env"],
)
@pytest.mark.parametrize(
    "args",
    [["tokens", "list"], ["serve", "--transport", "http", "--port", "0"]],
    ids=lambda a: " ".join(a),
)
def test_bad_tokens_are_refused_at_load(tmp_path, content, env, fault, args):
    """A tokens file of the wrong shape, or tokens (file or MCP_GUARD_TOKENS) naming a reserved
    principal: refused in one line naming the fault, never read as "no tokens"."""
    if content is not None:
        (tmp_path / "tokens.json").write_text(content)
    result = run(tmp_path, *args, env=env, timeout=20)
    assert result.returncode == 2
    if content is not None:
        assert str(tmp_path / "tokens.json") in result.stderr
    assert fault in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(
    "args",
    [["tokens", "list"], ["serve", "--transport", "http", "--port", "0"]],
    ids=lambda a: " ".join(a),
)
@pytest.mark.parametrize("where", ["env", "env-and-file"])
def test_one_token_for_two_principals_is_refused(tmp_path, args, where):
    shared = token_hash("mcpg_the-same-token")
    env = {"MCP_GUARD_TOKENS": f"alice={shared},bob={shared}"}
    if where == "env-and-file":
        (tmp_path / "tokens.json").write_text(json.dumps({"tokens": {"alice": shared}}))
        env = {"MCP_GUARD_TOKENS": f"bob={shared}"}
    result = run(tmp_path, *args, env=env, timeout=20)
    assert result.returncode == 2
    assert "alice and bob have the same token" in result.stderr, result.stderr


def test_an_odoo_config_that_is_a_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "guard.toml")
    result = run(tmp_path, "--odoo-config", str(tmp_path / "guard.toml"), "approvals", "list")
    assert result.returncode == 2
    assert "not a regular file" in result.stderr


# --- 07: the requester under a spelling a person reads as her ---------------------------

LOOKALIKES = [
    "ann.lee+ops@example.com",  # a sub-address of her mailbox (RFC 5233)
    "Ann.Lee+x",  # a sub-address without a domain
    "ann.lee%40example.com",  # her address, percent-encoded
    "ann.lee%2540example.com",  # ... twice
    "ann.lee%2Bops",
    "ann.lee#1",  # a tag
    "ann.lee＃1",  # a look-alike of "#"
    "ann.lee＋ops",  # a look-alike of "+"
]


@pytest.fixture
def anns_request(tmp_path):
    store = Store.open(tmp_path)
    request, created = store.file_request(
        "odoo_disconnect", {"alias": "prod"}, "http:Ann.Lee", "Removing a connection", 3600
    )
    assert created
    store.close()
    return tmp_path, request


@pytest.mark.parametrize("name", LOOKALIKES)
@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_the_requester_under_another_spelling_cannot_decide(anns_request, name, verb):
    data_dir, request = anns_request
    result = run(data_dir, "approvals", verb, request.ref, "--as", name)
    assert result.returncode == 2, result.stdout
    # her name in another spelling, or (attack 17) a name that is not a plain one at all
    assert (
        "the requester cannot approve or reject their own request" in result.stderr
        or "use the plain name" in result.stderr
    ), result.stderr
    shown = json.loads(run(data_dir, "approvals", "show", request.ref, "--json").stdout)
    assert shown["state"] == "pending"


def test_an_approver_under_another_spelling_is_counted_once(tmp_path):
    store = Store.open(tmp_path)
    terms = ApprovalTerms(DEFAULT_APPROVER_GROUP, 2, "b" * 64)
    request, _ = store.file_request(
        "odoo_disconnect", {"alias": "prod"}, "stdio:carol", "Removing", 3600, terms=terms
    )
    store.close()
    first = run(tmp_path, "approvals", "approve", request.ref, "--as", "bob")
    assert first.returncode == 0 and "approval 1 of 2 recorded" in first.stdout, first.stderr
    for name in ("bob+again@example.com", "Bob#2", "bob%2Bx", "BOB＋x", "bob%40example.com"):
        again = run(tmp_path, "approvals", "approve", request.ref, "--as", name)
        assert again.returncode == 2, again.stdout
        # attack 17: "Bob#2", "bob%2Bx" are no plain names at all
        assert (
            "a quorum of 2 needs 2 different approvers" in again.stderr
            or "use the plain name" in again.stderr
        ), again.stderr
    shown = json.loads(run(tmp_path, "approvals", "show", request.ref, "--json").stdout)
    assert (shown["state"], shown["approvals"]) == ("pending", ["bob"])
