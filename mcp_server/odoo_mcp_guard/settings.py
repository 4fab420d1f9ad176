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
