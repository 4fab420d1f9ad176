"""Attack 18 (outside testers), F2, F3, F4: the operator's credentials for the upstream that
passed the proxy's hiding by value (``proxy.operator_secrets``, ``policy_core._known_forms``).

F2: an ``--upstream-env`` credential under a name ``is_secret_key`` did not know (ODOO_KEY,
OPENAI_KEY, ODOO_CREDS, GH_PAT, AZURE_CREDENTIALS, any name) was shown raw when the upstream
quoted it: every --upstream-env value is a known secret unless its name plainly says it is not
a credential (ODOO_URL, ODOO_DB, LOG_LEVEL...) or it is too plain to hide (digits, true).
F3: an ``--upstream-header`` value (Ocp-Apim-Subscription-Key, X-Functions-Key, any header but
a short list of plain ones) and every query value of ``--upstream-url`` (Azure Functions'
``?code=``) are known secrets. F4: a known secret spaced out (one separator between each
character) or cut in two halves shown apart is still hidden.
Each runs a real proxy subprocess through the SDK client, in front of a real careless upstream
(tests/leaky_upstream.py over stdio, tests/echo_http_upstream.py over HTTP)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client
from support.guard import (
    REPO,
    audit_text,
    free_port,
    http_process,
    policy,
    proxy_args,
    proxy_stdio_client,
    run_cli,
    text_of,
    write_policy,
)

pytestmark = pytest.mark.anyio

LEAKY = REPO / "tests" / "leaky_upstream.py"
ECHO_HTTP = REPO / "tests" / "echo_http_upstream.py"

# Credentials under names is_secret_key did not know, and one under a name nobody could guess.
CREDENTIALS = {
    "ODOO_KEY": "Ok4-odoo-key-value-91",
    "OPENAI_KEY": "Oa7openaiKeyValue3310",
    "ODOO_CREDS": "admin:Cr3ds-pass-778",
    "GH_PAT": "Gp2patValueNotShaped55",
    "AZURE_CREDENTIALS": '{"clientSecret": "Az9-client-secret-12"}',
    "SERVICE_THING": "St6-opaque-thing-404",
}
# What plainly is not a credential: shown as it is.
PLAIN = {
    "ODOO_URL": "https://erp.example.com",
    "ODOO_DB": "production",
    "ODOO_USER": "integration",
    "LOG_LEVEL": "debug",
    "ODOO_TIMEOUT": "12345",
    "ODOO_VERIFY": "true",
}


def _proxy(
    tmp_path: Path, errlog, upstream: list[str] | str, *extra: str, name: str | None = "upstream"
) -> Client:
    pol = write_policy(tmp_path / "policy.json", policy(default="allow"))
    args = proxy_args(tmp_path, pol, upstream=upstream, server_name=name, extra=extra)
    return proxy_stdio_client(tmp_path, args, mode="legacy", errlog=errlog)


@asynccontextmanager
async def _proxy_with_odoo_key(tmp_path: Path, key: str) -> AsyncIterator[tuple[Client, set[str]]]:
    """The proxy in front of the leaky upstream that also lists tools named after ODOO_KEY,
    the operator's ``--upstream-env ODOO_KEY=key``; its stderr in ``proxy.log``. Yields the
    client and the names of the tools it is shown."""
    upstream = [sys.executable, str(LEAKY), "Hq7xK2mP9vLw", "ODOO_KEY"]
    with (tmp_path / "proxy.log").open("w") as errlog:
        async with _proxy(tmp_path, errlog, upstream, "--upstream-env", f"ODOO_KEY={key}") as c:
            yield c, {tool.name for tool in (await c.list_tools()).tools}


def _leaks(text: str, values) -> list[str]:
    return [value for value in values if value in text]


async def test_f2_every_upstream_env_credential_is_hidden_by_value(tmp_path: Path) -> None:
    env = {**CREDENTIALS, **PLAIN}
    extra = [word for name, value in env.items() for word in ("--upstream-env", f"{name}={value}")]
    names = ",".join(env)
    log = tmp_path / "proxy.log"
    upstream = [sys.executable, str(LEAKY), "Hq7xK2mP9vLw"]
    with log.open("w") as errlog:
        async with _proxy(tmp_path, errlog, upstream, *extra) as c:
            shown = text_of(await c.call_tool("env_read", {"q": names}))
            failed = await c.call_tool("env_fail", {"q": names})
    secrets = [*CREDENTIALS.values(), "Cr3ds-pass-778", "Az9-client-secret-12"]
    error = text_of(failed)
    stderr = log.read_text()
    assert failed.is_error and "upstream refused" in error, error
    assert "ODOO_KEY=***" in shown and "GH_PAT=***" in shown, shown
    for text in (shown, error, stderr, audit_text(tmp_path)):
        assert not _leaks(text, secrets), (_leaks(text, secrets), text[-3000:])
    # what plainly is not a credential is kept
    for name, value in PLAIN.items():
        assert f"{name}={value}" in shown, shown
    assert "using ODOO_KEY=***" in stderr, stderr[-2000:]


def test_f2_env_shaped_names_are_secret_names_and_odoo_fields_are_not() -> None:
    from odoo_mcp_guard.policy_core import is_secret_key, redact

    for name in ("ODOO_KEY", "OPENAI_KEY", "ODOO_CREDS", "GH_PAT", "AZURE_CREDENTIALS", "DB_PWD"):
        assert is_secret_key(name), name
    for name in ("sort_key", "key", "primary_key", "SORT_KEY", "PRIMARY_KEY", "KEY", "pat"):
        assert not is_secret_key(name), name
    row = {"sort_key": "a1", "key": "res.partner", "OPENAI_KEY": "sk-x-abc"}
    assert redact(row) == {"sort_key": "a1", "key": "res.partner", "OPENAI_KEY": "***"}


async def test_f3_upstream_header_and_url_query_values_are_hidden_by_value(
    tmp_path: Path,
) -> None:
    headers = {
        "Ocp-Apim-Subscription-Key": "Ap5Qm9vR2xT7wK4z",
        "X-Functions-Key": "Fk8rT2mWq9Zx-Lp4",
        "X-Odoo-Key": "Xo3Bv6Jt1Ym5",
        "X-Tenant-Seal": "Ts1Nq7Wc4Hr8",
    }
    code = "Az4Qd8Lm2Vx9Kp"
    plain = {"Accept-Language": "fr-FR", "User-Agent": "guard-test/1.0"}
    port = free_port()
    extra: list[str] = []
    for name, value in {**headers, **plain}.items():
        extra += ["--upstream-header", f"{name}: {value}"]
    with http_process([sys.executable, str(ECHO_HTTP), "--port", str(port)], tmp_path / "up", port):
        url = f"http://127.0.0.1:{port}/mcp?code={code}&page=2"
        log = tmp_path / "proxy.log"
        with log.open("w") as errlog:
            async with _proxy(tmp_path, errlog, url, *extra) as client:
                shown = text_of(await client.call_tool("whoami", {}))
                failed = await client.call_tool("whoami_fail", {})
    secrets = [*headers.values(), code]
    error = text_of(failed)
    assert "x-functions-key: ***" in shown and "code=***&page=2" in shown, shown
    assert "ocp-apim-subscription-key: ***" in shown and "x-tenant-seal: ***" in shown, shown
    assert failed.is_error and "refused the request" in error, error
    for text in (shown, error, log.read_text(), audit_text(tmp_path)):
        assert not _leaks(text, secrets), (_leaks(text, secrets), text[-3000:])
    assert "accept-language: fr-FR" in shown and "user-agent: guard-test/1.0" in shown, shown


async def test_f4_a_known_secret_spaced_out_or_cut_in_halves_is_hidden(tmp_path: Path) -> None:
    secret = "Wp4-zebra-Quill-93x"
    log = tmp_path / "proxy.log"
    with log.open("w") as errlog:
        async with _proxy(
            tmp_path,
            errlog,
            [sys.executable, str(LEAKY), "Hq7xK2mP9vLw"],
            "--upstream-env",
            f"ODOO_PASSWORD={secret}",
        ) as client:
            result = await client.call_tool("scatter_read", {"q": "ODOO_PASSWORD"})
    blocks = [block.text for block in result.content]
    shown = "\n".join(blocks)
    half = len(secret) // 2
    spaced = [sep.join(secret) for sep in (" ", "-", ".", "_", ",", "\u200b", "\n")]
    assert not _leaks(shown, [secret[:half], secret[half:], *spaced]), shown
    assert blocks[0] == "spaced: " + " | ".join(["***"] * 7), blocks[0]
    assert blocks[1:] == ["first part *** (see below)", "and the rest: ***."], blocks
    assert not _leaks(audit_text(tmp_path), [secret[:half], secret[half:]])


async def test_a_known_secret_nested_deeper_than_max_depth_is_not_shown(tmp_path: Path) -> None:
    """A known secret the upstream nests deeper than policy_core.MAX_DEPTH (80 levels, in
    its structured content and in its text as JSON) is hidden as policy_core hides it there:
    the part past that depth is replaced by the marker, never shown."""
    secret = "Dp6-deep-nested-Kz4"
    log = tmp_path / "proxy.log"
    upstream = [sys.executable, str(LEAKY), "Hq7xK2mP9vLw"]
    with log.open("w") as errlog:
        async with _proxy(tmp_path, errlog, upstream, "--upstream-env", f"ODOO_KEY={secret}") as c:
            result = await c.call_tool("deep_read", {"q": "ODOO_KEY"})
    shown = text_of(result) + repr(result.structured_content)
    assert not result.is_error and "level" in shown and "***" in shown, shown[:500]
    for text in (shown, log.read_text(), audit_text(tmp_path)):
        assert not _leaks(text, [secret, secret[: len(secret) // 2], secret[len(secret) // 2 :]])


async def test_the_proxys_own_log_lines_hide_known_secrets_by_value(tmp_path: Path) -> None:
    """The proxy's own warning about a tool it ignores quotes the upstream's words (the tool's
    bad name), here holding the operator's credential: hidden as in everything else."""
    key = "Lg5-own-log-line-Wq8"
    async with _proxy_with_odoo_key(tmp_path, key) as (_, names):
        pass
    stderr = (tmp_path / "proxy.log").read_text()
    assert "env_read" in names and not any("bad name" in name for name in names), names
    assert "upstream tool 'bad name ***' ignored (bad name)" in stderr, stderr[-2000:]
    assert key not in stderr


