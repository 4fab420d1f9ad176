"""Helpers shared by the MCP Guard models (no model is defined here).

The "privileged" flags are context variables set in Python by the few methods
allowed to change protected data. Unlike ``env.context`` they cannot be sent by
an RPC client, so a client can never switch them on.
"""

import contextlib
import contextvars
import hashlib
import json
import re

# exact, ASCII-only names (fullmatch: "$" would let a trailing newline through)
TOOL_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,128}", re.ASCII)
RULE_NAME_RE = re.compile(r"[A-Za-z0-9_.\-*?]{1,128}", re.ASCII)
ACTIONS = ("allow", "deny", "require_approval")
ACTION_SELECTION = [
    ("allow", "Allow"),
    ("deny", "Deny"),
    ("require_approval", "Require approval"),
]
DEFAULT_EXPIRES_IN = 3600
SECRET_KEY_PARTS = ("password", "passwd", "api_key", "apikey", "token", "secret", "credential")
REDACTED = "***"

# ids of mcp.connection records that consume() is currently allowed to remove
_CONNECTION_REMOVAL = contextvars.ContextVar("mcp_guard_connection_removal", default=frozenset())
# set while the add-on itself writes protected fields (states, decisions)
_INTERNAL_WRITE = contextvars.ContextVar("mcp_guard_internal_write", default=False)


def arguments_hash(arguments):
    """Hex SHA-256 of the canonical JSON of the arguments (the RPC contract)."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _is_secret_key(key):
    norm = str(key).lower().replace("-", "_")
    return any(part in norm for part in SECRET_KEY_PARTS)


def redact(value):
    """Copy of ``value`` with every secret-looking key replaced by ``***``."""
    if isinstance(value, dict):
        return {k: (REDACTED if _is_secret_key(k) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


@contextlib.contextmanager
def internal_write():
    token = _INTERNAL_WRITE.set(True)
    try:
        yield
    finally:
        _INTERNAL_WRITE.reset(token)


def is_internal_write():
    return _INTERNAL_WRITE.get()


@contextlib.contextmanager
def allow_connection_removal(ids):
    token = _CONNECTION_REMOVAL.set(frozenset(ids))
    try:
        yield
    finally:
        _CONNECTION_REMOVAL.reset(token)


def removal_allowed_ids():
    return _CONNECTION_REMOVAL.get()
