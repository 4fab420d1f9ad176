"""Several replicas: rate-limit counters shared in Redis, /metrics, JSON logs.

Needs the Redis on 127.0.0.1:6379; each test run uses its own key prefix and removes it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import redis
from support.guard import (
    connect_args,
    free_port,
    guard_command,
    http_client,
    http_guard,
    http_process,
    policy,
    proxy_args,
    query,
    text_of,
    upstream_command,
    write_policy,
)

from odoo_mcp_guard.ratelimit import Limit, RateLimitUnavailable, RedisRateLimiter
from odoo_mcp_guard.store import Store

REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test alone; its keys are deleted afterwards."""
    value = f"mcpg-test-{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis tests NOT RUN: no Redis at {REDIS_URL} ({exc})")
    yield value
    keys = list(client.scan_iter(match=f"{value}*"))
    if keys:
        client.delete(*keys)
    client.close()


def closed_port_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


# --- the limiter itself -----------------------------------------------------------------


@pytest.mark.redis
def test_redis_counts_exactly_like_the_store(prefix: str, tmp_path: Path) -> None:
    limiter = RedisRateLimiter(REDIS_URL, prefix=prefix)
    store = Store.open(tmp_path)
    t0 = 1_700_000_000.0
    # The store's own test sequence, answered identically by both.
    sequence = [t0, t0 + 1, t0 + 2, t0 + 3, t0 + 9.999, t0 + 10, t0 + 10.5, t0 + 11, t0 + 30]
    for at in sequence:
        local = store.hit_rate_limit("alice", "tool", 3, 10, at)
        shared = limiter("alice", "tool", 3, 10, at)
        assert (local is None) == (shared is None), at
        if local is not None:
            assert shared == pytest.approx(local, abs=1e-6), at
    # Per principal and per tool; the same instant twice counts twice (unique members).
    assert limiter("bob", "tool", 2, 60, t0) is None
    assert limiter("bob", "tool", 2, 60, t0) is None
    assert limiter("bob", "tool", 2, 60, t0) == pytest.approx(60.0)
    assert limiter("bob", "other", 2, 60, t0) is None
    assert limiter("carol", "tool", 2, 60, t0) is None
    limiter.close()
    store.close()


@pytest.mark.redis
def test_redis_charges_several_limits_all_or_nothing(prefix: str, tmp_path: Path) -> None:
    """A call governed by two rules: a refusal by the second spends none of the first's
    quota, in Redis exactly as in the store."""
    limiter = RedisRateLimiter(REDIS_URL, prefix=prefix)
    store = Store.open(tmp_path)
    t0 = 1_700_000_000.0
    both = [Limit("connect", 3, 60), Limit("disconnect", 1, 60)]
    for hit_all in (limiter.hit_all, store.hit_rate_limits):
        assert hit_all("alice", both, t0) is None
        full = hit_all("alice", both, t0 + 1)
        assert full is not None and full.limit.tool == "disconnect"
        assert full.wait == pytest.approx(59.0, abs=1e-6)
        alone = [Limit("connect", 3, 60)]
        assert [hit_all("alice", alone, t0 + 2) is None for _ in range(3)] == [True, True, False]
    limiter.close()
    store.close()


@pytest.mark.redis
def test_redis_window_slides_and_expires(prefix: str) -> None:
    limiter = RedisRateLimiter(REDIS_URL, prefix=prefix)
    now = time.time()
    assert limiter("alice", "t", 2, 0.5, now) is None
    assert limiter("alice", "t", 2, 0.5, now + 0.2) is None
    assert limiter("alice", "t", 2, 0.5, now + 0.3) == pytest.approx(0.2, abs=1e-6)
    # The first call leaves the window at now + 0.5: room for exactly one more.
    assert limiter("alice", "t", 2, 0.5, now + 0.5) is None
    assert limiter("alice", "t", 2, 0.5, now + 0.6) == pytest.approx(0.1, abs=1e-6)
    ttl = limiter.client.pttl(limiter.key("alice", "t"))
    assert 0 < ttl <= 1500  # the key does not outlive its window by much
    limiter.close()


def test_redis_unreachable_fails_closed_or_falls_back(tmp_path: Path) -> None:
    closed = RedisRateLimiter(closed_port_url())
    started = time.monotonic()
    with pytest.raises(RateLimitUnavailable, match=r"Redis at redis://127\.0\.0\.1"):
        closed("alice", "t", 5, 60, time.time())
    assert time.monotonic() - started < 5
    closed.close()
    store = Store.open(tmp_path)
    fallback = RedisRateLimiter(closed_port_url(), fail="open", fallback=store.hit_rate_limits)
    now = time.time()
    # Open means: counted by this replica's store, never unlimited.
    assert [fallback("alice", "t", 2, 60, now) is None for _ in range(3)] == [True, True, False]
    fallback.close()
    store.close()
    secret = RedisRateLimiter("redis://user:hunter2@127.0.0.1:1/0")
    with pytest.raises(RateLimitUnavailable) as caught:
        secret("alice", "t", 1, 60, now)
    assert "hunter2" not in str(caught.value)
    secret.close()