async def test_a_tool_whose_name_holds_a_known_secret_is_not_served(tmp_path: Path) -> None:
    """Outside round 20, F1: an upstream listed ``get_<the operator's key>``; the proxy listed
    it as ``get_***``, served it under its real name, which nobody was shown, and that name
    carried the key into the audit, ``tools list`` and the metrics' labels. Such a tool is
    not served at all; calling it by its real name is refused, and the name stays hidden."""
    key = "Gk7Wq2LmToolName9"
    async with _proxy_with_odoo_key(tmp_path, key) as (c, names):
        refused = await c.call_tool(f"get_{key}", {"q": "x"})
    assert "env_read" in names and not any(name.startswith("get_") for name in names), names
    assert refused.is_error and text_of(refused) == "Refused: unknown tool 'get_***'."
    shown = [
        (tmp_path / "proxy.log").read_text(),
        audit_text(tmp_path),
        run_cli(tmp_path, "tools", "list").stdout,
        run_cli(tmp_path, "tools", "list", "--json").stdout,
    ]
    assert not [text for text in shown if key in text], shown
    assert "upstream tool 'get_***' ignored (its name holds a secret)" in shown[0], shown[0][-2000:]
    assert "get_***" in shown[1]


def test_which_operator_values_are_known_secrets(tmp_path: Path) -> None:
    from odoo_mcp_guard.proxy import UpstreamConfig, operator_secrets

    env = {
        **CREDENTIALS,
        **PLAIN,
        "ODOO_CLAUDE_MCP_DATA": str(tmp_path),  # a directory of this host
        "UPSTREAM_VARIANT": "2",
        "PWD": "/home/someone",
        "ODOO_PROTOCOL": "xmlrpc",
        "FUNC_ENDPOINT": "https://f.example.net/api/x?code=Fc7Wq2Lm9Zp4&db=prod&page=2",
    }
    headers = {"X-Functions-Key": "Hk2Vn8Pq5Ls3", "Accept": "application/json", "X-Seal": "Sx4Tq"}
    found = operator_secrets(
        UpstreamConfig(
            url="https://h.example.com/mcp?code=Uc3Rt8Yk1Wd6&v=2&format=json", headers=headers
        )
    ) | operator_secrets(UpstreamConfig(command=["srv"], env=env))
    given = {"Hk2Vn8Pq5Ls3", "Sx4Tq", "Uc3Rt8Yk1Wd6", "Fc7Wq2Lm9Zp4"}
    assert set(CREDENTIALS.values()) | given <= found
    assert not found & {*PLAIN.values(), str(tmp_path), "2", "/home/someone", "xmlrpc", "prod"}
    assert not found & {"application/json", "json", env["FUNC_ENDPOINT"]}


