"""Attack 12 (embedded store): four-eyes by person, not by spelling. The policy's ``people``
({person: [principals]}) says whose each principal is, ``approvers`` which names decide; the
requester's own person never decides, under any spelling, a request from a principal nobody
lists cannot be decided at all (fail closed), and a quorum counts persons. The real server
over stdio and HTTP (SDK client) and the real CLI, as subprocesses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.guard import (
    connect_args,
    http_client,
    http_guard,
    policy,
    request_state,
    run_cli,
    stdio_client,
    text_of,
    write_policy,
)

pytestmark = pytest.mark.anyio

# what outside testers approved alice's own request with (requester principal alice)
SPELLINGS = [
    "Ms Alice Approver",
    "Alice Approver, PhD",
    "Alice Q. Approver",
    "alice/ops",
    "alice/admin",
    "alice_laptop",
    "alice|laptop",
    "alice%ops@x.org",
    "alice@x@y",
]
PEOPLE = {
    "alice": ["alice", "alice-laptop"],
    "carol": ["carol", "carol-admin"],
    "bob": ["bob"],
}
APPROVERS = {"ops": ["alice", "bob", "carol", "carol-admin", "dave"]}


def person_policy(path: Path, quorum: int = 1, people: Any = PEOPLE) -> Path:
    approval: dict[str, Any] = {"approver_group": "ops"}
    if quorum > 1:
        approval["quorum"] = quorum
    doc = policy(
        odoo_disconnect={"action": "require_approval", "reason": "Ends it", "approval": approval}
    )
    doc["approvers"] = APPROVERS
    if people is not None:
        doc["people"] = people
    return write_policy(path, doc)


def approve(data_dir: Path, pol: Path, ref: str, name: str, verb: str = "approve") -> Any:
    result = run_cli(
        data_dir, "approvals", verb, ref, "--as", name, "--policy", str(pol), check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


async def filed(client: Any) -> str:
    assert not (await client.call_tool("odoo_connect", connect_args("prod"))).is_error
    result = await client.call_tool("odoo_disconnect", {"alias": "prod"})
    assert result.structured_content["status"] == "pending", text_of(result)
    return result.structured_content["request"]


async def test_no_spelling_of_the_requester_approves_her_request(tmp_path: Path) -> None:
    pol = person_policy(tmp_path / "policy.json")
    async with stdio_client(tmp_path, policy_file=pol, principal="alice") as client:
        ref = await filed(client)
    for name in [*SPELLINGS, "alice", "ALICE", "ａｌｉｃｅ"]:
        for verb in ("approve", "reject"):
            refused = approve(tmp_path, pol, ref, name, verb)
            assert refused.returncode == 2, (name, refused.stdout)
            assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
            assert (
                "not in the approver group ops" in refused.stderr
                or "the requester cannot approve or reject their own request" in refused.stderr
                or "use the plain name" in refused.stderr  # attack 17: "alice|laptop"
            ), refused.stderr
    assert request_state(tmp_path, ref) == "pending"
    assert approve(tmp_path, pol, ref, "bob").returncode == 0
    assert request_state(tmp_path, ref) == "approved"


async def test_her_other_principal_is_her_over_http(tmp_path: Path) -> None:
    pol = person_policy(tmp_path / "policy.json")
    with http_guard(tmp_path, pol) as guard:
        async with http_client(guard.url, guard.token("alice-laptop")) as client:
            ref = await filed(client)
    for name in ("alice", "Alice"):
        refused = approve(tmp_path, pol, ref, name)
        assert refused.returncode == 2, refused.stdout
        assert "(alice): the requester cannot approve" in refused.stderr, refused.stderr
    assert request_state(tmp_path, ref) == "pending"
    assert approve(tmp_path, pol, ref, "dave").returncode == 0
    assert request_state(tmp_path, ref) == "approved"


async def test_a_principal_nobody_lists_cannot_be_decided(tmp_path: Path) -> None:
    pol = person_policy(tmp_path / "policy.json")
    async with stdio_client(tmp_path, policy_file=pol, principal="mallory") as client:
        ref = await filed(client)
    for verb in ("approve", "reject"):
        refused = approve(tmp_path, pol, ref, "bob", verb)
        assert refused.returncode == 2, refused.stdout
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "principal mallory, which no person under the policy's people lists" in (
            refused.stderr
        )
        assert "list it under its person in people" in refused.stderr
    assert request_state(tmp_path, ref) == "pending"


async def test_a_quorum_counts_persons(tmp_path: Path) -> None:
    pol = person_policy(tmp_path / "policy.json", quorum=2)
    async with stdio_client(tmp_path, policy_file=pol, principal="bob") as client:
        ref = await filed(client)
    first = approve(tmp_path, pol, ref, "carol")
    assert first.returncode == 0 and "approval 1 of 2 recorded" in first.stdout, first.stderr
    # carol's other name on the list is carol; other spellings of her are on no list
    for name in ("carol-admin", "Carol", "carol/admin", "carol_admin"):
        again = approve(tmp_path, pol, ref, name)
        assert again.returncode == 2, (name, again.stdout)
        assert (
            "already approved" in again.stderr
            or "not in the approver group" in again.stderr
            or "use the plain name" in again.stderr  # attack 17: "carol/admin"
        ), again.stderr
    assert request_state(tmp_path, ref) == "pending"
    assert approve(tmp_path, pol, ref, "dave").returncode == 0
    assert request_state(tmp_path, ref) == "approved"


async def test_without_people_the_names_are_compared_as_before(tmp_path: Path) -> None:
    pol = person_policy(tmp_path / "policy.json", people=None)
    async with stdio_client(tmp_path, policy_file=pol, principal="mallory") as client:
        ref = await filed(client)
    assert approve(tmp_path, pol, ref, "bob").returncode == 0
    assert request_state(tmp_path, ref) == "approved"


@pytest.mark.parametrize(
    ("people", "fault"),
    [
        (["alice"], "$.people: must be an object"),
        ({"alice": "alice"}, "$.people.alice: must be a list"),
        ({"alice": []}, "$.people.alice: must list 1 to"),
        ({"alice": ["a"], "Alice": ["b"]}, "$.people.Alice: the same person as 'alice'"),
        (
            {"alice": ["x"], "bob": ["stdio:x"]},
            "$.people.bob[0]: 'x' is already listed for 'alice'",
        ),
        ({"alice": ["x\u202e"]}, "$.people.alice[0]: not a principal"),
    ],
)
def test_a_bad_people_entry_is_refused_with_its_path(
    tmp_path: Path, people: Any, fault: str
) -> None:
    doc = policy()
    doc["people"] = people
    pol = write_policy(tmp_path / "policy.json", doc)
    result = run_cli(tmp_path, "policy", "check", str(pol), check=False)
    assert result.returncode != 0 and fault in result.stderr + result.stdout, result.stderr
    assert "Traceback" not in result.stderr