# --- two replicas, one Redis ------------------------------------------------------------

LIMIT = 50
CALLS = 2000
CLIENTS = 20
TOOL = "odoo_connections"


def limited_policy(path: Path) -> Path:
    return write_policy(
        path,
        policy(odoo_connections={"action": "allow", "rate_limit": {"max": LIMIT, "window": 60}}),
    )


@pytest.mark.redis
async def test_two_replicas_share_one_limit(prefix: str, tmp_path: Path) -> None:
    env = {"MCP_GUARD_REDIS_URL": REDIS_URL, "MCP_GUARD_REDIS_PREFIX": prefix}
    dirs = [tmp_path / "a", tmp_path / "b"]
    for data_dir in dirs:
        data_dir.mkdir()
    with (
        http_guard(dirs[0], limited_policy(dirs[0] / "policy.json"), env=env) as first,
        http_guard(dirs[1], limited_policy(dirs[1] / "policy.json"), env=env) as second,
    ):
        urls = [(first.url, first.token("alice")), (second.url, second.token("alice"))]
        outcomes: list[str] = []

        async def client(number: int) -> None:
            url, token = urls[number % 2]
            async with http_client(url, token) as session:
                for _ in range(CALLS // CLIENTS):
                    result = await session.call_tool("odoo_connections", {})
                    if not result.is_error:
                        outcomes.append("passed")
                    elif (result.structured_content or {}).get("status") == "rate_limited":
                        assert "rate limit for 'odoo_connections' reached" in text_of(result)
                        outcomes.append("limited")
                    else:
                        outcomes.append(f"other: {text_of(result)}")

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            for number in range(CLIENTS):
                tg.start_soon(client, number)
        elapsed = time.monotonic() - started
    assert elapsed < 60, elapsed  # the window never slid during the test
    assert len(outcomes) == CALLS
    assert outcomes.count("passed") == LIMIT, [o for o in outcomes if o.startswith("other")][:3]
    assert outcomes.count("limited") == CALLS - LIMIT
    # Each replica let some through and the two together exactly the limit: one counter.
    passed_by = [
        query(d, "SELECT count(*) FROM audit WHERE tool = ? AND outcome = ?", TOOL, "allowed")[0][0]
        for d in dirs
    ]
    assert sum(passed_by) == LIMIT and min(passed_by) > 0, passed_by


async def test_redis_unreachable_refuses_naming_redis(tmp_path: Path) -> None:
    pol = limited_policy(tmp_path / "policy.json")
    env = {"MCP_GUARD_REDIS_URL": closed_port_url()}
    with http_guard(tmp_path, pol, env=env) as running:
        async with http_client(running.url, running.token("alice")) as session:
            refused = await session.call_tool("odoo_connections", {})
            assert refused.is_error
            assert refused.structured_content == {"status": "unavailable"}
            assert "Redis at redis://127.0.0.1" in text_of(refused)
            assert "rate-limited" in text_of(refused)
            # A tool without a rate limit does not need Redis.
            created = await session.call_tool("odoo_connect", connect_args("nored"))
            assert not created.is_error, text_of(created)


async def test_redis_fail_open_counts_locally(tmp_path: Path) -> None:
    pol = write_policy(
        tmp_path / "policy.json",
        policy(odoo_connections={"action": "allow", "rate_limit": {"max": 2, "window": 60}}),
    )
    env = {"MCP_GUARD_REDIS_URL": closed_port_url(), "MCP_GUARD_REDIS_FAIL": "open"}
    with http_guard(tmp_path, pol, env=env) as running:
        async with http_client(running.url, running.token("alice")) as session:
            results = [await session.call_tool("odoo_connections", {}) for _ in range(3)]
    assert [r.is_error for r in results] == [False, False, True]
    assert results[2].structured_content["status"] == "rate_limited"


# --- /metrics ---------------------------------------------------------------------------


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        metric, _, value = line.rpartition(" ")
        head, _, rest = metric.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if head == name and got == wanted:
            return float(value)
    return 0.0


async def test_metrics_count_decisions(tmp_path: Path) -> None:
    limited = {"action": "allow", "rate_limit": {"max": 2, "window": 60}}
    pol = write_policy(tmp_path / "policy.json", policy(odoo_connections=limited, hide=["odoo_x*"]))
    with http_guard(tmp_path, pol) as running:
        base = running.url.removesuffix("/mcp")
        token = running.token("alice")
        async with http_client(running.url, token) as session:
            for _ in range(3):
                await session.call_tool("odoo_connections", {})
            secret = connect_args("metrics", password="pw-must-not-leak")
            assert not (await session.call_tool("odoo_connect", secret)).is_error
            await session.call_tool("odoo_disconnect", {"alias": "metrics"})
            await session.call_tool("no_such_tool_xyz", {})
            await session.call_tool("bad name!", {})
            await session.call_tool("odoo_x_invented", {})
        with httpx2.Client(timeout=30) as http:
            scraped = http.get(f"{base}/metrics")  # no bearer token needed
            refused_post = http.post(f"{base}/metrics")
            still_guarded = http.post(running.url, json={})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert refused_post.status_code == 405
    assert still_guarded.status_code == 401
    text = scraped.text
    decisions = "mcp_guard_decisions_total"
    assert sample(text, decisions, tool="odoo_connections", outcome="allowed") == 2
    assert sample(text, decisions, tool="odoo_connections", outcome="rate_limited") == 1
    assert sample(text, decisions, tool="odoo_connect", outcome="allowed") == 1
    assert sample(text, decisions, tool="odoo_disconnect", outcome="approval_pending") == 1
    assert sample(text, decisions, tool="unknown", outcome="unknown") == 1
    assert sample(text, decisions, tool="invalid", outcome="invalid") == 1
    assert sample(text, "mcp_guard_approval_requests_total", state="filed") == 1
    assert sample(text, "mcp_guard_call_duration_seconds_count", tool="odoo_connections") == 3
    # Timed by served tool: the unknown and the invented hidden name are both not served.
    assert sample(text, "mcp_guard_call_duration_seconds_count", tool="unknown") == 2
    assert sample(text, "mcp_guard_call_duration_seconds_count", tool="invalid") == 1
    assert sample(text, decisions, tool="hidden", outcome="hidden") == 1
    assert "no_such_tool_xyz" not in text and "bad name" not in text
    assert "odoo_x_invented" not in text
    assert "pw-must-not-leak" not in text and token not in text


# --- JSON logs --------------------------------------------------------------------------


async def test_json_logs_with_request_id_and_no_secrets(tmp_path: Path) -> None:
    pol = write_policy(tmp_path / "policy.json", policy())
    env = {"MCP_GUARD_LOG_FORMAT": "json", "MCP_GUARD_LOG_LEVEL": "DEBUG"}
    password, api_key = f"pw-{uuid.uuid4().hex}", f"key-{uuid.uuid4().hex}"
    with http_guard(tmp_path, pol, env=env) as running:
        async with http_client(running.url, running.token("alice")) as session:
            args = connect_args("logged", password=password, api_key=api_key)
            result = await session.call_tool("odoo_connect", args)
            assert not result.is_error, text_of(result)
            await session.call_tool("odoo_connect", {**args, "url": "not a url"})
        await anyio.sleep(0.3)
        lines = [line for line in running.log.read_text().splitlines() if line.startswith("{")]
    text = running.log.read_text()
    assert password not in text and api_key not in text
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]
    assert records
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
    in_call = [r for r in records if "tools/call odoo_connect by alice" in r["message"]]
    assert len(in_call) == 2, records
    assert all(r["level"] == "DEBUG" and len(r["request_id"]) == 16 for r in in_call)
    assert in_call[0]["request_id"] != in_call[1]["request_id"]


async def test_metrics_count_upstream_errors(tmp_path: Path) -> None:
    document = {
        "version": "1",
        "default": "deny",
        "hide": [],
        "rules": {"noop": {"action": "allow"}, "crash": {"action": "allow"}},
    }
    pol = write_policy(tmp_path / "policy.json", document)
    port = free_port()
    state = tmp_path / "upstream-state.json"
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state), transport="http", port=port)
    with http_process(guard_command(*args), tmp_path, port) as proxy:
        async with http_client(proxy.url, proxy.token("alice")) as session:
            assert not (await session.call_tool("noop", {})).is_error
            lost = await session.call_tool("crash", {})
            assert lost.is_error
        with httpx2.Client(timeout=30) as http:
            text = http.get(f"http://127.0.0.1:{port}/metrics").text
    assert sample(text, "mcp_guard_upstream_errors_total") == 1
    assert sample(text, "mcp_guard_decisions_total", tool="noop", outcome="allowed") == 1
    assert sample(text, "mcp_guard_decisions_total", tool="crash", outcome="failed") == 1