# An access token in the path of --upstream-url, as hosted MCP servers take one.
PATH_TOKEN = "SECRETTOKEN123456"


async def test_a_token_in_the_upstream_url_path_is_never_shown_when_it_refuses(
    tmp_path: Path,
) -> None:
    """Security review: an --upstream-url whose server does not serve (a redirect to another
    origin, as a TLS-terminating proxy adding a "/" makes; or nothing listening): the one line
    a call is refused with, the audit and the proxy's stderr name the host, and show where
    the upstream points to with its path's token hidden; the token is never shown."""
    port, closed = free_port(), free_port()
    redirect = [sys.executable, str(ECHO_HTTP), "--port", str(port)]
    redirect += ["--redirect-to-host", "localhost"]
    with http_process(redirect, tmp_path / "up", port):
        texts = {}
        for where, at in (("redirect", port), ("closed", closed)):
            here = tmp_path / where
            here.mkdir()
            url = f"http://127.0.0.1:{at}/t/{PATH_TOKEN}/mcp"
            log = here / "proxy.log"
            with log.open("w") as errlog:
                async with _proxy(here, errlog, url, name=None) as client:  # named by its host
                    refused = await client.call_tool("whoami", {})
            text = text_of(refused)
            assert refused.is_error and "is down" in text, text
            assert len(text.splitlines()) == 1 and f"127.0.0.1:{at}" in text, text
            for shown in (text, log.read_text(), audit_text(here)):
                assert PATH_TOKEN not in shown and "TOKEN123" not in shown, shown[-3000:]
            texts[where] = text
    assert f"http://localhost:{port}/t/***/mcp/" in texts["redirect"], texts
    assert "does not accept connections" in texts["closed"], texts


