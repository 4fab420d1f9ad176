"""Attack 14 (embedded store): who decides a request is frozen when the guard files it. The
approver group's members (identity.principal_key) and the entries of ``people`` that say who
they are are recorded on the request (schema v9): a --policy given at approval can neither
split one person into two seats of a quorum nor add a name to the group; it can only be
stricter (a name it drops from the group is refused too). The real server over stdio (SDK
client) and the real CLI, as subprocesses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.guard import policy, request_state, stdio_client, text_of, write_policy
from test_attack12_person import approve
from test_attack13_person import done_by, filed_by

pytestmark = pytest.mark.anyio

PEOPLE = {"alice": ["alice"], "carol": ["carol", "carol2"], "dave": ["dave"]}


def ops_policy(
    path: Path, ops: list[str], people: dict[str, list[str]] | None = None, quorum: int = 1
) -> Path:
    approval: dict[str, Any] = {"approver_group": "ops"}
    if quorum > 1:
        approval["quorum"] = quorum
    doc = policy(odoo_disconnect={"action": "require_approval", "approval": approval})
    doc["approvers"] = {"ops": ops}
    if people is not None:
        doc["people"] = people
    return write_policy(path, doc)


def refused(data_dir: Path, pol: Path, ref: str, name: str, verb: str = "approve") -> str:
    result = approve(data_dir, pol, ref, name, verb)
    assert result.returncode == 2, (name, verb, result.stdout)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


async def test_a_later_policy_does_not_split_one_person_into_two_votes(tmp_path: Path) -> None:
    guard = ops_policy(tmp_path / "guard.json", ["carol", "carol2", "dave"], PEOPLE, quorum=2)
    # the same rule and group; carol2 moved to a person x of its own
    split = {"alice": ["alice"], "carol": ["carol"], "x": ["carol2"], "dave": ["dave"]}
    alt = ops_policy(tmp_path / "alt.json", ["carol", "carol2", "dave"], split, quorum=2)
    ref = await filed_by(tmp_path, guard, "alice")
    first = approve(tmp_path, guard, ref, "carol")
    assert first.returncode == 0 and "approval 1 of 2 recorded" in first.stdout, first.stderr
    why = refused(tmp_path, alt, ref, "carol2")
    assert "already approved by carol" in why and "(carol)" in why, why
    assert request_state(tmp_path, ref) == "pending"
    assert not await done_by(tmp_path, guard, "alice")
    assert approve(tmp_path, alt, ref, "dave").returncode == 0
    assert request_state(tmp_path, ref) == "approved"


@pytest.mark.parametrize("people", [PEOPLE, None], ids=["people", "no-people"])
async def test_a_name_added_to_the_group_at_approval_is_refused(
    tmp_path: Path, people: dict[str, list[str]] | None
) -> None:
    guard = ops_policy(tmp_path / "guard.json", ["carol", "dave"], people)
    own_people = None if people is None else {**people, "mallory": ["mallory"]}
    own = ops_policy(tmp_path / "own.json", ["carol", "dave", "mallory"], own_people)
    ref = await filed_by(tmp_path, guard, "alice")
    for name in ("mallory", "MALLORY"):
        for verb in ("approve", "reject"):
            why = refused(tmp_path, own, ref, name, verb)
            assert f"not in the approver group ops as it stood when {ref} was filed" in why, why
            assert "carol, dave" in why, why
    assert request_state(tmp_path, ref) == "pending"
    assert not await done_by(tmp_path, guard, "alice")
    assert approve(tmp_path, own, ref, "dave").returncode == 0
    assert request_state(tmp_path, ref) == "approved"


async def test_a_name_dropped_from_the_group_at_approval_is_refused_too(tmp_path: Path) -> None:
    guard = ops_policy(tmp_path / "guard.json", ["carol", "dave"], PEOPLE)
    narrower = ops_policy(tmp_path / "narrow.json", ["dave"], PEOPLE)
    ref = await filed_by(tmp_path, guard, "alice")
    assert "not in the approver group ops" in refused(tmp_path, narrower, ref, "carol")
    assert request_state(tmp_path, ref) == "pending"
    assert approve(tmp_path, narrower, ref, "dave").returncode == 0
    assert request_state(tmp_path, ref) == "approved"


async def test_a_change_of_the_group_in_force_files_a_new_request(tmp_path: Path) -> None:
    guard = ops_policy(tmp_path / "guard.json", ["carol", "dave"], PEOPLE)
    ref = await filed_by(tmp_path, guard, "alice")
    # the guard's own policy now lists mallory: her vote counts on the requests filed under it
    wider = {**PEOPLE, "mallory": ["mallory"]}
    ops_policy(tmp_path / "guard.json", ["carol", "dave", "mallory"], wider)
    async with stdio_client(tmp_path, policy_file=guard, principal="alice") as client:
        result = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert result.structured_content["status"] == "pending", text_of(result)
        again = result.structured_content["request"]
    assert again != ref
    assert "as it stood when" in refused(tmp_path, guard, ref, "mallory")
    assert approve(tmp_path, guard, again, "mallory").returncode == 0
    assert request_state(tmp_path, again) == "approved"
