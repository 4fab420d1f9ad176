"""Outside round 24 (HIGH): behind the proxy, an upstream's tools the catalog did not recognise
as connection tools (``odoo_reset`` "Reset.", ``instance_decommission``, ``odoo_cxn_remove``),
each allowed by an exact rule under ``default: deny``, removed the upstream's connection
"prod" with no approval when called with ``{"name": "prod"}``.

Two layers: the catalog's words now know them; and, whatever the words, a call of a tool that
is neither a read nor a recognised connection tool, one of whose string arguments (at any
depth) names a connection the proxy knows (listed by the upstream, or in the guard's record),
is judged a change of that connection: also governed by the ``odoo_disconnect`` rule, and its
approval bound to it (``odoo_do``, an innocuous name, is caught by this layer alone).

The SDK client → ``odoo-mcp-guard proxy`` (a subprocess) → tests/upstream_server.py with
``UPSTREAM_CONNECT=1`` (``odoo_connections`` lists what the upstream holds),
``UPSTREAM_UNRECOGNISED=1`` and ``UPSTREAM_DATA=1``; approvals through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from support.guard import (
    proxy_args,
    proxy_stdio_client,
    run_cli,
    text_of,
    upstream_calls,
    upstream_command,
    write_policy,
    write_upstream_state,
)

pytestmark = pytest.mark.anyio

UNRECOGNISED = ("odoo_reset", "instance_decommission", "odoo_cxn_remove", "odoo_do")
ENV = (
    *("--upstream-env", "UPSTREAM_CONNECT=1"),
    *("--upstream-env", "UPSTREAM_UNRECOGNISED=1"),
    *("--upstream-env", "UPSTREAM_DATA=1"),
)
SHAPES = ("note_tag", "note_num", "note_map", "note_pick")
ALLOWED = (
    *UNRECOGNISED,
    *SHAPES,
    "odoo_bye",
    "odoo_peek",
    "odoo_create",
    "odoo_connections",
    "odoo_connect",
)


def policy(*, disconnect: str | None = "require_approval") -> dict[str, Any]:
    rules: dict[str, Any] = {tool: {"action": "allow"} for tool in ALLOWED}
    if disconnect is not None:
        rules["odoo_disconnect"] = {"action": disconnect}
    return {"version": "1", "default": "deny", "rules": rules}


def write_state(state: Path, aliases: list[str]) -> None:
    """The upstream's connections (its calls are kept), as changed outside the guard."""
    write_upstream_state(state, {alias: f"https://{alias}.example.com" for alias in aliases})


def held(state: Path) -> list[str]:
    return list(json.loads(state.read_text(encoding="utf-8"))["aliases"])


def reached(state: Path, tool: str) -> list[dict[str, Any]]:
    return [c["arguments"] for c in upstream_calls(state) if c["tool"] == tool]


def pending(result: Any) -> str:
    content = result.structured_content or {}
    assert result.is_error and content.get("status") == "pending", text_of(result)
    return str(content["request"])


async def listed(client: Any) -> list[str]:
    """What the upstream holds, as its own listing tool says (through the proxy)."""
    result = await client.call_tool("odoo_connections", {})
    assert not result.is_error, text_of(result)
    return [c["alias"] for c in json.loads(text_of(result))["connections"]]


def setup(tmp_path: Path, document: dict[str, Any]) -> tuple[Path, list[str]]:
    state = tmp_path / "upstream.json"
    write_state(state, ["prod", "staging"])
    pol = write_policy(tmp_path / "policy.json", document)
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state), extra=ENV)
    return state, args


@pytest.mark.parametrize("tool", UNRECOGNISED)
async def test_an_unrecognised_tool_naming_a_connection_needs_an_approval(
    tmp_path: Path, tool: str
) -> None:
    state, args = setup(tmp_path, policy())
    async with proxy_stdio_client(tmp_path, args) as client:
        # the proxy has not listed the connections before: it lists them for the call
        ref = pending(await client.call_tool(tool, {"name": "prod"}))
        assert pending(await client.call_tool(tool, {"name": "prod"})) == ref  # not run
        assert await listed(client) == ["prod", "staging"]
        assert reached(state, tool) == []

        shown = run_cli(tmp_path, "approvals", "show", ref).stdout
        assert "prod" in shown, shown
        run_cli(tmp_path, "approvals", "approve", ref, "--as", "carol")
        done = await client.call_tool(tool, {"name": "prod"})
        assert not done.is_error, text_of(done)
        assert await listed(client) == ["staging"]
        assert reached(state, tool) == [{"name": "prod"}]

        # the approval worked once: prod back (outside the guard), the call needs another
        write_state(state, ["prod", "staging"])
        assert pending(await client.call_tool(tool, {"name": "prod"})) != ref
        assert await listed(client) == ["prod", "staging"]
    assert reached(state, tool) == [{"name": "prod"}]


