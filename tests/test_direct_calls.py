"""sdk_workarounds 9: a ``tools/call`` of an established 2025-era HTTP session whose client
cannot be asked anything (answered in JSON, workaround 4) is answered without the SDK's
server session, through the same ``Guard.call``, with the same answer.

How a test tells the paths apart: ``mcp_guard_direct_calls_total`` on ``/metrics`` counts the
calls answered directly, and a request without ``MCP-Protocol-Version`` (which the SDK
accepts, serving the session's negotiated version) is always handed to the SDK: the same
call on the same session, once each way, must give the same status, headers and body.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from support.guard import (
    INITIALIZE,
    INITIALIZED,
    RAW_HEADERS,
    HttpGuard,
    RawHttpSession,
    approve,
    audit_count,
    connect_args,
    free_port,
    guard_command,
    http_client,
    http_guard,
    http_process,
    parse_http_body,
    policy,
    proxy_args,
    text_of,
    upstream_calls,
    upstream_command,
    write_policy,
)

pytestmark = pytest.mark.anyio

METRIC = "mcp_guard_direct_calls_total"


def direct_calls(url: str) -> float:
    """How many calls the server answered without the SDK's server session."""
    text = httpx2.get(url.removesuffix("/mcp") + "/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith(METRIC + " "):
            return float(line.split()[1])
    return 0.0


def without_refs(body: Any) -> str:
    """A body with approval references (which differ per request) blanked."""
    return re.sub(r"MCPR-[0-9]+", "MCPR-X", json.dumps(body, sort_keys=True))


class Session(RawHttpSession):
    """A raw 2025-11-25 session whose client declared nothing it can be asked (JSON answers)."""

    def __init__(self, url: str, token: str, capabilities: dict[str, Any] | None = None):
        if capabilities is None:
            super().__init__(url, token)
            return
        self.url = url
        self.headers = {**RAW_HEADERS, "Authorization": f"Bearer {token}"}
        self.client = httpx2.Client(timeout=60)
        opening = {**INITIALIZE, "params": {**INITIALIZE["params"], "capabilities": capabilities}}
        response = self.client.post(url, json=opening, headers=self.headers)
        assert response.status_code == 200, response.text
        self.headers["Mcp-Session-Id"] = response.headers["mcp-session-id"]
        assert self.client.post(url, json=INITIALIZED, headers=self.headers).status_code == 202
        self._next = 1

    def send(self, params: Any, *, sdk: bool = False, rid: int | None = None) -> httpx2.Response:
        """One tools/call; ``sdk``: without MCP-Protocol-Version (the SDK's path)."""
        if rid is None:
            self._next += 1
            rid = self._next
        message = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}
        headers = dict(self.headers)
        if sdk:
            del headers["MCP-Protocol-Version"]
        return self.client.post(self.url, json=message, headers=headers)


def same_answer(session: Session, params: Any) -> dict[str, Any]:
    """The call answered directly, then through the SDK: the same status, headers and body
    (approval references aside); the direct one counted, the other not. Its body."""
    before = direct_calls(session.url)
    session._next += 1
    direct = session.send(params, rid=session._next)
    assert direct_calls(session.url) == before + 1, "not answered directly"
    through_sdk = session.send(params, sdk=True, rid=session._next)
    assert direct_calls(session.url) == before + 1, "answered directly without the header"
    assert direct.status_code == through_sdk.status_code == 200, (direct.text, through_sdk.text)
    kept = ("content-type", "mcp-session-id")
    assert [(k, direct.headers.get(k)) for k in kept] == [
        (k, through_sdk.headers.get(k)) for k in kept
    ]
    assert direct.headers["content-type"] == "application/json"
    assert int(direct.headers["content-length"]) == len(direct.content)
    assert without_refs(direct.json()) == without_refs(through_sdk.json()), (
        direct.text,
        through_sdk.text,
    )
    return direct.json()


# --- serve ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpGuard]:
    data_dir = tmp_path_factory.mktemp("direct-guard")
    pol = write_policy(
        data_dir / "policy.json",
        policy(
            odoo_connect={"action": "allow"},
            odoo_search_read={"action": "deny", "reason": "Not today"},
            hide=["odoo_secret*"],
        ),
    )
    with http_guard(data_dir, pol) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(guard: HttpGuard) -> dict[str, str]:
    return {name: guard.token(name) for name in ("alice", "bob", "carol")}


