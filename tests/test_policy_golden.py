"""The golden corpus of policy decisions and faults (tests/data/policy_golden.json), run against
the front-end: the same file runs in Odoo against the add-on (mcp_guard/tests/test_policy_golden.py,
a byte-for-byte copy), so the two halves decide and refuse exactly the same documents."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.guard import REPO

from odoo_mcp_guard.catalog import Classification
from odoo_mcp_guard.policy import PolicyError, load_policy_text

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
