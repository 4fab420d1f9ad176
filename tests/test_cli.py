"""The operator's command line on the embedded store: four-eyes approvals, imports that never
replace, secrets never printed, help on every level, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from odoo_mcp_guard.store import Store

GUARD = [sys.executable, "-m", "odoo_mcp_guard"]


def run(data_dir, *args, check=False):
    result = subprocess.run(
        [*GUARD, "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in result.stderr, result.stderr
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def pending(tmp_path):
    store = Store.open(tmp_path)
    request, created = store.file_request(
        "odoo_disconnect", {"alias": "prod"}, "stdio:alice", "Removing a connection", 3600
    )
    assert created
    store.close()
    return tmp_path, request


@pytest.mark.parametrize(
    "approver",
    [
        "stdio:alice",
        "alice",
        "ALICE",
        "Alice ",
        "ａｌｉｃｅ",
        "stdio:Alice",
        # small capitals, alone or mixed in: no normalisation takes them to letters
        "\u1d00\u029f\u026a\u1d04\u1d07",
        "alic\u1d07",
        "alice@example.com",  # an address names the person of its local part
    ],
)
@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_requester_cannot_decide_own_request(pending, approver, verb):
    data_dir, request = pending
    result = run(data_dir, "approvals", verb, request.ref, "--as", approver)
    assert result.returncode == 2
    # small capitals are no plain name's letters since attack 17: refused as such
    assert (
        "cannot approve or reject their own request" in result.stderr
        or "use the plain name" in result.stderr
    ), result.stderr
    assert result.stderr.count("\n") == 1
    shown = json.loads(run(data_dir, "approvals", "show", request.ref, "--json", check=True).stdout)
    assert shown["state"] == "pending"


def test_approve_then_second_decision_refused(pending):
    data_dir, request = pending
    out = run(data_dir, "approvals", "approve", str(request.id), "--as", "bob", check=True).stdout
    assert f"{request.ref} approved by bob" in out
    again = run(data_dir, "approvals", "reject", request.ref, "--as", "carol")
    assert again.returncode == 2
    assert "is approved, not pending" in again.stderr
    listed = json.loads(run(data_dir, "approvals", "list", "--json", check=True).stdout)
    assert [(r["ref"], r["state"], r["decided_by"]) for r in listed] == [
        (request.ref, "approved", "bob")
    ]


def test_reject_with_note_is_recorded(pending):
    data_dir, request = pending
    run(
        data_dir,
        "approvals",
        "reject",
        request.ref,
        "--as",
        "bob",
        "--note",
        "prod stays",
        check=True,
    )
    shown = json.loads(run(data_dir, "approvals", "show", request.ref, "--json", check=True).stdout)
    assert (shown["state"], shown["decision_note"]) == ("rejected", "prod stays")


def test_unknown_request_is_a_clear_error(tmp_path):
    result = run(tmp_path, "approvals", "approve", "MCPR-09999", "--as", "bob")
    assert result.returncode == 2
    assert "no approval request 'MCPR-09999'" in result.stderr


def test_expired_request_cannot_be_approved(tmp_path):
    store = Store.open(tmp_path)
    request, _ = store.file_request("odoo_disconnect", {"alias": "a"}, "p", None, 1, now=1000.0)
    store.close()
    result = run(tmp_path, "approvals", "approve", request.ref, "--as", "bob")
    assert result.returncode == 2
    assert "expired" in result.stderr


def test_import_both_shapes_never_replaces_and_never_prints_secrets(tmp_path):
    as_list = tmp_path / "list.json"
    as_list.write_text(
        json.dumps(
            [
                {
                    "alias": "prod",
                    "url": "https://erp.example",
                    "db": "prod",
                    "username": "admin",
                    "password": "hunter2",
                },
                {
                    "name": "stage",
                    "url": "https://stage.example",
                    "database": "stage",
                    "user": "bot",
                    "api_key": "k-123",
                    "protocol": "jsonrpc",
                },
            ]
        )
    )
    out = run(tmp_path, "connections", "import", str(as_list), check=True).stdout
    assert "imported 2 connection(s): prod, stage" in out

    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(
        json.dumps(
            {
                "connections": [
                    {"alias": "prod", "url": "https://evil.example", "db": "x", "username": "x"},
                    {
                        "alias": "dev",
                        "url": "http://localhost:8069",
                        "db": "dev",
                        "username": "admin",
                    },
                ]
            }
        )
    )
    out = run(tmp_path, "connections", "import", str(wrapped), check=True).stdout
    assert "imported 1 connection(s): dev" in out
    assert "skipped 1 existing alias(es), not replaced: prod" in out

    listed = run(tmp_path, "connections", "list", "--json", check=True).stdout
    connections = {c["alias"]: c for c in json.loads(listed)}
    assert connections["prod"]["url"] == "https://erp.example"
    assert connections["stage"]["protocol"] == "jsonrpc"
    assert connections["stage"]["has_api_key"] is True
    for text in (listed, run(tmp_path, "connections", "list", check=True).stdout):
        assert "hunter2" not in text and "k-123" not in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"other": []}', "expected a list of connections"),
        ('[{"alias": "a"}]', "connections[0].url: Field required"),
        ('[{"alias": "a b", "url": "u", "db": "d", "username": "u"}]', "connections[0].alias"),
        (
            '[{"alias": "a", "url": "http://u", "db": "d", "username": "u", "protocol": "ftp"}]',
            "connections[0].protocol",
        ),
        ('["prod"]', "connections[0]: expected an object"),
    ],
)
def test_bad_import_file_is_refused_whole(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = run(tmp_path, "connections", "import", str(bad))
    assert result.returncode == 2
    assert message in result.stderr
    assert json.loads(run(tmp_path, "connections", "list", "--json", check=True).stdout) == []


def test_tokens_are_stored_hashed(tmp_path):
    token = run(tmp_path, "tokens", "add", "alice", check=True).stdout.strip()
    assert token.startswith("mcpg_")
    stored = (tmp_path / "tokens.json").read_text()
    assert token not in stored and "alice" in stored
    assert run(tmp_path, "tokens", "list", check=True).stdout.split() == ["alice"]
    assert run(tmp_path, "tokens", "add", "bad name").returncode == 2
    run(tmp_path, "tokens", "remove", "alice", check=True)
    assert run(tmp_path, "tokens", "remove", "alice").returncode == 2


def test_audit_tail_reads_the_trail(pending):
    data_dir, _ = pending
    store = Store.open(data_dir)
    from odoo_mcp_guard.store import AuditEvent

    store.append_audit(
        AuditEvent(principal="p", tool="odoo_connections", arguments_hash="h", outcome="allowed")
    )
    store.close()
    events = json.loads(run(data_dir, "audit", "tail", "-n", "5", "--json", check=True).stdout)
    assert [(e["tool"], e["outcome"]) for e in events] == [("odoo_connections", "allowed")]


HELP_PATHS = [
    [],
    ["serve"],
    ["policy"],
    ["policy", "check"],
    ["policy", "show"],
    ["approvals"],
    ["approvals", "list"],
    ["approvals", "show"],
    ["approvals", "approve"],
    ["approvals", "reject"],
    ["approvals", "cancel"],
    ["connections"],
    ["connections", "list"],
    ["connections", "import"],
    ["audit"],
    ["audit", "tail"],
    ["tokens"],
    ["tokens", "add"],
    ["tokens", "list"],
    ["tokens", "remove"],
]


@pytest.mark.parametrize("path", HELP_PATHS, ids=lambda p: " ".join(p) or "top")
def test_help_on_every_level(tmp_path, path):
    result = run(tmp_path, *path, "--help", check=True)
    assert result.stdout.startswith("usage: odoo-mcp-guard")


@pytest.mark.parametrize(
    "args",
    [["frobnicate"], ["approvals", "approve", "1"], ["audit", "tail", "-n", "x"], ["policy"]],
)
def test_usage_mistakes_exit_non_zero_without_traceback(tmp_path, args):
    result = run(tmp_path, *args)
    assert result.returncode == 2
    assert result.stderr.strip()


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        (["--backend", "odoo"], None, "--backend odoo needs ODOO_URL"),
        (
            ["--odoo-config", "{config}"],
            "url = 'ftp://x'\ndb = 'd'\nusername = 'u'\napi_key = 'k'\n",
            "url: String should match pattern",
        ),
        (
            ["--odoo-config", "{config}"],
            "url = 'http://127.0.0.1:1'\ndb = 'd'\nusername = 'u'\n",
            "set an API key (ODOO_API_KEY) or a password",
        ),
        (["--odoo-config", "{config}"], "url = [", "not valid TOML/JSON"),
        (
            ["--odoo-config", "{config}"],
            "url = 'http://x'\ndb = 'd'\nusername = 'u'\napi_key = 'k'\nprotocol = 'soap'\n",
            "protocol: Input should be 'auto', 'json2' or 'xmlrpc'",
        ),
        (
            ["--odoo-config", "{config}"],
            "url = 'http://x'\ndb = 'd'\nusername = 'u'\npassword = 'k'\nprotocol = 'json2'\n",
            "JSON-2 signs in with an API key, not a password",
        ),
        (
            ["--odoo-config", "{config}"],
            "url = 'http://x'\ndb = 'd'\nusername = 'u'\napi_key = 'k'\ncolour = 'red'\n",
            "colour: Extra inputs",
        ),
    ],
)
def test_serve_refuses_a_bad_odoo_configuration_in_one_line(tmp_path, args, config, message):
    path = tmp_path / "guard.toml"
    if config is not None:
        path.write_text(config)
    result = subprocess.run(
        [*GUARD, "serve", "--data-dir", str(tmp_path), *(a.format(config=path) for a in args)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in __import__("os").environ.items() if not k.startswith("ODOO_")},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr
    assert "'k'" not in result.stderr
