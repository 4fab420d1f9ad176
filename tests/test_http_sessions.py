"""The 2025-era MCP sessions of the HTTP transport are bounded: at most N open per principal
(32 by default), idle ones closed after the configured timeout. A real ``odoo-mcp-guard serve
--transport http`` subprocess, spoken to with raw HTTP; time is moved forward through the
test clock file (``MCP_GUARD_TEST_SESSION_CLOCK``), never waited for."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from support.guard import (
    INITIALIZE,
    RAW_HEADERS,
    HttpGuard,
    guard_command,
    guard_env,
    http_guard,
    parse_http_body,
    policy,
    write_policy,
)

DEFAULT_CAP = 32
IDLE = 600  # seconds of the session clock; the test moves it, the real one never gets there


class Server:
    def __init__(self, guard: HttpGuard, clock: Path):
        self.guard = guard
        self.clock = clock
        self.tokens = {name: guard.token(name) for name in ("alice", "bob")}
        self.http = httpx2.Client(timeout=30)

    def advance(self, seconds: float) -> None:
        current = float(self.clock.read_text() or 0)
        self.clock.write_text(str(current + seconds))

    def headers(self, who: str, session: str | None = None) -> dict[str, str]:
        headers = {**RAW_HEADERS, "Authorization": f"Bearer {self.tokens[who]}"}
        if session:
            headers["Mcp-Session-Id"] = session
        return headers

    def initialize(self, who: str) -> httpx2.Response:
        return self.http.post(self.guard.url, json=INITIALIZE, headers=self.headers(who))

    def open(self, who: str) -> str:
        response = self.initialize(who)
        assert response.status_code == 200, response.text
        session = response.headers["mcp-session-id"]
        done = self.http.post(
            self.guard.url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers=self.headers(who, session),
        )
        assert done.status_code in (200, 202), done.text
        return session

    def list_tools(self, who: str, session: str) -> httpx2.Response:
        return self.http.post(
            self.guard.url,
            json={"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {}},
            headers=self.headers(who, session),
        )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    clock = tmp_path / "clock"
    clock.write_text("0")
    pol = write_policy(tmp_path / "policy.json", policy())
    env = {"MCP_GUARD_HTTP_SESSION_IDLE": str(IDLE), "MCP_GUARD_TEST_SESSION_CLOCK": str(clock)}
    with http_guard(tmp_path / "data", pol, env=env) as guard:
        running = Server(guard, clock)
        try:
            yield running
        finally:
            running.http.close()


def refused(response: httpx2.Response) -> str:
    """The one-line message of a refused session opening."""
    assert response.status_code == 429, (response.status_code, response.text)
    assert "mcp-session-id" not in response.headers
    assert int(response.headers["retry-after"]) >= 1
    body: Any = response.json()
    message = body["error"]["message"]
    assert "\n" not in message
    return message


def test_sessions_per_principal_are_capped_and_a_closed_one_makes_room(server: Server) -> None:
    sessions = [server.open("alice") for _ in range(DEFAULT_CAP)]
    # The 6,000 initialize requests of the report, in short: none opens another session.
    for _ in range(100):
        message = refused(server.initialize("alice"))
    assert message.startswith("Too many open MCP sessions for alice: at most 32"), message
    # Another principal has a cap of its own; alice's open sessions keep working.
    assert server.initialize("bob").status_code == 200
    listed = server.list_tools("alice", sessions[0])
    assert listed.status_code == 200 and parse_http_body(listed)["result"]["tools"]
    # A session the client deletes no longer counts.
    deleted = server.http.delete(server.guard.url, headers=server.headers("alice", sessions[1]))
    assert deleted.status_code == 200, deleted.text
    assert server.list_tools("alice", sessions[1]).status_code == 404
    server.open("alice")
    refused(server.initialize("alice"))


def test_idle_sessions_expire_and_free_their_place(server: Server) -> None:
    sessions = [server.open("alice") for _ in range(DEFAULT_CAP)]
    refused(server.initialize("alice"))
    # One session holds a GET stream open (a request in flight): it is not idle.
    with server.http.stream(
        "GET", server.guard.url, headers=server.headers("alice", sessions[0])
    ) as stream:
        assert stream.status_code == 200, stream.read()
        server.advance(IDLE / 2)
        refused(server.initialize("alice"))  # not idle long enough yet
        server.advance(IDLE / 2 + 1)
        fresh = server.open("alice")  # the idle ones are closed before this one is judged
        for session in sessions[1:]:
            gone = server.list_tools("alice", session)
            assert gone.status_code == 404, gone.text
        assert server.list_tools("alice", fresh).status_code == 200
    # Closing the stream leaves its session open (and used just now).
    assert server.list_tools("alice", sessions[0]).status_code == 200
    room = DEFAULT_CAP - 2
    for _ in range(room):
        server.open("alice")
    refused(server.initialize("alice"))


def test_configured_cap_and_bad_settings(tmp_path: Path) -> None:
    pol = write_policy(tmp_path / "policy.json", policy())
    env = {"MCP_GUARD_HTTP_SESSIONS_PER_PRINCIPAL": "2"}
    with http_guard(tmp_path / "data", pol, env=env) as guard:
        token = guard.token("carol")
        headers = {**RAW_HEADERS, "Authorization": f"Bearer {token}"}
        with httpx2.Client(timeout=30) as http:
            statuses = [http.post(guard.url, json=INITIALIZE, headers=headers) for _ in range(3)]
        assert [r.status_code for r in statuses] == [200, 200, 429]
        assert "at most 2" in refused(statuses[2])
    for variable, value, expected in (
        ("MCP_GUARD_HTTP_SESSIONS_PER_PRINCIPAL", "0", "greater than or equal to 1"),
        ("MCP_GUARD_HTTP_SESSIONS_PER_PRINCIPAL", "many", "valid integer"),
        ("MCP_GUARD_HTTP_SESSION_IDLE", "-5", "greater than 0"),
        ("MCP_GUARD_HTTP_SESSION_IDLE", "nan", "finite number"),
    ):
        proc = subprocess.run(
            guard_command("serve", "--transport", "http", "--port", "0"),
            env=guard_env(tmp_path / "data", **{variable: value}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and variable in proc.stderr, proc.stderr
        assert expected in proc.stderr and "Traceback" not in proc.stderr
