"""Attack 11: the requester approving her own request under a spelling that stands for her (an
RFC 5322 display name and mailbox, DOMAIN\\user, an LDAP DN, a comment, her name last name
first), either way round. Through the CLI as a subprocess, on the embedded store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from odoo_mcp_guard.store import Store

GUARD = [sys.executable, "-m", "odoo_mcp_guard"]

# spellings of alice (login alice, name "Alice Approver")
SPELLINGS = [
    "Alice <alice@x.org>",
    "Alice Approver <alice@x.org>",
    '"Approver, Alice" <alice@x.org>',
    "ops\\alice",
    "ops/alice",
    "ops＼alice",
    "CN=alice",
    "CN=alice,OU=x,DC=y",
    "uid=alice",
    "alice (ops)",
    "alice (laptop)",
]


def run(data_dir, *args):
    result = subprocess.run(
        [*GUARD, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def filed(data_dir, principal):
    store = Store.open(data_dir)
    request, created = store.file_request(
        "odoo_disconnect", {"alias": "prod"}, principal, "Removing a connection", 3600
    )
    assert created
    store.close()
    return request


@pytest.mark.parametrize("name", SPELLINGS)
@pytest.mark.parametrize("requester_first", [True, False], ids=["as-approver", "as-requester"])
def test_a_spelling_that_stands_for_the_requester_cannot_approve(tmp_path, name, requester_first):
    # alice files and approves as the spelling, or files as the spelling and approves as alice
    requester, approver = ("alice", name) if requester_first else (name, "alice")
    request = filed(tmp_path, requester)
    result = run(tmp_path, "approvals", "approve", request.ref, "--as", approver)
    assert result.returncode == 2, result.stdout
    # her name in another spelling; since attack 17 such a spelling is no plain name, so an
    # approver named so is refused as such, and a request filed under it is decided by nobody
    assert (
        "the requester cannot approve or reject their own request" in result.stderr
        or ("use the plain name" in result.stderr and requester_first)
        or ("cannot be compared" in result.stderr and not requester_first)
    ), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    shown = json.loads(run(tmp_path, "approvals", "show", request.ref, "--json").stdout)
    assert shown["state"] == "pending"


def test_her_name_last_name_first_is_her(tmp_path):
    request = filed(tmp_path, "Alice Approver")
    result = run(tmp_path, "approvals", "approve", request.ref, "--as", "Approver Alice")
    assert result.returncode == 2 and "their own request" in result.stderr, result.stdout
    # with a comma it is no plain name (attack 17): refused as such
    result = run(tmp_path, "approvals", "approve", request.ref, "--as", "Approver, Alice")
    assert result.returncode == 2 and "use the plain name" in result.stderr, result.stdout


def test_another_person_still_approves(tmp_path):
    # a plain name that mentions her, but is bob's (since attack 17 a decider's name and the
    # requester's are plain names: "Alice <alice@x.org>" and "CN=bob,OU=alice" are refused)
    request = filed(tmp_path, "alice")
    result = run(tmp_path, "approvals", "approve", request.ref, "--as", "bob@alice.org")
    assert result.returncode == 0, result.stderr
    shown = json.loads(run(tmp_path, "approvals", "show", request.ref, "--json").stdout)
    assert shown["state"] == "approved"
