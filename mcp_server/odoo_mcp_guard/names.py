"""Tool names and argument fingerprints: the two things every decision is keyed on."""

from __future__ import annotations

import unicodedata
from typing import Any

import icu as _icu  # ICU: the TR39 confusable skeleton, Unicode properties

from odoo_mcp_guard.policy_core import TOOL_NAME_RE, arguments_hash, valid_server_name
from odoo_mcp_guard.policy_core import canonical_bytes as canonical_json

# the front-end's names for the shared core (the MCP tool-name alphabet, matched exactly: no
# case folding, no Unicode normalisation, no trimming; a catalog's server name)
__all__ = ["TOOL_NAME_RE", "arguments_hash", "canonical_json", "valid_server_name"]


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


# --- text that reaches a terminal, a store or a comparison ------------------------------


def _default_ignorable(ch: str) -> bool:
    return bool(_icu.Char.hasBinaryProperty(ch, _icu.UProperty.DEFAULT_IGNORABLE_CODE_POINT))


def unsafe_char(ch: str) -> bool:
    """A character that must not reach a terminal or a name as it is: a control (C0, C1,
    ESC), a format character (bidi overrides, zero-width), a line or paragraph separator,
    a space other than U+0020, a private-use, surrogate or unassigned code point, or one
    that Unicode says renders as nothing (default-ignorable: variation selectors, fillers)."""
    return not ch.isprintable() or _default_ignorable(ch)


def find_unsafe(text: str) -> str | None:
    """The first unsafe character of ``text`` (see ``unsafe_char``), or None."""
    return next((ch for ch in text if unsafe_char(ch)), None)


def check_text(value: str, what: str) -> str:
    """A pydantic-style validator body for free text at an input (a connection's db,
    username, url): refuses unsafe characters with a one-line reason naming the first."""
    bad = find_unsafe(value)
    if bad is not None:
        raise ValueError(
            f"{what} contains {bad!a}, a control, format or invisible character; "
            "such characters are refused"
        )
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
    return value


def shown(value: object) -> str:
    """``value`` as it may be printed on an operator's terminal: unsafe characters escaped
    (a newline cannot forge a row, an ESC cannot drive the terminal); the rest as it is."""
    text = value if isinstance(value, str) else str(value)
    if find_unsafe(text) is None:
        return text
    return "".join(ascii(ch)[1:-1] if unsafe_char(ch) else ch for ch in text)


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


# --- identities: who asked, who decides ------------------------------------------------

# The prefixes the guard itself gives principals: ``stdio:<OS user>`` on stdio (frontend.py),
# ``http:`` for a name seen through the HTTP transport. Only these are taken off a name.
TRANSPORT_PREFIXES = ("stdio:", "http:")
MAX_IDENTITY_LENGTH = 128
_SPOOF = _icu.SpoofChecker()


def skeleton(text: str) -> str:
    """The Unicode TR39 confusable skeleton (ICU's SpoofChecker): two strings a reader
    cannot tell apart have the same skeleton ("аlice" with a Cyrillic а, "alıce", "alice")."""
    return str(_SPOOF.getSkeleton(0, text))


def _fold(text: str) -> str:
    """Compatibility forms, case and accents away: "ＡＬＩＣＥ", "Alice", "alice" + U+0301."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) not in ("Mn", "Me"))
    return unicodedata.normalize("NFKC", bare.casefold())


_PREFIX_FORMS = tuple(skeleton(_fold(skeleton(prefix))) for prefix in TRANSPORT_PREFIXES)


def _identity_key(text: str) -> str:
    # The skeleton first, so that skeleton-equal names always give equal keys; then case and
    # accents, and the skeleton again (folding can make new look-alikes: "I" -> "i").
    form = skeleton(_fold(skeleton(text)))
    while True:
        prefix = next((p for p in _PREFIX_FORMS if form.startswith(p)), None)
        if prefix is None:
            break
        form = form[len(prefix) :]
    # Spacing and punctuation do not tell people apart ("a.lice", "al ice").
    return "".join(ch for ch in form if ch.isalnum())


def identity_keys(name: str) -> frozenset[str]:
    """The forms a name is compared under: from its skeleton, and from its case-folded form
    (the TR39 skeleton keeps case: "ALICE" and "alice" differ there)."""
    return frozenset({_identity_key(name), _identity_key(_fold(name))})


def check_identity(name: object) -> str | None:
    """None for a name that can be compared (a principal or an approver), else a one-line
    reason: empty, too long, or with a control, format or invisible character."""
    if not isinstance(name, str):
        return f"a name must be a string, got {type(name).__name__}"
    if not name.strip():
        return "the name is empty"
    if len(name) > MAX_IDENTITY_LENGTH:
        return f"the name is {len(name)} characters long; at most {MAX_IDENTITY_LENGTH}"
    bad = find_unsafe(name)
    if bad is not None:
        return f"the name contains {bad!a}, a control, format or invisible character"
    if not all(identity_keys(name)):
        return "the name has no letter or digit of its own"
    return None


def check_approver(name: object) -> str | None:
    """``check_identity``, and a person's name: a colon only after a transport prefix, so
    that "x:alice" is not a way for alice to sign as someone else."""
    problem = check_identity(name)
    if problem is not None:
        return problem
    assert isinstance(name, str)
    form = skeleton(_fold(name.strip()))  # "：" and "∶" are colons too
    prefix = next((p for p in _PREFIX_FORMS if form.startswith(p)), "")
    if ":" in form[len(prefix) :]:
        known = ", ".join(TRANSPORT_PREFIXES)
        return f"the name has a prefix that is not a transport's ({known}): use the plain name"
    return None


class IdentityError(ValueError):
    """A name that cannot be compared: it is refused, never guessed at."""


def same_person(first: str, second: str) -> bool:
    """THE comparison of two identities (requester and approver): as a person reads them,
    after a known transport prefix, on their TR39 skeleton, case and accents aside.
    A name that is empty or unprintable raises IdentityError: it is not compared."""
    for name in (first, second):
        problem = check_identity(name)
        if problem is not None:
            raise IdentityError(f"{shown(name)!r}: {problem}")
    return first == second or bool(identity_keys(first) & identity_keys(second))
