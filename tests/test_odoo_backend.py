"""Odoo as the guard's backend, end to end: a real Odoo with ``mcp_guard``, real PostgreSQL,
the front-end as a subprocess spoken to with the SDK client, approvers acting over Odoo's
external API. Every test runs once per series: against Odoo 18 the guard speaks XML-RPC,
against Odoo 19 JSON-2 (found by asking the server), and Odoo 19's log must then hold no
deprecation warning of /xmlrpc or /jsonrpc.

Where a series is not found its tests are skipped with the loud reason of the harness: NOT RUN.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from odoo_live import LiveOdoo, OdooFault, check_no_deprecated_endpoint
from support import live as live_support
from support.guard import EFFECT_WAIT, db_path, guard_command, guard_env, query, text_of, within
from support.live import OWNER, data_connection, shared_connection

pytestmark = [pytest.mark.anyio]
live = live_support.live  # the running Odoo of each series (a module fixture)

APPROVER = ("alice", "alice-pw-1234")


@pytest.fixture(autouse=True)
def no_deprecated_endpoint(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    check_no_deprecated_endpoint(request)


def odoo_client(data_dir: Path, live: LiveOdoo, *, principal: str, **kwargs: Any) -> Client:
    return live.client(data_dir, principal=principal, **kwargs)


def credentials(live: LiveOdoo, login: str, password: str) -> dict[str, str]:
    """How a connection signs in as ``login``: its password over XML-RPC (18), its API key
    over JSON-2 (19, which takes no password)."""
    if live.json2:
        return {"api_key": live.keys[login], "protocol": "json2"}
    return {"password": password}


async def ok(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> dict:
    result = await client.call_tool(tool, arguments or {})
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content


async def refused(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, text_of(result)
    text = text_of(result)
    assert "Traceback" not in text
    return text


async def pending(client: Client, tool: str, arguments: dict[str, Any]) -> tuple[str, int]:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, text_of(result)
    assert result.structured_content and result.structured_content["status"] == "pending"
    assert "Odoo" in text_of(result)
    return result.structured_content["request"], result.structured_content["id"]


def request(live: LiveOdoo, ref: str) -> dict[str, Any]:
    rows = live.admin(
        "mcp.approval.request",
        "search_read",
        [["name", "=", ref]],
        fields=["state", "tool", "principal", "connection_alias"],
    )
    assert len(rows) == 1
    return rows[0]


async def test_disconnect_is_approved_in_odoo_and_runs_once(tmp_path: Path, live: LiveOdoo):
    alias = "flow"
    async with odoo_client(tmp_path, live, principal="agent-flow") as client:
        created = await ok(client, "odoo_connect", data_connection(live, alias))
        assert created["created"] is True
        assert live.admin("mcp.connection", "search_count", [["alias", "=", alias]]) == 1
        listed = await ok(client, "odoo_connections")
        assert alias in [c["alias"] for c in listed["connections"]]
        assert live.data_key not in json.dumps(listed)

        ref, request_id = await pending(client, "odoo_disconnect", {"alias": alias})
        assert request(live, ref) | {"id": 0} == {
            "id": 0,
            "state": "pending",
            "tool": "odoo_disconnect",
            "principal": "agent-flow",
            "connection_alias": alias,
        }
        # Asking again does not file a second request.
        assert (await pending(client, "odoo_disconnect", {"alias": alias}))[0] == ref

        # The Agent user cannot approve its own request, over XML-RPC as over anything.
        with pytest.raises(OdooFault):
            live.rpc(
                "mcp-agent", live.agent_key, "mcp.approval.request", "action_approve", [request_id]
            )
        assert request(live, ref)["state"] == "pending"
        live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [request_id])
        assert request(live, ref)["state"] == "approved"

        removed = await ok(client, "odoo_disconnect", {"alias": alias})
        assert removed == {"alias": alias, "removed": True}
        assert live.admin("mcp.connection", "search_count", [["alias", "=", alias]]) == 0
        assert request(live, ref)["state"] == "done"

        # A replay finds nothing to remove: refused at once, and no request is filed.
        text = await refused(client, "odoo_disconnect", {"alias": alias})
        assert f"There is no connection named '{alias}'" in text
        assert (
            live.admin("mcp.approval.request", "search_count", [["connection_alias", "=", alias]])
            == 1
        )
        assert "flow" not in [
            c["alias"] for c in (await ok(client, "odoo_connections"))["connections"]
        ]


async def test_policy_change_in_odoo_reaches_the_front_end(tmp_path: Path, live: LiveOdoo):
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(getattr(message, "root", message), types.ToolListChangedNotification):
            changed.set()

    rule_id = live.admin("mcp.tool.rule", "search", [["name", "=", "odoo_fields_get"]])[0]
    async with odoo_client(
        tmp_path, live, principal="agent-policy", mode="legacy", message_handler=on_message
    ) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        assert "odoo_fields_get" in names
        try:
            live.admin("mcp.tool.rule", "write", [rule_id], {"hidden": True})
            # The front-end polls every 0.5 s; the bound is for a loaded machine, not a speed claim.
            with anyio.fail_after(60):
                await changed.wait()
            assert "odoo_fields_get" not in [t.name for t in (await client.list_tools()).tools]
            text = await refused(client, "odoo_fields_get", {"model": "res.partner"})
            assert "hidden" in text

            live.admin(
                "mcp.tool.rule",
                "write",
                [rule_id],
                {"hidden": False, "action": "deny", "reason": "maintenance window"},
            )
            with anyio.fail_after(10):
                while True:
                    result = await client.call_tool("odoo_fields_get", {"model": "res.partner"})
                    if result.is_error and "maintenance window" in text_of(result):
                        break
                    await anyio.sleep(0.2)
        finally:
            live.admin(
                "mcp.tool.rule",
                "write",
                [rule_id],
                {"hidden": False, "action": "allow", "reason": False},
            )


async def test_odoo_stopped_fails_closed_and_the_audit_is_spooled(tmp_path: Path, live: LiveOdoo):
    alias = "down"
    env = {"MCP_GUARD_POLICY_MAX_AGE": "6"}
    async with odoo_client(tmp_path, live, principal="agent-down", env=env) as client:
        await ok(client, "odoo_connect", data_connection(live, alias))
        await ok(client, "odoo_connections")
        live.stop()
        try:
            stopped = time.monotonic()
            text = await refused(client, "odoo_disconnect", {"alias": alias})
            assert "Odoo" in text and "unreachable" in text, text
            # An allowed call on the cached policy and connections is still served...
            cached = await ok(client, "odoo_connections")
            assert alias in [c["alias"] for c in cached["connections"]]
            # ...until the policy is older than its maximum age: then everything is refused.
            await anyio.sleep(max(0.0, 6.5 - (time.monotonic() - stopped)))
            text = await refused(client, "odoo_connections", {})
            assert "older than the 6 s allowed" in text, text
        finally:
            live.start()
        with anyio.fail_after(30):
            while (await client.call_tool("odoo_connections", {})).is_error:
                await anyio.sleep(0.3)
        # The spool flushes in order; Odoo ends with exactly the decisions that were made.
        with anyio.fail_after(30):
            while query(tmp_path, "SELECT count(*) FROM audit WHERE exported = 0")[0][0]:
                await anyio.sleep(0.3)
        local = query(tmp_path, "SELECT count(*) FROM audit")[0][0]
        in_odoo = live.admin("mcp.audit.log", "search_count", [["principal", "=", "agent-down"]])
        assert local >= 6
        assert in_odoo == local
        unavailable = live.admin(
            "mcp.audit.log",
            "search_count",
            [["principal", "=", "agent-down"], ["outcome", "=", "unavailable"]],
        )
        assert unavailable >= 2


async def test_an_event_odoo_refuses_for_good_does_not_hold_back_the_spool(
    tmp_path: Path, live: LiveOdoo
):
    """After an outage longer than Odoo keeps audit events (30 days), the oldest spooled event
    is refused by Odoo for good: it stays in the local spool, marked, and every later event
    still reaches Odoo (it used to be retried first, forever, holding back all the rest)."""
    principal = "agent-old-spool"
    async with odoo_client(tmp_path, live, principal=principal) as client:
        await ok(client, "odoo_connections")
    # the spool as a guard left it after 40 days without Odoo: one event not yet exported
    old = "2000-01-01T00:00:00Z"
    rows = query(tmp_path, "SELECT uuid FROM audit ORDER BY id LIMIT 1")
    assert rows
    with sqlite3.connect(db_path(tmp_path)) as db:
        db.execute(
            """INSERT INTO audit (uuid, time, principal, tool, arguments_hash, outcome, detail,
                   request_ref, exported)
               SELECT 'old-' || uuid, ?, principal, tool, arguments_hash, outcome, detail,
                   request_ref, 0 FROM audit WHERE uuid = ?""",
            (old, rows[0][0]),
        )
    async with odoo_client(tmp_path, live, principal=principal) as client:
        await ok(client, "odoo_connections")
        with anyio.fail_after(30):
            while query(tmp_path, "SELECT count(*) FROM audit WHERE exported = 0")[0][0]:
                await anyio.sleep(0.3)
    assert query(tmp_path, "SELECT exported FROM audit WHERE time = ?", old) == [(2,)]
    local = query(tmp_path, "SELECT count(*) FROM audit WHERE exported = 1")[0][0]
    in_odoo = live.admin("mcp.audit.log", "search_count", [["principal", "=", principal]])
    assert local >= 2 and in_odoo == local


async def test_data_tools_on_a_configured_connection(tmp_path: Path, live: LiveOdoo):
    alias = "data"
    async with odoo_client(tmp_path, live, principal="agent-data") as client:
        await ok(client, "odoo_connect", data_connection(live, alias))
        found = await ok(
            client,
            "odoo_search_read",
            {
                "alias": alias,
                "model": "res.partner",
                "domain": [["name", "like", "Bench Partner"]],
                "fields": ["name", "email"],
                "limit": 80,
                "order": "name asc",
            },
        )
        assert found["count"] == 80
        assert found["records"][0]["name"] == "Bench Partner 000"
        ids = [record["id"] for record in found["records"][:2]]

        read = await ok(
            client,
            "odoo_read",
            {"alias": alias, "model": "res.partner", "ids": [*ids, 999999], "fields": ["email"]},
        )
        assert [r["id"] for r in read["records"]] == ids
        assert read["missing_ids"] == [999999]

        fields = await ok(client, "odoo_fields_get", {"alias": alias, "model": "res.partner"})
        assert fields["fields"]["email"]["type"] == "char"

        text = await refused(
            client, "odoo_search_read", {"alias": alias, "model": "ir.config_parameter"}
        )
        assert "AccessError" in text
        text = await refused(
            client,
            "odoo_search_read",
            {"alias": alias, "model": "res.partner", "domain": [["no_such_field", "=", 1]]},
        )
        assert "no_such_field" in text
        text = await refused(
            client, "odoo_read", {"alias": "nowhere", "model": "res.partner", "ids": [1]}
        )
        assert "no connection named 'nowhere'" in text

        # Writes need an approval by default: the partner is unchanged until then.
        ref, _ = await pending(
            client,
            "odoo_write",
            {"alias": alias, "model": "res.partner", "ids": ids[:1], "values": {"city": "Brugge"}},
        )
        assert request(live, ref)["tool"] == "odoo_write"
        city = live.admin("res.partner", "read", ids[:1], fields=["city"])[0]["city"]
        assert city == "Gent"


def test_both_halves_ship_the_same_default_policy(live: LiveOdoo):
    from odoo_mcp_guard.policy import BUILTIN_POLICY

    document = live.admin("mcp.tool.rule", "get_policy_document")
    assert document["policy"] == BUILTIN_POLICY.to_json_dict()


async def test_replacing_a_connection_goes_through_approval_in_odoo(tmp_path: Path, live: LiveOdoo):
    alias = "replace"
    async with odoo_client(tmp_path, live, principal="agent-replace") as client:
        await ok(client, "odoo_connect", data_connection(live, alias))
        replacement = {**data_connection(live, alias), "url": "http://127.0.0.1:1"}
        ref, request_id = await pending(client, "odoo_connect", replacement)
        urls = live.admin("mcp.connection", "search_read", [["alias", "=", alias]], fields=["url"])
        assert [row["url"] for row in urls] == [live.url]  # untouched while pending

        live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [request_id])
        replaced = await ok(client, "odoo_connect", replacement)
        assert replaced["alias"] == alias
        urls = live.admin("mcp.connection", "search_read", [["alias", "=", alias]], fields=["url"])
        assert [row["url"] for row in urls] == ["http://127.0.0.1:1"]
        assert request(live, ref)["state"] == "done"
        # The approval was for that exact replacement: another one needs its own.
        other = {**data_connection(live, alias), "url": "http://127.0.0.1:2"}
        assert (await pending(client, "odoo_connect", other))[0] != ref


async def test_odoo_settings_from_a_config_file(tmp_path: Path, live: LiveOdoo):
    config = tmp_path / "guard.toml"
    config.write_text(
        f'[odoo]\nurl = "{live.url}"\ndb = "{live.db}"\nusername = "mcp-agent"\n'
        f'api_key = "{live.agent_key}"\n'
    )
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "odoo_mcp_guard",
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            "--odoo-config",
            str(config),
        ],
        env={k: v for k, v in guard_env(tmp_path / "data").items() if not k.startswith("ODOO_")},
    )
    async with Client(params, read_timeout_seconds=60) as client:
        listed = await ok(client, "odoo_connections")
        assert isinstance(listed["connections"], list)
        # Odoo itself answers: it files no request for an alias it does not know
        text = await refused(client, "odoo_disconnect", {"alias": "nothing-here"})
        assert "no connection named 'nothing-here'" in text  # nothing to approve
        await ok(client, "odoo_connect", data_connection(live, "from-config"))
        text = await refused(client, "odoo_disconnect", {"alias": "from-config"})
        assert "Approval required" in text and "in Odoo" in text


def odoo_cli(live: LiveOdoo, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it beside a front-end on Odoo: the same ODOO_* settings."""
    return subprocess.run(
        guard_command(*args),
        env=guard_env(data_dir, **live.guard_env()),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def odoo_time(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


async def test_the_cli_shows_what_is_in_odoo_and_defers_decisions_to_it(
    tmp_path: Path, live: LiveOdoo
):
    alias = "cli-view"
    async with odoo_client(tmp_path, live, principal="agent-cli") as client:
        await ok(client, "odoo_connect", data_connection(live, alias))
        ref, request_id = await pending(client, "odoo_disconnect", {"alias": alias})

    # approvals list shows Odoo's requests (this data directory never held one).
    listing = odoo_cli(live, tmp_path, "approvals", "list")
    assert listing.returncode == 0, listing.stderr
    line = next(row for row in listing.stdout.splitlines() if row.startswith(ref))
    assert "pending" in line and "odoo_disconnect" in line and "agent-cli" in line
    connections = odoo_cli(live, tmp_path, "connections", "list")
    assert alias in connections.stdout

    # Decided in Odoo: the CLI shows Odoo's decider and Odoo's expiry, nothing made up.
    live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [request_id])
    shown = odoo_cli(live, tmp_path, "approvals", "show", ref, "--json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    [row] = live.admin(
        "mcp.approval.request", "read", [request_id], ["expires_at", "decision_date"]
    )
    assert detail["state"] == "approved"
    assert detail["decided_by"] == "Alice Approver"
    assert detail["expires_at"] == odoo_time(row["expires_at"])
    assert detail["decided_at"] == odoo_time(row["decision_date"])
    assert detail["arguments"] == {"alias": alias}

    # Local-only actions are refused in one line naming where they are done; Odoo unchanged.
    action = f"{live.url}/odoo/action-mcp_guard.mcp_approval_request_action"
    for args in (
        ("approvals", "approve", ref, "--as", "bob"),
        ("approvals", "reject", ref, "--as", "bob"),
        ("approvals", "cancel", ref, "--as", "bob"),
    ):
        refused_here = odoo_cli(live, tmp_path, *args)
        assert refused_here.returncode == 2
        assert refused_here.stdout == ""
        assert refused_here.stderr == (
            f"odoo-mcp-guard: error: approvals are decided in Odoo: {action}/{request_id}\n"
        )
    assert request(live, ref)["state"] == "approved"
    accept = odoo_cli(live, tmp_path, "tools", "accept", "odoo_disconnect")
    assert accept.returncode == 2
    assert accept.stderr == (
        "odoo-mcp-guard: error: tool definitions are accepted in Odoo: "
        f"{live.url}/odoo/action-mcp_guard.mcp_tool_action\n"
    )


async def test_data_tools_never_return_secrets(tmp_path: Path, live: LiveOdoo):
    """A connection whose Odoo user is the administrator still hands the agent no password or
    API key of another connection: Odoo refuses the secret fields to anyone but the Agent
    group, and whatever comes back passes the one redaction rule."""
    secrets = ["Pw-data-secret-1", "Key-data-secret-2"]
    victim = live.admin(
        "mcp.connection",
        "create",
        {
            "alias": "victim",
            "url": "https://erp.example.com",
            "db": "erp",
            "login": "bot",
            "new_password": secrets[0],
            "new_api_key": secrets[1],
        },
    )
    alias = "manager"
    # a Manager other than admin: a login that is its password ("admin") is refused when stored
    manager = {"alias": alias, "url": live.url, "db": live.db, "username": "mia"}
    async with odoo_client(tmp_path, live, principal="agent-secrets") as client:
        await ok(client, "odoo_connect", {**manager, **credentials(live, "mia", "mia-pw-1234")})
        fields = ["alias", "url", "password", "api_key"]
        read = await client.call_tool(
            "odoo_read",
            {"alias": alias, "model": "mcp.connection", "ids": [victim], "fields": fields},
        )
        assert [s for s in secrets if s in read.model_dump_json()] == []
        found = await ok(
            client,
            "odoo_search_read",
            {"alias": alias, "model": "mcp.connection", "domain": [["id", "=", victim]]},
        )
        assert [s for s in secrets if s in json.dumps(found)] == []
        record = found["records"][0]
        assert record["alias"] == "victim"
        assert record.get("password") in (None, "***") and record.get("api_key") in (None, "***")


async def test_data_tools_redact_secrets_the_odoo_user_may_read(tmp_path: Path, live: LiveOdoo):
    """A connection whose Odoo user may read other connections' secrets (only the Agent group
    may: here the mcp-agent user itself, with a connection shared with it) still hands the
    agent no password or API key (a URL with credentials is refused when stored:
    test_rpc_attacks test_03)."""
    secrets = ["Pw-data-secret-1", "Key-data-secret-2"]
    agent_id = live.admin("res.users", "search", [["login", "=", "mcp-agent"]])[0]
    victim = live.admin(
        "mcp.connection",
        "create",
        {
            "alias": "victim-shared",
            "url": "https://erp.example.com",
            "db": "erp",
            "login": "bot",
            "new_password": secrets[0],
            "new_api_key": secrets[1],
            "agent_user_ids": [(4, agent_id)],
        },
    )
    alias = "as-agent"
    reader = {"alias": alias, "url": live.url, "db": live.db, "username": "mcp-agent"}
    async with odoo_client(tmp_path, live, principal="agent-secrets") as client:
        await ok(
            client, "odoo_connect", {**reader, **credentials(live, "mcp-agent", "agent-pw-1234")}
        )
        fields = ["alias", "url", "password", "api_key"]
        read = await ok(
            client,
            "odoo_read",
            {"alias": alias, "model": "mcp.connection", "ids": [victim], "fields": fields},
        )
        found = await ok(
            client,
            "odoo_search_read",
            {"alias": alias, "model": "mcp.connection", "domain": [["id", "=", victim]]},
        )
        for result in (read, found):
            text = json.dumps(result)
            assert [s for s in secrets if s in text] == []
            record = result["records"][0]
            assert record["alias"] == "victim-shared"
            assert record["password"] == record["api_key"] == "***"
            assert record["url"] == "https://erp.example.com"


async def test_the_principal_cannot_approve_as_its_odoo_user(tmp_path: Path, live: LiveOdoo):
    """The request stores the MCP principal, and the Odoo user who is that person (login
    "alice", name "Alice Approver"; compared on the TR39 skeleton, after a transport prefix,
    case aside, and through every spelling of her a principal may take: her login in another
    case, with a transport prefix, her display name, her mailbox) can neither approve nor
    reject it: the retry removes nothing."""
    # "stdio:alice" is not among them: MCP_GUARD_PRINCIPAL may not take the prefix the guard gives
    # the local stdio client (serve refuses to start; test_attack11_cli.py)
    principals = ["alice", "http:alice", "ALICE", "Alice Approver", "alice@x.org"]
    # Spellings that are not a plain name (a mailbox, DOMAIN\\user, a DN, a comment, "last,
    # first", mixed scripts) are refused as a principal before anything is filed (attack 17:
    # a principal passes the deciders' plain-name check), with one line naming the character.
    for principal in (
        "\u0430lice",
        "Alice <alice@x.org>",
        "Alice Approver <alice@x.org>",
        "ops\\alice",
        "ops/alice",
        "CN=alice,OU=x,DC=y",
        "uid=alice",
        "alice (laptop)",
        "Approver, Alice",
    ):
        proc = subprocess.run(
            guard_command("serve", "--data-dir", str(tmp_path)),
            env=guard_env(tmp_path, **live.guard_env(), MCP_GUARD_PRINCIPAL=principal),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode != 0, proc.stdout
        reason = proc.stderr.strip().splitlines()
        assert len(reason) == 1 and "MCP_GUARD_PRINCIPAL" in reason[0], proc.stderr
        assert "refused" in reason[0] and "plain name" in reason[0], reason
    for n, principal in enumerate(principals):
        alias = f"self-{n}"
        async with odoo_client(tmp_path, live, principal=principal) as client:
            await ok(client, "odoo_connect", data_connection(live, alias))
            ref, request_id = await pending(client, "odoo_disconnect", {"alias": alias})
            assert request(live, ref)["principal"] == principal
            for method, kwargs in (("action_approve", {}), ("action_reject", {"note": "mine"})):
                with pytest.raises(OdooFault) as refusal:
                    live.rpc(*APPROVER, "mcp.approval.request", method, [request_id], **kwargs)
                assert "cannot approve or reject" in str(refusal.value)
            assert request(live, ref)["state"] == "pending"
            await pending(client, "odoo_disconnect", {"alias": alias})
            assert live.admin("mcp.connection", "search_count", [["alias", "=", alias]]) == 1
    # Alice may approve another person's request; then the retry runs.
    async with odoo_client(tmp_path, live, principal="bob") as client:
        await ok(client, "odoo_connect", data_connection(live, "other"))
        ref, request_id = await pending(client, "odoo_disconnect", {"alias": "other"})
        live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [request_id])
        assert await ok(client, "odoo_disconnect", {"alias": "other"}) == {
            "alias": "other",
            "removed": True,
        }


async def test_a_persons_connection_shared_with_the_agent_is_used_and_ended(
    tmp_path: Path, live: LiveOdoo
):
    """A person adds a connection in Odoo and shares it with the Agent: the guard lists it; its
    disconnect (by the agent, or asked by the person in Odoo) needs another person's approval."""

    def connection(conn_id: int) -> dict[str, Any]:
        rows = live.admin(
            "mcp.connection",
            "search_read",
            [["id", "=", conn_id], ["active", "in", [True, False]]],
            fields=["state", "active", "has_api_key"],
        )
        return rows[0]

    first, second = shared_connection(live, "olga-crm"), shared_connection(live, "olga-hr")
    async with odoo_client(tmp_path, live, principal="agent-shared") as client:
        listed = await ok(client, "odoo_connections")
        aliases = [c["alias"] for c in listed["connections"]]
        assert {"olga-crm", "olga-hr"} <= set(aliases)
        assert live.data_key not in json.dumps(listed)
        # the data tools use it with the secret the owner wrote (and can never read back)
        found = await ok(
            client,
            "odoo_search_read",
            # named fields: on 19 a plain user may not read every field of a partner
            {
                "alias": "olga-crm",
                "model": "res.partner",
                "domain": [],
                "fields": ["name"],
                "limit": 1,
            },
        )
        assert found["count"] == 1
        with pytest.raises(OdooFault):
            live.rpc(*OWNER, "mcp.connection", "read", [first], ["api_key"])

        # the agent asks to end it; the owner sees the request; another person approves
        ref, request_id = await pending(client, "odoo_disconnect", {"alias": "olga-crm"})
        seen = live.rpc(*OWNER, "mcp.approval.request", "search_read", [["id", "=", request_id]])
        assert [r["name"] for r in seen] == [ref]
        live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [request_id])
        assert await ok(client, "odoo_disconnect", {"alias": "olga-crm"}) == {
            "alias": "olga-crm",
            "removed": True,
        }
        assert connection(first) == {
            "id": first,
            "state": "disconnected",
            "active": False,
            "has_api_key": False,
        }

        # the owner asks in Odoo: filed like an agent's, carried out by Odoo on approval
        action = live.rpc(*OWNER, "mcp.connection", "action_request_disconnect", [second])
        own_request = action["res_id"]
        with pytest.raises(OdooFault):  # never by the one who asked
            live.rpc(*OWNER, "mcp.approval.request", "action_approve", [own_request])
        live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [own_request])
        assert request(live, action_ref(live, own_request))["state"] == "done"
        assert connection(second)["state"] == "disconnected"
        # ended in Odoo, out of the guard's sight: its list is Odoo's within the poll interval
        seen: dict[str, Any] = {}

        async def ended() -> bool:
            listed = await ok(client, "odoo_connections")
            seen["aliases"] = sorted(c["alias"] for c in listed["connections"])
            return not {"olga-crm", "olga-hr"} & set(seen["aliases"])

        await within(EFFECT_WAIT, ended, seen)


