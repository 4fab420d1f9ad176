"""Attack 15 (outside testers), F2 and F3:

F2: an Odoo that quotes the connection's password HTML-escaped, as a Python repr, in base64
or as HTTP Basic credentials (base64 of ``login:password``), in a fault or in a record, gets
it masked in the tool result, the audit and the log: the by-value redaction knows these forms.
F3: an upstream that answers, or prints on its stderr, secrets in common formats (SQL, .pgpass,
.netrc, odoo-bin -w, a quoted pair, htpasswd hashes, GitHub/AWS/JWT/sk- tokens, an XML-RPC
member, rows naming a secret) has them masked in its results, the proxy's stderr and the audit.
The patterns themselves are golden cases (tests/data/policy_golden.json, both halves)."""

from __future__ import annotations

import base64
import html
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client as mcp_stdio_client
from support.guard import (
    REPO,
    guard_env,
    policy,
    proxy_args,
    query,
    run_cli,
    serve_with_log,
    text_of,
    write_policy,
)

from odoo_mcp_guard.policy_core import redact_known, redact_known_text

pytestmark = pytest.mark.anyio

FAKE_ODOO = REPO / "tests" / "fake_odoo.py"
SHAPES = REPO / "tests" / "secret_shapes_upstream.py"
PASSWORD = "Pa<ss>&'\"w0rdZq9"  # characters that HTML-escaping and repr change
LOGIN = "admin"


def _forms(secret: str, login: str) -> dict[str, str]:
    basic = base64.b64encode(f"{login}:{secret}".encode()).decode()
    return {
        "html": html.escape(secret),
        "html, markupsafe": secret.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;"),
        "repr": repr(secret),
        "repr, double-quoted": '"' + secret.replace("\\", "\\\\").replace('"', '\\"') + '"',
        "base64": base64.b64encode(secret.encode()).decode(),
        "base64, unpadded": base64.b64encode(secret.encode()).decode().rstrip("="),
        "base64url": base64.urlsafe_b64encode(secret.encode()).decode(),
        "base64url, unpadded": base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
        "basic": basic,
        "basic, unpadded": basic.rstrip("="),
        "basic, url-safe": base64.urlsafe_b64encode(f"{login}:{secret}".encode()).decode(),
    }


@pytest.mark.parametrize("secret", [PASSWORD, "back\\slash~?/+=Zq9", "plain-Zq9-secret"])
@pytest.mark.parametrize("form", list(_forms(PASSWORD, LOGIN)))
def test_a_known_secret_is_hidden_in_its_escaped_and_base64_forms(secret: str, form: str) -> None:
    shown = _forms(secret, LOGIN)[form]
    text = f"Access denied for login admin with credential {shown}."
    hidden = redact_known_text(text, [secret], LOGIN)
    assert shown not in hidden and "***" in hidden, hidden
    record = redact_known({"comment": f"creds {shown}"}, [secret, None], LOGIN)
    assert shown not in json.dumps(record), record


def test_a_known_secrets_forms_leave_other_text_alone() -> None:
    text = "Access denied for login admin (YWRtaW46 is not base64 of anything known)"
    assert redact_known_text(text, [PASSWORD], LOGIN) == text


@pytest.fixture(params=["html", "repr", "base64", "base64url", "basic", "record"])
def quoting_odoo(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    import subprocess

    form = request.param
    process = subprocess.Popen(
        [sys.executable, str(FAKE_ODOO), "--echo-secret-as", form],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit(), port
        yield form, f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


async def test_an_odoo_quoting_the_password_encoded_never_shows_it(
    tmp_path: Path, quoting_odoo: tuple[str, str]
) -> None:
    form, url = quoting_odoo
    pol = write_policy(tmp_path / "policy.json", policy(odoo_search_read={"action": "allow"}))
    log = tmp_path / "serve.log"
    async with serve_with_log(tmp_path, pol, log) as client:
        connect = {
            "alias": "prod",
            "url": url,
            "db": "prod",
            "username": LOGIN,
            "password": PASSWORD,
            "protocol": "xmlrpc",
        }
        assert not (await client.call_tool("odoo_connect", connect)).is_error
        result = await client.call_tool(
            "odoo_search_read",
            {"alias": "prod", "model": "res.partner", "fields": ["name", "comment"]},
        )
    shown = json.dumps(result.model_dump(mode="json"), ensure_ascii=False)
    if form == "record":
        assert not result.is_error, text_of(result)
        assert "creds *** / '***'" in shown, shown
    else:
        assert result.is_error and "credential " in text_of(result), shown
        assert "***" in text_of(result), shown
    audit = json.dumps(query(tmp_path, "SELECT * FROM audit"), ensure_ascii=False)
    audit += run_cli(tmp_path, "audit", "tail", "-n", "20", "--json").stdout
    for needle in _forms(PASSWORD, LOGIN).values():
        for where, text in (("result", shown), ("audit", audit), ("log", log.read_text())):
            assert needle not in text, (where, needle, text)
            assert needle not in json.dumps(text), (where, needle)


async def test_secrets_in_common_formats_from_an_upstream_are_masked(tmp_path: Path) -> None:
    secret = "Zq9xSECRETv4lue"
    pol = write_policy(tmp_path / "policy.json", {"version": "1", "default": "allow", "rules": {}})
    args = proxy_args(
        tmp_path, pol, upstream=[sys.executable, str(SHAPES), secret], server_name="up"
    )
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "odoo_mcp_guard", *args],
        env=guard_env(tmp_path, MCP_GUARD_PRINCIPAL="alice"),
    )
    log = tmp_path / "proxy.log"
    with log.open("w") as errlog:
        async with Client(
            mcp_stdio_client(params, errlog=errlog), read_timeout_seconds=60
        ) as client:
            info = await client.call_tool("server_info", {})
            rows = await client.call_tool("server_rows", {})
    assert not info.is_error and not rows.is_error, (text_of(info), text_of(rows))
    shown = json.dumps([r.model_dump(mode="json") for r in (info, rows)], ensure_ascii=False)
    stderr = log.read_text()
    audit = run_cli(tmp_path, "audit", "tail", "-n", "50", "--json").stdout
    leaked = [secret, "AKIA" + secret.upper()[:15]]
    for where, text in (("result", shown), ("stderr", stderr), ("audit", audit)):
        assert not [needle for needle in leaked if needle in text], (where, text)
    for kept in ("CREATE ROLE odoo LOGIN PASSWORD '***'", "localhost:5432:odoo:odoo:***",
                 "odoo-bin -d prod -r odoo -w ***", "password reset link sent"):  # fmt: skip
        assert kept in text_of(info), text_of(info)
        assert kept in stderr, stderr
    assert "Azure Interior" in shown, shown
