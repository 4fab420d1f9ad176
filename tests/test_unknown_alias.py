"""A data tool naming an alias that does not exist is refused at once (no request), and an
approval of a data call is bound to the connection it was filed for, not to its alias
(invariant 14).

Outside tester, round 13: ``odoo_unlink {"alias": "ghost", ...}`` was filed for an alias
nobody had; once approved, the agent created ``ghost`` itself (a new alias needs no approval),
pointing anywhere, and the approval was used against that connection.

The real ``serve`` over stdio with the SDK client, the real CLI for approvals."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.guard import (
    approve,
    audit_count,
    connect_args,
    policy,
    query,
    run_cli,
    stdio_client,
    text_of,
    write_policy,
)

pytestmark = pytest.mark.anyio

UNLINK = {"model": "res.partner", "ids": [7]}


def shown(data: Path, ref: str) -> str:
    """What ``approvals show`` tells an approver of a request."""
    return run_cli(data, "approvals", "show", ref).stdout


def unlink_policy(tmp_path: Path) -> Path:
    rule = {"action": "require_approval", "reason": "deleting"}
    return write_policy(tmp_path / "policy.json", policy(odoo_unlink=rule, odoo_write=rule))


async def test_a_data_call_naming_an_unknown_alias_is_refused_at_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with stdio_client(data, policy_file=unlink_policy(tmp_path)) as client:
        for tool, extra in (("odoo_unlink", {}), ("odoo_write", {"values": {"name": "x"}})):
            answer = await client.call_tool(tool, {"alias": "ghost", **UNLINK, **extra})
            assert answer.is_error, text_of(answer)
            text = text_of(answer)
            assert "There is no connection named 'ghost'" in text, text
            assert "no approval was requested" in text and "\n" not in text.strip()
            assert (answer.structured_content or {}).get("status") != "pending"
    assert query(data, "SELECT count(*) FROM approval_requests")[0][0] == 0
    assert audit_count(data, "invalid") == 2


async def test_a_data_approval_is_not_used_for_a_connection_made_since(tmp_path: Path) -> None:
    """Approved for ghost as it was, the call is not run once ghost names another connection:
    it is filed anew for the connection as it is now."""
    data = tmp_path / "data"
    pol = unlink_policy(tmp_path)
    call = {"alias": "ghost", **UNLINK}
    async with stdio_client(data, policy_file=pol) as client:
        assert not (await client.call_tool("odoo_connect", connect_args("ghost"))).is_error
        first = await client.call_tool("odoo_unlink", call)
        assert first.structured_content["status"] == "pending", text_of(first)
        ref = first.structured_content["request"]
        approve(data, ref, "carol")
        # ghost now names another connection (its replacement approved on its own)
        other = connect_args("ghost", url="http://10.6.6.6:8069", db="elsewhere")
        swap = await client.call_tool("odoo_connect", other)
        assert swap.structured_content["status"] == "pending", text_of(swap)
        approve(data, swap.structured_content["request"], "dave")
        assert not (await client.call_tool("odoo_connect", other)).is_error
        again = await client.call_tool("odoo_unlink", call)
        assert again.is_error and again.structured_content["status"] == "pending", text_of(again)
        assert again.structured_content["request"] != ref
        assert f"request {ref} was withdrawn" in text_of(again)
        assert "the approval by carol was not used" in text_of(again)
    state = query(data, "SELECT state FROM approval_requests WHERE ref = ?", ref)[0][0]
    assert state == "expired"
    assert audit_count(data, "approved_executed") == 1  # the replacement only


async def test_a_data_approval_without_alias_is_bound_to_the_connection_it_resolves_to(
    tmp_path: Path,
) -> None:
    """Outside tester, round 14 (finding 2): with prod (dbA) the only connection, an
    ``odoo_create`` naming no alias was approved; prod was removed (approved) and ``other``
    (dbB) added; the retry ran on dbB. The call acts on the connection it resolves to: the
    approval is for prod as it was, and the retry is filed anew for other."""
    data = tmp_path / "data"
    rule = {"action": "require_approval", "reason": "creating"}
    pol = write_policy(tmp_path / "policy.json", policy(odoo_create=rule))
    create = {"model": "res.partner", "values": {"name": "Acme"}}
    async with stdio_client(data, policy_file=pol) as client:
        prod = connect_args("prod", url="http://127.0.0.1:9", db="dbA")
        assert not (await client.call_tool("odoo_connect", prod)).is_error
        first = await client.call_tool("odoo_create", create)
        assert first.structured_content["status"] == "pending", text_of(first)
        ref = first.structured_content["request"]
        assert "acts through: prod: http://127.0.0.1:9  db=dbA" in shown(data, ref)
        approve(data, ref, "carol")
        removal = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert removal.structured_content["status"] == "pending", text_of(removal)
        approve(data, removal.structured_content["request"], "dave")
        assert not (await client.call_tool("odoo_disconnect", {"alias": "prod"})).is_error
        other = connect_args("other", url="http://127.0.0.1:9", db="dbB")
        assert not (await client.call_tool("odoo_connect", other)).is_error

        again = await client.call_tool("odoo_create", create)
        assert again.is_error and again.structured_content["status"] == "pending", text_of(again)
        assert again.structured_content["request"] != ref
        text = text_of(again)
        assert f"request {ref} was withdrawn" in text, text
        assert "the connection the call acts on changed since it was filed" in text, text
        assert "the approval by carol was not used" in text
        assert "acts through: other: http://127.0.0.1:9  db=dbB" in shown(
            data, again.structured_content["request"]
        )
        assert "NOT the connection this request was filed for" in shown(data, ref)
    state = query(data, "SELECT state FROM approval_requests WHERE ref = ?", ref)[0][0]
    assert state == "expired"
    executed = query(data, "SELECT tool FROM audit WHERE outcome = 'approved_executed' ORDER BY id")
    assert executed == [("odoo_disconnect",)]  # never the create