def action_ref(live: LiveOdoo, request_id: int) -> str:
    return live.admin("mcp.approval.request", "read", [request_id], ["name"])[0]["name"]


async def test_a_managers_edit_within_the_shared_bounds_keeps_the_front_end_serving(
    tmp_path: Path, live: LiveOdoo
):
    """The bounds divergence: Odoo used to accept approvals valid 60 days, which the front-end
    refused to load, so a valid edit in Odoo ended, after MCP_GUARD_POLICY_MAX_AGE, in every
    call refused. Both halves now apply policy_core's bound: Odoo refuses the edit with a line
    naming it, and an edit within it reaches the front-end, which keeps serving."""
    manager = ("mia", "mia-pw-1234")
    rule_id = live.admin("mcp.tool.rule", "search", [["name", "=", "odoo_fields_get"]])[0]
    alias = "bounds"
    async with odoo_client(
        tmp_path, live, principal="agent-bounds", env={"MCP_GUARD_POLICY_MAX_AGE": "4"}
    ) as client:
        await ok(client, "odoo_connect", data_connection(live, alias))
        await ok(client, "odoo_fields_get", {"alias": alias, "model": "res.partner"})
        try:
            with pytest.raises(OdooFault) as refused_edit:
                live.rpc(
                    *manager,
                    "mcp.tool.rule",
                    "write",
                    [rule_id],
                    {"action": "require_approval", "approval_expires_in": 60 * 86400},
                )
            fault = str(refused_edit.value)
            assert "$.rules.odoo_fields_get.approval.expires_in" in fault, fault
            assert "2678400" in fault, fault

            live.rpc(
                *manager,
                "mcp.tool.rule",
                "write",
                [rule_id],
                {"action": "require_approval", "approval_expires_in": 31 * 86400},
            )
            # The front-end takes the new policy on its next poll: the call is held for approval.
            arguments = {"alias": alias, "model": "res.partner"}
            with anyio.fail_after(10):
                while not (await client.call_tool("odoo_fields_get", arguments)).is_error:
                    await anyio.sleep(0.2)
            refreshed = time.monotonic()
            ref, request_id = await pending(client, "odoo_fields_get", arguments)
            # Allowed calls keep working past the policy's maximum age: each poll succeeds.
            while time.monotonic() - refreshed < 6:
                await ok(client, "odoo_connections")
                await anyio.sleep(0.5)
            # The new bound is honoured: the approval is valid 31 days, and used once.
            live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [request_id])
            expires = live.admin(
                "mcp.approval.request", "read", [request_id], fields=["expires_at", "decision_date"]
            )[0]
            fmt = "%Y-%m-%d %H:%M:%S"
            valid = time.mktime(time.strptime(expires["expires_at"], fmt)) - time.mktime(
                time.strptime(expires["decision_date"], fmt)
            )
            assert valid == 31 * 86400
            await ok(client, "odoo_fields_get", arguments)
            assert request(live, ref)["state"] == "done"
        finally:
            live.admin(
                "mcp.tool.rule",
                "write",
                [rule_id],
                {"action": "allow", "approval_expires_in": 0},
            )


