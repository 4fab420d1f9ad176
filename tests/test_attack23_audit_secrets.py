"""Outside round 23 (tester B, HIGH): a ``tools/call`` whose ``name`` is not a string was
audited 'invalid' with the name stored as Python wrote it: ``{'password': '...'}``, a URL with
its user's password, in full. A name that is not text is now stored as its kind alone, and a
text name outside the tool-name alphabet is redacted before it is stored. The real ``serve``
over raw stdio (what the SDK client cannot send); then ``audit tail``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.guard import run_cli
from support.raw_stdio import raw_stdio

pytestmark = pytest.mark.anyio

SECRET = "Qx9vLm3Tz7Wp2Rk5Hs8B"
NAMES: list[Any] = [
    {"password": SECRET},
    [["password", SECRET]],
    {"api_key": f"https://u:{SECRET}@h.example.com"},
    f"https://ops:{SECRET}@h.example.com/",
]


async def test_a_name_that_is_no_tool_name_is_audited_without_its_secret(tmp_path: Path) -> None:
    async with raw_stdio(tmp_path) as raw:
        with anyio.fail_after(60):
            await raw.initialize()
            for rid, name in enumerate(NAMES, start=10):
                call = {"name": name, "arguments": {}}
                answer = await raw.request(rid, "tools/call", call)
                assert SECRET not in json.dumps(answer), answer
            errors = await raw.close()
    assert SECRET not in errors
    tail = run_cli(tmp_path, "audit", "tail", "-n", "50", "--json").stdout
    assert SECRET not in tail, tail
    invalid = [e for e in json.loads(tail) if e["outcome"] == "invalid"]
    assert len(invalid) == len(NAMES), invalid
