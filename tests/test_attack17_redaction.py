"""Attack 17 (outside testers), F1, F3, F6, F8, F9: secrets that passed the redaction.

F9: the operator's credential for the upstream (``--upstream-env ODOO_API_KEY=K``), quoted by
the upstream in an error and on its stderr, is hidden by value (the proxy's known secrets).
F3: the password of an ``odoo_connect`` the proxy forwarded, echoed by the upstream in its
answer and on its stderr, is hidden by value (the last FORWARDED_SECRETS forwarded secrets).
F8: a stderr line longer than the proxy's line limit, cut right after "password", is redacted
together with its continuation. F1: secrets in common shapes in a result, a tool's title and
icons, a JSON-RPC error (result and audit). F6: ``serve`` hides a connection's password typed
into its username in ``odoo_connections``, ``connections list`` and ``approvals show``.
The proxy tests run a real proxy subprocess and a real careless upstream
(tests/leaky_upstream.py) through the SDK client; the patterns are golden cases."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest
from mcp import Client
from support.guard import (
    REPO,
    audit_text,
    connect_args,
    policy,
    proxy_args,
    proxy_stdio_client,
    run_cli,
    stdio_client,
    text_of,
    write_policy,
)

pytestmark = pytest.mark.anyio

LEAKY = REPO / "tests" / "leaky_upstream.py"
SECRET = "Hq7xK2mP9vLw"
KEY = "Kz8-upstream-credential-77"
PASSWORD = "Kx7-mellow-Lantern"


def _proxy(tmp_path: Path, errlog, *extra: str) -> Client:
    pol = write_policy(tmp_path / "policy.json", policy(default="allow"))
    args = proxy_args(tmp_path, pol, upstream=[sys.executable, str(LEAKY), SECRET], extra=extra)
    return proxy_stdio_client(tmp_path, args, mode="legacy", errlog=errlog)


async def test_the_operators_upstream_credential_is_hidden_by_value(tmp_path: Path) -> None:
    log = tmp_path / "proxy.log"
    with log.open("w") as errlog:
        async with _proxy(tmp_path, errlog, "--upstream-env", f"ODOO_API_KEY={KEY}") as client:
            result = await client.call_tool("notes_read", {})
    shown = text_of(result)
    assert "Odoo refused the key *** for user admin" in shown, shown
    stderr = log.read_text()
    assert "auth failed with ***" in stderr, stderr[-2000:]
    assert KEY not in shown and KEY not in stderr and KEY not in audit_text(tmp_path)


async def test_a_forwarded_connection_password_is_hidden_in_answers_and_stderr(
    tmp_path: Path,
) -> None:
    log = tmp_path / "proxy.log"
    with log.open("w") as errlog:
        async with _proxy(tmp_path, errlog) as client:
            result = await client.call_tool("odoo_connect", connect_args("prod", password=PASSWORD))
            assert not result.is_error, text_of(result)
    shown = text_of(result)
    assert "authenticated admin with ***" in shown and "admin/***" in shown, shown
    stderr = log.read_text()
    assert "connecting admin using ***" in stderr, stderr[-2000:]
    assert PASSWORD not in shown and PASSWORD not in stderr and PASSWORD not in audit_text(tmp_path)


async def test_a_stderr_line_cut_after_a_secret_key_is_redacted_with_its_continuation(
    tmp_path: Path,
) -> None:
    log = tmp_path / "proxy.log"
    with log.open("w") as errlog:
        async with _proxy(tmp_path, errlog) as client:
            await client.list_tools()
    stderr = log.read_text()
    assert "password=***" in stderr, stderr[-300:]
    assert SECRET not in stderr


async def test_secrets_in_common_shapes_are_hidden_in_results_titles_icons_and_errors(
    tmp_path: Path,
) -> None:
    log = tmp_path / "proxy.log"
    with log.open("w") as errlog:
        async with _proxy(tmp_path, errlog) as client:
            listed = {tool.name: tool for tool in (await client.list_tools()).tools}
            result = await client.call_tool("leaky_read", {})
            failed = await client.call_tool("failing_read", {})
    tool = listed["leaky_read"]
    assert tool.title == "Reader (login admin, the password is ***)"
    assert tool.icons and tool.icons[0].src == "data:text/plain;base64,***"
    shown = text_of(result)
    assert shown.count("***") >= 11 and "export DBPASS=***" in shown, shown
    assert failed.is_error and "the password is ***" in text_of(failed), text_of(failed)
    for text in (shown, text_of(failed), tool.model_dump_json(), log.read_text()):
        assert SECRET not in text
    audit = audit_text(tmp_path)
    assert "failing_read" in audit and SECRET not in audit


async def test_serve_hides_the_connections_password_typed_into_another_field(
    tmp_path: Path,
) -> None:
    pw = "Zq9pass-Wrd7"
    pol = write_policy(tmp_path / "policy.json", policy())
    async with stdio_client(tmp_path, policy_file=pol) as client:
        added = await client.call_tool(
            "odoo_connect", connect_args("prod", username=pw, password=pw)
        )
        assert not added.is_error, text_of(added)
        listed = text_of(await client.call_tool("odoo_connections", {}))
        removal = await client.call_tool("odoo_disconnect", {"alias": "prod"})
    assert '"username": "***"' in listed and pw not in listed and pw not in text_of(added)
    assert "MCPR-" in text_of(removal), text_of(removal)
    rows = run_cli(tmp_path, "connections", "list").stdout
    assert "user=***" in rows and pw not in rows, rows
    show = run_cli(tmp_path, "approvals", "show", "1").stdout
    assert "removes:" in show and "user=***" in show and pw not in show, show


def test_the_operators_credentials_are_read_from_every_upstream_option() -> None:
    from odoo_mcp_guard.proxy import UpstreamConfig, argument_secrets, operator_secrets

    basic = base64.b64encode(b"bob:hdr-basic-pw").decode()
    by_url = UpstreamConfig(
        url="https://u:url-pw-1@mcp.example.com/mcp?api_key=q-key-2&page=3",
        headers={
            "Authorization": "Bearer hdr-token-3",
            "X-Basic": "x",
            "Proxy-Authorization": f"Basic {basic}",
        },
    )
    assert {"url-pw-1", "q-key-2", "hdr-token-3", "hdr-basic-pw"} <= operator_secrets(by_url)
    assert "3" not in operator_secrets(by_url) and "x" not in operator_secrets(by_url)
    by_command = UpstreamConfig(
        command=["srv", "--api-key", "cmd-key-4", "--token=cmd-tok-5", "--port", "8069"],
        env={"ODOO_PASSWORD": "env-pw-6", "ODOO_URL": "https://a:env-url-7@h", "ODOO_DB": "prod"},
    )
    found = operator_secrets(by_command)
    assert {"cmd-key-4", "cmd-tok-5", "env-pw-6", "env-url-7"} <= found
    assert not {"8069", "prod", "srv"} & found
    forwarded = {"alias": "p", "password": "fw-pw-8", "nested": [{"api_key": "fw-key-9"}]}
    assert argument_secrets(forwarded) == {"fw-pw-8", "fw-key-9"}
