"""Benchmark of the Odoo backend: what taking policy, connections and audit from Odoo costs.

    .venv/bin/python bench/bench_odoo.py [--calls 300] [--series 18.0|19.0 ...]

Needs Odoo (ODOO_BIN / ``odoo`` for 18.0, ODOO19_BIN / ``odoo19`` for 19.0) and PostgreSQL,
like the Odoo tests. For each series found (or asked for) it creates a database with
``mcp_guard``, 80 partners and the users of tests/odoo_live.py, then measures in one run, with
N sequential calls each (after warm-up), p50/p99 (the guard speaks XML-RPC to 18 and JSON-2 to
19, found by asking the server; the data connection's protocol is the same):

1. ``odoo_connections`` through the guard on the Odoo backend vs on the embedded backend: an
   allowed call that needs no Odoo round trip (policy and connections cached, audit spooled);
2. ``odoo_search_read`` of 80 partners through the guard (Odoo backend, and embedded backend)
   vs the same ``search_read`` made directly with the guard's RPC client as the same Odoo
   user (over the same protocol).

The guard runs as ``odoo-mcp-guard serve`` over stdio, spoken to with the SDK's client.
Rounds alternate between the paths so that drift on a shared machine hits them alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "mcp_server"), str(ROOT / "tests"), str(ROOT / "bench")]

import odoo_harness  # noqa: E402
from bench_guard import env, line, pct  # noqa: E402
from odoo_live import live_odoo  # noqa: E402

from odoo_mcp_guard.odoo_rpc import OdooClient, OdooConfig  # noqa: E402
from odoo_mcp_guard.store import Connection, Store  # noqa: E402

DOMAIN = [["name", "like", "Bench Partner"]]
FIELDS = ["name", "email", "city"]


def guard_params(data_dir: Path, extra_env: dict[str, str], *args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "odoo_mcp_guard", "serve", "--data-dir", str(data_dir), *args],
        env={**env(), **extra_env},
    )


async def measure(args: argparse.Namespace, series: odoo_harness.Series) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}

    def timed(key: str, started: float) -> None:
        samples.setdefault(key, []).append((time.perf_counter() - started) * 1000)

    with live_odoo(series) as live, live.running():
        base = Path(tempfile.mkdtemp(prefix="guard-bench-odoo-"))
        connection = {
            "alias": "bench",
            "url": live.url,
            "db": live.db,
            "username": "data",
            "api_key": live.data_key,
            "protocol": "json2" if live.json2 else "xmlrpc",
        }
        local_dir, odoo_dir = base / "local", base / "odoo"
        store = Store.open(local_dir)
        store.add_connection(Connection(**connection))
        store.close()
        direct = OdooClient(
            OdooConfig(url=live.url, db=live.db, username="data", api_key=live.data_key)
        )
        search = {
            "alias": "bench",
            "model": "res.partner",
            "domain": DOMAIN,
            "fields": FIELDS,
            "limit": 80,
        }
        odoo_env = live.guard_env()
        local = guard_params(local_dir, {}, "--backend", "local")
        remote = guard_params(odoo_dir, odoo_env)
        async with Client(local) as embedded, Client(remote) as on_odoo:
            first = await on_odoo.call_tool("odoo_connect", connection)
            assert not first.is_error, first
            paths: list[tuple[str, Any]] = [
                ("odoo_connections embedded", lambda: embedded.call_tool("odoo_connections", {})),
                ("odoo_connections odoo", lambda: on_odoo.call_tool("odoo_connections", {})),
                ("search_read direct", None),
                ("search_read embedded", lambda: embedded.call_tool("odoo_search_read", search)),
                ("search_read odoo", lambda: on_odoo.call_tool("odoo_search_read", search)),
            ]
            rounds = 5
            per_round = max(1, args.calls // rounds)
            for round_no in range(rounds + 1):  # round 0 is warm-up
                order = paths if round_no % 2 else list(reversed(paths))
                for key, call in order:
                    for _ in range(per_round if round_no else 20):
                        started = time.perf_counter()
                        if call is None:
                            records = direct.call(
                                "res.partner",
                                "search_read",
                                domain=DOMAIN,
                                fields=FIELDS,
                                limit=80,
                            )
                            assert len(records) == 80
                        else:
                            result = await call()
                            assert not result.is_error, result
                        if round_no:
                            timed(key, started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument(
        "--series",
        nargs="*",
        choices=[s.version for s in odoo_harness.SERIES],
        help="the Odoo series to measure (default: every one found)",
    )
    args = parser.parse_args()
    wanted = [s for s in odoo_harness.SERIES if not args.series or s.version in args.series]
    found = [s for s in wanted if odoo_harness.find_odoo(s) is not None]
    for missing in wanted:
        if missing not in found:
            print(missing.not_found_reason)
    if not found:
        raise SystemExit(2)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.calls} calls per path")
    for series in found:
        report(series, anyio.run(measure, args, series))


def report(series: odoo_harness.Series, samples: dict[str, list[float]]) -> None:
    wire = "JSON-2" if series.version >= "19" else "XML-RPC"
    print(f"Odoo {series.version} ({wire})")
    for key, values in samples.items():
        print(line(key, values))

    def ratio(a: str, b: str) -> str:
        p50 = pct(samples[a], 0.5) / pct(samples[b], 0.5)
        p99 = pct(samples[a], 0.99) / pct(samples[b], 0.99)
        return f"p50 {p50:5.2f}x   p99 {p99:5.2f}x"

    for label, a, b in (
        ("odoo_connections odoo/embedded", "odoo_connections odoo", "odoo_connections embedded"),
        ("search_read odoo/embedded", "search_read odoo", "search_read embedded"),
        ("search_read odoo guard/direct RPC", "search_read odoo", "search_read direct"),
    ):
        print(f"  {label:<34} {ratio(a, b)}")


if __name__ == "__main__":
    main()