def test_serve_answers_directly_as_the_sdk_would(guard: HttpGuard, tokens: dict[str, str]) -> None:
    session = Session(guard.url, tokens["alice"])
    try:
        listed = same_answer(session, {"name": "odoo_connections", "arguments": {}})
        assert listed["result"]["isError"] is False
        same_answer(session, {"name": "odoo_connections"})  # no arguments: none
        denied = same_answer(session, {"name": "odoo_search_read", "arguments": {}})
        assert denied["result"]["isError"] is True
        assert "Not today" in json.dumps(denied)
        hidden = same_answer(session, {"name": "odoo_secret_keys", "arguments": {}})
        assert "hidden" in hidden["result"]["content"][0]["text"]
        unknown = same_answer(session, {"name": "no_such_tool", "arguments": {}})
        assert "unknown tool" in unknown["result"]["content"][0]["text"]
        for malformed in (
            {"name": "odoo_connections", "arguments": [1]},
            {"name": "odoo_connections", "arguments": "x"},
            {"name": "odoo_connect", "arguments": {"alias": 5}},
            {"name": 7, "arguments": {}},
            {"arguments": {}},
        ):
            answer = same_answer(session, malformed)
            assert answer["result"]["isError"] is True, answer
        made = session.send({"name": "odoo_connect", "arguments": connect_args("dc1")})
        assert made.json()["result"]["isError"] is False, made.text
        # Approval: filed, pending (the same both ways), approved once, consumed directly.
        disconnect = {"name": "odoo_disconnect", "arguments": {"alias": "dc1"}}
        filed = session.send(disconnect).json()["result"]["structuredContent"]
        assert filed["status"] == "pending" and filed["new"] is True
        pending = same_answer(session, disconnect)
        assert pending["result"]["structuredContent"]["status"] == "pending"
        ref = pending["result"]["structuredContent"]["request"]
        approve(guard.data_dir, ref)
        before = direct_calls(guard.url)
        done = session.send({"name": "odoo_disconnect", "arguments": {"alias": "dc1"}})
        assert done.headers["content-type"] == "application/json"
        assert done.json()["result"]["isError"] is False, done.text
        again = session.send({"name": "odoo_disconnect", "arguments": {"alias": "dc1"}})
        assert "no connection named" in again.json()["result"]["content"][0]["text"]
        assert direct_calls(guard.url) == before + 2
    finally:
        session.close()


def test_another_principal_cannot_use_a_session_directly(
    guard: HttpGuard, tokens: dict[str, str]
) -> None:
    alice, bob = tokens["alice"], tokens["bob"]
    session = Session(guard.url, alice)
    try:
        before, refused_before = direct_calls(guard.url), audit_count(guard.data_dir)
        session.headers["Authorization"] = f"Bearer {bob}"
        for sdk in (False, True):
            reply = session.send({"name": "odoo_connections", "arguments": {}}, sdk=sdk)
            assert reply.status_code == 404, reply.text
            assert reply.json()["error"]["message"] == "Session not found"
        assert direct_calls(guard.url) == before
        assert audit_count(guard.data_dir) == refused_before  # nothing reached the guard
        session.headers["Authorization"] = f"Bearer {alice}"
        assert session.send({"name": "odoo_connections"}).json()["result"]["isError"] is False
        assert direct_calls(guard.url) == before + 1
    finally:
        session.close()


def test_what_is_not_a_plain_call_goes_to_the_sdk(guard: HttpGuard, tokens: dict[str, str]) -> None:
    session = Session(guard.url, tokens["alice"])
    asking = Session(guard.url, tokens["alice"], {"elicitation": {}})
    try:
        before = direct_calls(guard.url)
        # A session that can be asked keeps its SSE stream: the SDK answers.
        streamed = asking.send({"name": "odoo_connections", "arguments": {}})
        assert streamed.headers["content-type"].startswith("text/event-stream")
        assert parse_http_body(streamed)["result"]["isError"] is False
        # Other methods, a _meta, a notification, a batch, another protocol version.
        listed = session.post({"jsonrpc": "2.0", "id": 90, "method": "tools/list"})
        assert listed.status_code == 200 and listed.json()["result"]["tools"]
        meta = {"name": "odoo_connections", "arguments": {}, "_meta": {"progressToken": 1}}
        assert session.send(meta).json()["result"]["isError"] is False
        note = {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}
        assert session.post(note).status_code == 202
        batch = session.post([{"jsonrpc": "2.0", "id": 91, "method": "tools/list"}])
        assert batch.status_code == 400
        old = dict(session.headers, **{"MCP-Protocol-Version": "2025-06-18"})
        message = {"jsonrpc": "2.0", "id": 92, "method": "tools/call"}
        message["params"] = {"name": "odoo_connections", "arguments": {}}
        other = session.client.post(guard.url, json=message, headers=old)
        assert other.json()["result"]["isError"] is False
        # Not JSON the SDK can read: its own error.
        bad = session.post(None, raw=b'{"jsonrpc": "2.0", "id": 93, "method": "tools/call"')
        assert bad.status_code == 400 and bad.json()["error"]["code"] == -32700
        assert direct_calls(guard.url) == before
    finally:
        session.close()
        asking.close()