def test_the_same_clear_errors_on_each_protocol(live: LiveOdoo):
    """The guard's own client (the protocol the server's series calls for: XML-RPC on 18,
    JSON-2 on 19) turns Odoo's refusals into the same kinds and one-line messages."""
    from odoo_mcp_guard.odoo_rpc import OdooClient, OdooConfig, OdooError

    def refusal(method: str = "search_count", model: str = "res.partner", **kwargs: Any) -> str:
        settings: dict[str, Any] = {
            "url": live.url,
            "db": live.db,
            "username": "data",
            "api_key": live.data_key,
        }
        call = {"domain": []}
        for key in ("url", "db", "username", "api_key"):
            if key in kwargs:
                settings[key] = kwargs.pop(key)
        client = OdooClient(OdooConfig(**settings))
        with pytest.raises(OdooError) as failed:
            client.call(model, method, **(kwargs or call))
        if settings["url"] == live.url:
            assert client.protocol == live.protocol
        error = failed.value
        assert "\n" not in error.message and "Traceback" not in error.message
        return f"{error.kind}: {error.message}"

    db = live.db
    assert refusal(api_key="not-a-key") == (
        f"auth: Odoo refused the login 'data' on database '{db}' (wrong user, key or database)"
    )
    assert refusal(username="alice") == (
        f"auth: Odoo refused the login 'alice' on database '{db}' (wrong user, key or database)"
    )
    assert refusal(db="mcpg_no_such_db") == (
        f"database: Odoo at {live.url} has no database 'mcpg_no_such_db'"
    )
    assert refusal(model="ir.config_parameter").startswith(
        "access: You are not allowed to access 'System Parameter' (ir.config_parameter) records."
    )
    assert refusal("write", ids=[999999], vals={"city": "X"}).startswith(
        "user: Record does not exist or has been deleted. (Record: res.partner(999999,)"
    )
    # Odoo's own words differ by series: "in leaf (...)" on 18, "in condition (...)" on 19
    assert refusal(domain=[["no_such_field", "=", 1]]).startswith(
        "application: ValueError: Invalid field res.partner.no_such_field in "
    )
    assert refusal(model="no.such.model") == "user: Odoo has no model 'no.such.model'"
    assert refusal(url="http://127.0.0.1:1").startswith(
        "unreachable: Odoo at http://127.0.0.1:1 is unreachable ("
    )


