"""Attack 17 (outside tester), finding 1: with the embedded default (SQLite, CLI approvals)
and the default approver group (no ``people``, no ``approvers``: anyone but the requester
decides), the requester approved her own request under a decorated or look-alike spelling of
her name: "x!alice" (a bang path), "alice%x" (the percent hack), "🅰lice" (an enclosed
letter), "ɐlıɔǝ" (turned and IPA letters). A decider's name is a plain name
(identity.check_decider): letters and digits of one script (UTS #39's identifier profile), a
space and . - _ @ +; anything else is refused in one line naming the character. The real
server over stdio (SDK client) and the real CLI, as subprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.guard import policy, request_state, write_policy
from test_attack12_person import approve
from test_attack13_person import done_by, filed_by

from odoo_mcp_guard.identity import check_decider, same_person

pytestmark = pytest.mark.anyio

# the name as given, and the character the refusal must name
SPELLINGS = [
    ("x!alice", "U+0021 EXCLAMATION MARK"),
    ("alice%x", "U+0025 PERCENT SIGN"),
    ("\U0001f170lice", "U+1F170 NEGATIVE SQUARED LATIN CAPITAL LETTER A"),
    ("\u0250l\u0131\u0254\u01dd", "U+0250 LATIN SMALL LETTER TURNED A"),
    ("al\u0131\u0254\u01dd", "U+0254 LATIN SMALL LETTER OPEN O"),
    ("\u0299ob", "U+0299 LATIN LETTER SMALL CAPITAL B"),
    ("alice\u2665", "U+2665 BLACK HEART SUIT"),
    ("\u0430lice", "U+006C LATIN SMALL LETTER L"),  # a Cyrillic а, then Latin: mixed scripts
]


def default_group_policy(path: Path) -> Path:
    return write_policy(path, policy(odoo_disconnect={"action": "require_approval"}))


async def test_no_decorated_or_look_alike_spelling_of_the_requester_decides(
    tmp_path: Path,
) -> None:
    pol = default_group_policy(tmp_path / "policy.json")
    ref = await filed_by(tmp_path, pol, "alice")
    for name, char in SPELLINGS:
        for verb in ("approve", "reject"):
            refused = approve(tmp_path, pol, ref, name, verb)
            assert refused.returncode == 2, (name, verb, refused.stdout)
            lines = refused.stderr.strip().splitlines()
            assert len(lines) == 1, refused.stderr
            assert char in lines[0] and "use the plain name" in lines[0], lines
    assert request_state(tmp_path, ref) == "pending"
    assert not await done_by(tmp_path, pol, "alice")
    # a plain name of someone else still decides
    assert approve(tmp_path, pol, ref, "bob").returncode == 0
    assert request_state(tmp_path, ref) == "approved"


@pytest.mark.parametrize(
    "name",
    [
        "Bob Builder",
        "bob.builder@example.com",
        "bob_2",
        "b-o-b+ops",
        "\uff22\uff2f\uff22",
        "\u0411\u043e\u0440\u0438\u0441",
        "\u5f20\u4f1f",
        "Ma\u0142gorzata",
        "http:bob",
    ],
)
async def test_a_plain_name_in_any_script_decides(tmp_path: Path, name: str) -> None:
    pol = default_group_policy(tmp_path / "policy.json")
    ref = await filed_by(tmp_path, pol, "alice")
    result = approve(tmp_path, pol, ref, name)
    assert result.returncode == 0, result.stderr
    assert request_state(tmp_path, ref) == "approved"


@pytest.mark.unit
@pytest.mark.parametrize("name", ["x!alice", "a!b!alice", "alice%x", "alice%x@relay.org"])
def test_a_routing_decoration_is_no_other_person(name: str) -> None:
    # a second fence: names check_decider refuses still compare as alice (the add-on
    # compares names it does not check so)
    assert check_decider(name) is not None
    assert same_person("stdio:alice", name)
