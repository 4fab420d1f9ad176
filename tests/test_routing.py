"""Approver routing and quorum, and approvals bound to the rule they were given under, on the
embedded store: the real server over stdio (SDK client) and the real CLI, as subprocesses."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from support.guard import (
    aliases,
    audit_count,
    connect_args,
    db_path,
    policy,
    query,
    request_state,
    run_cli,
    stdio_client,
    text_of,
    write_policy,
)

pytestmark = pytest.mark.anyio


def disconnect_rule(**approval: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": "require_approval", "reason": "Ends a connection"}
    if approval:
        rule["approval"] = approval
    return rule


async def pending(client: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool("odoo_disconnect", arguments)
    assert result.is_error, text_of(result)
    assert result.structured_content["status"] == "pending", text_of(result)
    return {**result.structured_content, "text": text_of(result)}


def cli(data_dir: Path, pol: Path, *args: str, check: bool = True) -> Any:
    return run_cli(data_dir, *args, "--policy", str(pol), check=check)


def approve(data_dir: Path, pol: Path, ref: str, name: str, check: bool = True) -> Any:
    return cli(data_dir, pol, "approvals", "approve", ref, "--as", name, check=check)


async def test_quorum_of_two_distinct_approvers(tmp_path: Path) -> None:
    pol = write_policy(tmp_path / "policy.json", policy(odoo_disconnect=disconnect_rule(quorum=2)))
    async with stdio_client(tmp_path, policy_file=pol, principal="alice") as client:
        result = await client.call_tool("odoo_connect", connect_args("prod"))
        assert not result.is_error, text_of(result)
        filed = await pending(client, {"alias": "prod"})
        ref = filed["request"]
        assert (filed["quorum"], filed["approvals"]) == (2, 0)
        assert "2 different approvers" in filed["text"] and "--policy" in filed["text"]

        # the requester never counts, however the name is spelled
        for name in ("alice", "ALICE", "аlice"):  # the last with a Cyrillic "а"
            refused = approve(tmp_path, pol, ref, name, check=False)
            assert refused.returncode == 2, refused.stdout
            # the requester herself, or a name that is not plain (mixed scripts: attack 17)
            assert "requester" in refused.stderr or "plain name" in refused.stderr, refused.stderr
            assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        # one approver: recorded, not enough
        first = approve(tmp_path, pol, ref, "carol")
        assert "approval 1 of 2 recorded" in first.stdout, first.stdout
        assert request_state(tmp_path, ref) == "pending"
        again = await pending(client, {"alias": "prod"})
        assert (again["request"], again["approvals"]) == (ref, 1)
        assert aliases(tmp_path) == ["prod"]
        # the same approver again (a confusable spelling too) is still one approver
        for name in ("carol", "Carol", "саrol"):
            twice = approve(tmp_path, pol, ref, name, check=False)
            assert twice.returncode == 2, twice.stdout
            # the same person, or a name that is not plain (mixed scripts: attack 17)
            assert "already approved" in twice.stderr or "plain name" in twice.stderr, twice.stderr
        assert request_state(tmp_path, ref) == "pending"
        # a second, different approver reaches the quorum
        second = approve(tmp_path, pol, ref, "dave")
        assert f"{ref} approved by carol, dave" in second.stdout, second.stdout
        shown = run_cli(tmp_path, "approvals", "show", ref).stdout
        assert "2 of 2 approved (carol, dave)" in shown, shown
        done = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert not done.is_error, text_of(done)
        assert done.structured_content == {"alias": "prod", "removed": True}
    assert aliases(tmp_path) == []
    assert request_state(tmp_path, ref) == "done"
    votes = query(tmp_path, "SELECT approver FROM approval_votes ORDER BY at")
    assert [vote[0] for vote in votes] == ["carol", "dave"]
    # each approver's action is audited, under their own name
    rows = query(tmp_path, "SELECT principal, detail FROM audit WHERE outcome = 'approved'")
    assert [row[0] for row in rows] == ["carol", "dave"]
    assert "approval 1 of 2 by carol" in rows[0][1] and "carol, dave" in rows[1][1]


async def test_named_approver_group(tmp_path: Path) -> None:
    doc = policy(odoo_disconnect=disconnect_rule(approver_group="ops"))
    doc["approvers"] = {"ops": ["carol", "dave"]}
    pol = write_policy(tmp_path / "policy.json", doc)
    async with stdio_client(tmp_path, policy_file=pol, principal="alice") as client:
        assert not (await client.call_tool("odoo_connect", connect_args("prod"))).is_error
        ref = (await pending(client, {"alias": "prod"}))["request"]
        # an outsider, also under a spelling that names a listed approver in passing (a
        # comment, a domain): the list admits the name as written, not what it may stand for
        for name in ("eve", "eve (carol)", "carol\\eve", "CN=eve,OU=carol"):
            outsider = approve(tmp_path, pol, ref, name, check=False)
            assert outsider.returncode == 2, outsider.stdout
            # outside the group, or not a plain name at all (attack 17)
            assert (
                "not in the approver group ops" in outsider.stderr
                or "plain name" in outsider.stderr
            ), outsider.stderr
        # without the guard's policy the group is unknown here: nobody decides (fail closed)
        blind = run_cli(tmp_path, "approvals", "approve", ref, "--as", "carol", check=False)
        assert blind.returncode == 2 and "does not list" in blind.stderr, blind.stderr
        assert request_state(tmp_path, ref) == "pending"
        approve(tmp_path, pol, ref, "Carol")
        assert request_state(tmp_path, ref) == "approved"
        assert not (await client.call_tool("odoo_disconnect", {"alias": "prod"})).is_error
    assert aliases(tmp_path) == []


async def test_approval_refused_after_the_rule_changed(tmp_path: Path) -> None:
    pol = write_policy(tmp_path / "policy.json", policy(odoo_disconnect=disconnect_rule()))
    async with stdio_client(tmp_path, policy_file=pol, principal="alice") as client:
        assert not (await client.call_tool("odoo_connect", connect_args("prod"))).is_error
        ref = (await pending(client, {"alias": "prod"}))["request"]
        approve(tmp_path, pol, ref, "carol")
        assert request_state(tmp_path, ref) == "approved"
    # the rule is changed before the approval is used (a new guard process reads it at start)
    write_policy(tmp_path / "policy.json", policy(odoo_disconnect=disconnect_rule(quorum=2)))
    async with stdio_client(tmp_path, policy_file=pol, principal="alice") as client:
        refused = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert refused.is_error
        assert refused.structured_content == {"status": "rule_changed", "request": ref}
        text = text_of(refused)
        assert "has changed since" in text and "quorum 2" in text and "nothing was done" in text
        assert aliases(tmp_path) == ["prod"]
        assert request_state(tmp_path, ref) == "expired"
        # the next call files anew, under the rule in force
        fresh = await pending(client, {"alias": "prod"})
        assert fresh["request"] != ref and fresh["quorum"] == 2
    assert audit_count(tmp_path, "approval_expired") == 1
    assert audit_count(tmp_path, "approved_executed") == 0


async def test_pending_request_withdrawn_when_the_rule_changes(tmp_path: Path) -> None:
    pol = write_policy(tmp_path / "policy.json", policy(odoo_disconnect=disconnect_rule()))
    async with stdio_client(tmp_path, policy_file=pol, principal="alice") as client:
        assert not (await client.call_tool("odoo_connect", connect_args("prod"))).is_error
        ref = (await pending(client, {"alias": "prod"}))["request"]
    write_policy(tmp_path / "policy.json", policy(odoo_disconnect=disconnect_rule(quorum=3)))
    async with stdio_client(tmp_path, policy_file=pol, principal="alice") as client:
        fresh = await pending(client, {"alias": "prod"})
        assert fresh["request"] != ref and fresh["quorum"] == 3
        assert f"{ref} was withdrawn" in fresh["text"]
    assert request_state(tmp_path, ref) == "expired"
    # an approval of the withdrawn request is refused
    late = approve(tmp_path, pol, ref, "carol", check=False)
    assert late.returncode == 2 and "expired" in late.stderr, late.stderr


# --- a replacement (odoo_connect of an existing alias) is bound to odoo_disconnect's rule too ---

# What the odoo_disconnect rule becomes after the replacement was approved, per changed term:
# (odoo_connect's rule, odoo_disconnect's rule before, after, the policy's approvers).
REPLACEMENT_RULE_CHANGES = {
    "quorum": ({"action": "allow"}, disconnect_rule(), disconnect_rule(quorum=2), None),
    "approver_group": (
        {"action": "allow"},
        disconnect_rule(),
        disconnect_rule(approver_group="ops"),
        {"ops": ["carol"]},
    ),
    # odoo_connect gates itself: a disconnect rule relaxed to allow still changes its terms
    "action": (disconnect_rule(), disconnect_rule(), {"action": "allow"}, None),
}


def replacement_policy(
    connect: dict[str, Any],
    disconnect: dict[str, Any],
    approvers: dict[str, Any] | None,
    hide: list[str] | None = None,
) -> dict[str, Any]:
    doc = policy(odoo_connect=connect, odoo_disconnect=disconnect, hide=hide or [])
    if approvers:
        doc["approvers"] = approvers
    return doc


async def approved_replacement_after_policy_change(
    tmp_path: Path, before: dict[str, Any], after: dict[str, Any]
) -> tuple[Any, str]:
    """Create prod, have its replacement approved (the CLI), change the policy file to
    ``after`` while the guard runs, retry: the retry's result and the ref. ``after`` also hides
    odoo_connections: the tools/list_changed that causes tells that the guard re-read it."""
    pol = write_policy(tmp_path / "policy.json", before)
    reloaded = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(getattr(message, "root", message), types.ToolListChangedNotification):
            reloaded.set()

    new = connect_args("prod", url="https://new.example.com")
    async with stdio_client(
        tmp_path, policy_file=pol, mode="legacy", message_handler=on_message
    ) as client:
        if before["rules"]["odoo_connect"]["action"] == "allow":
            assert not (await client.call_tool("odoo_connect", connect_args("prod"))).is_error
        else:  # a first connect needs its own approval
            ref = (await client.call_tool("odoo_connect", connect_args("prod"))).structured_content[
                "request"
            ]
            approve(tmp_path, pol, ref, "carol")
            assert not (await client.call_tool("odoo_connect", connect_args("prod"))).is_error
        filed = await client.call_tool("odoo_connect", new)
        assert filed.is_error and filed.structured_content["status"] == "pending", text_of(filed)
        ref = filed.structured_content["request"]
        approve(tmp_path, pol, ref, "carol")
        assert request_state(tmp_path, ref) == "approved"
        write_policy(pol, after)
        with anyio.fail_after(20):
            await reloaded.wait()
        return await client.call_tool("odoo_connect", new), ref


def prod_url(data_dir: Path) -> str:
    return query(data_dir, "SELECT url FROM connections WHERE alias = 'prod'")[0][0]


@pytest.mark.parametrize("term", sorted(REPLACEMENT_RULE_CHANGES))
async def test_replacement_refused_after_the_disconnect_rule_changed(
    tmp_path: Path, term: str
) -> None:
    connect, before, after, approvers = REPLACEMENT_RULE_CHANGES[term]
    refused, ref = await approved_replacement_after_policy_change(
        tmp_path,
        replacement_policy(connect, before, approvers),
        replacement_policy(connect, after, approvers, hide=["odoo_connections"]),
    )
    assert refused.is_error, text_of(refused)
    assert refused.structured_content == {"status": "rule_changed", "request": ref}
    text = text_of(refused)
    assert "rule for 'odoo_disconnect' (which the call also passes)" in text, text
    assert "has changed since" in text and "nothing was done" in text, text
    assert prod_url(tmp_path) == "https://prod.example.com"
    assert request_state(tmp_path, ref) == "expired"
    assert audit_count(tmp_path, "approved_executed") == (0 if connect["action"] == "allow" else 1)


async def test_replacement_runs_when_its_rules_are_unchanged(tmp_path: Path) -> None:
    before = replacement_policy({"action": "allow"}, disconnect_rule(), None)
    after = replacement_policy(
        {"action": "allow"}, disconnect_rule(), None, hide=["odoo_connections"]
    )
    done, ref = await approved_replacement_after_policy_change(tmp_path, before, after)
    assert not done.is_error, text_of(done)
    assert prod_url(tmp_path) == "https://new.example.com"
    assert request_state(tmp_path, ref) == "done"
    assert audit_count(tmp_path, "approved_executed") == 1


async def test_replacement_filed_without_the_disconnect_binding_is_refused(
    tmp_path: Path,
) -> None:
    """A request row that lacks the bindings of the rules its call also passes (filed before
    they were kept) reads as filed under a changed rule: fail closed."""
    pol = write_policy(
        tmp_path / "policy.json", replacement_policy({"action": "allow"}, disconnect_rule(), None)
    )
    new = connect_args("prod", url="https://new.example.com")
    async with stdio_client(tmp_path, policy_file=pol) as client:
        assert not (await client.call_tool("odoo_connect", connect_args("prod"))).is_error
        ref = (await client.call_tool("odoo_connect", new)).structured_content["request"]
        [(kept,)] = query(tmp_path, "SELECT also_bindings FROM approval_requests")
        assert len(kept.split()) == 1  # odoo_disconnect's
        approve(tmp_path, pol, ref, "carol")
        db = sqlite3.connect(db_path(tmp_path), timeout=30)
        with db:
            db.execute("UPDATE approval_requests SET also_bindings = NULL WHERE ref = ?", (ref,))
        db.close()
        refused = await client.call_tool("odoo_connect", new)
        assert refused.structured_content == {"status": "rule_changed", "request": ref}
    assert prod_url(tmp_path) == "https://prod.example.com"


async def test_a_replacement_is_decided_by_an_approver_of_both_rules(tmp_path: Path) -> None:
    """A replacement is also a removal (invariant 11): odoo_connect's rule gating it does not
    hand the decision to its own group alone: an approver must be in odoo_disconnect's group
    too (outside round 17, F5; as Odoo decides it)."""
    doc = replacement_policy(
        disconnect_rule(), disconnect_rule(approver_group="ops"), {"ops": ["carol"]}
    )
    pol = write_policy(tmp_path / "policy.json", doc)
    new = connect_args("prod", url="https://new.example.com")
    async with stdio_client(tmp_path, policy_file=pol, principal="alice") as client:
        first = (await client.call_tool("odoo_connect", connect_args("prod"))).structured_content
        approve(tmp_path, pol, first["request"], "dave")
        assert not (await client.call_tool("odoo_connect", connect_args("prod"))).is_error
        filed = await client.call_tool("odoo_connect", new)
        assert filed.structured_content["status"] == "pending", text_of(filed)
        ref = filed.structured_content["request"]
        outsider = approve(tmp_path, pol, ref, "dave", check=False)
        assert outsider.returncode == 2, outsider.stdout
        assert "only they decide it" in outsider.stderr, outsider.stderr
        assert request_state(tmp_path, ref) == "pending"
        approve(tmp_path, pol, ref, "carol")
        assert not (await client.call_tool("odoo_connect", new)).is_error
    assert prod_url(tmp_path) == "https://new.example.com"


async def test_a_replacement_nobody_may_decide_is_not_filed(tmp_path: Path) -> None:
    doc = replacement_policy(
        disconnect_rule(approver_group="devs"),
        disconnect_rule(approver_group="ops"),
        {"ops": ["carol"], "devs": ["dave"]},
    )
    pol = write_policy(tmp_path / "policy.json", doc)
    async with stdio_client(tmp_path, policy_file=pol, principal="alice") as client:
        first = (await client.call_tool("odoo_connect", connect_args("prod"))).structured_content
        approve(tmp_path, pol, first["request"], "dave")
        assert not (await client.call_tool("odoo_connect", connect_args("prod"))).is_error
        refused = await client.call_tool(
            "odoo_connect", connect_args("prod", url="https://x.example.com")
        )
        assert refused.is_error, text_of(refused)
        assert "in each of the groups devs, ops" in text_of(refused), text_of(refused)
    assert query(tmp_path, "SELECT count(*) FROM approval_requests")[0][0] == 1


def test_policy_check_names_faults_and_unlisted_groups(tmp_path: Path) -> None:
    bad = policy(odoo_disconnect=disconnect_rule(quorum=11, approver_group="o p"))
    pol = write_policy(tmp_path / "bad.json", bad)
    refused = run_cli(tmp_path, "policy", "check", str(pol), check=False)
    assert refused.returncode != 0
    assert "$.rules.odoo_disconnect.approval.quorum" in refused.stderr, refused.stderr
    assert "$.rules.odoo_disconnect.approval.approver_group" in refused.stderr
    unlisted = write_policy(
        tmp_path / "ok.json", policy(odoo_disconnect=disconnect_rule(approver_group="ops"))
    )
    checked = run_cli(tmp_path, "policy", "check", str(unlisted))
    assert "approver group 'ops'" in checked.stdout + checked.stderr
