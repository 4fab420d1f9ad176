"""Approver routing and quorum through the guard with Odoo as its backend: a real Odoo 18 with
``mcp_guard``, the front-end as a subprocess spoken to with the SDK client, people acting over
XML-RPC. A connection a person made in Odoo and shared with the Agent is listed by the guard,
and its disconnect needs two different approvers; an approval given under a rule changed since
is refused by the guard's gate.

Where Odoo is not found these tests are skipped with the loud reason of the harness: NOT RUN.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import odoo_harness as harness
import pytest
from odoo_live import LiveOdoo, OdooFault, live_odoo
from support.guard import text_of
from support.live import data_connection, shared_connection

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(harness.find_odoo() is None, reason=harness.NOT_FOUND_REASON),
]

APPROVER = ("alice", "alice-pw-1234")
MANAGER = ("mia", "mia-pw-1234")  # a Manager is an Approver too


@pytest.fixture(scope="module")
def live() -> Iterator[LiveOdoo]:
    with live_odoo() as odoo, odoo.running():
        yield odoo


def set_quorum(live: LiveOdoo, quorum: int) -> None:
    rule = live.admin("mcp.tool.rule", "search", [["name", "=", "odoo_disconnect"]])
    live.rpc(*MANAGER, "mcp.tool.rule", "write", rule, {"approval_quorum": quorum})


def odoo_request(live: LiveOdoo, request_id: int) -> dict[str, Any]:
    fields = ["state", "quorum", "approval_count", "vote_ids"]
    return live.admin("mcp.approval.request", "read", [request_id], fields)[0]


async def call(client: Any, tool: str, arguments: dict[str, Any]) -> tuple[bool, Any, str]:
    result = await client.call_tool(tool, arguments)
    text = text_of(result)
    assert "Traceback" not in text
    return result.is_error, result.structured_content, text


async def test_a_shared_connection_is_ended_by_a_quorum_of_two(tmp_path: Path, live: LiveOdoo):
    set_quorum(live, 2)
    conn_id = shared_connection(live, "olga-quorum")
    try:
        async with live.client(tmp_path, principal="agent-quorum") as client:
            failed, listed, text = await call(client, "odoo_connections", {})
            assert not failed, text
            assert "olga-quorum" in [c["alias"] for c in listed["connections"]]
            assert live.data_key not in json.dumps(listed)

            failed, filed, text = await call(client, "odoo_disconnect", {"alias": "olga-quorum"})
            assert failed and filed["status"] == "pending", text
            assert (filed["quorum"], filed["approvals"]) == (2, 0)
            assert "2 different approvers" in text
            request_id = filed["id"]
            # the requester (the Agent user) never counts
            with pytest.raises(OdooFault):
                live.rpc(
                    "mcp-agent",
                    live.agent_key,
                    "mcp.approval.request",
                    "action_approve",
                    [request_id],
                )
            # one approver is not enough: still pending, and nothing ends
            live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [request_id])
            assert odoo_request(live, request_id)["state"] == "pending"
            with pytest.raises(OdooFault):  # the same approver twice is one
                live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [request_id])
            failed, again, text = await call(client, "odoo_disconnect", {"alias": "olga-quorum"})
            assert failed and again["status"] == "pending", text
            assert (again["request"], again["approvals"]) == (filed["request"], 1)
            # a second, different approver: approved; the agent's retry ends the connection
            live.rpc(*MANAGER, "mcp.approval.request", "action_approve", [request_id])
            state = odoo_request(live, request_id)
            assert (state["state"], state["approval_count"], len(state["vote_ids"])) == (
                "approved",
                2,
                2,
            )
            failed, done, text = await call(client, "odoo_disconnect", {"alias": "olga-quorum"})
            assert not failed, text
            assert done == {"alias": "olga-quorum", "removed": True}
            assert odoo_request(live, request_id)["state"] == "done"
            failed, listed, text = await call(client, "odoo_connections", {})
            assert "olga-quorum" not in [c["alias"] for c in listed["connections"]]
        conn = live.admin(
            "mcp.connection",
            "search_read",
            [["id", "=", conn_id], ["active", "in", [True, False]]],
            fields=["state", "active"],
        )
        assert conn[0]["state"] == "disconnected" and not conn[0]["active"]
    finally:
        set_quorum(live, 1)


async def test_an_approval_under_a_changed_rule_is_refused(tmp_path: Path, live: LiveOdoo):
    shared_connection(live, "olga-rule")
    try:
        async with live.client(tmp_path, principal="agent-rule") as client:
            failed, filed, text = await call(client, "odoo_disconnect", {"alias": "olga-rule"})
            assert failed and filed["status"] == "pending", text
            live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [filed["id"]])
            assert odoo_request(live, filed["id"])["state"] == "approved"
            # a Manager changes the rule before the approval is used
            set_quorum(live, 2)
            failed, refused, text = await call(client, "odoo_disconnect", {"alias": "olga-rule"})
            assert failed, text
            assert refused == {"status": "rule_changed", "request": filed["request"]}, text
            assert "has changed since" in text and "quorum 2" in text
            names = [
                c["alias"] for c in (await call(client, "odoo_connections", {}))[1]["connections"]
            ]
            assert "olga-rule" in names
            # the next call files anew under the rule in force
            failed, fresh, text = await call(client, "odoo_disconnect", {"alias": "olga-rule"})
            assert failed and fresh["status"] == "pending" and fresh["quorum"] == 2, text
            assert fresh["request"] != filed["request"]
    finally:
        set_quorum(live, 1)


async def test_a_replacement_under_a_changed_disconnect_rule_is_refused(
    tmp_path: Path, live: LiveOdoo
):
    """A replacement is also bound to odoo_disconnect's rule: when Odoo refuses to consume it
    because that rule changed, the agent is told so, not that a new request is pending."""
    alias = "olga-replace"
    connection = data_connection(live, alias)
    replacement = {**connection, "url": "http://127.0.0.1:1"}
    try:
        async with live.client(tmp_path, principal="agent-replace-rule") as client:
            failed, _created, text = await call(client, "odoo_connect", connection)
            assert not failed, text
            failed, filed, text = await call(client, "odoo_connect", replacement)
            assert failed and filed["status"] == "pending", text
            live.rpc(*APPROVER, "mcp.approval.request", "action_approve", [filed["id"]])
            assert odoo_request(live, filed["id"])["state"] == "approved"
            set_quorum(live, 2)  # odoo_disconnect's rule, not odoo_connect's
            failed, refused, text = await call(client, "odoo_connect", replacement)
            assert failed, text
            assert refused == {"status": "rule_changed", "request": filed["request"]}, text
            assert "no longer stands" in text and "has changed since" in text, text
            assert odoo_request(live, filed["id"])["state"] == "expired"
            urls = live.admin(
                "mcp.connection", "search_read", [["alias", "=", alias]], fields=["url"]
            )
            assert [row["url"] for row in urls] == [live.url]
    finally:
        set_quorum(live, 1)