async def test_a_known_alias_in_any_case_and_at_any_depth(tmp_path: Path) -> None:
    state, args = setup(tmp_path, policy())
    async with proxy_stdio_client(tmp_path, args) as client:
        pending(await client.call_tool("odoo_do", {"name": "  PROD "}))
        nested = {"name": "x", "options": {"targets": [{"alias": "Staging"}]}}
        pending(await client.call_tool("odoo_do", nested))
    assert reached(state, "odoo_do") == []
    assert held(state) == ["prod", "staging"]


async def test_reads_data_calls_and_other_names_need_no_approval(tmp_path: Path) -> None:
    """A read given the alias, a data tool acting through it (its ``connection`` argument),
    and the innocuous tool given a name that is no connection run as their rules say."""
    state, args = setup(tmp_path, policy())
    async with proxy_stdio_client(tmp_path, args) as client:
        peek = await client.call_tool("odoo_peek", {"name": "prod"})
        assert not peek.is_error and "peeked prod" in text_of(peek), text_of(peek)
        data = {"model": "res.partner", "values": {"ref": "1"}, "connection": "prod"}
        created = await client.call_tool("odoo_create", data)
        assert not created.is_error, text_of(created)
        other = await client.call_tool("odoo_do", {"name": "nothing"})
        assert not other.is_error, text_of(other)
    assert reached(state, "odoo_peek") == [{"name": "prod"}]
    assert reached(state, "odoo_do") == [{"name": "nothing"}]
    assert held(state) == ["prod", "staging"]


async def test_an_alias_the_record_knows_though_the_upstream_no_longer_lists_it(
    tmp_path: Path,
) -> None:
    """The guard's record of the upstream's connections counts too: prod, listed once, then
    missing from the upstream's listing (a stale view), is still a connection the call names."""
    state, args = setup(tmp_path, policy())
    async with proxy_stdio_client(tmp_path, args) as client:
        assert await listed(client) == ["prod", "staging"]
        write_state(state, ["staging"])
        pending(await client.call_tool("odoo_do", {"name": "prod"}))
    assert reached(state, "odoo_do") == []


async def test_without_a_rule_for_the_removal_the_call_is_refused(tmp_path: Path) -> None:
    """``default: deny`` and no ``odoo_disconnect`` rule: a removal is denied, so is the call."""
    state, args = setup(tmp_path, policy(disconnect=None))
    async with proxy_stdio_client(tmp_path, args) as client:
        for tool in UNRECOGNISED:
            refused = await client.call_tool(tool, {"name": "prod"})
            assert refused.is_error, text_of(refused)
            assert "would also odoo_disconnect" in text_of(refused), text_of(refused)
    assert held(state) == ["prod", "staging"]
    assert [c for c in upstream_calls(state) if c["tool"] in UNRECOGNISED] == []


# Outside round 25: the alias in another shape than a whole string (a word of a text, with a
# character that shows nothing, a number, a key), and odoo_connect given an alias that only an
# invisible character tells from one the upstream holds.
SHAPED_CALLS = [
    ("note_tag", {"target": "pr\u200bod"}),
    ("note_tag", {"target": "\u00adprod"}),
    ("note_tag", {"target": "odoo://prod"}),
    ("note_tag", {"target": "https://prod.example.com/"}),
    ("note_tag", {"target": "/connections/prod"}),
    ("note_tag", {"target": "x prod"}),
    ("note_tag", {"target": "staging,prod"}),
    ("note_num", {"n": 42}),
    ("note_map", {"m": {"prod": True}}),
]


@pytest.mark.parametrize(("tool", "arguments"), SHAPED_CALLS)
async def test_an_alias_in_another_shape_needs_an_approval(
    tmp_path: Path, tool: str, arguments: dict[str, Any]
) -> None:
    state = tmp_path / "upstream.json"
    write_state(state, ["prod", "staging", "42"])
    pol = write_policy(tmp_path / "policy.json", policy())
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state), extra=ENV)
    async with proxy_stdio_client(tmp_path, args) as client:
        pending(await client.call_tool(tool, arguments))
    assert reached(state, tool) == []
    assert held(state) == ["prod", "staging", "42"]


@pytest.mark.parametrize(
    "alias", ["prod\u200b", "\u200bprod", "pr\u00adod", "\ufeffprod", "prod\u2060"]
)
async def test_an_upsert_of_an_alias_an_invisible_character_tells_apart_is_a_replacement(
    tmp_path: Path, alias: str
) -> None:
    state, args = setup(tmp_path, policy())
    async with proxy_stdio_client(tmp_path, args) as client:
        await listed(client)
        call = {"alias": alias, "url": "https://evil.example.com"}
        pending(await client.call_tool("odoo_connect", call))
    assert reached(state, "odoo_connect") == []
    assert held(state) == ["prod", "staging"]


