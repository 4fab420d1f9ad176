"""The golden corpus of policy decisions and faults (tests/data/policy_golden.json), run against
the front-end: the same file runs in Odoo against the add-on (mcp_guard/tests/test_policy_golden.py,
a byte-for-byte copy), so the two halves decide and refuse exactly the same documents."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.guard import REPO

from odoo_mcp_guard.catalog import Classification
from odoo_mcp_guard.identity import same_person
from odoo_mcp_guard.policy import PolicyError, load_policy_text
from odoo_mcp_guard.policy_core import alias_problem, redact, redact_text, url_has_credentials

CORPUS = json.loads((REPO / "tests" / "data" / "policy_golden.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "case",
    CORPUS["decisions"],
    ids=[f"{c['policy']}:{c['tool']}@{c['server']}:{c['class']}" for c in CORPUS["decisions"]],
)
def test_golden_decision(case: dict[str, Any]) -> None:
    policy = load_policy_text(json.dumps(CORPUS["policies"][case["policy"]]))
    risk = Classification(case["class"], "reported") if case["class"] else None
    decision = policy.decide(case["tool"], case["server"], risk)
    got = {
        "action": decision.action,
        "hidden": decision.hidden,
        "rule": decision.rule,
        "expires_in": decision.expires_in,
        "rate_limit": list(decision.rate_limit) if decision.rate_limit else None,
        "approver_group": decision.approver_group,
        "quorum": decision.quorum,
        "binding": decision.binding,
    }
    assert got == case["decision"]


@pytest.mark.parametrize("case", CORPUS["faults"], ids=[c["name"] for c in CORPUS["faults"]])
def test_golden_fault(case: dict[str, Any]) -> None:
    text = case["text"] if "text" in case else json.dumps(case["document"])
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text)
    assert any(case["fault"] in fault for fault in caught.value.faults), caught.value.faults


@pytest.mark.parametrize(
    "case", CORPUS["identities"]["same"], ids=[c[2] for c in CORPUS["identities"]["same"]]
)
def test_golden_look_alikes_are_the_same_person(case: list[str]) -> None:
    first, second, _why = case
    assert same_person(first, second) and same_person(second, first)


@pytest.mark.parametrize(
    "case",
    CORPUS["identities"]["different"],
    ids=[c[2] for c in CORPUS["identities"]["different"]],
)
def test_golden_different_names_are_different_people(case: list[str]) -> None:
    first, second, _why = case
    assert not same_person(first, second) and not same_person(second, first)


@pytest.mark.parametrize(
    "case", CORPUS["redactions"], ids=[c["name"] for c in CORPUS["redactions"]]
)
def test_golden_redaction(case: dict[str, Any]) -> None:
    hidden = redact(case["value"])
    assert hidden == case["redacted"]
    assert redact(hidden) == hidden  # redacting twice changes nothing
    assert "hunter2" not in json.dumps(hidden, ensure_ascii=False)


@pytest.mark.parametrize("url", CORPUS["connection_urls"]["credentials"])
def test_golden_connection_url_with_credentials_is_refused(url: str) -> None:
    assert url_has_credentials(url)
    assert "hunter2" not in redact_text(url)


@pytest.mark.parametrize("url", CORPUS["connection_urls"]["clean"])
def test_golden_connection_url_without_credentials_is_accepted(url: str) -> None:
    assert not url_has_credentials(url)
    assert redact_text(url) == url


@pytest.mark.parametrize("alias", CORPUS["aliases"]["refused"], ids=ascii)
def test_golden_alias_refused(alias: str) -> None:
    problem = alias_problem(alias)
    assert problem is not None and "\n" not in problem


@pytest.mark.parametrize("alias", CORPUS["aliases"]["accepted"])
def test_golden_alias_accepted(alias: str) -> None:
    assert alias_problem(alias) is None
