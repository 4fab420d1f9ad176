"""Helpers for the end-to-end tests: the real ``odoo-mcp-guard`` in a subprocess,
spoken to with the official MCP SDK client (stdio and streamable HTTP) or with raw JSON-RPC.

Every test gets its own data directory (``tmp_path``); approvals are given with the real
CLI in a subprocess, exactly as an operator would.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client as mcp_stdio_client
from mcp.client.streamable_http import streamable_http_client
from odoo_harness import free_port, listens_on

# The real odoo-claude-mcp behind the proxy: its public repository, run from source by a
# wrapper on PATH (installed outside the repository, as the notes describe).
ODOO_CLAUDE_MCP = shutil.which("odoo-claude-mcp") or "/usr/local/bin/odoo-claude-mcp"
needs_odoo_claude_mcp = pytest.mark.skipif(
    not Path(ODOO_CLAUDE_MCP).exists(), reason="odoo-claude-mcp is not installed"
)

# Connections listed and added freely; a removal (and so a replacement) held for approval.
CONNECTION_POLICY: dict[str, Any] = {
    "version": "1",
    "default": "deny",
    "rules": {
        "odoo_connections": {"action": "allow"},
        "odoo_connect": {"action": "allow"},
        "odoo_disconnect": {"action": "require_approval"},
    },
}

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "mcp_server"
# How long a test waits for something that happens on its own (a server listening, a poll's
# effect): a bound for a loaded machine (two CI runs and Odoo side by side), not a speed
# claim; every wait ends as soon as the effect shows.
EFFECT_WAIT = 120
if str(SRC) not in sys.path:  # in-process imports of the package without an install
    sys.path.insert(0, str(SRC))
MODES = ("auto", "legacy")  # auto negotiates 2026-07-28, legacy 2025-11-25
LEGACY_VERSION = "2025-11-25"


# --- processes -------------------------------------------------------------------------


def guard_env(data_dir: Path | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    # Hermetic: nothing from the caller's environment picks a backend, a store or an identity;
    # a test that wants one passes it in ``extra``.
    for key in list(env):
        if key.startswith("ODOO_") or key in (
            "MCP_GUARD_TOKENS",
            "MCP_GUARD_POLICY",
            "MCP_GUARD_PRINCIPAL",
            "MCP_GUARD_DATABASE_URL",
            "MCP_GUARD_REDIS_URL",
        ):
            del env[key]
    if data_dir is not None:
        env["MCP_GUARD_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def guard_command(*args: str) -> list[str]:
    """``odoo-mcp-guard ARGS`` (as ``python -m odoo_mcp_guard``: same entry point, no install)."""
    return [sys.executable, "-m", "odoo_mcp_guard", *args]


def serve_args(
    data_dir: Path, policy: Path | None = None, *, transport: str = "stdio", port: int = 0
) -> list[str]:
    args = ["serve", "--transport", transport, "--data-dir", str(data_dir)]
    if transport == "http":
        args += ["--port", str(port)]
    if policy is not None:
        args += ["--policy", str(policy)]
    return args


def run_cli(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real CLI against a data directory."""
    proc = subprocess.run(
        guard_command("--data-dir", str(data_dir), *args),
        env=guard_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"CLI {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def approve(data_dir: Path, ref: str, approver: str = "carol", note: str | None = None) -> None:
    args = ["approvals", "approve", ref, "--as", approver]
    if note:
        args += ["--note", note]
    run_cli(data_dir, *args)


def reject(data_dir: Path, ref: str, approver: str = "carol", note: str | None = None) -> None:
    args = ["approvals", "reject", ref, "--as", approver]
    if note:
        args += ["--note", note]
    run_cli(data_dir, *args)


def add_token(data_dir: Path, principal: str) -> str:
    """A (new) token for ``principal``: --rotate replaces one a test made before."""
    return run_cli(data_dir, "tokens", "add", principal, "--rotate").stdout.strip().splitlines()[-1]


def write_policy(path: Path, document: dict[str, Any]) -> Path:
    """Write a policy file atomically (a new inode, so the server's change check sees it)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path


def policy(**rules: dict[str, Any]) -> dict[str, Any]:
    """A policy document: default deny, the three served tools allowed unless overridden."""
    hide = rules.pop("hide", [])
    default = rules.pop("default", "deny")
    base: dict[str, Any] = {
        "odoo_connections": {"action": "allow"},
        "odoo_connect": {"action": "allow"},
        "odoo_disconnect": {
            "action": "require_approval",
            "reason": "Removing a connection cannot be undone",
        },
    }
    base.update(rules)
    return {"version": "1", "default": default, "hide": hide, "rules": base}


# --- the store, read directly (read-only) ------------------------------------------------


def db_path(data_dir: Path) -> Path:
    return data_dir / "guard.sqlite3"


def query(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{db_path(data_dir)}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def audit_text(data_dir: Path) -> str:
    """Everything the audit holds, as the store has it and as the CLI prints it."""
    return (
        repr(query(data_dir, "SELECT * FROM audit"))
        + run_cli(data_dir, "audit", "tail", "-n", "50", "--json").stdout
    )


def aliases(data_dir: Path) -> list[str]:
    return [row[0] for row in query(data_dir, "SELECT alias FROM connections ORDER BY alias")]


def connection_row(data_dir: Path, alias: str) -> dict[str, Any] | None:
    rows = query(data_dir, "SELECT alias, url, db FROM connections WHERE alias = ?", alias)
    return dict(zip(("alias", "url", "db"), rows[0], strict=True)) if rows else None


def request_state(data_dir: Path, ref: str) -> str | None:
    rows = query(data_dir, "SELECT state FROM approval_requests WHERE ref = ?", ref)
    return rows[0][0] if rows else None


def move_expiry_to_the_past(data_dir: Path, ref: str) -> None:
    """Let an approval's validity run out without waiting for it (time controlled, not raced)."""
    db = sqlite3.connect(db_path(data_dir), timeout=30)
    try:
        with db:
            changed = db.execute(
                "UPDATE approval_requests SET expires_at = expires_at - 3600 WHERE ref = ?", (ref,)
            ).rowcount
    finally:
        db.close()
    assert changed == 1, ref


def audit_count(data_dir: Path, outcome: str | None = None) -> int:
    if outcome is None:
        return query(data_dir, "SELECT count(*) FROM audit")[0][0]
    return query(data_dir, "SELECT count(*) FROM audit WHERE outcome = ?", outcome)[0][0]


# --- MCP clients ---------------------------------------------------------------------------


def connect_args(alias: str, **overrides: Any) -> dict[str, Any]:
    args = {
        "alias": alias,
        "url": f"https://{alias.lower()}.example.com",
        "db": f"{alias}_db",
        "username": "admin",
        "password": f"s3cret-{alias}",
    }
    args.update(overrides)
    return args


def stdio_client(
    data_dir: Path,
    *,
    principal: str = "alice",
    policy_file: Path | None = None,
    mode: str = "auto",
    env: dict[str, str] | None = None,
    **client_kwargs: Any,
) -> Client:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "odoo_mcp_guard", *serve_args(data_dir, policy_file)],
        env=guard_env(data_dir, MCP_GUARD_PRINCIPAL=principal, **(env or {})),
    )
    return Client(params, mode=mode, read_timeout_seconds=60, **client_kwargs)