def test_the_protocol_setting_is_honoured(live: LiveOdoo):
    """ODOO_PROTOCOL (here the config's ``protocol``) skips the question to the server: JSON-2
    where the series serves it; on 18, which does not, a clear line naming the fix."""
    from odoo_mcp_guard.odoo_rpc import OdooClient, OdooConfig, OdooError

    def client(protocol: str) -> OdooClient:
        return OdooClient(
            OdooConfig(
                url=live.url,
                db=live.db,
                username="data",
                api_key=live.data_key,
                protocol=protocol,
            )
        )

    domain = [["name", "like", "Bench Partner"]]
    for setting in ("auto", live.protocol):
        used = client(setting)
        assert used.call("res.partner", "search_count", domain=domain) == 80
        assert used.protocol == live.protocol
    if not live.json2:
        with pytest.raises(OdooError) as failed:
            client("json2").call("res.partner", "search_count", domain=domain)
        assert failed.value.message.startswith(f"Odoo at {live.url} does not serve JSON-2 (HTTP ")
        assert failed.value.message.endswith(
            "); Odoo 18 and earlier speak XML-RPC (ODOO_PROTOCOL=xmlrpc, or leave it unset)"
        )


def test_a_managers_large_policy_is_measured_alike_by_both_halves(live: LiveOdoo):
    """Attack 10 (01): Odoo measured an import as UTF-8 text, the front-end Odoo's answer as
    ASCII-escaped JSON (an emoji: 4 bytes against 12), so a legal 0.4 MB policy of 500-emoji
    reasons was 1.2 MB to the front-end, which refused it: after the policy's maximum age every
    call was refused. Both halves now measure policy_core.policy_size (the canonical JSON,
    UTF-8): the front-end's own policy source loads that policy, and Odoo refuses at import one
    the front-end would refuse, with a message naming the measure."""
    from odoo_mcp_guard.odoo_backend import OdooPolicySource
    from odoo_mcp_guard.odoo_rpc import OdooClient, OdooConfig
    from odoo_mcp_guard.policy_core import MAX_POLICY_BYTES, policy_size

    manager = ("mia", "mia-pw-1234")
    original = live.rpc(*manager, "mcp.tool.rule", "get_policy_document")["policy"]

    def padded(count: int) -> dict[str, Any]:
        doc = json.loads(json.dumps(original))
        for i in range(count):
            doc["rules"][f"zz_pad_{i:04d}"] = {"action": "deny", "reason": "\U0001f600" * 500}
        return doc

    config = OdooConfig.from_env(live.guard_env())
    assert config is not None
    source = OdooPolicySource(OdooClient(config))
    source.refresh()
    before = source.current().etag
    try:
        legal = padded(200)
        assert policy_size(legal) < MAX_POLICY_BYTES < len(json.dumps(legal))
        text = json.dumps(legal, ensure_ascii=False)
        live.rpc(*manager, "mcp.tool.rule", "import_policy_document", document=text)
        assert source.refresh() is True, source.last_error
        policy = source.current()  # what every call is judged by: the front-end keeps serving
        assert policy.etag != before
        assert policy.decide("zz_pad_0199").action == "deny"

        too_large = padded(600)
        assert policy_size(too_large) > MAX_POLICY_BYTES
        with pytest.raises(OdooFault) as refused_import:
            live.rpc(*manager, "mcp.tool.rule", "import_policy_document", document=too_large)
        fault = str(refused_import.value)
        assert "canonical JSON" in fault and str(MAX_POLICY_BYTES) in fault, fault[:300]
        assert source.refresh() is False  # nothing changed in Odoo
        assert source.current().etag == policy.etag
    finally:
        live.rpc(*manager, "mcp.tool.rule", "import_policy_document", document=original)