async def test_sdk_client_legacy_session_is_answered_directly(
    guard: HttpGuard, tokens: dict[str, str]
) -> None:
    token = tokens["carol"]
    before = direct_calls(guard.url)
    async with http_client(guard.url, token, mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        for _ in range(3):
            result = await client.call_tool("odoo_connections", {})
            assert not result.is_error, text_of(result)
        denied = await client.call_tool("odoo_search_read", {})
        assert denied.is_error and "Not today" in text_of(denied)
    assert direct_calls(guard.url) == before + 4


# --- proxy ----------------------------------------------------------------------------------

PROXY_POLICY = {
    "version": "1",
    "default": "deny",
    "hide": ["crash"],
    "rules": {
        "noop": {"action": "allow"},
        "write_note": {"action": "allow"},
        "confirm_delete": {"action": "allow"},
        "slow": {"action": "allow"},
        "odoo_disconnect": {"action": "require_approval", "reason": "Cannot be undone"},
    },
}


async def accept_all(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"confirm": True})


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HttpGuard, Path]]:
    data_dir = tmp_path_factory.mktemp("direct-proxy")
    pol = write_policy(data_dir / "policy.json", PROXY_POLICY)
    state = data_dir / "upstream-state.json"
    up_port, port = free_port(), free_port()
    upstream = http_process(
        upstream_command(state, transport="http", port=up_port), data_dir / "up", up_port
    )
    with upstream as up:
        args = proxy_args(data_dir, pol, upstream=up.url, transport="http", port=port)
        with http_process(guard_command(*args), data_dir, port) as running:
            yield running, state


@pytest.fixture(scope="module")
def proxy_tokens(proxy: tuple[HttpGuard, Path]) -> dict[str, str]:
    return {name: proxy[0].token(name) for name in ("alice", "bob", "dave")}


def test_proxy_answers_directly_as_the_sdk_would(
    proxy: tuple[HttpGuard, Path], proxy_tokens: dict[str, str]
) -> None:
    running, state = proxy
    session = Session(running.url, proxy_tokens["alice"])
    try:
        assert same_answer(session, {"name": "noop", "arguments": {}})["result"]["isError"] is False
        wrote = same_answer(
            session, {"name": "write_note", "arguments": {"key": "k", "value": "v"}}
        )
        assert wrote["result"]["isError"] is False
        reached = len(upstream_calls(state))
        for refused in (
            {"name": "crash", "arguments": {}},
            {"name": "Write_Note", "arguments": {"key": "k", "value": "v"}},
            {"name": "write_note", "arguments": {"key": "k"}},
            {"name": "write_note", "arguments": [1]},
            {"name": "purge_notes", "arguments": {}},
        ):
            assert same_answer(session, refused)["result"]["isError"] is True
        assert len(upstream_calls(state)) == reached, "a refused call reached the upstream"
        # The upstream asks; this client cannot be asked: refused the same way both ways.
        asked = same_answer(session, {"name": "confirm_delete", "arguments": {"item": "x"}})
        assert asked["result"]["isError"] is True
        disconnect = {"name": "odoo_disconnect", "arguments": {"alias": "prod"}}
        assert session.send(disconnect).json()["result"]["structuredContent"]["new"] is True
        pending = same_answer(session, disconnect)
        ref = pending["result"]["structuredContent"]["request"]
        approve(running.data_dir, ref)
        done = session.send({"name": "odoo_disconnect", "arguments": {"alias": "prod"}}).json()
        assert done["result"]["isError"] is False, done
        again = session.send({"name": "odoo_disconnect", "arguments": {"alias": "prod"}}).json()
        assert again["result"]["structuredContent"]["status"] == "pending"
        disconnects = [c for c in upstream_calls(state) if c["tool"] == "odoo_disconnect"]
        assert [c["arguments"] for c in disconnects] == [{"alias": "prod"}]
    finally:
        session.close()


