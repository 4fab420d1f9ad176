"""Where rate-limit counters live: the store of this replica (default) or a shared Redis.

A limiter is called as ``limiter(principal, tool, max_calls, window, now)`` and answers
like ``Store.hit_rate_limit``: None if the call may pass, else the seconds to wait.

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
from collections.abc import Callable
from typing import Literal

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from odoo_mcp_guard.policy_core import redact_text

log = logging.getLogger(__name__)

REDIS_URL_ENV = "MCP_GUARD_REDIS_URL"
REDIS_FAIL_ENV = "MCP_GUARD_REDIS_FAIL"
REDIS_PREFIX_ENV = "MCP_GUARD_REDIS_PREFIX"
REDIS_TIMEOUT_SECONDS = 2.0

RateLimiter = Callable[[str, str, int, float, float], "float | None"]
FailMode = Literal["closed", "open"]


class RateLimitUnavailable(Exception):
    """The shared counter cannot be reached; a rate-limited call must not run."""


# KEYS[1] the window's key; ARGV: now, window, max, a member unique to this call.
# Same rule as Store.hit_rate_limit: calls at or before now - window have left the window.
_SLIDING_WINDOW = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return string.format('%.6f', tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
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
        self.script = self.client.register_script(_SLIDING_WINDOW)
        self.where = redact_text(url)  # it goes into messages and logs

    def key(self, principal: str, tool: str) -> str:
        return f"{self.prefix}rate:{json.dumps([principal, tool], ensure_ascii=False)}"

    def __call__(
        self, principal: str, tool: str, max_calls: int, window: float, now: float
    ) -> float | None:
        member = f"{now!r}:{uuid.uuid4().hex}"
        try:
            wait = self.script(
                keys=[self.key(principal, tool)], args=[repr(now), repr(window), max_calls, member]
            )
        except redis.RedisError as exc:
            cause = f"Redis at {self.where} is unreachable: {type(exc).__name__}: {exc}"[:300]
            if self.fail == "open" and self.fallback is not None:
                log.warning("%s; counting in this replica's store instead", cause)
                return self.fallback(principal, tool, max_calls, window, now)
            log.error("%s; rate-limited tools are refused", cause)
            raise RateLimitUnavailable(cause) from None
        return None if wait is None else max(float(wait), 0.001)

    def close(self) -> None:
        self.client.close()


def configured_rate_limiter(local: RateLimiter) -> RedisRateLimiter | None:
    """The Redis limiter if ``MCP_GUARD_REDIS_URL`` is set, else None (``local`` counts)."""
    url = os.environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        return None
    fail = os.environ.get(REDIS_FAIL_ENV, "closed").strip().lower() or "closed"
    if fail not in ("closed", "open"):
        raise ValueError(f"{REDIS_FAIL_ENV}={fail!r}: expected 'closed' or 'open'")
    prefix = os.environ.get(REDIS_PREFIX_ENV, "odoo-mcp-guard:")
    return RedisRateLimiter(url, prefix=prefix, fail=fail, fallback=local)  # type: ignore[arg-type]
