"""Outside round 33 (HIGH): behind the proxy, a 2026-07-28 client's answers to the upstream's
questions named "prod", or left it to the question's default, and the call ended prod with no
approval: the upstream's listing, a string the SDK wraps as ``{"result": "<the JSON>"}``, was
not read, so no alias was known. (An upstream keeping prod in its own request state, sealed by
its SDK, is a limit the README names.) And a list of ``[key, value]`` pairs with anything else
in it was not redacted; secret keys in more languages and spellings. The SDK client ->
``odoo-mcp-guard proxy`` -> tests/asking_upstream.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from support.guard import REPO, proxy_args, proxy_stdio_client, text_of, write_policy

from odoo_mcp_guard.policy_core import is_secret_key, redact

UPSTREAM = REPO / "tests" / "asking_upstream.py"
CONNECTIONS = {"prod": {"url": "https://prod.example.com"}, "staging": {"url": "https://s.io"}}
POLICY = {
    "version": "1",
    "default": "deny",
    "rules": {
        "odoo_connections": {"action": "allow"},
        "odoo_disconnect": {"action": "require_approval"},
        "job_default": {"action": "allow"},
        "job_state": {"action": "allow"},
    },
}


def held(state: Path) -> dict[str, Any]:
    return json.loads(state.read_text(encoding="utf-8"))["connections"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "content"),
    [("job_default", {"target": "prod"}), ("job_default", {}), ("job_default", {"target": ""})],
)
async def test_an_answer_naming_a_connection_or_leaving_it_to_the_upstream_is_judged(
    tmp_path: Path, tool: str, content: dict[str, Any]
) -> None:
    state = tmp_path / "upstream.json"
    state.write_text(json.dumps({"connections": CONNECTIONS, "calls": []}), encoding="utf-8")
    pol = write_policy(tmp_path / "policy.json", POLICY)
    upstream = [sys.executable, str(UPSTREAM), "--state", str(state)]
    args = proxy_args(tmp_path, pol, upstream=upstream, server_name="asking")
    async with proxy_stdio_client(tmp_path, args) as client:
        first = await client.session.call_tool(tool, {"mode": "x"}, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult), first
        answers = {
            key: types.ElicitResult(action="accept", content=content)
            for key in first.input_requests or {}
        }
        result = await client.session.call_tool(
            tool,
            {"mode": "x"},
            input_responses=answers,
            request_state=first.request_state,
            allow_input_required=True,
        )
    assert held(state) == CONNECTIONS, text_of(result)
    assert (result.structured_content or {}).get("status") == "pending", text_of(result)


@pytest.mark.parametrize(
    "value",
    [
        {"x": [["password", "Hunter2-Quokka"], None]},
        [["X-Odoo-Api-Key", "Hunter2-Quokka"], 0],
        {"headers": [["Authorization", "Hunter2-Quokka"], None, "x"]},
        {"header": "Cookie", "content": "sid=Hunter2-Quokka"},
    ],
)
def test_a_pair_is_redacted_whatever_else_its_list_holds(value: Any) -> None:
    assert "Hunter2-Quokka" not in json.dumps(redact(value))


@pytest.mark.parametrize(
    "key",
    [
        "гасло",
        "kodeord",
        "slaptažodis",
        "contrasenya",
        "pasahitza",
        "lykilorð",
        "parool",
        "kata_sandi",
        "秘密",
        "토큰",
        "비번",
        "アクセスキー",
        "creds",
        "hmac",
        "passwrd",
        "pwds",
        "passkey",
        "PHPSESSID",
        "xsrf",
    ],
)
def test_more_secret_keys(key: str) -> None:
    assert is_secret_key(key)
    assert redact({key: "Hunter2-Quokka"}) == {key: "***"}


@pytest.mark.parametrize("key", ["sandwich", "pemberton", "description", "keystone", "content"])
def test_words_that_only_look_alike_are_kept(key: str) -> None:
    assert not is_secret_key(key)
