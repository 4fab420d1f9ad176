"""Tool names and argument fingerprints: the two things every decision is keyed on."""

from __future__ import annotations

import re
from typing import Any

from odoo_mcp_guard.policy_core import arguments_hash
from odoo_mcp_guard.policy_core import canonical_bytes as canonical_json

__all__ = ["arguments_hash", "canonical_json"]  # the front-end's names for the shared core

# The MCP tool-name alphabet. Matching is exact: no case folding, no Unicode
# normalisation, no trimming, so a look-alike name can never reach a rule.
TOOL_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,128}", re.ASCII)
# The name a front-end keeps its tool catalog under: 1 to 200 characters, no control ones.
SERVER_NAME_RE = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


def check_tool_name(name: object) -> str | None:
    """Return None for a valid tool name, else a one-line reason."""
    if not isinstance(name, str):
        return f"tool name must be a string, got {type(name).__name__}"
    if not name:
        return "tool name is empty"
    if len(name) > 128:
        return f"tool name is {len(name)} characters long; at most 128 are allowed"
    if not TOOL_NAME_RE.fullmatch(name):
        bad = next(ch for ch in name if not TOOL_NAME_RE.fullmatch(ch))
        return f"tool name contains {bad!a}, outside the MCP tool-name alphabet [A-Za-z0-9_.-]"
    return None


def arguments_digest(arguments: Any) -> str:
    """``arguments_hash`` for the audit: "-" when the arguments are not plain JSON."""
    try:
        return arguments_hash(arguments)
    except (TypeError, ValueError):
        return "-"


def printable_name(name: object, limit: int = 80) -> str:
    """A tool name as it may be shown in a message or stored in the audit: escaped, bounded."""
    text = name if isinstance(name, str) else repr(name)
    shown = ascii(text[:limit])[1:-1]
    return shown + ("…" if len(text) > limit else "")