@asynccontextmanager
async def serve_with_log(data_dir: Path, policy_file: Path, log: Path) -> AsyncIterator[Client]:
    """``serve`` over stdio as alice, logging at debug level; its stderr written to ``log``."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "odoo_mcp_guard", *serve_args(data_dir, policy_file)],
        env=guard_env(data_dir, MCP_GUARD_PRINCIPAL="alice", MCP_GUARD_LOG_LEVEL="debug"),
    )
    with log.open("w") as errlog:
        async with Client(
            mcp_stdio_client(params, errlog=errlog), read_timeout_seconds=60
        ) as client:
            yield client


def http_client(url: str, token: str | None = None, *, mode: str = "auto", **kwargs: Any) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60.0))
    return Client(
        streamable_http_client(url, http_client=client),
        mode=mode,
        read_timeout_seconds=60,
        **kwargs,
    )


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


class HttpGuard:
    """A running ``odoo-mcp-guard serve --transport http`` subprocess."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, data_dir: Path, log: Path):
        self.proc = proc
        self.url = url
        self.data_dir = data_dir
        self.log = log

    def token(self, principal: str) -> str:
        return add_token(self.data_dir, principal)


@contextmanager
def http_guard(
    data_dir: Path,
    policy_file: Path | None = None,
    *,
    allow_anonymous: bool = False,
    env: dict[str, str] | None = None,
) -> Iterator[HttpGuard]:
    port = free_port()
    args = serve_args(data_dir, policy_file, transport="http", port=port)
    if allow_anonymous:
        args.append("--allow-anonymous")
    with http_process(guard_command(*args), data_dir, port, env) as running:
        yield running


