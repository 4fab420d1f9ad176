"""Benchmark of ``odoo-mcp-guard proxy``: what the extra hop costs.

    .venv/bin/python bench/bench_proxy.py [--calls 1000] [--data-dir DIR]

In one run: N sequential no-op calls (``noop`` of tests/upstream_server.py, an MCPServer) with
the SDK client (2026-07-28 era), direct to the upstream and through the proxy (policy, audit
write, token check on HTTP), stdio→stdio and HTTP→HTTP; p50/p99 and the proxied/direct ratio.
The target is ≤ 2.0× (one extra hop is the floor).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
from bench_guard import SRC, add_token, env, free_port, pct, timed_calls, wait_listening
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = ROOT / "tests" / "upstream_server.py"
POLICY = {"version": "1", "default": "deny", "rules": {"noop": {"action": "allow"}}}


def upstream_cmd(state: Path, transport: str, port: int = 0) -> list[str]:
    return [sys.executable, str(UPSTREAM), "--state", str(state), "--transport", transport,
            "--port", str(port)]  # fmt: skip


def proxy_cmd(data_dir: Path, transport: str, port: int, upstream: list[str] | str) -> list[str]:
    cmd = [sys.executable, "-m", "odoo_mcp_guard", "proxy", "--transport", transport,
           "--port", str(port), "--data-dir", str(data_dir),
           "--policy", str(data_dir / "policy.json"), "--server-name", "bench"]  # fmt: skip
    if isinstance(upstream, str):
        return [*cmd, "--upstream-url", upstream]
    return [*cmd, "--upstream-command", shlex.join(upstream)]


async def timed(client: Client, count: int) -> list[float]:
    return await timed_calls(client, count, "noop")


async def over_stdio(cmd: list[str], count: int) -> list[float]:
    async with Client(StdioServerParameters(command=cmd[0], args=cmd[1:], env=env())) as client:
        return await timed(client, count)


async def over_http(url: str, count: int, token: str | None) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=60)
    async with Client(streamable_http_client(url, http_client=http)) as client:
        return await timed(client, count)


@asynccontextmanager
async def listening(cmd: list[str], port: int) -> AsyncIterator[str]:
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_listening(proc, port, cmd)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def http_pair(state: Path, base: Path, count: int) -> tuple[list[float], list[float]]:
    up_port, port = free_port(), free_port()
    async with listening(upstream_cmd(state, "http", up_port), up_port) as upstream_url:
        direct = await over_http(upstream_url, count, None)
        async with listening(proxy_cmd(base, "http", port, upstream_url), port) as url:
            proxied = await over_http(url, count, add_token(base))
    return direct, proxied


def line(label: str, samples: list[float]) -> str:
    return f"  {label:<26} p50 {pct(samples, 0.5):7.3f} ms   p99 {pct(samples, 0.99):7.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    base = args.data_dir or Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    (base / "policy.json").write_text(json.dumps(POLICY), encoding="utf-8")
    state = base / "upstream.json"
    assert SRC.is_dir()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {args.calls} sequential "
          f"no-op calls each; data in {base}")  # fmt: skip

    results: dict[str, tuple[list[float], list[float]]] = {}
    direct = anyio.run(over_stdio, upstream_cmd(state, "stdio"), args.calls)
    print(line("stdio direct", direct))
    proxied = anyio.run(
        over_stdio, proxy_cmd(base, "stdio", 0, upstream_cmd(state, "stdio")), args.calls
    )
    print(line("stdio→stdio proxied", proxied))
    results["stdio→stdio"] = (direct, proxied)

    direct, proxied = anyio.run(http_pair, state, base, args.calls)
    print(line("HTTP direct", direct))
    print(line("HTTP→HTTP proxied", proxied))
    results["HTTP→HTTP"] = (direct, proxied)

    for name, (plain, through) in results.items():
        r50 = pct(through, 0.5) / pct(plain, 0.5)
        r99 = pct(through, 0.99) / pct(plain, 0.99)
        print(f"  {name:<12} proxied/direct   p50 {r50:5.2f}x   p99 {r99:5.2f}x")


if __name__ == "__main__":
    main()
