"""The guard's MCP_GUARD_* settings from the environment: every one read through here, so a bad
value is one line naming the variable (a SettingError), never a traceback, never ignored."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable


class SettingError(ValueError):
    """A setting that is refused: one line naming the variable and the fault."""


def env_text(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def env_number(name: str, default: float, *, low: float, high: float) -> float:
    """A finite number of seconds (or the like) in (low, high]; unset or blank: ``default``."""
    raw = env_text(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw[:40]!r}: not a number") from None
    if not math.isfinite(value) or not low < value <= high:
        raise SettingError(f"{name}={raw[:40]!r}: expected a number above {low:g} up to {high:g}")
    return value


def env_count(name: str, default: int, *, low: int, high: int) -> int:
    """A whole number (of bytes, of rounds) in [low, high]; unset or blank: ``default``."""
    raw = env_text(name)
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise SettingError(f"{name}={raw[:40]!r}: expected a whole number from {low} to {high}")
    return int(raw)


def env_choice(name: str, default: str, choices: Iterable[str]) -> str:
    """One of ``choices`` (compared without case); unset or blank: ``default``."""
    allowed = tuple(choices)
    raw = env_text(name)
    if not raw:
        return default
    if raw.lower() not in allowed:
        raise SettingError(f"{name}={raw[:40]!r}: expected one of {', '.join(allowed)}")
    return raw.lower()


def url_problem(url: str) -> str | None:
    """Why ``url`` (an http(s) URL an operator gives: ODOO_URL, --upstream-url) cannot be
    used, in words that do not quote it (it may carry credentials); None: it can. Checked
    as both parsers that will read it do (urllib's and the HTTP client's)."""
    from urllib.parse import urlsplit

    import httpx2

    try:
        parts = urlsplit(url)
        port = parts.port  # reading it checks it: a number from 0 to 65535
        host = parts.hostname
    except ValueError as exc:  # an unclosed IPv6 bracket, a port out of range or not a number
        return f"not a valid URL ({str(exc).split(':')[0]})"
    if parts.scheme not in ("http", "https"):
        return "not an http:// or https:// URL"
    if not host:
        return "not a valid URL (no host)"
    if port == 0:
        return "not a valid URL (port 0)"
    try:
        httpx2.URL(url)
    except (httpx2.InvalidURL, ValueError) as exc:
        return f"not a valid URL ({str(exc).split(':')[0]})"
    return None
