"""Where rate-limit counters live: the store of this replica (default) or a shared Redis.

A call may be governed by several rules, each with its own limit (a replacement of a
connection counts against ``odoo_connect``'s limit and ``odoo_disconnect``'s). They are
charged all or nothing: ``limiter(principal, limits, now)`` counts the call in every window
if each has room, else in none, and answers None or the first full limit with the seconds
to wait (``Store.hit_rate_limits`` and ``RedisRateLimiter.hit_all``, each atomic).

With ``MCP_GUARD_REDIS_URL`` set, every replica counts in the same Redis sorted set per
principal and tool (one round trip per call: a Lua script trims the window, counts, adds
this call if there is room and renews the key's expiry). When Redis cannot be reached the
call is refused (``MCP_GUARD_REDIS_FAIL=closed``, the default) or counted in this
replica's own store (``open``): never unlimited.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from odoo_mcp_guard.policy_core import redact_text
from odoo_mcp_guard.settings import env_choice

log = logging.getLogger(__name__)

REDIS_URL_ENV = "MCP_GUARD_REDIS_URL"
REDIS_FAIL_ENV = "MCP_GUARD_REDIS_FAIL"
REDIS_PREFIX_ENV = "MCP_GUARD_REDIS_PREFIX"
REDIS_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Limit:
    """One rule's limit: at most ``max_calls`` per ``window`` seconds, per principal."""

    tool: str
    max_calls: int
    window: float


@dataclass(frozen=True)
class Full:
    """The limit that refused the call, and the seconds until it has room."""

    limit: Limit
    wait: float


# limiter(principal, limits, now) -> None (counted in every limit) | Full (counted in none)
RateLimiter = Callable[[str, Sequence[Limit], float], "Full | None"]
FailMode = Literal["closed", "open"]


class RateLimitUnavailable(Exception):
    """The shared counter cannot be reached; a rate-limited call must not run."""


# KEYS: one window per limit; ARGV: now, a member unique to this call, then window and max
# of each limit. Same rule as Store.hit_rate_limits: calls at or before now - window have
# left the window; the call is added to every window, or (one is full) to none.
_SLIDING_WINDOWS = """
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[1 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 + 2 * i]) then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return {i, string.format('%.6f', tonumber(oldest[2]) + window - now)}
  end
end
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[1 + 2 * i])
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, math.ceil(window * 1000) + 1000)
end
return false
"""


class RedisRateLimiter:
    """Sliding-window counters shared by every replica that uses the same Redis and prefix."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "odoo-mcp-guard:",
        fail: FailMode = "closed",
        fallback: RateLimiter | None = None,
    ):
        if fail == "open" and fallback is None:
            raise ValueError("MCP_GUARD_REDIS_FAIL=open needs a local counter to fall back on")
        self.prefix = prefix
        self.fail = fail
        self.fallback = fallback
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        self.script = self.client.register_script(_SLIDING_WINDOWS)
        self.where = redact_text(url)  # it goes into messages and logs

    def key(self, principal: str, tool: str) -> str:
        return f"{self.prefix}rate:{json.dumps([principal, tool], ensure_ascii=False)}"

    def __call__(
        self, principal: str, tool: str, max_calls: int, window: float, now: float
    ) -> float | None:
        """One limit alone: None if the call may pass, else the seconds to wait."""
        full = self.hit_all(principal, [Limit(tool, max_calls, window)], now)
        return None if full is None else full.wait

    def hit_all(self, principal: str, limits: Sequence[Limit], now: float) -> Full | None:
        """Count the call in every limit's window, or in none (one script, atomic)."""
        if not limits:
            return None
        member = f"{now!r}:{uuid.uuid4().hex}"
        args: list[object] = [repr(now), member]
        for limit in limits:
            args += [repr(limit.window), limit.max_calls]
        try:
            full = self.script(
                keys=[self.key(principal, limit.tool) for limit in limits], args=args
            )
        except (redis.RedisError, ValueError, TypeError, OSError) as exc:
            # Not only RedisError: an option of the URL (socket_timeout=nan) fails in the
            # socket layer; whatever it is, the cause is named and the call refused.
            what = "is unreachable" if isinstance(exc, redis.RedisError) else "cannot be used"
            cause = f"Redis at {self.where} {what}: {type(exc).__name__}: {exc}"[:300]
            if self.fail == "open" and self.fallback is not None:
                log.warning("%s; counting in this replica's store instead", cause)
                return self.fallback(principal, limits, now)
            log.error("%s; rate-limited tools are refused", cause)
            raise RateLimitUnavailable(cause) from None
        if not full:
            return None
        index, wait = full
        return Full(limits[int(index) - 1], max(float(wait), 0.001))

    def close(self) -> None:
        self.client.close()


def configured_rate_limiter(local: RateLimiter) -> RedisRateLimiter | None:
    """The Redis limiter if ``MCP_GUARD_REDIS_URL`` is set, else None (``local`` counts)."""
    url = os.environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        return None
    fail = env_choice(REDIS_FAIL_ENV, "closed", ("closed", "open"))
    prefix = os.environ.get(REDIS_PREFIX_ENV, "odoo-mcp-guard:")
    return RedisRateLimiter(url, prefix=prefix, fail=cast(FailMode, fail), fallback=local)
