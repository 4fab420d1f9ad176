"""Benchmark of ``odoo-mcp-guard proxy`` beside a direct connection and a bare transport bridge.

    .venv/bin/python bench/bench_proxy.py [--rounds 5] [--calls 300] [--seconds 4]
        [--clients 20] [--era legacy|auto] [--mcp-proxy PATH] [--data-dir DIR]
        [--baseline-src OTHER_TREE/mcp_server]

One upstream (tests/upstream_server.py, an MCPServer; its ``noop`` tool), reached by the SDK
client in several ways:

* ``direct``: the upstream over streamable HTTP (and over stdio, sequential only);
* ``guard HTTP→HTTP``: ``odoo-mcp-guard proxy --upstream-url`` to that same HTTP upstream;
* ``guard HTTP→stdio``: ``odoo-mcp-guard proxy --upstream-command`` (the upstream as a child);
* ``mcp-proxy HTTP→stdio``: mcp-proxy (PyPI, a transport bridge with no policy) around the
  same upstream command, when ``--mcp-proxy`` (default ``bench/.venv-peer/bin/mcp-proxy``)
  exists: ``python -m venv bench/.venv-peer && bench/.venv-peer/bin/pip install mcp-proxy``;
* ``guard stdio→stdio`` beside ``direct stdio`` (sequential only);
* with ``--baseline-src``, the proxy imported from another tree (an earlier commit), HTTP→HTTP
  and HTTP→stdio, in the same rounds: a before/after measured under the same load.

The guard runs with every check on: the name, listed, pinned definition, schema, policy (an
``allow`` rule with a rate limit), approval lookup, audit row, bearer token on HTTP.

Each round runs every path in turn (interleaved, so that a machine busy with other work
weighs on all of them alike): N sequential calls by one client (latency), then C clients
calling concurrently for S seconds (throughput). Printed: p50/p99 and the ratio to direct,
calls/s and the ratio to direct, and the CPU the server process (the proxy alone, not its
upstream) spent per call.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
from bench_guard import SRC, add_token, env, free_port, pct, wait_listening
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = ROOT / "tests" / "upstream_server.py"
PEER = ROOT / "bench" / ".venv-peer" / "bin" / "mcp-proxy"
POLICY = {
    "version": "1",
    "default": "deny",
    "rules": {"noop": {"action": "allow", "rate_limit": {"max": 100_000, "window": 1}}},
}
TICK = os.sysconf("SC_CLK_TCK")


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (not its children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass
class Path_:
    name: str
    connect: Callable[[], AbstractAsyncContextManager[Client]]
    pid: int | None = None  # the server process whose CPU is counted
    latencies: list[float] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    cpu_calls: int = 0


def http_client(url: str, token: str | None, era: str) -> Callable[[], Any]:
    def connect() -> AbstractAsyncContextManager[Client]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        http = httpx2.AsyncClient(headers=headers, timeout=60)
        return Client(streamable_http_client(url, http_client=http), mode=era)

    return connect


def stdio_client(cmd: list[str], era: str, src: Path | None = None) -> Callable[[], Any]:
    def connect() -> AbstractAsyncContextManager[Client]:
        params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=env_for(src))
        return Client(params, mode=era)

    return connect


async def call(client: Client) -> None:
    result = await client.call_tool("noop", {})
    assert not result.is_error, result


async def sequential(path: Path_, count: int) -> None:
    async with path.connect() as client:
        for _ in range(20):  # warm-up
            await call(client)
        before = cpu_seconds(path.pid) if path.pid else 0.0
        for _ in range(count):
            start = time.perf_counter()
            await call(client)
            path.latencies.append((time.perf_counter() - start) * 1000)
        if path.pid:
            path.cpu += cpu_seconds(path.pid) - before
            path.cpu_calls += count


async def concurrent(path: Path_, clients: int, seconds: float) -> None:
    done = 0
    go, stop = anyio.Event(), anyio.Event()
    ready = 0

    async def worker() -> None:
        nonlocal done, ready
        async with path.connect() as client:
            for _ in range(5):
                await call(client)
            ready += 1
            await go.wait()
            while not stop.is_set():
                await call(client)
                done += 1

    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(worker)
        with anyio.fail_after(120):
            while ready < clients:
                await anyio.sleep(0.01)
        before = cpu_seconds(path.pid) if path.pid else 0.0
        start = time.perf_counter()
        go.set()
        await anyio.sleep(seconds)
        counted = done  # calls completed within the window
        elapsed = time.perf_counter() - start
        stop.set()
        if path.pid:
            path.cpu += cpu_seconds(path.pid) - before
            path.cpu_calls += done
    path.calls += counted
    path.seconds += elapsed


@asynccontextmanager
async def listening(
    cmd: list[str], port: int, src: Path | None = None, url_path: str = "/mcp"
) -> AsyncIterator[Any]:
    proc = subprocess.Popen(
        cmd, env=env_for(src), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await wait_listening(proc, port, cmd)
        yield f"http://127.0.0.1:{port}{url_path}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def env_for(src: Path | None) -> dict[str, str]:
    """The benchmark's environment; with ``src``, the guard is imported from that tree."""
    out = env()
    if src is not None:
        out["PYTHONPATH"] = os.pathsep.join([str(src), out["PYTHONPATH"]])
    return out


