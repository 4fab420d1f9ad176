"""What the tests of a proxy's server name share (tests/test_attack17_server.py,
tests/test_attack18_server.py): a policy holding ``purge_notes`` for approval, the scenario of
an approval bound to the server it was filed on, and the CLI's one-line refusals."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.guard import EFFECT_WAIT, guard_command, guard_env, run_cli, text_of, write_policy


def purge_policy(tmp_path: Path) -> Path:
    """Everything allowed but ``purge_notes``, held for approval."""
    return write_policy(
        tmp_path / "policy.json",
        {
            "version": "1",
            "default": "allow",
            "rules": {"purge_notes": {"action": "require_approval"}},
        },
    )


async def approval_stays_with_its_server(
    tmp_path: Path, filed_on: Callable[[], Any], other: Callable[[], Any]
) -> str:
    """alice's ``purge_notes`` through ``filed_on()`` files a request, which carol approves;
    the same call through ``other()`` files its own (pending) request; through ``filed_on()``
    again it runs. ``approvals show`` of the first request, as it was before its approval."""
    async with filed_on() as client:
        filed = await client.call_tool("purge_notes", {})
        assert filed.is_error
        ref = filed.structured_content["request"]
    shown = run_cli(tmp_path, "approvals", "show", ref).stdout
    run_cli(tmp_path, "approvals", "approve", ref, "--as", "carol")
    async with other() as client:
        refused = await client.call_tool("purge_notes", {})
        assert refused.is_error, text_of(refused)
        assert refused.structured_content["status"] == "pending"
        assert refused.structured_content["request"] != ref
    # the approval still stands, and is used by a call through the server it was filed on
    async with filed_on() as client:
        done = await client.call_tool("purge_notes", {})
        assert not done.is_error, text_of(done)
    return shown


def run_guard(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``odoo-mcp-guard --data-dir tmp_path ARGS``, stdin closed, whatever its exit."""
    return subprocess.run(
        guard_command("--data-dir", str(tmp_path), *args),
        env=guard_env(tmp_path, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=EFFECT_WAIT,
        check=False,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused command says (exit 2, no traceback)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("odoo-mcp-guard: error: "), proc.stderr
    return lines[0]
