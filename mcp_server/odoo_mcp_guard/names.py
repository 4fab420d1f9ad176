"""Tool names and argument fingerprints: the two things every decision is keyed on."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from odoo_mcp_guard.identity import (
    MAX_IDENTITY_LENGTH,
    TRANSPORT_PREFIXES,
    IdentityError,
    check_approver,
    check_decider,
    check_identity,
    find_unsafe,
    identity_keys,
    is_listed,
    plain_name_problem,
    same_person,
    secret_problem,
    shown,
    skeleton,
    text_problem,
    unsafe_char,
)
from odoo_mcp_guard.policy_core import (
    TOOL_NAME_RE,
    URL_CREDENTIALS_MESSAGE,
    arguments_hash,
    url_has_credentials,
    valid_server_name,
)
from odoo_mcp_guard.policy_core import canonical_bytes as canonical_json

# the front-end's names for the shared cores: policy_core.py (the MCP tool-name alphabet, matched
# exactly: no case folding, no Unicode normalisation, no trimming; a catalog's server name) and
# identity.py (who asked, who decides)
__all__ = [
    "MAX_IDENTITY_LENGTH",
    "TOOL_NAME_RE",
    "TRANSPORT_PREFIXES",
    "IdentityError",
    "arguments_hash",
    "canonical_json",
    "check_approver",
    "check_decider",
    "check_identity",
    "find_unsafe",
    "identity_keys",
    "is_listed",
    "same_person",
    "shown",
    "skeleton",
    "text_problem",
    "unsafe_char",
    "valid_server_name",
]


# The name ``serve`` keeps its own tools and approvals under: no proxy may take it.
GUARD_SERVER_NAME = "odoo-mcp-guard"


def server_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a --server-name, in a few words, or None. It names the server
    approvals are bound to and approvers read: 1 to 200 printable characters, a plain name
    (letters and digits of one script, a space and . - _ @ +; so never a derived name,
    which holds "~"), not serve's own name in any spelling a reader would take for it."""
    if not valid_server_name(name):
        return "must be 1 to 200 printable characters"
    if name != name.strip():
        return "must not start or end with a space"
    plain = "must be a plain name (letters and digits of one script, a space and . - _ @ +)"
    form = unicodedata.normalize("NFKC", name).casefold()
    if ":" in form:  # plain_name_problem reads "stdio:x" as x
        return f"{plain}: it contains ':'"
    problem = plain_name_problem(name)
    if problem is not None:
        return f"{plain}: it " + problem.removeprefix("the name ").split(";")[0]
    if skeleton(re.sub(r"[\s._-]+", "-", form)) == skeleton(GUARD_SERVER_NAME):
        return f"must not be {GUARD_SERVER_NAME!r}: the name of the guard's own server (serve)"
    return None


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
    """A tool name as it may be shown in a message or stored in the audit: escaped, bounded.
    A name that is not text is shown by its kind alone: what it holds may be anything, a
    password under a key included (outside round 23)."""
    text = name if isinstance(name, str) else f"<{type(name).__name__}>"
    shown = ascii(text[:limit])[1:-1]
    return shown + ("…" if len(text) > limit else "")


# --- text that reaches a terminal, a store or a comparison ------------------------------


def check_text(value: str, what: str) -> str:
    """A pydantic-style validator body for free text at an input (a connection's db,
    username, url): refuses unsafe characters with a one-line reason naming the first."""
    problem = text_problem(value, what)
    if problem is not None:
        raise ValueError(problem)
    return value


def check_secret(value: str | None, what: str) -> str | None:
    """A pydantic-style validator body for a password or an API key (identity.secret_problem,
    the add-on's rule too): text without NUL; nothing else of it is judged."""
    if value is not None and (problem := secret_problem(value, what)) is not None:
        raise ValueError(problem)
    return value


def check_url(value: str) -> str:
    """The one check of an Odoo URL, wherever one comes in (odoo_connect, connections import):
    http:// or https:// with a host, no spaces, no unsafe characters."""
    check_text(value, "url")
    if any(ch.isspace() for ch in value):
        raise ValueError("url must be an http:// or https:// URL without spaces")
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or rest[0] in "/?#@:":
        raise ValueError("url must be an http:// or https:// URL with a host")
    if url_has_credentials(value):
        raise ValueError(URL_CREDENTIALS_MESSAGE)
    return value


def json_shown(text: str) -> str:
    """JSON text with every unsafe character inside its strings written as a \\u escape:
    still the same JSON, but nothing in it acts on a terminal."""
    if find_unsafe(text.replace("\n", "").replace(" ", "")) is None:
        return text

    def escape(ch: str) -> str:
        code = ord(ch)
        if code <= 0xFFFF:
            return f"\\u{code:04x}"
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"

    # Outside strings json.dumps writes only ASCII, newlines and spaces: both kept.
    return "".join(escape(ch) if ch not in "\n " and unsafe_char(ch) else ch for ch in text)