@contextmanager
def http_process(
    command: list[str], data_dir: Path, port: int, env: dict[str, str] | None = None
) -> Iterator[HttpGuard]:
    """Run an HTTP server subprocess until it listens on ``port``; stop it on the way out."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"server-{port}.log"
    with log.open("wb") as log_handle:
        proc = subprocess.Popen(
            command,
            env=guard_env(data_dir, **(env or {})),
            stdin=subprocess.DEVNULL,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + EFFECT_WAIT
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited ({proc.returncode}):\n{log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    pass
                # Ours, not another process's: on a busy machine the free port we were given
                # can be taken by someone else before our server binds it (then ours exits).
                if listens_on(proc.pid, port):
                    break
                raise OSError("another process listens on the port")
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"server did not listen:\n{log.read_text()}") from None
                time.sleep(0.05)
        yield HttpGuard(proc, f"http://127.0.0.1:{port}/mcp", data_dir, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the proxy and its test upstream (tests/upstream_server.py) ----------------------------

UPSTREAM = REPO / "tests" / "upstream_server.py"


def upstream_command(state: Path, *, transport: str = "stdio", port: int = 0) -> list[str]:
    return [
        sys.executable,
        str(UPSTREAM),
        "--state",
        str(state),
        "--transport",
        transport,
        "--port",
        str(port),
    ]


def write_upstream_state(state: Path, connections: dict[str, str] | list[str]) -> None:
    """What tests/upstream_server.py holds: its connections (alias -> URL; a list: aliases
    without one), as if changed outside the guard (the calls recorded so far are kept)."""
    try:
        calls = json.loads(state.read_text(encoding="utf-8"))["calls"]
    except (OSError, ValueError):
        calls = []
    document: dict[str, Any] = {"aliases": list(connections), "notes": {}, "calls": calls}
    if isinstance(connections, dict):
        document["urls"] = connections
    state.write_text(json.dumps(document), encoding="utf-8")


def upstream_calls(state: Path) -> list[dict[str, Any]]:
    """The calls that reached the test upstream, oldest first."""
    return json.loads(state.read_text(encoding="utf-8"))["calls"]


def proxy_args(
    data_dir: Path,
    policy_file: Path | None = None,
    *,
    upstream: list[str] | str,
    transport: str = "stdio",
    port: int = 0,
    server_name: str | None = "upstream",
    extra: tuple[str, ...] = (),
) -> list[str]:
    """``proxy`` arguments: ``upstream`` is a command (a list) or a URL (a string)."""
    import shlex

    args = ["proxy", "--transport", transport, "--data-dir", str(data_dir)]
    if isinstance(upstream, str):
        args += ["--upstream-url", upstream]
    else:
        args += ["--upstream-command", shlex.join(upstream)]
    if transport == "http":
        args += ["--port", str(port)]
    if policy_file is not None:
        args += ["--policy", str(policy_file)]
    if server_name is not None:
        args += ["--server-name", server_name]
    return args + list(extra)


def proxy_stdio_client(
    data_dir: Path,
    args: list[str],
    *,
    principal: str = "alice",
    mode: str = "auto",
    env: dict[str, str] | None = None,
    errlog: TextIO | None = None,
    **client_kwargs: Any,
) -> Client:
    """An SDK client of ``odoo-mcp-guard ARGS`` over stdio; ``errlog``: an open file the
    guard's stderr goes to (what it logs, read back by the redaction tests)."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "odoo_mcp_guard", *args],
        env=guard_env(data_dir, MCP_GUARD_PRINCIPAL=principal, **(env or {})),
    )
    transport = params if errlog is None else mcp_stdio_client(params, errlog=errlog)
    return Client(transport, mode=mode, read_timeout_seconds=60, **client_kwargs)


