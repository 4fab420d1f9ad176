"""The core both halves share (policy_core.py): one copy, and its properties.

The add-on vendors the front-end's file byte for byte (``make sync-core``); the properties
are checked with hypothesis on generated arguments: redaction leaves no value under a
secret-looking key at any depth, never touches the real arguments or their hash, is
idempotent; the canonical hash does not depend on key order.
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.guard import REPO

from odoo_mcp_guard.policy_core import (
    REDACTED,
    arguments_hash,
    canonical_json,
    is_secret_key,
    redact,
    redact_text,
    url_has_credentials,
    value_is_set,
)

FRONT = REPO / "mcp_server" / "odoo_mcp_guard" / "policy_core.py"
VENDORED = REPO / "odoo_addon" / "mcp_guard" / "models" / "policy_core.py"
GOLDEN = REPO / "tests" / "data" / "policy_golden.json"
GOLDEN_VENDORED = REPO / "odoo_addon" / "mcp_guard" / "tests" / "data" / "policy_golden.json"
# Bounded so that each property runs in about a second.
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Keys people use for secrets; each must be recognised whatever its case or separators.
SECRET_KEYS = [
    "password",
    "Password",
    "PASSWORD",
    "db_password",
    "dbPassword",
    "admin-password",
    "pwd",
    "db_pwd",
    "pass",
    "smtp_pass",
    "passwd",
    "passphrase",
    "auth",
    "basic_auth",
    "Authorization",
    "proxy-authorization",
    "token",
    "access_token",
    "refresh_token",
    "accessToken",
    "x-auth-token",
    "secret",
    "client_secret",
    "totp_secret",
    "api_key",
    "apikey",
    "apiKey",
    "X-Api-Key",
    "API_KEY",
    "private_key",
    "aws_secret_access_key",
    "credentials",
    "session_id",
    "cookie",
    "pin",
    "otp",
]
PLAIN_KEYS = [
    "name",
    "alias",
    "url",
    "author",
    "authority",
    "compass",
    "bypass",
    "spinner",
    "db",
    "username",
    "login",
    "model",
    "ids",
    "keyword",
    "passenger",
]
MARK = "Zq9"  # every generated secret contains it; nothing else does


@pytest.mark.parametrize("name", ["policy_core.py", "identity.py"])
def test_the_addon_vendors_the_core_byte_for_byte(name: str) -> None:
    front = FRONT.with_name(name)
    vendored = VENDORED.with_name(name)
    assert front.read_bytes() == vendored.read_bytes(), (
        f"{vendored.relative_to(REPO)} differs from {front.relative_to(REPO)}: run `make sync-core`"
    )


def test_the_addon_vendors_the_golden_corpus_byte_for_byte() -> None:
    assert GOLDEN.read_bytes() == GOLDEN_VENDORED.read_bytes(), (
        f"{GOLDEN_VENDORED.relative_to(REPO)} differs from {GOLDEN.relative_to(REPO)}: "
        "run `make sync-core`"
    )


@pytest.mark.e2e  # a subprocess
def test_make_sync_core_copies_the_front_ends_core(tmp_path: Path) -> None:
    shown = subprocess.run(
        ["make", "-n", "-C", str(REPO), "sync-core"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("policy_core.py", "identity.py"):
        assert f"mcp_server/odoo_mcp_guard/{name}" in shown
        assert f"odoo_addon/mcp_guard/models/{name}" in shown
    assert "cp tests/data/policy_golden.json odoo_addon/mcp_guard/tests/data/" in shown


def test_known_secret_keys_are_secret_and_plain_keys_are_not() -> None:
    assert [key for key in SECRET_KEYS if not is_secret_key(key)] == []
    assert [key for key in PLAIN_KEYS if is_secret_key(key)] == []


@pytest.mark.parametrize(
    "url",
    [
        "https://bob:S3CR3T@erp.example.com",
        "https://S3CR3T@erp.example.com",
        "//bob:S3CR3T@erp.example.com",
        "bob:S3CR3T@erp.example.com",
        "https://erp.example.com/?api_key=S3CR3T",
        "https://erp.example.com/web?db=x&password=S3CR3T",
        "https://erp.example.com/#token=S3CR3T",
    ],
)
def test_urls_carrying_credentials_are_refused(url: str) -> None:
    """One rule with the redaction: a URL the redaction would mask, or with userinfo (also
    scheme-relative), is refused wherever a URL is stored (attack 8, finding 9)."""
    assert url_has_credentials(url)


@pytest.mark.parametrize(
    "url",
    ["https://erp.example.com", "https://erp.example.com:8069/web?db=prod", "http://10.0.0.5/odoo"],
)
def test_plain_urls_are_no_credentials(url: str) -> None:
    assert not url_has_credentials(url)
    assert redact_text(url) == url


@pytest.mark.parametrize(
    "url", ["https://auth.example.com:8069", "https://tokens.example.com:8069/odoo?db=prod"]
)
def test_a_host_named_like_a_secret_key_is_no_credential(url: str) -> None:
    """host:port is no key=value pair: only userinfo and what follows the host are judged."""
    assert not url_has_credentials(url)


def test_the_hash_is_the_contract() -> None:
    """SHA-256 of the canonical JSON: sorted keys, no spaces, UTF-8 (DESIGN.md)."""
    assert canonical_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'
    assert arguments_hash({"alias": "prod"}) == hashlib.sha256(b'{"alias":"prod"}').hexdigest()


def test_strings_carrying_secrets() -> None:
    cases = {
        "https://bob:Zq9pw@erp.example.com/web": "https://bob:***@erp.example.com/web",
        "clone https://Zq9tok@github.com/x.git": "clone https://***@github.com/x.git",
        "redis://:Zq9pw@localhost:6379/0": "redis://:***@localhost:6379/0",
        "https://h/cb?code=1&access_token=Zq9t&x=2": "https://h/cb?code=1&access_token=***&x=2",
        "Authorization: Bearer Zq9abc.def": "Authorization: ***",
        "header Bearer Zq9abc": "header Bearer ***",
        'db_password = "Zq9 with spaces"': 'db_password = "***"',
        "{'password': 'Zq9'}": "{'password': '***'}",
        "host=db user=odoo password=Zq9;": "host=db user=odoo password=***;",
        "plain: author=Ann, https://erp.example.com": (
            "plain: author=Ann, https://erp.example.com"
        ),
    }
    for text, expected in cases.items():
        assert redact_text(text) == expected, text
    nested = redact({"payload": json.dumps({"values": {"pwd": "Zq9"}}), "n": "[1, 2]"})
    assert MARK not in json.dumps(nested) and nested["n"] == "[1, 2]"
    assert json.loads(nested["payload"]) == {"values": {"pwd": REDACTED}}


# --- generated arguments -------------------------------------------------------------------

# A URL's password cannot hold white space, "/", "?" or "#" unencoded (RFC 3986).
secrets = st.text(
    st.characters(exclude_categories=("C", "Z"), exclude_characters="/?#"), max_size=12
).map(lambda tail: MARK + tail)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
any_key = st.one_of(
    st.sampled_from(SECRET_KEYS + PLAIN_KEYS),
    st.text(max_size=12),
)


def _with_secrets(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(any_key, children, max_size=5),
        # a secret where the rule must find it: under a secret key, in a URL, in a JSON string
        st.builds(lambda k, s: {k: s}, st.sampled_from(SECRET_KEYS), secrets),
        st.builds(lambda s: f"see https://user:{s}@host.example/x", secrets),
        st.builds(lambda k, s: json.dumps({k: s}), st.sampled_from(SECRET_KEYS), secrets),
    )


documents = st.recursive(scalars, _with_secrets, max_leaves=25)
arguments = st.dictionaries(any_key, documents, max_size=6)


def _secret_values_left(value: Any) -> list[Any]:
    """Values under a secret-looking key that are not redacted, at any depth."""
    found: list[Any] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if is_secret_key(key) and value_is_set(item) and item != REDACTED:
                found.append((key, item))
            found += _secret_values_left(item)
    elif isinstance(value, list):
        for item in value:
            found += _secret_values_left(item)
    return found


@FAST
@given(arguments)
def test_no_value_is_left_under_a_secret_key(args: dict[str, Any]) -> None:
    shown = redact(args)
    assert _secret_values_left(shown) == []
    # and the generated secrets (under secret keys, in URLs, in JSON strings) are all gone
    assert MARK not in json.dumps(shown, ensure_ascii=False)


@FAST
@given(arguments)
def test_redaction_leaves_the_real_arguments_and_their_hash(args: dict[str, Any]) -> None:
    before = copy.deepcopy(args)
    digest = arguments_hash(args)
    redact(args)
    assert args == before
    assert arguments_hash(args) == digest


@FAST
@given(arguments)
def test_redaction_is_idempotent(args: dict[str, Any]) -> None:
    once = redact(args)
    assert redact(once) == once


@FAST
@given(st.text(max_size=80))
def test_text_redaction_is_idempotent(text: str) -> None:
    once = redact_text(text)
    assert redact_text(once) == once


@FAST
@given(arguments, st.randoms(use_true_random=False))
def test_the_hash_does_not_depend_on_key_order(args: dict[str, Any], rnd: Any) -> None:
    def shuffled(value: Any) -> Any:
        if isinstance(value, dict):
            items = list(value.items())
            rnd.shuffle(items)
            return {key: shuffled(item) for key, item in items}
        if isinstance(value, list):
            return [shuffled(item) for item in value]
        return value

    assert arguments_hash(shuffled(args)) == arguments_hash(args)
    assert canonical_json(shuffled(args)) == canonical_json(args)


@pytest.mark.parametrize(
    "text",
    [
        "x+y " + "a" * 200_000,  # a long word with no encoding, "+" elsewhere
        "@ " + "a://" * 50_000,  # many schemes in one word
        "%41" + "b" * 200_000,
        " ".join(["k%41+z"] * 20_000),
    ],
    ids=["long-word", "many-schemes", "long-encoded-word", "many-encoded-words"],
)
def test_redaction_of_hostile_text_is_linear(text: str) -> None:
    """Encoded words and loose URL userinfo are looked into one word at a time: a pattern that
    searched inside every word from every position took minutes here (now well under 1 s; the
    bound is 40 times that, for a loaded machine)."""
    started = time.perf_counter()
    redact_text(text)
    assert time.perf_counter() - started < 40
