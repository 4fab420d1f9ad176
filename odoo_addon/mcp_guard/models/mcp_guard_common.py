"""Helpers shared by the MCP Guard models (no model is defined here).

The "privileged" flags are context variables set in Python by the few methods
allowed to change protected data. Unlike ``env.context`` they cannot be sent by
an RPC client, so a client can never switch them on.
"""

import contextlib
import contextvars
import re

# the rules shared byte for byte with the front-end (policy_core.py, ``make sync-core``)
from .policy_core import (  # noqa: F401  pylint: disable=unused-import
    URL_CREDENTIALS_MESSAGE,
    arguments_hash,
    canonical_json,
    redact,
    redact_text,
    url_has_credentials,
)

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
# risk classes of the tool catalog, lowest to highest (DESIGN.md, "Policy document")
RISK_CLASSES = ("read", "write", "destructive", "critical")
RISK_SELECTION = [
    ("read", "Read-only"),
    ("write", "Write"),
    ("destructive", "Destructive"),
    ("critical", "Critical"),
]
DEFAULT_RISK_APPROVAL = ("destructive", "critical")
SERVER_NAME_MAX = 200

# ids of mcp.connection records that consume() is currently allowed to remove
_CONNECTION_REMOVAL = contextvars.ContextVar("mcp_guard_connection_removal", default=frozenset())
# set while the add-on itself writes protected fields (states, decisions)
_INTERNAL_WRITE = contextvars.ContextVar("mcp_guard_internal_write", default=False)


def valid_server_name(name):
    """A catalog server name: 1 to 200 printable characters."""
    return isinstance(name, str) and 0 < len(name) <= SERVER_NAME_MAX and name.isprintable()


def sort_classes(classes):
    """Risk classes in their order, lowest first, without duplicates."""
    return [cls for cls in RISK_CLASSES if cls in set(classes)]


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
