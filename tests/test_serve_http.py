"""End to end over streamable HTTP: bearer tokens → principals, both protocol eras."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from support.guard import (
    INITIALIZE,
    MODES,
    RAW_HEADERS,
    HttpGuard,
    RawHttpSession,
    aliases,
    approve,
    audit_count,
    connect_args,
    guard_command,
    guard_env,
    http_client,
    http_guard,
    policy,
    query,
    request_state,
    run_cli,
    text_of,
    write_policy,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpGuard]:
    """One server for the module; tests keep apart by alias and principal."""
    data_dir = tmp_path_factory.mktemp("http-guard")
    pol = write_policy(
        data_dir / "policy.json",
        policy(odoo_connections={"action": "allow", "rate_limit": {"max": 3, "window": 8}}),
    )
    with http_guard(data_dir, pol) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(guard: HttpGuard) -> dict[str, str]:
    return {name: guard.token(name) for name in ("alice", "bob", "carol")}


def raw_post(url: str, headers: dict[str, str], body: Any = INITIALIZE) -> httpx2.Response:
    with httpx2.Client(timeout=30) as client:
        return client.post(url, json=body, headers=headers)


def test_401_without_or_with_a_wrong_token(guard: HttpGuard, tokens: dict[str, str]) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer mcpg_not-a-real-token"},
        {"Authorization": f"Bearer {tokens['alice']}x"},
        {"Authorization": f"Basic {tokens['alice']}"},
        {"Authorization": "Bearer"},
    ):
        response = raw_post(guard.url, {**RAW_HEADERS, **headers})
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert tokens["alice"] not in response.text
    ok = raw_post(guard.url, {**RAW_HEADERS, "Authorization": f"Bearer {tokens['alice']}"})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("mode", MODES)
async def test_token_principal_end_to_end(
    guard: HttpGuard, tokens: dict[str, str], mode: str
) -> None:
    alias = f"http_{mode}"
    async with http_client(guard.url, tokens["alice"], mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"odoo_connect", "odoo_connections", "odoo_disconnect"} <= names
        created = await client.call_tool("odoo_connect", connect_args(alias))
        assert not created.is_error, text_of(created)
        result = await client.call_tool("odoo_disconnect", {"alias": alias})
        assert result.is_error and result.structured_content["status"] == "pending"
        ref = result.structured_content["request"]
    # The request carries the token's principal: alice cannot approve it, carol can.
    assert query(guard.data_dir, "SELECT principal FROM approval_requests WHERE ref = ?", ref) == [
        ("alice",)
    ]
    denied = run_cli(guard.data_dir, "approvals", "approve", ref, "--as", "alice", check=False)
    assert denied.returncode != 0 and "cannot approve" in denied.stderr
    approve(guard.data_dir, ref, "carol")
    # Bob's token is another principal: alice's approval does not serve him.
    async with http_client(guard.url, tokens["bob"], mode=mode) as bob:
        result = await bob.call_tool("odoo_disconnect", {"alias": alias})
        assert result.is_error and result.structured_content["request"] != ref
    assert alias in aliases(guard.data_dir)
    async with http_client(guard.url, tokens["alice"], mode=mode) as client:
        done = await client.call_tool("odoo_disconnect", {"alias": alias})
        assert not done.is_error, text_of(done)
    assert alias not in aliases(guard.data_dir)
    assert request_state(guard.data_dir, ref) == "done"


async def test_rate_limit_per_token(guard: HttpGuard, tokens: dict[str, str]) -> None:
    async def burst(token: str, mode: str) -> list[bool]:
        async with http_client(guard.url, token, mode=mode) as client:
            return [(await client.call_tool("odoo_connections", {})).is_error for _ in range(4)]

    assert await burst(tokens["carol"], "auto") == [False, False, False, True]
    # Another principal is counted apart; a new session of the same one is not.
    assert await burst(tokens["bob"], "legacy") == [False, False, False, True]
    async with http_client(guard.url, tokens["carol"], mode="legacy") as client:
        refused = await client.call_tool("odoo_connections", {})
        assert refused.is_error and refused.structured_content["status"] == "rate_limited"
        # The window slides: once the time the guard names has passed, carol passes again.
        await anyio.sleep(refused.structured_content["retry_after"] + 0.2)
        assert not (await client.call_tool("odoo_connections", {})).is_error


def test_tokens_from_the_environment(tmp_path: Path) -> None:
    import hashlib

    token = "env-token-for-dave"
    digest = hashlib.sha256(token.encode()).hexdigest()
    with http_guard(tmp_path, env={"MCP_GUARD_TOKENS": f"dave={digest}"}) as running:
        good = raw_post(running.url, {**RAW_HEADERS, "Authorization": f"Bearer {token}"})
        assert good.status_code == 200, good.text
        bad = raw_post(running.url, {**RAW_HEADERS, "Authorization": "Bearer other"})
        assert bad.status_code == 401


async def test_allow_anonymous(tmp_path: Path) -> None:
    with http_guard(tmp_path, allow_anonymous=True) as running:
        token = running.token("erin")
        async with http_client(running.url) as anonymous:
            created = await anonymous.call_tool("odoo_connect", connect_args("anon"))
            assert not created.is_error, text_of(created)
            result = await anonymous.call_tool("odoo_disconnect", {"alias": "anon"})
            ref = result.structured_content["request"]
        # A token that is sent must still be valid, even when anonymous access is allowed.
        bad = raw_post(running.url, {**RAW_HEADERS, "Authorization": "Bearer wrong"})
        assert bad.status_code == 401
        async with http_client(running.url, token, mode="legacy") as erin:
            assert not (await erin.call_tool("odoo_connections", {})).is_error
    rows = query(tmp_path, "SELECT principal FROM approval_requests WHERE ref = ?", ref)
    assert rows == [("anonymous",)]
    assert audit_count(tmp_path, "allowed") >= 2


def test_a_session_stays_with_the_principal_that_opened_it(
    guard: HttpGuard, tokens: dict[str, str]
) -> None:
    session = RawHttpSession(guard.url, tokens["alice"])
    try:
        # Bob presents alice's session id with his own valid token: not his session.
        session.headers["Authorization"] = f"Bearer {tokens['bob']}"
        reply = session.call({"name": "odoo_connections", "arguments": {}})
        assert reply["status"] == 404, reply
        assert reply["body"]["error"]["message"] == "Session not found"
        session.headers["Authorization"] = f"Bearer {tokens['alice']}"
        reply = session.call({"name": "odoo_connections", "arguments": {}})
        assert reply["status"] == 200 and reply["body"]["result"]["isError"] is False
    finally:
        session.close()


async def test_http_sessions_are_told_tool_lists_change(tmp_path: Path) -> None:
    """A 2025-era HTTP session receives notifications/tools/list_changed when the policy file
    changes to hide a tool, and the tool is gone from its next tools/list."""
    pol = write_policy(tmp_path / "policy.json", policy())
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(getattr(message, "root", message), types.ToolListChangedNotification):
            changed.set()

    with http_guard(tmp_path, pol) as running:
        token = running.token("carol")
        async with http_client(
            running.url, token, mode="legacy", message_handler=on_message
        ) as client:
            assert "odoo_disconnect" in [t.name for t in (await client.list_tools()).tools]
            write_policy(pol, policy(hide=["odoo_disconnect"]))
            with anyio.fail_after(10):
                await changed.wait()
            assert "odoo_disconnect" not in [t.name for t in (await client.list_tools()).tools]


def serve_exits(data_dir: Path, env: dict[str, str], *args: str) -> str:
    """``serve ARGS`` that must refuse to start: its one-line reason."""
    proc = subprocess.run(
        guard_command("serve", "--data-dir", str(data_dir), *args),
        env=guard_env(data_dir, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0, proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr


def test_a_principal_with_a_foreign_prefix_is_refused(tmp_path: Path) -> None:
    """A principal is compared with approvers, so it is held to the approvers' name check:
    "x:alice" (a prefix no transport gives) or an unreadable name is refused where it is made:
    a token, MCP_GUARD_TOKENS, MCP_GUARD_PRINCIPAL."""
    for name in ("x:alice", "alice\u200b", "::"):
        made = run_cli(tmp_path, "tokens", "add", name, check=False)
        assert made.returncode != 0, made.stdout
        assert len(made.stderr.strip().splitlines()) == 1 and "principal" in made.stderr
    assert "alice" not in run_cli(tmp_path, "tokens", "list").stdout
    run_cli(tmp_path, "tokens", "add", "http:alice")
    assert "http:alice" in run_cli(tmp_path, "tokens", "list").stdout

    reason = serve_exits(
        tmp_path, {"MCP_GUARD_TOKENS": f"x:alice={'0' * 64}"}, "--transport", "http", "--port", "1"
    )
    assert "x:alice" in reason and "refused" in reason
    for principal in ("x:alice", "stdio:x:alice"):
        reason = serve_exits(tmp_path, {"MCP_GUARD_PRINCIPAL": principal})
        assert "MCP_GUARD_PRINCIPAL" in reason and "refused" in reason


async def test_a_request_under_a_foreign_prefix_cannot_be_decided(tmp_path: Path) -> None:
    """A tokens file written before principals were checked may still name "x:alice": her
    requests are filed, but nobody (alice least of all) can approve or reject them."""
    token = "mcpg_legacy-token-of-x-alice"
    digest = hashlib.sha256(token.encode()).hexdigest()
    (tmp_path / "tokens.json").write_text(json.dumps({"tokens": {"x:alice": digest}}))
    with http_guard(tmp_path) as running:
        async with http_client(running.url, token) as client:
            created = await client.call_tool("odoo_connect", connect_args("legacy"))
            assert not created.is_error, text_of(created)
            result = await client.call_tool("odoo_disconnect", {"alias": "legacy"})
            assert result.is_error and result.structured_content["status"] == "pending"
            ref = result.structured_content["request"]
        for verb, who in (("approve", "alice"), ("approve", "carol"), ("reject", "alice")):
            denied = run_cli(tmp_path, "approvals", verb, ref, "--as", who, check=False)
            assert denied.returncode != 0, denied.stdout
            assert "cannot be compared" in denied.stderr and "Traceback" not in denied.stderr
        assert request_state(tmp_path, ref) == "pending"
        async with http_client(running.url, token) as client:
            again = await client.call_tool("odoo_disconnect", {"alias": "legacy"})
            assert again.is_error
    assert "legacy" in aliases(tmp_path)
