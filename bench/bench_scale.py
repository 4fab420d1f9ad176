"""Load benchmark: one replica vs two replicas sharing Redis, under concurrent clients.

    .venv/bin/python bench/bench_scale.py [--calls 10000] [--concurrency 50]

Needs Redis on 127.0.0.1:6379 (``MCP_GUARD_BENCH_REDIS`` overrides). Each setup runs
``odoo-mcp-guard serve --transport http`` processes with their own SQLite data directories,
sharing the rate-limit counters in Redis (``odoo_connections`` carries a rate limit high enough
never to refuse, so every call does its Redis round trip). ``--concurrency`` MCP client
sessions (SDK ``Client``, 2026-07-28 era, one bearer token each) are spread over the replicas
and make ``--calls`` allowed calls in total. Printed, in one run: throughput (calls/s) and
p50/p99 latency for one replica and for two, and the ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "mcp_server"), str(ROOT / "tests"), str(ROOT / "bench")]

from bench_guard import pct  # noqa: E402
from support.guard import http_client, http_guard, policy, write_policy  # noqa: E402

REDIS_URL = os.environ.get("MCP_GUARD_BENCH_REDIS", "redis://127.0.0.1:6379/0")


async def load(urls: list[str], tokens: list[str], calls: int, concurrency: int) -> dict:
    latencies: list[float] = []
    remaining = calls
    errors = 0

    async def worker(index: int) -> None:
        nonlocal remaining, errors
        async with http_client(urls[index % len(urls)], tokens[index % len(tokens)]) as client:
            await client.call_tool("odoo_connections", {})  # session warm-up, not counted
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                result = await client.call_tool("odoo_connections", {})
                latencies.append((time.perf_counter() - started) * 1000)
                errors += bool(result.is_error)

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for index in range(concurrency):
            group.start_soon(worker, index)
    elapsed = time.perf_counter() - started
    return {"throughput": len(latencies) / elapsed, "latencies": latencies, "errors": errors}


def run(replicas: int, args: argparse.Namespace, base: Path) -> dict:
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    env = {"MCP_GUARD_REDIS_URL": REDIS_URL, "MCP_GUARD_REDIS_PREFIX": prefix}
    limit = {"action": "allow", "rate_limit": {"max": 10_000_000, "window": 60}}
    with ExitStack() as stack:
        guards = []
        for number in range(replicas):
            data_dir = base / f"{replicas}-replicas-{number}"
            data_dir.mkdir(parents=True)
            pol = write_policy(data_dir / "policy.json", policy(odoo_connections=limit))
            guards.append(stack.enter_context(http_guard(data_dir, pol, env=env)))
        tokens = [guard.token("bench") for guard in guards]
        return anyio.run(load, [g.url for g in guards], tokens, args.calls, args.concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="guard-bench-scale-"))
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.calls} calls, "
        f"concurrency {args.concurrency}, Redis {REDIS_URL}"
    )
    results = {n: run(n, args, base) for n in (1, 2)}
    for replicas, result in results.items():
        lat = result["latencies"]
        print(
            f"  {replicas} replica(s): {result['throughput']:8.1f} calls/s   "
            f"p50 {pct(lat, 0.5):7.2f} ms   p99 {pct(lat, 0.99):7.2f} ms   "
            f"errors {result['errors']}"
        )
    one, two = results[1], results[2]
    print(
        f"  2 vs 1: throughput {two['throughput'] / one['throughput']:.2f}x, "
        f"p50 {pct(two['latencies'], 0.5) / pct(one['latencies'], 0.5):.2f}x, "
        f"p99 {pct(two['latencies'], 0.99) / pct(one['latencies'], 0.99):.2f}x"
    )


if __name__ == "__main__":
    main()
