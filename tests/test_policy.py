"""The policy document: loading refuses every malformed kind with the line and JSON path of the
fault (through `odoo-mcp-guard policy check`, as an operator runs it), and decisions follow
DESIGN.md's matching order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from odoo_mcp_guard.policy import (
    BUILTIN_POLICY,
    Policy,
    PolicyError,
    PolicySource,
    load_policy_text,
)

GUARD = [sys.executable, "-m", "odoo_mcp_guard"]

# (name, document text, expected line, expected fragment of the fault)
MALFORMED = [
    ("not JSON", '{"version": "1",\n "default": "deny"', 2, "not valid JSON"),
    ("trailing comma", '{"version": "1",\n "hide": ["a",]\n}', 2, "not valid JSON"),
    ("not an object", '["odoo_disconnect"]', 1, "$: the policy must be a JSON object"),
    ("wrong version", '{"version": "2"}', 1, "$.version"),
    ("version as number", '{"version": 1}', 1, "$.version"),
    ("missing version", '{"default": "deny"}', 1, "$.version: Field required"),
    ("bad default", '{"version": "1",\n "default": "maybe"}', 2, "$.default"),
    ("unknown top-level key", '{"version": "1",\n "hidden": []}', 2, "$.hidden: unknown key"),
    (
        "bad action",
        '{"version": "1",\n "rules": {\n  "odoo_x": {"action": "permit"}}}',
        3,
        "$.rules.odoo_x.action",
    ),
    (
        "missing action",
        '{"version": "1",\n "rules": {\n  "odoo_x": {"reason": "r"}}}',
        3,
        "$.rules.odoo_x.action: Field required",
    ),
    (
        "negative window",
        '{"version": "1",\n "rules": {\n  "odoo_x": {"action": "allow",\n'
        '    "rate_limit": {"max": 5, "window": -60}}}}',
        4,
        "$.rules.odoo_x.rate_limit.window",
    ),
    (
        "zero max",
        '{"version": "1", "rules": {"odoo_x": {"action": "allow",\n'
        ' "rate_limit": {"max": 0, "window": 60}}}}',
        2,
        "$.rules.odoo_x.rate_limit.max",
    ),
    (
        "max as string",
        '{"version": "1", "rules": {"odoo_x": {"action": "allow",\n'
        ' "rate_limit": {"max": "5", "window": 60}}}}',
        2,
        "$.rules.odoo_x.rate_limit.max: Input should be a valid integer",
    ),
    (
        "unknown rule key",
        '{"version": "1", "rules": {\n "odoo_x": {"action": "allow", "ratelimit": 5}}}',
        2,
        "$.rules.odoo_x.ratelimit: unknown key",
    ),
    (
        "zero expiry",
        '{"version": "1", "rules": {\n "odoo_x": {"action": "require_approval",\n'
        ' "approval": {"expires_in": 0}}}}',
        3,
        "$.rules.odoo_x.approval.expires_in",
    ),
    (
        "invalid rule name",
        '{"version": "1", "rules": {\n "odoo disconnect": {"action": "deny"}}}',
        2,
        '$.rules["odoo disconnect"]: invalid tool name',
    ),
    (
        "homoglyph rule name",
        '{"version": "1", "rules": {\n "odoo_disc\u043ennect": {"action": "allow"}}}',
        2,
        "invalid tool name",
    ),
    ("hide not a list", '{"version": "1",\n "hide": "odoo_disconnect"}', 2, "$.hide"),
    (
        "hide entry with zero-width space",
        '{"version": "1", "hide": [\n "odoo_connect",\n "odoo_disconnect\u200b"]}',
        3,
        "$.hide[1]",
    ),
    (
        "duplicate rule",
        '{"version": "1", "rules": {\n "odoo_disconnect": {"action": "require_approval"},\n'
        ' "odoo_disconnect": {"action": "allow"}}}',
        3,
        "$.rules.odoo_disconnect: duplicate key",
    ),
    (
        "reason not a string",
        '{"version": "1", "rules": {"x": {"action": "deny",\n "reason": 5}}}',
        2,
        "$.rules.x.reason",
    ),
]


@pytest.mark.e2e  # a subprocess
@pytest.mark.parametrize(
    ("text", "line", "fragment"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_policy_is_refused_with_line_and_path(tmp_path, text, line, fragment):
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [*GUARD, "policy", "check", str(policy_file)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert f"line {line}:" in result.stderr, result.stderr
    assert fragment in result.stderr, result.stderr


@pytest.mark.parametrize("text", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_policy_refusal_is_one_line_naming_the_file(text):
    """What serve and proxy print when they refuse a policy: one line, the file first."""
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "/etc/guard/policy.json")
    message = str(caught.value)
    assert message.startswith("/etc/guard/policy.json: invalid policy: line ")
    assert "\n" not in message and "Traceback" not in message


@pytest.mark.e2e  # a subprocess
def test_valid_policy_check_prints_effective_rules(tmp_path):
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(
        json.dumps(
            {
                "version": "1",
                "default": "deny",
                "hide": ["odoo_disconnect"],
                "rules": {
                    "odoo_*": {"action": "allow", "rate_limit": {"max": 60, "window": 60}},
                    "odoo_unlink": {"action": "deny", "reason": "Agents may not delete records"},
                },
            }
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [*GUARD, "policy", "check", str(policy_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "default: deny" in result.stdout
    assert "hidden: odoo_disconnect" in result.stdout
    assert "rule odoo_*: allow, rate limit 60/60s" in result.stdout
    assert "rule odoo_unlink: deny, reason: Agents may not delete records" in result.stdout


def test_published_gateway_format_loads():
    policy = load_policy_text(
        json.dumps(
            {
                "version": "1",
                "default": "deny",
                "hide": ["odoo_disconnect"],
                "rules": {"odoo_connections": {"action": "allow"}},
            }
        )
    )
    assert policy.decide("odoo_connections").action == "allow"
    assert policy.decide("odoo_disconnect").hidden


def test_exact_name_beats_globs_and_longest_glob_wins():
    policy = load_policy_text(
        json.dumps(
            {
                "version": "1",
                "default": "allow",
                "rules": {
                    "odoo_*": {"action": "allow"},
                    "odoo_dis*": {"action": "require_approval"},
                    "odoo_disconnect": {"action": "deny", "reason": "exact"},
                },
            }
        )
    )
    assert policy.decide("odoo_disconnect").action == "deny"
    assert policy.decide("odoo_disconnect").rule == "odoo_disconnect"
    assert policy.decide("odoo_discard").action == "require_approval"
    assert policy.decide("odoo_search_read").rule == "odoo_*"
    assert policy.decide("other").rule is None
    assert policy.decide("other").action == "allow"


def test_matching_is_exact_no_case_folding_or_normalisation():
    policy = load_policy_text(
        json.dumps(
            {"version": "1", "default": "deny", "rules": {"odoo_connections": {"action": "allow"}}}
        )
    )
    for variant in (
        "ODOO_CONNECTIONS",
        "Odoo_connections",
        "odoo_connections ",
        "odoo_c\u043ennections",
        "odoo_connections\u200b",
    ):
        assert policy.decide(variant).action == "deny", variant


def test_hide_accepts_globs():
    policy = load_policy_text('{"version": "1", "default": "allow", "hide": ["*_disconnect"]}')
    assert policy.decide("odoo_disconnect").hidden
    assert not policy.decide("odoo_connect").hidden


def test_builtin_default():
    policy = Policy(BUILTIN_POLICY)
    assert policy.document.default == "deny"
    assert policy.decide("odoo_connections").action == "allow"
    assert policy.decide("odoo_connect").action == "allow"
    assert policy.decide("odoo_disconnect").action == "require_approval"
    assert policy.decide("odoo_search_read").action == "allow"
    assert policy.decide("odoo_unlink").action == "require_approval"
    assert policy.decide("odoo_anything_else").action == "deny"


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    # mtime granularity: make each write visible as a change
    stamp = time.time() + len(text) % 7 + 1
    os.utime(path, (stamp, stamp))


def test_file_reloads_on_change_and_a_broken_file_keeps_the_last_good(tmp_path):
    policy_file = tmp_path / "policy.json"
    _write(policy_file, '{"version": "1", "rules": {"odoo_connections": {"action": "allow"}}}')
    source = PolicySource(policy_file, check_interval=0)
    assert source.current().decide("odoo_connections").action == "allow"
    first = source.version

    _write(policy_file, '{"version": "1", "rules": {"odoo_connections": {"action": "deny"}}}')
    assert source.current().decide("odoo_connections").action == "deny"
    assert source.version != first

    _write(policy_file, '{"version": "1", "rules": {"odoo_connections": {"action": "nope"}}}')
    assert source.current().decide("odoo_connections").action == "deny"
    assert "$.rules.odoo_connections.action" in (source.last_error or "")


def test_broken_file_at_start_refuses_everything(tmp_path):
    from odoo_mcp_guard.policy import PolicyUnavailable

    policy_file = tmp_path / "policy.json"
    _write(policy_file, '{"version": "1", "default": "allow",')
    source = PolicySource(policy_file, check_interval=0)
    with pytest.raises(PolicyUnavailable, match="not valid JSON"):
        source.current()