# --- raw JSON-RPC (for what the SDK client will not send) ----------------------------------

RAW_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": LEGACY_VERSION,
}

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": LEGACY_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "0"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def parse_http_body(response: httpx2.Response) -> Any:
    """A JSON body, or the last JSON-RPC message of an SSE body."""
    kind = response.headers.get("content-type", "")
    if "text/event-stream" in kind:
        messages = [
            json.loads(line[5:].strip())
            for line in response.text.splitlines()
            if line.startswith("data:") and line[5:].strip()
        ]
        return messages[-1] if messages else None
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


class RawHttpSession:
    """A legacy (2025-11-25) streamable-HTTP session driven by hand."""

    def __init__(self, url: str, token: str | None):
        self.url = url
        self.headers = dict(RAW_HEADERS)
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.client = httpx2.Client(timeout=60)
        response = self.client.post(url, json=INITIALIZE, headers=self.headers)
        assert response.status_code == 200, response.text
        self.headers["Mcp-Session-Id"] = response.headers["mcp-session-id"]
        response = self.client.post(url, json=INITIALIZED, headers=self.headers)
        assert response.status_code in (200, 202), response.text
        self._next = 1

    def post(self, body: Any, *, raw: bytes | None = None) -> httpx2.Response:
        if raw is not None:
            return self.client.post(self.url, content=raw, headers=self.headers)
        return self.client.post(self.url, json=body, headers=self.headers)

    def call(self, params: Any) -> dict[str, Any]:
        self._next += 1
        message = {"jsonrpc": "2.0", "id": self._next, "method": "tools/call", "params": params}
        response = self.post(message)
        return {"status": response.status_code, "body": parse_http_body(response)}

    def close(self) -> None:
        self.client.close()


class RawStdioSession:
    """A legacy (2025-11-25) stdio session driven by hand: one JSON message per line."""

    def __init__(
        self,
        data_dir: Path,
        principal: str = "alice",
        policy_file: Path | None = None,
        *,
        args: list[str] | None = None,
    ):
        self.proc = subprocess.Popen(
            guard_command(*(args or serve_args(data_dir, policy_file))),
            env=guard_env(data_dir, MCP_GUARD_PRINCIPAL=principal),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._next = 1
        assert self.request(INITIALIZE)["result"]["protocolVersion"] == LEGACY_VERSION
        self.send(INITIALIZED)

    def send(self, message: Any) -> None:
        assert self.proc.stdin is not None
        data = json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n"
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def receive(self, request_id: Any) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise EOFError("the server closed stdout")
            message = json.loads(line)
            if message.get("id") == request_id and ("result" in message or "error" in message):
                return message

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        self.send(message)
        return self.receive(message["id"])

    def call(self, params: Any) -> dict[str, Any]:
        self._next += 1
        message = {"jsonrpc": "2.0", "id": self._next, "method": "tools/call", "params": params}
        return {"status": None, "body": self.request(message)}

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


async def within(
    seconds: float, attempt: Callable[[], Awaitable[Any]], last: dict[str, Any] | None = None
) -> tuple[Any, float]:
    """Retry ``attempt`` until it returns a truthy value; the value and the time it took.
    ``last`` is what the attempt last saw, said when the effect does not show."""
    started = time.monotonic()
    while True:
        value = await attempt()
        if value:
            return value, time.monotonic() - started
        assert time.monotonic() - started < seconds, f"no effect in time; last seen: {last}"
        await anyio.sleep(0.05)
