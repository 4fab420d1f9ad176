"""Properties, checked on generated input (hypothesis): the policy loader answers every text
with a policy or with faults, never a traceback; the name check and the identity comparison
hold for every string, not only for the look-alikes someone thought of."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo_mcp_guard.names import (
    TRANSPORT_PREFIXES,
    IdentityError,
    check_identity,
    find_unsafe,
    same_person,
    shown,
    skeleton,
)
from odoo_mcp_guard.policy import Policy, PolicyError, load_policy_text

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Nested documents cost more to generate: fewer of them keep the test at a few seconds.
NESTED = settings(FAST, max_examples=80)

# --- the policy loader -------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["allow", "deny", "require_approval", "1", "odoo_*", "destructive"]),
    st.text(max_size=20),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "version",
            "default",
            "hide",
            "rules",
            "risk",
            "action",
            "reason",
            "rate_limit",
            "approval",
            "max",
            "window",
            "expires_in",
            "require_approval",
            "servers",
            "overrides",
            "server",
            "tool",
            "class",
            "odoo_disconnect",
            "odoo_*",
        ]
    ),
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)
# What JSON allows Python to read but a policy cannot hold, and plain junk.
SPLICES = st.sampled_from(
    ["NaN", "Infinity", "-Infinity", "9" * 5000, "1e999", "-1e999", "{", "]", ",", '"\\ud800"']
)


def _loads_or_faults(text: str) -> None:
    try:
        loaded = load_policy_text(text, "generated")
    except PolicyError as exc:
        assert exc.faults
        assert all("\n" not in fault for fault in exc.faults)
    else:
        assert isinstance(loaded, Policy)


@NESTED
@given(document=st.dictionaries(KEYS, JSON_VALUES, max_size=6))
def test_loader_answers_every_document_with_a_policy_or_faults(document):
    _loads_or_faults(json.dumps({"version": "1", **document}))


@NESTED
@given(document=JSON_VALUES, splice=SPLICES, where=st.floats(min_value=0, max_value=1))
def test_loader_answers_every_text_with_a_policy_or_faults(document, splice, where):
    text = json.dumps(document, indent=1)
    at = int(len(text) * where)
    _loads_or_faults(text[:at] + splice + text[at:])


@FAST
@given(text=st.text(max_size=200))
def test_loader_answers_arbitrary_text(text):
    _loads_or_faults(text)


# --- names -------------------------------------------------------------------------------


@FAST
@given(name=st.text(max_size=40))
def test_the_name_check_accepts_only_readable_names(name):
    problem = check_identity(name)
    if problem is None:
        assert find_unsafe(name) is None and name.strip()
        assert same_person(name, name)
    else:
        assert "\n" not in problem
        try:
            same_person(name, "bob")
        except IdentityError:
            pass
        else:
            raise AssertionError(f"{name!r} was compared although refused: {problem}")
    assert find_unsafe(shown(name)) is None


# Characters with look-alikes across scripts, so that generated pairs often share a skeleton.
CONFUSABLE = "aаɑαlI1|ǀіiıoо0Oοceеrnmрpѕsхx"
INVISIBLE = [
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u034f",
    "\ufe0f",
    "\u180e",
    "\u3164",
    "\u115f",
    "\u202e",
    "\u2066",
    "\u00ad",
    "\U000e0041",
]


@FAST
@given(
    first=st.text(alphabet=CONFUSABLE, min_size=1, max_size=8),
    second=st.text(alphabet=CONFUSABLE, min_size=1, max_size=8),
    prefix=st.sampled_from(["", *TRANSPORT_PREFIXES]),
)
def test_skeleton_equal_names_are_the_same_person(first, second, prefix):
    if skeleton(first) == skeleton(second):
        assert same_person(prefix + first, second)
        assert same_person(second, prefix + first)


@FAST
@given(
    name=st.text(alphabet=CONFUSABLE + "bdefghjkqtuvwyz", min_size=1, max_size=10),
    invisible=st.lists(
        st.tuples(st.sampled_from(INVISIBLE), st.integers(min_value=0, max_value=10)),
        min_size=1,
        max_size=3,
    ),
)
def test_names_differing_by_invisible_characters_are_refused_or_the_same(name, invisible):
    other = name
    for char, at in invisible:
        other = other[:at] + char + other[at:]
    if check_identity(other) is None:
        assert same_person(name, other)