async def test_proxy_elicitation_still_reaches_a_client_that_can_be_asked(
    proxy: tuple[HttpGuard, Path], proxy_tokens: dict[str, str]
) -> None:
    running, _state = proxy
    token = proxy_tokens["bob"]
    before = direct_calls(running.url)
    async with http_client(
        running.url, token, mode="legacy", elicitation_callback=accept_all
    ) as client:
        asked = await client.call_tool("confirm_delete", {"item": "report"})
        assert not asked.is_error, text_of(asked)
        assert asked.structured_content == {"item": "report", "deleted": True}
    assert direct_calls(running.url) == before
    async with http_client(running.url, token, mode="legacy") as plain:
        assert not (await plain.call_tool("noop", {})).is_error
    assert direct_calls(running.url) == before + 1


def test_a_direct_call_is_cancelled_as_the_sdk_cancels_it(
    proxy: tuple[HttpGuard, Path], proxy_tokens: dict[str, str]
) -> None:
    """``notifications/cancelled`` for a call in flight: the same answer either way."""
    running, state = proxy
    session = Session(running.url, proxy_tokens["dave"])
    answers: dict[bool, httpx2.Response] = {}
    try:
        before = direct_calls(running.url)
        for sdk in (False, True):
            seconds, rid = 40 + sdk, 500 + sdk
            params = {"name": "slow", "arguments": {"seconds": seconds}}

            def call(sdk: bool = sdk, params: Any = params, rid: int = rid) -> None:
                answers[sdk] = session.send(params, sdk=sdk, rid=rid)

            thread = threading.Thread(target=call)
            thread.start()
            deadline = time.monotonic() + 60
            while not any(
                c["tool"] == "slow" and c["arguments"] == {"seconds": seconds}
                for c in _calls_so_far(state)
            ):  # the call has reached the upstream: it is in flight
                assert time.monotonic() < deadline, "the call never reached the upstream"
                time.sleep(0.05)
            cancel = {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": rid, "reason": "test"},
            }
            told = httpx2.post(running.url, json=cancel, headers=session.headers, timeout=30)
            assert told.status_code == 202, told.text
            thread.join(60)
            assert not thread.is_alive()
        cancelled = {"code": -32800, "message": "Request cancelled"}
        assert answers[False].json() == {"jsonrpc": "2.0", "id": 500, "error": cancelled}
        assert answers[True].json() == {"jsonrpc": "2.0", "id": 501, "error": cancelled}
        assert answers[False].headers["content-type"] == "application/json"
        assert direct_calls(running.url) == before + 1
    finally:
        session.close()


def _calls_so_far(state: Path) -> list[dict[str, Any]]:
    try:
        return upstream_calls(state)
    except (OSError, ValueError):  # being written
        return []


def test_a_session_known_only_by_direct_calls_is_told_tool_lists_change(tmp_path: Path) -> None:
    """The direct path remembers the session (as the SDK's handler does) for list changes:
    a session that only ever called a tool hears notifications/tools/list_changed on its GET
    stream when the policy hides a tool."""
    pol = write_policy(tmp_path / "policy.json", policy())
    with http_guard(tmp_path, pol) as running:
        session = Session(running.url, running.token("carol"))
        try:
            assert session.send({"name": "odoo_connections"}).json()["result"]["isError"] is False
            assert direct_calls(running.url) == 1
            opened, told = threading.Event(), threading.Event()

            def listen() -> None:
                headers = {**session.headers, "Accept": "text/event-stream"}
                with (
                    httpx2.Client(timeout=60) as client,
                    client.stream("GET", running.url, headers=headers) as stream,
                ):
                    assert stream.status_code == 200
                    opened.set()
                    for line in stream.iter_lines():
                        if "notifications/tools/list_changed" in line:
                            told.set()
                            return

            thread = threading.Thread(target=listen, daemon=True)
            thread.start()
            assert opened.wait(60)
            write_policy(pol, policy(hide=["odoo_disconnect"]))
            assert told.wait(20), "the session was not told the tool list changed"
        finally:
            session.close()
