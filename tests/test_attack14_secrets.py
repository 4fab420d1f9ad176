"""Attack 14 (outside testers), through the real processes:

5: an Odoo (here tests/fake_odoo.py) that quotes the connection's password in a fault gets it
masked in the tool result, the audit and the log: the connection's own secrets are hidden by
value, not only by pattern.
6: an upstream that prints a PEM private key on its stderr has the whole block masked on the
proxy's stderr (its body lines and END line too), and its ESC and CR characters escaped.
7: ``create`` answered with a bare id (as Odoo answers one dict) returns that id; any other
shape is a one-line error naming it, no traceback."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.guard import REPO, guard_env, policy, query, serve_with_log, text_of, write_policy

from odoo_mcp_guard.policy_core import PEM_LINE_CAP

pytestmark = pytest.mark.anyio

FAKE_ODOO = REPO / "tests" / "fake_odoo.py"


def _fake_odoo(*args: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, str(FAKE_ODOO), *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit(), port
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def echoing_odoo() -> Iterator[str]:
    yield from _fake_odoo("--echo-secret")


async def _call_data_tool(
    tmp_path: Path, url: str, tool: str, arguments: dict[str, object], *, secret: str
) -> tuple[object, str]:
    """One data call through ``serve`` on a connection to ``url``; the result and the log."""
    pol = write_policy(tmp_path / "policy.json", policy(**{tool: {"action": "allow"}}))
    log = tmp_path / "serve.log"
    async with serve_with_log(tmp_path, pol, log) as client:
        connect = {
            "alias": "shop",
            "url": url,
            "db": "shop",
            "username": "agent",
            "password": secret,
            "protocol": "xmlrpc",
        }
        assert not (await client.call_tool("odoo_connect", connect)).is_error
        result = await client.call_tool(tool, {"alias": "shop", **arguments})
    return result, log.read_text()


@pytest.mark.parametrize("field", ["password", "api_key"])
async def test_an_odoo_quoting_the_connections_secret_never_shows_it(
    tmp_path: Path, echoing_odoo: str, field: str
) -> None:
    secret = "Plain4Secret-no-pattern"  # nothing about it looks like a secret but its value
    pol = write_policy(tmp_path / "policy.json", policy(odoo_search_read={"action": "allow"}))
    log = tmp_path / "serve.log"
    async with serve_with_log(tmp_path, pol, log) as client:
        connect = {
            "alias": "shop",
            "url": echoing_odoo,
            "db": "shop",
            "username": "agent",
            field: secret,
            "protocol": "xmlrpc",
        }
        assert not (await client.call_tool("odoo_connect", connect)).is_error
        result = await client.call_tool(
            "odoo_search_read", {"alias": "shop", "model": "res.partner"}
        )
    shown = json.dumps(result.model_dump(mode="json"))
    assert result.is_error and "wrong credential ***" in text_of(result), shown
    assert secret not in shown
    audit = query(tmp_path, "SELECT outcome, detail FROM audit WHERE tool = 'odoo_search_read'")
    assert [outcome for outcome, _ in audit] == ["allowed", "failed"], audit
    assert "wrong credential ***" in audit[1][1] and secret not in str(audit), audit
    assert secret not in log.read_text()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("7", {"model": "res.partner", "id": 7}),  # Odoo's answer to one dict
        ("[8]", {"model": "res.partner", "id": 8}),  # to a list of one
    ],
)
async def test_create_returns_the_id_odoo_answers(
    tmp_path: Path, answer: str, expected: dict[str, object]
) -> None:
    for url in _fake_odoo("--answer", f"create={answer}"):
        result, log = await _call_data_tool(
            tmp_path,
            url,
            "odoo_create",
            {"model": "res.partner", "values": {"name": "x"}},
            secret="pw-create14",
        )
        assert not result.is_error, text_of(result)
        assert result.structured_content == expected
        assert "Traceback" not in log, log


@pytest.mark.parametrize(
    ("method", "answer", "tool", "arguments", "named"),
    [
        ("create", '{"id": 3}', "odoo_create", {"values": {"name": "x"}}, "create"),
        ("create", "[]", "odoo_create", {"values": {"name": "x"}}, "create"),
        ("create", '"nine"', "odoo_create", {"values": {"name": "x"}}, "create"),
        ("search_read", '{"a": 1}', "odoo_search_read", {}, "search_read"),
        ("search_read", "[1, 2]", "odoo_search_read", {}, "search_read"),
        ("read", '[{"name": "no id"}]', "odoo_read", {"ids": [1]}, "read"),
        ("fields_get", "[1]", "odoo_fields_get", {}, "fields_get"),
    ],
)
async def test_an_unexpected_answer_is_a_one_line_error(
    tmp_path: Path,
    method: str,
    answer: str,
    tool: str,
    arguments: dict[str, object],
    named: str,
) -> None:
    for url in _fake_odoo("--answer", f"{method}={answer}"):
        result, log = await _call_data_tool(
            tmp_path, url, tool, {"model": "res.partner", **arguments}, secret="pw-shape14"
        )
        text = text_of(result)
        assert result.is_error, text
        assert "internal error" not in text and "\n" not in text.strip(), text
        assert named in text and "unexpected" in text, text
        assert "Traceback" not in log, log


def _proxy_with_upstream_printing(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    command = shlex.join([sys.executable, "-c", script + "; raise SystemExit(3)"])
    return subprocess.run(
        [sys.executable, "-m", "odoo_mcp_guard", "proxy", "--upstream-command", command],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=guard_env(tmp_path, MCP_GUARD_PRINCIPAL="alice"),
    )


def test_a_private_key_on_an_upstreams_stderr_is_masked_whole(tmp_path: Path) -> None:
    lines = [
        "loading key",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEAbodyLineOne14",
        "bodyLineTwo14+/==",
        "-----END RSA PRIVATE KEY-----",
        "key loaded",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        *[f"neverEnding{i:04d}" for i in range(PEM_LINE_CAP + 5)],
        "shown again",
    ]
    script = f"import sys; sys.stderr.write({chr(10).join(lines) + chr(10)!r})"
    result = _proxy_with_upstream_printing(tmp_path, script)
    err = result.stderr
    assert result.returncode == 2, err
    for hidden in ("bodyLineOne14", "bodyLineTwo14", "END RSA PRIVATE KEY", "neverEnding0000"):
        assert hidden not in err, err
    assert "loading key" in err and "key loaded" in err and "shown again" in err, err
    # a block without END is masked up to the cap, then the copy resumes
    shown = [line for line in err.splitlines() if line.startswith("neverEnding")]
    assert shown == [f"neverEnding{i:04d}" for i in range(PEM_LINE_CAP, PEM_LINE_CAP + 5)], err


def test_control_characters_on_an_upstreams_stderr_are_escaped(tmp_path: Path) -> None:
    forged = "real line\r2026-11-29 20:00:00 CRITICAL odoo_mcp_guard: forged \x1b[2K"
    result = _proxy_with_upstream_printing(
        tmp_path, f"import sys; sys.stderr.write({forged + chr(10)!r})"
    )
    err = result.stderr
    assert "\x1b" not in err and "\r" not in err, repr(err)
    assert "real line\\r2026-11-29" in err and "forged \\x1b[2K" in err, err


@pytest.mark.unit
def test_line_redaction_keeps_its_state_only_inside_a_secret_block() -> None:
    from odoo_mcp_guard.policy_core import LineRedaction

    lines = [
        "-----BEGIN CERTIFICATE-----",  # not a secret: shown
        "cert body",
        "key: -----BEGIN EC PRIVATE KEY-----",
        "ecBody14",
        "-----END EC PRIVATE KEY----- then -----BEGIN PGP PRIVATE KEY BLOCK-----",
        "pgpBody14",
        "-----END PGP PRIVATE KEY BLOCK-----",
        "one line -----BEGIN PRIVATE KEY-----inline14-----END PRIVATE KEY----- done",
        "password=hunter2x",
    ]
    redaction = LineRedaction()
    shown = [redaction.line(line) for line in lines]
    assert shown == [
        "-----BEGIN CERTIFICATE-----",
        "cert body",
        "key: ***",
        None,
        " then ***",
        None,
        None,
        "one line *** done",
        "password=***",
    ]


def test_the_rpc_client_hides_its_own_secret_in_odoos_errors(echoing_odoo: str) -> None:
    """Below the data tools too (the Odoo backend's own API key): an OdooError never carries
    the configured secret, whichever message quotes it."""
    from pydantic import SecretStr

    from odoo_mcp_guard.odoo_rpc import OdooClient, OdooConfig, OdooError

    secret = "BackendKey-no-pattern14"
    config = OdooConfig(
        url=echoing_odoo, db="shop", username="agent", api_key=SecretStr(secret), protocol="xmlrpc"
    )
    with pytest.raises(OdooError) as refused:
        OdooClient(config).call("res.partner", "search_read", domain=[])
    assert "wrong credential ***" in refused.value.message and secret not in str(refused.value)