async def test_a_token_in_the_upstream_url_path_echoed_back_is_hidden(tmp_path: Path) -> None:
    """An upstream quoting the path it was reached at (a token in it) in a result and in an
    error: the client sees the path with the token hidden, as the audit and stderr do."""
    port = free_port()
    path = f"/t/{PATH_TOKEN}/mcp"
    echo = [sys.executable, str(ECHO_HTTP), "--port", str(port), "--path", path]
    with http_process(echo, tmp_path / "up", port):
        log = tmp_path / "proxy.log"
        with log.open("w") as errlog:
            async with _proxy(tmp_path, errlog, f"http://127.0.0.1:{port}{path}") as client:
                shown = text_of(await client.call_tool("whoami", {}))
                failed = await client.call_tool("whoami_fail", {})
    error = text_of(failed)
    assert "path: /t/***/mcp" in shown, shown
    assert failed.is_error and "path: /t/***/mcp" in error, error
    for text in (shown, error, log.read_text(), audit_text(tmp_path)):
        assert PATH_TOKEN not in text and "TOKEN123" not in text, text[-3000:]


def test_which_url_path_segments_are_hidden() -> None:
    """A path segment is shown when it plainly is not a credential (words, a version, a date,
    a short number); any other (letters and digits mixed, a UUID, a token shape, anything
    encoded) is hidden, and is a known secret of an --upstream-url."""
    from odoo_mcp_guard.policy_core import display_url, url_path_secrets
    from odoo_mcp_guard.proxy import UpstreamConfig, operator_secrets

    kept = ["mcp", "t", "v1", "api", "odoo-mcp", "Servers", "2024-11-05", "42", "sse.json"]
    hidden = [
        PATH_TOKEN,
        "3f2b8c9e-0d4a-4e57-9a1b-7c6d5e4f3a2b",
        "sk-abcdefghijklmnopqrstuvwxyz",  # an OpenAI-shaped key, all lower-case letters
        "ghp_abcdefghijklmnopqrstuvwxyz0123",
        "aBcDeFgHiJkL",
        "tok%2Fen",
        "12345678901234",
    ]
    url = "https://u:pw@mcp.example.com:8443/" + "/".join(kept + hidden) + "?code=x#frag"
    shown = display_url(url)
    # no userinfo; the query and fragment hidden whole
    expected = "https://mcp.example.com:8443/" + "/".join(kept + ["***"] * len(hidden))
    assert shown == expected + "?***#***", shown
    assert set(url_path_secrets(url)) >= set(hidden) - {"tok%2Fen"} | {"tok/en"}
    assert not set(url_path_secrets(url)) & set(kept)
    assert display_url("http://127.0.0.1/mcp") == "http://127.0.0.1/mcp"
    found = operator_secrets(UpstreamConfig(url=f"https://h.example.com/t/{PATH_TOKEN}/mcp"))
    assert PATH_TOKEN in found and "mcp" not in found