async def test_a_data_call_naming_an_unknown_alias_files_nothing_in_odoo(
    tmp_path: Path, live: LiveOdoo
):
    """Round 13: an odoo_unlink naming an alias nobody has was filed (connection_id False);
    approved, it was used against the connection the agent then created under that alias."""
    principal = "agent-ghost13"
    victim = live.admin("res.partner", "create", {"name": "victim ghost13"})
    args = {"alias": "ghost13", "model": "res.partner", "ids": [victim]}
    async with odoo_client(tmp_path, live, principal=principal) as client:
        text = await refused(client, "odoo_unlink", args)
        assert "There is no connection named 'ghost13'" in text, text
        assert "no approval was requested" in text and "\n" not in text.strip()
    filed = [["principal", "=", principal], ["tool", "=", "odoo_unlink"]]
    assert live.admin("mcp.approval.request", "search_count", filed) == 0
    # nor over RPC, by the Agent user itself
    with pytest.raises(OdooFault, match="no connection with alias ghost13"):
        live.rpc(
            "mcp-agent",
            live.agent_key,
            "mcp.approval.request",
            "file_request",
            tool="odoo_unlink",
            arguments=args,
            principal=principal,
            reason="r13",
            server="odoo-mcp-guard",
        )
    assert live.admin("mcp.approval.request", "search_count", filed) == 0
    assert live.admin("res.partner", "search_count", [["id", "=", victim]]) == 1


