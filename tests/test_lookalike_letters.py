"""Outside tester (low): with the embedded default and the default approver group (no
``people``, no ``approvers``: anyone but the requester decides), a requester approved her own
request under a plain-Latin look-alike that the TR39 skeleton does not fold: "vvill" for
will, "clave" for dave, "vvalter" for walter, "ennma" for emma. The skeleton already takes
"m" to "rn", "0" to "o" and "1" to "l"; identity keys now also read "vv" as "w", "cl" as "d",
"nn" as "m" (so "rn" as "nn") and the digits drawn like a letter (2 z, 5 s, 6 g, 8 b) as that
letter (identity._lookalike_fold). The real server over stdio (SDK client) and the real CLI,
as subprocesses; identity_keys and same_person in-process."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from support.guard import policy, request_state, write_policy
from test_attack12_person import approve
from test_attack13_person import done_by, filed_by

from odoo_mcp_guard.identity import check_decider, identity_keys, same_person

pytestmark = pytest.mark.anyio

# a requester, the look-alikes of her name, and someone else who decides
CASES = [
    ("will", ["vvill", "VVill", "vviII", "wi11"], "wilma"),
    ("dave", ["clave", "Clave", "c1ave"], "david"),
    ("emma", ["ennma", "emnna", "ennnna", "ernma"], "emily"),
    ("walter", ["vvalter", "VValter"], "walt"),
]


def default_group_policy(path: Path) -> Path:
    return write_policy(path, policy(odoo_disconnect={"action": "require_approval"}))


@pytest.mark.parametrize(("requester", "lookalikes", "other"), CASES)
async def test_a_look_alike_spelling_of_the_requester_does_not_decide(
    tmp_path: Path, requester: str, lookalikes: list[str], other: str
) -> None:
    pol = default_group_policy(tmp_path / "policy.json")
    ref = await filed_by(tmp_path, pol, requester)
    for name in lookalikes:
        assert check_decider(name) is None, name  # a plain name: compared, not refused
        for verb in ("approve", "reject"):
            refused = approve(tmp_path, pol, ref, name, verb)
            assert refused.returncode == 2, (name, verb, refused.stdout)
            lines = refused.stderr.strip().splitlines()
            assert len(lines) == 1, refused.stderr
            assert (
                f"{ref} was requested by {requester}: "
                "the requester cannot approve or reject their own request"
            ) in lines[0], lines
    assert request_state(tmp_path, ref) == "pending"
    assert not await done_by(tmp_path, pol, requester)
    # someone else, whose name shares letters with hers, still decides
    result = approve(tmp_path, pol, ref, other)
    assert result.returncode == 0, result.stderr
    assert request_state(tmp_path, ref) == "approved"
    assert await done_by(tmp_path, pol, requester)


# --- identity_keys, in-process ---------------------------------------------------------

LOOKALIKES = [
    ("will", "vvill"),
    ("will", "VVILL"),
    ("Will", "vviII"),
    ("dave", "clave"),
    ("dave", "c1ave"),
    ("walter", "vvalter"),
    ("emma", "ennma"),
    ("emma", "emnna"),
    ("emma", "ennnna"),
    ("emma", "ernrna"),
    ("emma", "ernnna"),
    ("mia", "rnia"),
    ("mia", "nnia"),
    ("arma", "arnna"),  # r, then nn read as m
    ("sam", "5am"),
    ("zoe", "2oe"),
    ("greg", "6reg"),
    ("bob", "8ob"),
    ("olga", "01ga"),
    ("stdio:will", "vvill"),
    ("will.vvonder@example.com", "will.wonder"),
    ("Wanda Maximoff", "vvanda rnaxirnoff"),
]


@pytest.mark.unit
@pytest.mark.parametrize(("name", "lookalike"), LOOKALIKES)
def test_a_latin_look_alike_has_a_key_in_common(name: str, lookalike: str) -> None:
    assert identity_keys(name) & identity_keys(lookalike), (
        sorted(identity_keys(name)),
        sorted(identity_keys(lookalike)),
    )
    assert same_person(name, lookalike)
    assert same_person(lookalike, name)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("will", "wilma"),
        ("dave", "david"),
        ("emma", "emily"),
        ("bot2", "bot5"),  # numbered principals: no digit is read as another digit
        ("bot6", "bot8"),
        ("agent1", "agent7"),
        ("ann", "anna"),
        ("ii", "u"),  # letters with a dot are not read as part of another letter
        ("ri", "n"),
    ],
)
def test_different_names_stay_apart(first: str, second: str) -> None:
    assert not same_person(first, second)


# Common given names (English, Western and Northern Europe, the Americas). Among them, the
# folding may join only the pairs below: each is a real name read as another in a UI font
# ("rn" and "nn" are both "m"; "cl" is "d"). Such a pair cannot approve each other's requests
# (fail closed); any other join in this list would be a new, unexpected false merge.
_GIVEN = """
aaron abigail adam adrian ahmed aisha alan albert alex alexander alice alicia amanda amber
amy ana andrea andrew angela anita ann anna anne annie anthony arne arnold arthur ashley
barbara benjamin bernard bernie bennie beth betty bill bob brandon brenda brian bruce carl
carla carlos carmen carol caroline catherine charles charlotte chris christian christina
christine christopher claire clara clark claude claudia clay cliff clint clive colin connor
craig cynthia dale dan daniel danny dara darnell david dawn dean deborah denis dennis diana
diane donald donna doris dorothy douglas dylan edward elena elizabeth ellen emily emma eric
erik erin ernest ernie eva evelyn frank gary george gerald gina glenn gloria grace greg
gregory hanna hannah harold harry heather helen henry howard ian irene isabel jack jacob
james jane janet jason jean jeff jennifer jenny jeremy jerry jessica jim joan joe john
jonathan jose joseph joshua joyce juan judith judy julia julie justin karen karl kate
katherine kathleen keith kelly kenneth kevin kim kimberly kyle larry laura lauren lawrence
linda lisa lorna lonna louis lucas lucy luis lynn marco margaret maria marie marilyn mark
marnie martha martin mary matthew megan melissa michael michelle mike mohammed nancy nathan
nicholas nicole noah norma olga oliver olivia pamela patricia patrick paul peter philip
rachel ralph randy raymond rebecca richard rita robert roger ronald rose russell ruth ryan
samantha samuel sandra sara sarah scott sean sharon shirley sophia stephanie stephen steven
susan teresa terry thomas timothy tina todd tom tony tyler vanessa verna victor victoria
vincent virginia walter wanda warren wayne wendy william willy zachary
"""
GIVEN_NAMES = _GIVEN.split()
EXPECTED_JOINS = {
    frozenset(("arne", "anne")),
    frozenset(("bernie", "bennie")),
    frozenset(("lorna", "lonna")),
    frozenset(("clara", "dara")),
}


@pytest.mark.unit
def test_realistic_given_names_are_not_joined_beyond_the_known_look_alikes() -> None:
    # same_person on every pair, by its keys (one index, not 50,000 comparisons)
    named: dict[str, set[str]] = {}
    for name in GIVEN_NAMES:
        for key in identity_keys(name):
            named.setdefault(key, set()).add(name)
    joined = {
        frozenset(pair) for names in named.values() for pair in itertools.combinations(names, 2)
    }
    assert joined == EXPECTED_JOINS
    for pair in joined:
        assert same_person(*pair)