async def run(args: argparse.Namespace, base: Path) -> tuple[list[Path_], list[Path_]]:
    state = base / "upstream.json"
    era = args.era
    token = args.token
    upstream_stdio = upstream_cmd(state, "stdio")
    http_paths: list[Path_] = []
    stdio_paths: list[Path_] = []
    async with (
        listening(upstream_cmd(state, "http", up := free_port()), up) as (up_url, up_pid),
        listening(proxy_cmd(base / "hh", "http", p1 := free_port(), up_url), p1) as (hh, hh_pid),
        listening(proxy_cmd(base / "hs", "http", p2 := free_port(), upstream_stdio), p2) as (
            hs,
            hs_pid,
        ),
    ):
        http_paths.append(Path_("direct HTTP", http_client(up_url, None, era), up_pid))
        http_paths.append(Path_("guard HTTP→HTTP", http_client(hh, token, era), hh_pid))
        http_paths.append(Path_("guard HTTP→stdio", http_client(hs, token, era), hs_pid))
        baseline: list[Any] = []
        if args.baseline_src is not None:  # another tree of the guard, in the same rounds
            src = args.baseline_src
            for key, target in (("bhh", up_url), ("bhs", upstream_stdio)):
                port = free_port()
                cm = listening(proxy_cmd(base / key, "http", port, target), port, src)
                url, pid = await cm.__aenter__()
                baseline.append(cm)
                kind = "HTTP→HTTP" if key == "bhh" else "HTTP→stdio"
                http_paths.append(Path_(f"baseline {kind}", http_client(url, token, era), pid))
        peer_cm: Any = None
        if args.mcp_proxy.exists():
            p3 = free_port()
            peer = [str(args.mcp_proxy), "--port", str(p3), "--log-level", "WARNING",
                    "--pass-environment", "--", *upstream_stdio]  # fmt: skip
            peer_cm = listening(peer, p3)
            peer_url, peer_pid = await peer_cm.__aenter__()
            http_paths.append(
                Path_("mcp-proxy HTTP→stdio", http_client(peer_url, None, era), peer_pid)
            )
        else:
            print(f"(mcp-proxy not found at {args.mcp_proxy}: its rows are skipped)")
        stdio_paths.append(Path_("direct stdio", stdio_client(upstream_stdio, era)))
        guard_stdio = proxy_cmd(base / "ss", "stdio", 0, upstream_stdio)
        stdio_paths.append(Path_("guard stdio→stdio", stdio_client(guard_stdio, era)))
        if args.baseline_src is not None:
            baseline_stdio = proxy_cmd(base / "bss", "stdio", 0, upstream_stdio)
            stdio_paths.append(
                Path_("baseline stdio→stdio", stdio_client(baseline_stdio, era, args.baseline_src))
            )
        try:
            for number in range(1, args.rounds + 1):
                for path in http_paths:
                    await sequential(path, args.calls)
                    await concurrent(path, args.clients, args.seconds)
                for path in stdio_paths:
                    await sequential(path, args.calls)
                print(f"  round {number}/{args.rounds} done", flush=True)
        finally:
            for cm in [*baseline, peer_cm]:
                if cm is not None:
                    await cm.__aexit__(None, None, None)
    return http_paths, stdio_paths


def report(paths: list[Path_], concurrent_rows: bool) -> None:
    direct = paths[0]
    d50 = pct(direct.latencies, 0.5)
    d99 = pct(direct.latencies, 0.99)
    drate = direct.calls / direct.seconds if direct.seconds else 0.0
    for path in paths:
        p50, p99 = pct(path.latencies, 0.5), pct(path.latencies, 0.99)
        row = (f"  {path.name:<22} p50 {p50:6.3f} ms ({p50 / d50:4.2f}×)  "
               f"p99 {p99:6.3f} ms ({p99 / d99:4.2f}×)")  # fmt: skip
        if concurrent_rows:
            rate = path.calls / path.seconds
            cpu = 1000 * path.cpu / path.cpu_calls if path.cpu_calls else float("nan")
            row += f"  {rate:6.0f} calls/s ({rate / drate:4.2f}×)  CPU {cpu:4.2f} ms/call"
        print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=300, help="sequential calls per round")
    parser.add_argument("--seconds", type=float, default=4.0, help="concurrent window per round")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--era", choices=["legacy", "auto"], default="legacy",
                        help="client protocol: legacy = 2025-11-25 (what mcp-proxy speaks), "
                        "auto = 2026-07-28 where offered")  # fmt: skip
    parser.add_argument("--mcp-proxy", type=Path, default=PEER)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="also run the proxy from this tree's mcp_server/ (e.g. a checkout "
                        "of an earlier commit), in the same rounds")  # fmt: skip
    args = parser.parse_args()
    base = args.data_dir or Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    for sub in ("", "hh", "hs", "ss", "bhh", "bhs", "bss"):
        (base / sub).mkdir(parents=True, exist_ok=True)
        (base / sub / "policy.json").write_text(json.dumps(POLICY), encoding="utf-8")
    assert SRC.is_dir()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
          f"{args.rounds} interleaved rounds of {args.calls} sequential calls and "
          f"{args.clients} concurrent clients for {args.seconds:g} s; client era {args.era}; "
          f"data in {base}")  # fmt: skip
    args.token = add_token(base)
    for sub in ("hh", "hs", "bhh", "bhs"):  # the bench token is valid on every guard
        (base / sub / "tokens.json").write_bytes((base / "tokens.json").read_bytes())
    http_paths, stdio_paths = anyio.run(run, args, base)
    print(f"HTTP clients, {args.clients} concurrent for throughput (ratios to direct HTTP):")
    report(http_paths, True)
    print("stdio client, sequential (ratios to direct stdio):")
    report(stdio_paths, False)


if __name__ == "__main__":
    main()
