"""Where a proxied call spends the guard's CPU: py-spy on ``odoo-mcp-guard proxy``.

    .venv/bin/pip install py-spy   # not a dependency of the project
    .venv/bin/python bench/profile_proxy.py [--upstream http|stdio] [--seconds 15]
        [--clients 1] [--era legacy|auto] [--raw FILE]

Starts tests/upstream_server.py and the guard proxy in front of it (every check on, as in
bench_proxy.py), drives ``noop`` calls from ``--clients`` SDK clients in a steady loop, and
samples the proxy process with ``py-spy record --pid --gil``: only the thread holding the
GIL, i.e. Python at work (a socket write or an epoll wait releases it; on a busy machine
py-spy would otherwise count a thread preempted in a system call as running). Prints the
proxy's CPU per call (user and system, from /proc) and where the Python part went: the
samples grouped by the package of the innermost frame (self time), and the share of samples
that pass through each of a few landmarks (inclusive time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import anyio
from bench_guard import add_token, free_port
from bench_proxy import (
    POLICY,
    TICK,
    Path_,
    call,
    http_client,
    listening,
    proxy_cmd,
    upstream_cmd,
)

# Innermost frame's file → group (first match wins).
GROUPS = [
    ("odoo_mcp_guard/", "project (odoo_mcp_guard)"),
    ("mcp_types/", "mcp SDK"),
    ("mcp/", "mcp SDK"),
    ("pydantic", "pydantic"),
    ("uvicorn/", "uvicorn/starlette/h11 (serving)"),
    ("starlette/", "uvicorn/starlette/h11 (serving)"),
    ("sse_starlette/", "uvicorn/starlette/h11 (serving)"),
    ("h11/", "uvicorn/starlette/h11 (serving)"),
    ("httptools", "uvicorn/starlette/h11 (serving)"),
    ("httpx2/", "httpx2/httpcore (upstream link)"),
    ("httpcore", "httpx2/httpcore (upstream link)"),
    ("anyio/", "event loop (asyncio/anyio)"),
    ("asyncio/", "event loop (asyncio/anyio)"),
    ("selectors.py", "event loop (asyncio/anyio)"),
    ("uvloop", "event loop (asyncio/anyio)"),
    ("sqlite", "SQLite (audit)"),
    ("sqlalchemy/", "SQLite (audit)"),
    ("jsonschema", "jsonschema"),
    ("json/", "json"),
    ("logging/", "logging"),
    ("threading.py", "threads"),
    ("concurrent/", "threads"),
]
# Inclusive landmarks: (label, substring of a frame).
LANDMARKS = [
    ("Guard.call (all checks + audit)", "guard.py"),
    ("forward to the upstream (ClientSession.call_tool)", "call_tool (mcp/client/session.py"),
    ("forward to the upstream (raw JSON-RPC, _send_raw)", "_send_raw (odoo_mcp_guard/proxy.py"),
    ("upstream link (httpx2 request and response)", "AsyncClient.send (httpx2/"),
    ("upstream result redacted (_redacted)", "_redacted (odoo_mcp_guard/proxy.py"),
    ("audit write (store)", "stores/"),
    ("streamable HTTP server transport", "mcp/server/streamable_http"),
    ("serving the client (uvicorn → ASGI app)", "run_asgi (uvicorn/"),
    ("the SDK's server session (dispatch of a request)", "_handle_request (mcp/shared/jsonrpc"),
    ("answered directly (sdk_workarounds 9, DirectCalls)", "DirectCalls.__call__"),
    ("the alias record read in a worker thread (_aliases)", "_aliases (odoo_mcp_guard/proxy.py"),
    ("upstream HTTP client transport", "mcp/client/streamable_http"),
    ("stdio client transport", "mcp/client/stdio"),
    ("pydantic validation/serialisation", "pydantic"),
]


def group_of(frame: str) -> str:
    for needle, label in GROUPS:
        if needle in frame:
            return label
    return "other (stdlib, typing, ...)"


def summarise(raw: Path, calls: int, cpu: tuple[float, float]) -> None:
    own: Counter[str] = Counter()
    through: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[group_of(frames[-1])] += n
        for label, needle in LANDMARKS:
            if any(needle in frame for frame in frames):
                through[label] += n
    user, system = (1000 * part / calls for part in cpu)
    print(
        f"proxy CPU per call: {user + system:.2f} ms ({user:.2f} user, {system:.2f} system "
        f"= the kernel, mostly loopback TCP); {calls} calls, {total} samples of Python at work"
    )
    print("self time by package of the innermost frame:")
    for label, n in own.most_common():
        print(f"  {100 * n / total:5.1f} %  {label}")
    print("inclusive time through:")
    for label, _needle in LANDMARKS:
        print(f"  {100 * through[label] / total:5.1f} %  {label}")


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


async def drive(args: argparse.Namespace, base: Path) -> tuple[int, tuple[float, float]]:
    state = base / "upstream.json"
    token = add_token(base)
    up = free_port()
    async with listening(upstream_cmd(state, "http", up), up) as (up_url, _up_pid):
        target = up_url if args.upstream == "http" else upstream_cmd(state, "stdio")
        port = free_port()
        async with listening(proxy_cmd(base, "http", port, target), port) as (url, pid):
            path = Path_("guard", http_client(url, token, args.era), pid)
            calls = 0
            stop = anyio.Event()
            spy = [args.py_spy, "record", "--pid", str(pid), "--rate", "500", "--format", "raw",
                   "--duration", str(int(args.seconds)), "--gil", "--nonblocking",
                   "--output", str(args.raw)]  # fmt: skip

            async def worker() -> None:
                nonlocal calls
                async with path.connect() as client:
                    for _ in range(50):  # warm-up, before sampling starts
                        await call(client)
                    ready.append(1)
                    while not stop.is_set():
                        await call(client)
                        if started:
                            calls += 1

            ready: list[int] = []
            started = False
            async with anyio.create_task_group() as tg:
                for _ in range(args.clients):
                    tg.start_soon(worker)
                while len(ready) < args.clients:
                    await anyio.sleep(0.05)
                before = cpu_split(pid)
                started = True
                await anyio.run_process(spy, stdout=subprocess.DEVNULL, stderr=None)
                after = cpu_split(pid)
                cpu = (after[0] - before[0], after[1] - before[1])
                stop.set()
            return calls, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", choices=["http", "stdio"], default="http")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--era", choices=["legacy", "auto"], default="legacy")
    parser.add_argument("--raw", type=Path, default=None, help="keep py-spy's raw stacks here")
    parser.add_argument(
        "--py-spy", default=shutil.which("py-spy", path=os.path.dirname(sys.executable))
    )
    args = parser.parse_args()
    if not args.py_spy:
        raise SystemExit("profile_proxy: py-spy not found; .venv/bin/pip install py-spy")
    base = Path(tempfile.mkdtemp(prefix="proxy-profile-"))
    (base / "policy.json").write_text(json.dumps(POLICY), encoding="utf-8")
    args.raw = args.raw or base / "py-spy.txt"
    calls, cpu = anyio.run(drive, args, base)
    print(f"HTTP→{args.upstream}, {args.clients} client(s), era {args.era}, {args.seconds:g} s; "
          f"load {os.getloadavg()[0]:.1f}; raw stacks in {args.raw}")  # fmt: skip
    summarise(args.raw, calls, cpu)


if __name__ == "__main__":
    main()
