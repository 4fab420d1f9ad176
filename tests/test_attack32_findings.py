"""Outside round 32: (MEDIUM) an ``odoo_connect`` whose password came under ``psw``,
``passw0rd`` or ``pw1`` filed an approval request that ``approvals show`` and ``approvals
list`` printed (and the store kept) in clear; ``redact`` also missed ``passw``, keys named
for a key with a qualifier (``client_key``, ``license_key``, ``consumerKey``,
``signing-key``) and leet spellings (``passw0rd=X`` in text). Keys are now read with
``psw``, ``pw`` plus digits and ``passw`` as secret words, leet digits and symbols folded for
password/passwd/secret/token, and ``<qualifier>_key`` a secret unless the qualifier names a
key that is none (``primary_key``, ``sort_key``, ``public_key``; the bare ``key`` of a
``{"key": ..., "value": ...}`` pair neither). (LOW) A request id in other digits
(``approvals show ١``, ``MCPR-１``) resolved to MCPR-00001; a ``rate_limit.window`` under a
second passed ``policy check``; argparse's mistakes printed their usage over several lines.
policy_core direct where it is the interface, the CLI as a subprocess, and one approval
request through a real proxy subprocess."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.guard import (
    policy,
    proxy_args,
    proxy_stdio_client,
    query,
    run_cli,
    text_of,
    upstream_command,
    write_policy,
    write_upstream_state,
)
from test_attack10_cli import run
from test_attack27_redaction import HIDDEN as HIDDEN_27
from test_attack27_redaction import KEPT as KEPT_27

from odoo_mcp_guard.policy_core import (
    is_secret_key,
    redact,
    redact_arguments,
    redact_text,
)
from odoo_mcp_guard.store import Store

SECRET = "Qz7-secretvalue"

# --- (1) secret keys ----------------------------------------------------------------------

SECRET_KEYS = [
    # the finding's keys
    "psw",
    "passw0rd",
    "pw1",
    "passw",
    "client_key",
    "license_key",
    # pw alone, with digits, as a word
    "pw",
    "pw2",
    "db_pw",
    "db_pw1",
    "userPw1",
    "PSW",
    "db_psw",
    "new_passw",
    # leet forms of password / passwd / secret / token
    "p4ssw0rd",
    "P@ssw0rd",
    "pa$$word",
    "pa55wd",
    "s3cr3t",
    "client_s3cret",
    "t0k3n",
    "access_t0ken",
    "5ecret",
    # a key named for a key, with its qualifier
    "access_key",
    "secret_key",
    "signing_key",
    "encryption_key",
    "master_key",
    "private_key",
    "api_key",
    "app_key",
    "consumer_key",
    "session_key",
    "clientKey",
    "licenseKey",
    "consumerKey",
    "appKey",
    "license-key",
    "client-key",
    "Consumer-Key",
    "stripe_secret_key",
    "recaptcha_private_key",
    "client_keys",
]
PLAIN_KEYS = [
    "key",
    "Key",
    "KEY",
    "keys",
    "primary_key",
    "foreign_key",
    "sort_key",
    "partition_key",
    "cache_key",
    "public_key",
    "publicKey",
    "sortKey",
    "idempotency_key",
    "Idempotency-Key",
    "Sec-WebSocket-Key",
    "keyword",
    "key_name",
    "hotkey",
    "monkey",
    "turkey",
    "pwa",
    "pwm",
    "spw",
    "compass",
    "bypass",
    "passenger",
    "passage",
    "name",
    "alias",
    "url",
    "db",
    "login",
    "id1",
    "v2",
    "t0",
]


def test_secret_keys_are_secret_and_plain_keys_are_not() -> None:
    assert [key for key in SECRET_KEYS if not is_secret_key(key)] == []
    assert [key for key in PLAIN_KEYS if is_secret_key(key)] == []


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_a_value_under_such_a_key_is_hidden_everywhere(key: str) -> None:
    call = {"alias": "prod", "url": "https://prod.example.com", key: SECRET}
    assert redact(call) == {"alias": "prod", "url": "https://prod.example.com", key: "***"}
    assert SECRET not in json.dumps(redact_arguments(call))
    # a pair list names the key in "key" (the bare word, no secret itself)
    pairs = {"params": [{"key": key, "value": SECRET}, {"key": "db", "value": "prod"}]}
    assert redact(pairs) == {
        "params": [{"key": key, "value": "***"}, {"key": "db", "value": "prod"}]
    }
    if key[0].isdigit():
        return  # in text, a key begins with a letter or "_"
    for text in (f"{key}={SECRET}", f'{{"{key}": "{SECRET}"}}', f"{key}: {SECRET}"):
        shown = redact_text(text)
        assert SECRET not in shown, shown
        assert shown.startswith(key if not text.startswith("{") else '{"' + key), shown


@pytest.mark.parametrize("key", PLAIN_KEYS)
def test_a_value_under_a_plain_key_is_kept(key: str) -> None:
    assert redact({key: "readable"}) == {key: "readable"}
    assert redact_text(f"{key}=readable") == f"{key}=readable"


def test_the_finding_as_text() -> None:
    for text in (
        "passw0rd=Mx8-othersecret, psw=Qz7-secretvalue, pw1=Kq2-thirdsecret, client_key=Ab1-x",
        "passw0rd=Mx8-othersecret\npsw=Qz7-secretvalue\npw1=Kq2-thirdsecret\nclient_key=Ab1-x",
    ):
        shown = redact_text(text)
        assert shown == text.replace("Mx8-othersecret", "***").replace(SECRET, "***").replace(
            "Kq2-thirdsecret", "***"
        ).replace("Ab1-x", "***"), shown
    assert redact_text("license_key: Zz9-licence ok") == "license_key: *** ok"


KEPT = [
    "sort_key=name, primary_key=id, foreign_key=partner_id",
    "the key is the alias; key=prod",
    '{"key": "password", "value": "***"}',
    "cache_key: res.partner:42",
    "public_key=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "the pw field and the psw field are both shown",
    "use passwd(1) to change it",
    "page 1 of 3, v2 of the API, t0 = start",
    "compass=north, bypass=yes",
]


@pytest.mark.parametrize("text", KEPT + KEPT_27)
def test_ordinary_text_stays_readable(text: str) -> None:
    assert redact_text(text) == text


def test_a_megabyte_of_such_text_is_redacted_in_linear_time() -> None:
    lines = [f"{key}={SECRET}" for key in SECRET_KEYS if not key[0].isdigit()] + KEPT + KEPT_27
    lines += [text for text, _ in HIDDEN_27]
    document = json.dumps({"lines": lines * (1_000_000 // len(json.dumps(lines)) + 1)})
    assert len(document) >= 1_000_000
    started = time.process_time()
    shown = redact_text(document)
    assert time.process_time() - started < 10, len(document)  # a bound, not a speed claim
    assert SECRET not in shown
    for opening in ("p4ss", "client_", "pw1 ", "a_b_c_key"):
        started = time.process_time()
        redact_text(opening * (1_000_000 // len(opening)))
        assert time.process_time() - started < 10, opening


CONNECT_POLICY = {
    "version": "1",
    "default": "deny",
    "rules": {
        "odoo_connections": {"action": "allow"},
        "odoo_connect": {"action": "require_approval"},
        "odoo_disconnect": {"action": "require_approval"},
    },
}
FINDING = {
    "alias": "prod",
    "url": "https://prod.example.com",
    "psw": "Qz7-secretvalue",
    "passw0rd": "Mx8-othersecret",
    "pw1": "Kq2-thirdsecret",
}


@pytest.mark.anyio
async def test_an_approver_sees_none_of_the_three_passwords(tmp_path: Path) -> None:
    state = tmp_path / "upstream.json"
    write_upstream_state(state, {"prod": "https://prod.example.com"})
    pol = write_policy(tmp_path / "policy.json", CONNECT_POLICY)
    extra = ("--upstream-env", "UPSTREAM_CONNECT=1")
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state), extra=extra)
    async with proxy_stdio_client(tmp_path, args) as client:
        pending = await client.call_tool("odoo_connect", FINDING)
        assert (pending.structured_content or {}).get("status") == "pending", text_of(pending)
        ref = pending.structured_content["request"]
    shown = run_cli(tmp_path, "approvals", "show", ref).stdout
    listed = run_cli(tmp_path, "approvals", "list").stdout
    listed_json = run_cli(tmp_path, "approvals", "list", "--json").stdout
    stored = json.dumps(query(tmp_path, "SELECT * FROM approval_requests"))
    secrets = [FINDING[key] for key in ("psw", "passw0rd", "pw1")]
    for text in (shown, listed, listed_json, stored):
        assert [secret for secret in secrets if secret in text] == [], text
    for kept in ("prod", "https://prod.example.com", "psw", "passw0rd", "pw1"):
        assert kept in shown, shown


# --- (2) request ids in ASCII digits only ---------------------------------------------------


@pytest.fixture
def one_request(tmp_path: Path) -> Path:
    store = Store.open(tmp_path)
    request, _ = store.file_request("odoo_disconnect", {"alias": "prod"}, "alice", None, 3600)
    assert request.ref == "MCPR-00001"
    store.close()
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["approvals", "show", "\u0661"],  # Arabic-Indic one
        ["approvals", "show", "\uff11"],  # fullwidth one
        ["approvals", "show", "MCPR-\uff11"],
        ["approvals", "show", "MCPR-0000\u0661"],
        ["approvals", "show", "\u0968"],  # Devanagari two
        ["approvals", "approve", "MCPR-\uff11", "--as", "carol"],
        ["approvals", "reject", "\u0661", "--as", "carol"],
        ["approvals", "cancel", "\U0001d7cf", "--as", "carol"],  # mathematical bold one
        ["approvals", "show", "MCPR-1x"],
        ["approvals", "show", "one"],
    ],
    ids=lambda a: ascii(" ".join(a))[:50],
)
def test_a_request_id_in_other_digits_is_refused_in_one_line(
    one_request: Path, args: list[str]
) -> None:
    result = run(one_request, *args)
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert args[2] in lines[0] or ascii(args[2])[1:-1] in lines[0], lines[0]
    assert result.stdout == ""
    assert Store.open(one_request).get_request(1).state == "pending"


@pytest.mark.parametrize("key", ["1", "00001", "MCPR-00001", "MCPR-1", "mcpr-00001", " 1 "])
def test_a_request_id_in_ascii_digits_still_names_it(one_request: Path, key: str) -> None:
    result = run(one_request, "approvals", "show", key)
    assert result.returncode == 0, result.stderr
    assert "MCPR-00001" in result.stdout


def test_the_store_reads_ascii_digits_only(one_request: Path) -> None:
    store = Store.open(one_request)
    try:
        for key in ("\u0661", "\uff11", "MCPR-\uff11", "MCPR-0000\u0661"):
            assert store.get_request(key) is None, key
        assert store.get_request("1").ref == store.get_request("MCPR-1").ref == "MCPR-00001"
    finally:
        store.close()


# --- (3) a rate limit's window of at least a second -----------------------------------------


@pytest.mark.parametrize("window", [0.0000001, 0.5, 0.999])
def test_a_window_under_a_second_is_refused_at_load(tmp_path: Path, window: float) -> None:
    rules = {"odoo_connections": {"action": "allow", "rate_limit": {"max": 5, "window": window}}}
    pol = write_policy(tmp_path / "policy.json", policy(**rules))
    result = run(tmp_path, "policy", "check", str(pol))
    assert result.returncode == 1, result.stdout  # policy check's faults
    assert "$.rules.odoo_connections.rate_limit.window" in result.stderr, result.stderr
    assert "at least 1" in result.stderr, result.stderr


@pytest.mark.parametrize("window", [1, 1.5, 60])
def test_a_window_of_a_second_or_more_is_taken(tmp_path: Path, window: float) -> None:
    rules = {"odoo_connections": {"action": "allow", "rate_limit": {"max": 5, "window": window}}}
    pol = write_policy(tmp_path / "policy.json", policy(**rules))
    result = run(tmp_path, "policy", "check", str(pol))
    assert result.returncode == 0, result.stderr


# --- (4) argparse's mistakes in one line ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "prog", "words"),
    [
        (["serve", "--port", "99999"], "odoo-mcp-guard serve", "--port"),
        (["proxy", "--port", "-1"], "odoo-mcp-guard proxy", "--port"),
        (["audit", "tail", "-n", "0"], "odoo-mcp-guard audit tail", "-n"),
        (["approvals", "list", "--state", "bogus"], "odoo-mcp-guard approvals list", "bogus"),
        (["approvals", "approve", "1"], "odoo-mcp-guard approvals approve", "--as"),
        (["approvals", "show"], "odoo-mcp-guard approvals show", "id"),
        (["frobnicate"], "odoo-mcp-guard", "frobnicate"),
        (["approvals", "frobnicate"], "odoo-mcp-guard approvals", "frobnicate"),
        (["serve", "--bogus"], "odoo-mcp-guard", "--bogus"),
        (["--backend", "nowhere", "serve"], "odoo-mcp-guard", "nowhere"),
        (["tokens", "add"], "odoo-mcp-guard tokens add", "principal"),
        (["policy", "check"], "odoo-mcp-guard policy check", "file"),
        ([], "odoo-mcp-guard", "approvals"),
        (["approvals"], "odoo-mcp-guard approvals", "approve"),
        (["tokens"], "odoo-mcp-guard tokens", "add"),
    ],
    ids=lambda a: (" ".join(a) or "top") if isinstance(a, list) else None,
)
def test_a_usage_mistake_is_one_line(
    tmp_path: Path, args: list[str], prog: str, words: str
) -> None:
    result = run(tmp_path, *args)
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert words in lines[0] and "--help" in lines[0], lines[0]
    assert "usage:" not in result.stderr


def test_help_still_prints_the_usage(tmp_path: Path) -> None:
    result = run(tmp_path, "approvals", "list", "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: odoo-mcp-guard")
