"""Attack 13 (embedded store): four-eyes by person, one folded form. A name is compared with
``people`` and ``approvers`` in the same width- and case-folded form (identity.listed_form):
the approver's person is every person whose name or principals match the approver's name in
that form (more than one: refused), so "ALICE-LAPTOP" is alice's when "alice-laptop" is. The
requester's persons are frozen when the guard files the request, as the policy in force says;
an approver's own --policy that maps the requester elsewhere does not make her someone else.
The real server over stdio (SDK client) and the real CLI, as subprocesses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.guard import (
    connect_args,
    policy,
    request_state,
    run_cli,
    stdio_client,
    text_of,
    write_policy,
)
from test_attack12_person import approve

pytestmark = pytest.mark.anyio

FULL_WIDTH = "".join(chr(ord(ch) + 0xFEE0) for ch in "ALICE-LAPTOP")  # "ＡＬＩＣＥ－ＬＡＰＴＯＰ"


def people_policy(
    path: Path, people: dict[str, list[str]], approvers: list[str], quorum: int = 1
) -> Path:
    approval: dict[str, Any] = {"approver_group": "ops"}
    if quorum > 1:
        approval["quorum"] = quorum
    doc = policy(odoo_disconnect={"action": "require_approval", "approval": approval})
    doc["approvers"] = {"ops": approvers}
    doc["people"] = people
    return write_policy(path, doc)


async def filed_by(data_dir: Path, pol: Path, principal: str) -> str:
    async with stdio_client(data_dir, policy_file=pol, principal=principal) as client:
        assert not (await client.call_tool("odoo_connect", connect_args("prod"))).is_error
        result = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert result.structured_content["status"] == "pending", text_of(result)
        return result.structured_content["request"]


async def done_by(data_dir: Path, pol: Path, principal: str) -> bool:
    async with stdio_client(data_dir, policy_file=pol, principal=principal) as client:
        result = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        return not result.is_error


@pytest.mark.parametrize(
    ("people", "approvers", "names"),
    [
        (
            {"alice": ["bot7", "alice-laptop"], "carol": ["carol"]},
            ["alice-laptop", "carol"],
            ["ALICE-LAPTOP", "Alice-laptop", FULL_WIDTH],
        ),
        ({"alice": ["bot7", "m2"], "carol": ["carol"]}, ["M2", "carol"], ["M2", "m2", "\uff2d2"]),
    ],
)
async def test_her_own_principal_in_another_case_is_her(
    tmp_path: Path, people: dict[str, list[str]], approvers: list[str], names: list[str]
) -> None:
    pol = people_policy(tmp_path / "policy.json", people, approvers)
    ref = await filed_by(tmp_path, pol, "bot7")
    for name in names:
        for verb in ("approve", "reject"):
            refused = approve(tmp_path, pol, ref, name, verb)
            assert refused.returncode == 2, (name, verb, refused.stdout)
            assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
            assert "(alice): the requester cannot approve" in refused.stderr, refused.stderr
    assert request_state(tmp_path, ref) == "pending"
    assert not await done_by(tmp_path, pol, "bot7")
    assert approve(tmp_path, pol, ref, "carol").returncode == 0
    assert request_state(tmp_path, ref) == "approved"


async def test_one_person_fills_one_seat_of_a_quorum_in_any_case(tmp_path: Path) -> None:
    people = {"alice": ["bot7"], "carol": ["carol", "carol-laptop"]}
    pol = people_policy(tmp_path / "policy.json", people, ["carol", "carol-laptop", "dave"], 2)
    ref = await filed_by(tmp_path, pol, "bot7")
    first = approve(tmp_path, pol, ref, "carol")
    assert first.returncode == 0 and "approval 1 of 2 recorded" in first.stdout, first.stderr
    for name in ("carol-laptop", "CAROL-LAPTOP", "Carol-Laptop", "CAROL"):
        again = approve(tmp_path, pol, ref, name)
        assert again.returncode == 2, (name, again.stdout)
        assert "already approved" in again.stderr, again.stderr
    assert request_state(tmp_path, ref) == "pending"
    assert not await done_by(tmp_path, pol, "bot7")
    assert approve(tmp_path, pol, ref, "dave").returncode == 0
    assert request_state(tmp_path, ref) == "approved"


async def test_the_requester_person_is_the_one_in_force_at_filing(tmp_path: Path) -> None:
    people = {"alice": ["bot7"], "carol": ["carol"]}
    pol = people_policy(tmp_path / "policy.json", people, ["alice", "carol"])
    ref = await filed_by(tmp_path, pol, "bot7")
    assert approve(tmp_path, pol, ref, "alice").returncode == 2
    # alice's own policy file: the same rule, bot7 someone else's
    mine = people_policy(
        tmp_path / "mine.json", {"robot": ["bot7"], "alice": ["alice"]}, ["alice", "carol"]
    )
    for name in ("alice", "Alice"):
        for verb in ("approve", "reject"):
            refused = approve(tmp_path, mine, ref, name, verb)
            assert refused.returncode == 2, (name, verb, refused.stdout)
            assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
            assert "the requester cannot approve" in refused.stderr, refused.stderr
    assert request_state(tmp_path, ref) == "pending"
    assert not await done_by(tmp_path, pol, "bot7")
    assert approve(tmp_path, mine, ref, "carol").returncode == 0
    assert request_state(tmp_path, ref) == "approved"


async def test_a_requester_without_a_person_at_filing_stays_undecidable(tmp_path: Path) -> None:
    pol = people_policy(tmp_path / "policy.json", {"carol": ["carol"]}, ["carol", "dave"])
    ref = await filed_by(tmp_path, pol, "bot7")
    # a policy given at approval that lists bot7 does not make the request decidable
    later = people_policy(
        tmp_path / "later.json", {"carol": ["carol"], "robot": ["bot7"]}, ["carol", "dave"]
    )
    for verb in ("approve", "reject"):
        refused = approve(tmp_path, later, ref, "carol", verb)
        assert refused.returncode == 2, refused.stdout
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "no person" in refused.stderr, refused.stderr
    assert request_state(tmp_path, ref) == "pending"
    # listed in the guard's policy, the call files a new request, which carol decides
    async with stdio_client(tmp_path, policy_file=later, principal="bot7") as client:
        result = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert result.structured_content["status"] == "pending", text_of(result)
        again = result.structured_content["request"]
    assert again != ref
    assert approve(tmp_path, later, again, "carol").returncode == 0
    assert request_state(tmp_path, again) == "approved"


async def test_an_approver_name_of_two_persons_is_refused(tmp_path: Path) -> None:
    # "carol" is a person, and a principal listed for bob: whose she is cannot be told
    people = {"alice": ["bot7"], "carol": ["c1"], "bob": ["bob", "Carol"]}
    pol = people_policy(tmp_path / "policy.json", people, ["carol", "dave"])
    ref = await filed_by(tmp_path, pol, "bot7")
    refused = approve(tmp_path, pol, ref, "CAROL")
    assert refused.returncode == 2, refused.stdout
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "more than one person" in refused.stderr, refused.stderr
    assert request_state(tmp_path, ref) == "pending"
    assert approve(tmp_path, pol, ref, "dave").returncode == 0


def test_a_principal_in_another_case_under_two_persons_is_refused(tmp_path: Path) -> None:
    doc = policy()
    doc["people"] = {"alice": ["bot7", "m2"], "carol": ["M2"]}
    pol = write_policy(tmp_path / "policy.json", doc)
    result = run_cli(tmp_path, "policy", "check", str(pol), check=False)
    assert result.returncode != 0, result.stdout
    assert "$.people.carol[0]: 'M2' is already listed for 'alice'" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_an_approver_no_one_can_type_is_refused_at_load(tmp_path: Path) -> None:
    """Outside round 27: ``approvers: {"ops": ["carol", "c\\u0430rol"]}`` (a Cyrillic а) loaded
    with no word, and ``approve --as c\\u0430rol`` is always refused (it mixes scripts): the
    group quietly had fewer voters than it listed. The policy is refused with the name's path."""
    doc = policy()
    doc["approvers"] = {"ops": ["carol", "c\u0430rol"]}
    pol = write_policy(tmp_path / "policy.json", doc)
    result = run_cli(tmp_path, "policy", "check", str(pol), check=False)
    assert result.returncode != 0, result.stdout
    out = result.stderr + result.stdout
    assert "$.approvers.ops[1]: no one can approve as 'c\\u0430rol'" in out, out
    assert "Traceback" not in result.stderr
