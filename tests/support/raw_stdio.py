"""A raw stdio JSON-RPC client for the end-to-end tests: the real ``odoo-mcp-guard serve`` in a
subprocess (anyio), spoken to a line at a time, for what the SDK client cannot send (lines
that are not JSON-RPC, odd ids) or cannot survive (a SIGKILL). ``support.guard.RawStdioSession``
is its blocking cousin for whole sessions of well-formed calls."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process

from support.guard import guard_env, serve_args

INIT_PARAMS = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "raw", "version": "1"},
}


class RawStdio:
    """One guard process: lines written to its stdin, JSON-RPC messages read from its stdout."""

    def __init__(self, proc: Process):
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self._buffered = b""

    async def send(self, message: str | dict[str, Any]) -> None:
        """A message (JSON-encoded) or a raw line as it is (lone surrogates kept)."""
        line = message if isinstance(message, str) else json.dumps(message)
        assert self.proc.stdin is not None
        await self.proc.stdin.send((line + "\n").encode("utf-8", "surrogatepass"))

    async def answer(self) -> dict[str, Any]:
        """The next message the guard writes, whatever it is."""
        assert self.proc.stdout is not None
        while b"\n" not in self._buffered:
            self._buffered += await self.proc.stdout.receive()
        line, _, self._buffered = self._buffered.partition(b"\n")
        return json.loads(line)

    async def request(self, rid: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a request; its answer (messages with another id are passed over)."""
        await self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        while (answer := await self.answer()).get("id") != rid:
            pass
        return answer

    async def initialize(self, *, initialized: bool = True) -> dict[str, Any]:
        """The handshake (request id 1, answered first); ``initialized=False`` leaves out the
        notification."""
        await self.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS})
        answer = await self.answer()
        assert answer["id"] == 1, answer
        if initialized:
            await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answer

    async def close(self) -> str:
        """Close stdin, wait for the guard to exit; what it wrote on stderr (if piped)."""
        assert self.proc.stdin is not None
        await self.proc.stdin.aclose()
        await self.proc.wait()
        errors = b""
        if self.proc.stderr is not None:
            with contextlib.suppress(anyio.EndOfStream):
                while True:
                    errors += await self.proc.stderr.receive()
        return errors.decode()


@contextlib.asynccontextmanager
async def raw_stdio(
    data_dir: Path,
    policy_file: Path | None = None,
    *,
    stderr: int = subprocess.PIPE,
    **env: str,
) -> AsyncIterator[RawStdio]:
    """``serve`` over stdio on ``data_dir``, as principal alice unless ``env`` says otherwise."""
    env = {"MCP_GUARD_PRINCIPAL": "alice", **env}
    async with await anyio.open_process(
        [sys.executable, "-m", "odoo_mcp_guard", *serve_args(data_dir, policy_file)],
        env=guard_env(data_dir, **env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
    ) as proc:
        yield RawStdio(proc)
