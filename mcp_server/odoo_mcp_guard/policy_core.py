"""The rules both halves must apply identically: the arguments hash and secret redaction.

This file is vendored byte for byte into the Odoo add-on (``make sync-core`` copies it; a
test fails when the copies differ), so it imports the standard library only.

- ``arguments_hash``: SHA-256 (hex) of the canonical JSON (sorted keys, no spaces, UTF-8)
  of the real arguments. Approvals are bound to it; it is never computed on redacted data.
- ``redact``: a copy for storage and display. Recursive through dicts, lists and strings
  holding JSON; a value under a secret-looking key is replaced by ``***``; in every other
  string, URL credentials, secret ``key=value`` pairs and bearer tokens are replaced.
  Idempotent; never mutates its input.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

REDACTED = "***"
# Deeper than this, a value is replaced whole: bounded recursion, and nobody reads it anyway.
MAX_DEPTH = 64

# On the key with everything but letters and digits removed, lower case: "db_password",
# "X-Api-Key", "accessToken", "Authorization" ("author", "authority" are not secrets).
_SECRET_IN_KEY = re.compile(
    r"pass(?:word|wd|phrase|code)|secret|token|api_?key|credential|auth(?!or(?!i[sz]))"
    r"|private_?key|access_?key|session_?id|cookie|bearer",
)
# Short words that are secrets only as a whole word of the key: "pwd", "db_pass",
# "userPin" (not "compass", "bypass", "spinner").
_SECRET_WORDS = frozenset({"pwd", "pw", "pass", "pswd", "passwd", "pin", "otp", "jwt", "sig"})
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")

# scheme://userinfo@host: the userinfo runs to the last "@" before the path.
_URL_USERINFO = re.compile(r"(?i)(?<![a-z0-9+.\-])([a-z][a-z0-9+.\-]*://)([^\s/?#]*)@")
# "key" followed by = or :, optionally with the key quoted; the value is checked apart.
_PAIR = re.compile(r"""(?<![A-Za-z0-9_.\-])([A-Za-z_][A-Za-z0-9_.\-]*)(["']?[ \t]*[:=][ \t]*)""")
# A quoted value (bounded, closing quote optional: never a quadratic scan) or a bare one,
# with an optional authorization scheme ("Bearer abc", "Basic dXNlcg==").
_VALUE = re.compile(
    r""""(?:[^"\\\n]|\\.){0,4096}"?|'[^'\n]{0,4096}'?"""
    r"""|(?i:(?:bearer|basic|token|digest)[ \t]+)?[^\s"'&,;)}\]]+"""
)
_MAX_PASSES = 8
_BEARER = re.compile(r"(?i)\b(bearer)[ \t]+[A-Za-z0-9\-._~+/]+=*")


def canonical_json(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, non-ASCII kept (hash it as UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_bytes(value: Any) -> bytes:
    """The canonical JSON of ``value`` as UTF-8 bytes."""
    return canonical_json(value).encode("utf-8")


def arguments_hash(arguments: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of a call's arguments (the RPC contract)."""
    return hashlib.sha256(canonical_bytes(arguments)).hexdigest()


def is_secret_key(key: object) -> bool:
    """True if a value under this key is to be treated as a secret."""
    text = str(key)
    if _SECRET_IN_KEY.search(_NON_ALNUM.sub("", text.lower())):
        return True
    words = _NON_ALNUM.split(_CAMEL.sub(r"\1_\2", text).lower())
    return any(word in _SECRET_WORDS for word in words)


def _hide_userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match.group(2).partition(":")
    # "user:password@" keeps the user; a lone "token@" may itself be the secret
    return match.group(1) + (user + ":" + REDACTED if colon else REDACTED) + "@"


def redact_text(text: str) -> str:
    """``text`` with URL credentials, secret ``key=value`` pairs and bearer tokens replaced."""
    # One pass can uncover what another rule would then hide (a hidden value was what cut a
    # URL short): repeat until nothing changes, so that redacting twice changes nothing.
    for _ in range(_MAX_PASSES):
        hidden = _redact_text_once(text)
        if hidden == text:
            break
        text = hidden
    return text


def _redact_text_once(text: str) -> str:
    text = _URL_USERINFO.sub(_hide_userinfo, text)
    text = _BEARER.sub(lambda m: m.group(1) + " " + REDACTED, text)
    parts = []
    pos = 0
    while True:
        pair = _PAIR.search(text, pos)
        if pair is None:
            break
        parts.append(text[pos : pair.end()])
        pos = pair.end()
        if not is_secret_key(pair.group(1)):
            continue
        value = _VALUE.match(text, pos)
        if value is None:
            continue
        quote = value.group()[0] if value.group()[0] in "\"'" else ""
        parts.append(quote + REDACTED + quote)
        pos = value.end()
    parts.append(text[pos:])
    return "".join(parts)


def _json_container(text: str) -> dict[str, Any] | list[Any] | None:
    """The object or array a string holds as JSON, else None."""
    if text.lstrip()[:1] not in ("{", "["):
        return None
    try:
        inner = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return inner if isinstance(inner, (dict, list)) else None


def _redact_string(text: str, depth: int) -> str:
    inner = _json_container(text)
    if inner is None:
        return redact_text(text)
    hidden = _redact(inner, depth + 1)
    return text if hidden == inner else json.dumps(hidden, ensure_ascii=False)


def _redact(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        hidden = {}
        for key, item in value.items():
            shown = redact_text(key) if isinstance(key, str) else key
            # the shown key is checked too: redacting twice must not find a new secret key
            secret = is_secret_key(key) or is_secret_key(shown)
            hidden[shown] = REDACTED if secret and value_is_set(item) else _redact(item, depth + 1)
        return hidden
    if isinstance(value, (list, tuple)):
        return [_redact(item, depth + 1) for item in value]
    if isinstance(value, str):
        return _redact_string(value, depth)
    return value


def value_is_set(value: Any) -> bool:
    """Whether a value under a secret key can hold a secret (None, "" and booleans cannot)."""
    return value is not None and value != "" and not isinstance(value, bool)


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret replaced by ``***``, for storage and display."""
    return _redact(value, 0)


URL_CREDENTIALS_MESSAGE = (
    "url must not contain credentials (user:password@host): put them in password or api_key"
)


def url_has_credentials(url: str) -> bool:
    """Whether a URL carries userinfo (``scheme://user:pw@host``): the front-end and the add-on
    refuse such a URL, which would otherwise be shown in clear wherever the URL is."""
    _scheme, sep, rest = url.partition("://")
    authority = rest if sep else url
    for stop in "/?#":
        authority = authority.split(stop, 1)[0]
    return "@" in authority