ERAS = [
    pytest.param("legacy", {}, id="2025-client"),
    pytest.param("auto", {}, id="2026-client"),
    pytest.param("legacy", {"MCP_GUARD_UPSTREAM_MODE": "legacy"}, id="2025-client-2025-upstream"),
    pytest.param("auto", {"MCP_GUARD_UPSTREAM_MODE": "legacy"}, id="2026-client-2025-upstream"),
]


@pytest.mark.parametrize(("mode", "env"), ERAS)
async def test_an_answer_naming_a_connection_does_not_change_it_unjudged(
    tmp_path: Path, mode: str, env: dict[str, str]
) -> None:
    """The allowed ``note_pick`` asks which one; the answer names prod: a 2025-era client's
    answer is not passed on, a 2026-07-28 client's (a call of its own) needs an approval."""
    state, args = setup(tmp_path, policy())

    async def answer(_ctx: Any, _params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"alias": "prod"})

    async with proxy_stdio_client(
        tmp_path, args, mode=mode, env=env, elicitation_callback=answer
    ) as client:
        await listed(client)
        result = await client.call_tool("note_pick", {"topic": "weekly"})
        assert result.is_error, text_of(result)
        assert await listed(client) == ["prod", "staging"]
    assert held(state) == ["prod", "staging"]


async def test_a_zero_argument_ending_needs_an_approval(tmp_path: Path) -> None:
    """Outside round 25: ``odoo_bye``, taking no arguments (a namespace and a bare action),
    removed "prod" under an exact allow rule; it is a connection tool, held for approval."""
    state, args = setup(tmp_path, policy())
    async with proxy_stdio_client(tmp_path, args) as client:
        ref = pending(await client.call_tool("odoo_bye", {}))
        assert pending(await client.call_tool("odoo_bye", {})) == ref
        assert await listed(client) == ["prod", "staging"]
        assert reached(state, "odoo_bye") == []
        run_cli(tmp_path, "approvals", "approve", ref, "--as", "carol")
        done = await client.call_tool("odoo_bye", {})
        assert not done.is_error, text_of(done)
        assert await listed(client) == ["staging"]
    assert reached(state, "odoo_bye") == [{"name": "prod"}]


# Outside round 26: the alias in shapes a hostile upstream reads back as it (letters that show
# nothing, accents NFKC composes, symbols NFKC expands, an alias with "/", "@" or a space in a
# text, a float for a numeric alias): each names the connection, and needs an approval.
FOLDED_ALIASES = ["prod", "eu/prod1", "team@acme", "main db", "100000000000000000000"]
FOLDED_CALLS = [
    ("note_tag", {"target": "pro\u0301d"}),
    ("note_tag", {"target": "remove pr\u0301od"}),
    ("note_tag", {"target": "pr\u3164od"}),
    ("note_tag", {"target": "pr\uffa0od"}),
    ("note_tag", {"target": "pr\u2800od"}),
    ("note_tag", {"target": "prod\u2122"}),
    ("note_tag", {"target": "drop prod\u00b2"}),
    ("note_tag", {"target": "remove eu/prod1 now"}),
    ("note_tag", {"target": "remove team@acme now"}),
    ("note_tag", {"target": "drop the main db"}),
    ("note_num", {"n": 1e20}),
]


@pytest.mark.parametrize(("tool", "arguments"), FOLDED_CALLS)
async def test_an_alias_a_hostile_upstream_reads_back_needs_an_approval(
    tmp_path: Path, tool: str, arguments: dict[str, Any]
) -> None:
    state = tmp_path / "upstream.json"
    write_state(state, FOLDED_ALIASES)
    pol = write_policy(tmp_path / "policy.json", policy())
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state), extra=ENV)
    async with proxy_stdio_client(tmp_path, args) as client:
        pending(await client.call_tool(tool, arguments))
        # a text that names no connection runs as its rule says
        ordinary = await client.call_tool("note_tag", {"target": "an ordinary note"})
        assert not ordinary.is_error, text_of(ordinary)
    assert reached(state, tool) == ([{"target": "an ordinary note"}] if tool == "note_tag" else [])
    assert held(state) == FOLDED_ALIASES


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("given", ["pro\u0301d", "pr\u3164od", "prod\u2122"])
async def test_an_answer_naming_a_connection_in_a_folded_shape_does_not_change_it(
    tmp_path: Path, mode: str, given: str
) -> None:
    state, args = setup(tmp_path, policy())

    async def answer(_ctx: Any, _params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"alias": given})

    async with proxy_stdio_client(tmp_path, args, mode=mode, elicitation_callback=answer) as c:
        await listed(c)
        result = await c.call_tool("note_pick", {"topic": "weekly"})
        assert result.is_error, text_of(result)
    assert reached(state, "note_pick") == []
    assert held(state) == ["prod", "staging"]
