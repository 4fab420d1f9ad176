"""Benchmark of odoo-mcp-guard: what the guard costs.

    .venv/bin/python bench/bench_guard.py [--calls 1000] [--decisions 200000] [--data-dir DIR]

Prints, in one run:
1. ``Policy.decide`` latency on a realistic policy (exact rules, globs, hidden tools), p50/p99;
2. ``odoo_connections`` end to end through the guard (policy, audit write, token check on HTTP)
   and through an unguarded MCPServer serving the same tool from the same store
   (bench/unguarded_server.py), over stdio and over streamable HTTP, N sequential calls each
   with the SDK client (2026-07-28 era), p50/p99 and the guarded/unguarded ratio.

The data directory defaults to a temporary one (on /tmp); the guard writes one audit row
per call (SQLite WAL, ``synchronous=NORMAL``), so the disk behind it matters: pass --data-dir to
measure on the disk you deploy on.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "mcp_server"
sys.path.insert(0, str(SRC))

from odoo_mcp_guard.catalog import classify, classify_definition  # noqa: E402
from odoo_mcp_guard.policy import load_policy_text  # noqa: E402
from odoo_mcp_guard.store import Connection, Store  # noqa: E402

REALISTIC_POLICY = {
    "version": "1",
    "default": "deny",
    "hide": ["odoo_disconnect_all", "odoo_shell*"],
    "rules": {
        "odoo_connections": {"action": "allow"},
        "odoo_connect": {"action": "allow", "rate_limit": {"max": 10, "window": 60}},
        "odoo_search_read": {"action": "allow", "rate_limit": {"max": 60, "window": 60}},
        "odoo_read": {"action": "allow"},
        "odoo_fields_get": {"action": "allow"},
        "odoo_create": {"action": "require_approval", "approval": {"expires_in": 600}},
        "odoo_write": {"action": "require_approval", "reason": "Writes change records"},
        "odoo_disconnect": {
            "action": "require_approval",
            "reason": "Removing a connection cannot be undone",
            "rate_limit": {"max": 10, "window": 60},
            "approval": {"expires_in": 3600},
        },
        "odoo_unlink": {"action": "deny", "reason": "Agents may not delete records"},
        "odoo_report_*": {"action": "allow"},
        "odoo_*_read": {"action": "allow"},
        "odoo_*": {"action": "require_approval"},
        "fs_*": {"action": "deny"},
    },
}
CORPUS = ROOT / "tests" / "data" / "tool_corpus.json"
TOOLS = [
    "odoo_connections",
    "odoo_disconnect",
    "odoo_search_read",
    "odoo_unlink",
    "odoo_report_pdf",
    "odoo_mail_read",
    "odoo_something_new",
    "odoo_shell_exec",
    "fs_write",
    "unknown_tool",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_decide(count: int) -> dict[str, float]:
    policy = load_policy_text(json.dumps(REALISTIC_POLICY))
    decide = policy.decide
    # As served: each tool with its catalog class (classified once, when it is listed).
    risks = {name: classify(name) for name in TOOLS}
    clock = time.perf_counter_ns
    # The timer's own cost, subtracted from each sample.
    overhead = statistics.median(-(clock() - clock()) for _ in range(10000))
    samples = []
    names = TOOLS * (count // len(TOOLS))
    for name in names:
        risk = risks[name]
        start = clock()
        decide(name, "bench", risk)
        samples.append(max(clock() - start - overhead, 0) / 1000)
    # The first decision for a name walks the rules; later ones hit the policy's cache.
    cold = []
    for _ in range(200):
        fresh = load_policy_text(json.dumps(REALISTIC_POLICY))
        for name in TOOLS:
            risk = risks[name]
            start = clock()
            fresh.decide(name, "bench", risk)
            cold.append(max(clock() - start - overhead, 0) / 1000)
    # Classifying a tool definition (once per tool and listing, never per call).
    corpus = json.loads(CORPUS.read_text("utf-8"))["tools"]
    classified = []
    for _ in range(20):
        for entry in corpus:
            start = clock()
            classify_definition(entry["tool"])
            classified.append(max(clock() - start - overhead, 0) / 1000)
    return {
        "p50": pct(samples, 0.5),
        "p99": pct(samples, 0.99),
        "cold_p50": pct(cold, 0.5),
        "cold_p99": pct(cold, 0.99),
        "classify_p50": pct(classified, 0.5),
        "classify_p99": pct(classified, 0.99),
        "corpus": len(corpus),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), out.get("PYTHONPATH")]))
    out["MCP_GUARD_PRINCIPAL"] = "bench"
    for key in ("MCP_GUARD_TOKENS", "MCP_GUARD_POLICY"):
        out.pop(key, None)
    return out


def seed_store(data_dir: Path) -> None:
    store = Store.open(data_dir)
    for i in range(5):
        store.add_connection(
            Connection(
                alias=f"conn{i}",
                url=f"https://erp{i}.example.com",
                db=f"db{i}",
                username="admin",
                api_key=f"key{i}",
            )
        )
    store.close()


def guard_cmd(data_dir: Path, transport: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "odoo_mcp_guard", "serve", "--transport", transport,
        "--port", str(port), "--data-dir", str(data_dir),
    ]  # fmt: skip


def plain_cmd(data_dir: Path, transport: str, port: int) -> list[str]:
    return [
        sys.executable, str(ROOT / "bench" / "unguarded_server.py"), "--transport", transport,
        "--port", str(port), "--data-dir", str(data_dir),
    ]  # fmt: skip


async def timed_calls(client: Client, count: int, tool: str = "odoo_connections") -> list[float]:
    for _ in range(min(50, count)):  # warm-up
        await client.call_tool(tool, {})
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        result = await client.call_tool(tool, {})
        samples.append((time.perf_counter() - start) * 1000)
        assert not result.is_error, result
    return samples


async def run_stdio(cmd: list[str], count: int) -> list[float]:
    params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=env())
    async with Client(params) as client:
        return await timed_calls(client, count)


async def wait_listening(proc: subprocess.Popen[bytes], port: int, cmd: list[str]) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"server did not start: {cmd}") from None
            await anyio.sleep(0.05)


async def run_http(cmd: list[str], port: int, count: int, token: str | None) -> list[float]:
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_listening(proc, port, cmd)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        http = httpx2.AsyncClient(headers=headers, timeout=60)
        transport: AbstractAsyncContextManager[Any] = streamable_http_client(
            f"http://127.0.0.1:{port}/mcp", http_client=http
        )
        async with Client(transport) as client:
            return await timed_calls(client, count)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def add_token(data_dir: Path) -> str:
    from odoo_mcp_guard.auth import TokenStore

    return TokenStore(data_dir / "tokens.json").add("bench")


def line(label: str, samples: list[float]) -> str:
    return f"  {label:<28} p50 {pct(samples, 0.5):7.3f} ms   p99 {pct(samples, 0.99):7.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--skip-e2e", action="store_true")
    args = parser.parse_args()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    d = bench_decide(args.decisions)
    print(f"Policy.decide, {len(REALISTIC_POLICY['rules'])} rules + hidden globs, "
          f"{args.decisions} decisions over {len(TOOLS)} tool names:")  # fmt: skip
    print(f"  cached (as served)         p50 {d['p50']:6.3f} µs   p99 {d['p99']:6.3f} µs")
    print(f"  first decision for a name  p50 {d['cold_p50']:6.3f} µs   p99 {d['cold_p99']:6.3f} µs")
    print(f"classifying a tool definition ({d['corpus']} real ones), once per listing:")
    print(f"  p50 {d['classify_p50']:6.1f} µs   p99 {d['classify_p99']:6.1f} µs")
    if args.skip_e2e:
        return

    base = args.data_dir or Path(tempfile.mkdtemp(prefix="guard-bench-"))
    print(f"\nodoo_connections end to end, {args.calls} sequential calls each, data in {base}")
    results: dict[str, dict[str, list[float]]] = {}
    for transport in ("stdio", "http"):
        results[transport] = {}
        for kind, make in (("unguarded", plain_cmd), ("guarded", guard_cmd)):
            data_dir = base / f"{transport}-{kind}"
            seed_store(data_dir)
            port = free_port()
            cmd: Callable[..., list[str]] = make
            if transport == "stdio":
                samples = anyio.run(run_stdio, cmd(data_dir, "stdio", port), args.calls)
            else:
                token = add_token(data_dir) if kind.startswith("guarded") else None
                samples = anyio.run(run_http, cmd(data_dir, "http", port), port, args.calls, token)
            results[transport][kind] = samples
            print(line(f"{transport} {kind}", samples))
        plain, guarded = results[transport]["unguarded"], results[transport]["guarded"]
        ratio50 = pct(guarded, 0.5) / pct(plain, 0.5)
        ratio99 = pct(guarded, 0.99) / pct(plain, 0.99)
        print(f"  {transport} guarded/unguarded     p50 {ratio50:5.2f}x     p99 {ratio99:5.2f}x")


if __name__ == "__main__":
    main()
