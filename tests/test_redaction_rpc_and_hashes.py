"""Redaction leftovers of outside round 27: Odoo's external API written as JSON-RPC data
(``{"service": "object", "method": "execute_kw", "args": [db, uid, "PW", ...]}``, as a
structure and as its JSON text) showed the password, the third positional argument; so did
an htpasswd or LDAP ``{SHA}``/``{SSHA}`` hash. Checked on ``redact`` and ``redact_arguments``
(policy_core: what both halves store and show an approver)."""

from __future__ import annotations

import json

import pytest

from odoo_mcp_guard.policy_core import redact, redact_arguments, redact_text

PW = "Zx9-Q7pw-secret"


def _call(service: str, method: str, args: list) -> dict:
    params = {"service": service, "method": method, "args": args}
    return {"jsonrpc": "2.0", "method": "call", "params": params, "id": 1}


CALLS = [
    _call("object", "execute_kw", ["erp", 2, PW, "res.partner", "read", [[1]]]),
    _call("object", "execute", ["erp", 2, PW, "res.partner", "search", []]),
    _call("common", "login", ["erp", "admin", PW]),
    _call("common", "authenticate", ["erp", "admin", PW, {}]),
    # the params alone, and a list of them (a batch)
    {"service": "object", "method": "execute_kw", "args": ["erp", 2, PW, "res.users", "read"]},
    [_call("common", "login", ["erp", "admin", PW])],
]


@pytest.mark.parametrize("call", CALLS)
def test_the_password_of_an_rpc_call_is_hidden(call: object) -> None:
    for shown in (redact(call), redact_arguments({"request": call})):
        assert PW not in json.dumps(shown), shown
    text = json.dumps(call)
    assert PW not in redact_text(text)
    assert PW not in json.dumps(redact({"body": text}))


def test_the_rest_of_the_call_is_kept() -> None:
    shown = redact(_call("object", "execute_kw", ["erp", 2, PW, "res.partner", "read", [[1]]]))
    assert shown["params"]["args"] == ["erp", 2, "***", "res.partner", "read", [[1]]]
    assert shown["params"]["method"] == "execute_kw"


@pytest.mark.parametrize(
    "data",
    [
        # not Odoo's password-taking calls, or no password there: left as they are
        {"method": "search_read", "args": ["erp", 2, "res.partner"]},
        {"method": "execute_kw", "args": ["erp", 2]},
        {"method": "login", "args": ["erp", "admin"]},
        {"method": "execute_kw", "args": "not a list"},
        {"method": "tools/call", "params": {"name": "odoo_search_read", "args": [1, 2, 3]}},
    ],
)
def test_other_calls_are_left_alone(data: dict) -> None:
    assert redact(data) == data


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("admin:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "admin:***"),
        ("userPassword: {SSHA}DkMTwBl+a/3DQTxCYEApdUtNlGiV1sUA", "userPassword: ***"),
        ("bob:{SSHA512}6ISDkMTwBl+a/3DQTxCYEApdUtNlGiV1sUA7d8r", "bob:***"),
        ("hash is {MD5}X03MO1qnZdYdgyfeuILPmQ== here", "hash is *** here"),
        ("{PBKDF2-SHA256}600000$c2FsdA$aGFzaGhhc2g", "***"),
    ],
)
def test_an_ldap_or_htpasswd_hash_is_hidden(text: str, shown: str) -> None:
    got = redact_text(text)
    assert got == shown, got
    assert redact_text(got) == got


@pytest.mark.parametrize(
    "text", ["the {SHA} scheme is weak", "format: {SSHA}", "use {MD5}x instead", "{SHA}abc"]
)
def test_a_scheme_name_alone_stays(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "sent {'method': 'execute_kw', 'args': ['erp', 2, 'PW', 'res.partner', 'read']}",
        'log: {\\"method\\": \\"login\\", \\"args\\": [\\"erp\\", \\"admin\\", \\"PW\\"]}',
        '{"args": ["erp", uid, "PW", {}], "method": "authenticate"}',
    ],
)
def test_the_password_of_an_rpc_call_in_text_is_hidden(text: str) -> None:
    got = redact_text(text.replace("PW", PW))
    assert PW not in got, got
    assert "erp" in got
    assert redact_text(got) == got


def test_an_odd_method_value_is_no_error() -> None:
    data = {"method": ["execute_kw"], "args": ["erp", 2, "x"]}
    assert redact(data) == data