async def test_a_data_approval_is_bound_to_its_connection_in_odoo(tmp_path: Path, live: LiveOdoo):
    """Approved for one connection, an odoo_unlink is not run through the one that took its
    alias since: the call is filed anew for the connection as it is now."""
    alias = "bound13"
    victim = live.admin("res.partner", "create", {"name": "victim bound13"})
    args = {"alias": alias, "model": "res.partner", "ids": [victim]}
    async with odoo_client(tmp_path, live, principal="agent-bound13") as client:
        await ok(client, "odoo_connect", data_connection(live, alias))
        conn = live.admin("mcp.connection", "search", [["alias", "=", alias]])
        ref, request_id = await pending(client, "odoo_unlink", args)
        row = live.admin("mcp.approval.request", "read", [request_id], fields=["connection_id"])
        assert row[0]["connection_id"] and row[0]["connection_id"][0] == conn[0]
        live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [request_id])
        # alias now names another connection (its replacement approved on its own)
        other = {**data_connection(live, alias), "url": "http://127.0.0.1:1"}
        _, swap = await pending(client, "odoo_connect", other)
        live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [swap])
        await ok(client, "odoo_connect", other)
        result = await client.call_tool("odoo_unlink", args)
        assert result.is_error and result.structured_content["status"] == "pending", text_of(result)
        assert result.structured_content["request"] != ref
        assert f"request {ref} was withdrawn" in text_of(result)
    assert live.admin("res.partner", "search_count", [["id", "=", victim]]) == 1
