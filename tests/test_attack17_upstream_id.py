"""Attack 17 (outside tester), finding 3: an upstream answer whose JSON-RPC id cannot be read
(an object, or none on a result) dropped the whole upstream session behind ``proxy``. It is
one answer discarded (one clear line in the log, nothing of it shown); the session to the
upstream lives on (the same process answers the next calls, concurrent ones included), and
the call it may have answered fails with a clear error at the upstream timeout
(MCP_GUARD_UPSTREAM_TIMEOUT), audited as failed, instead of hanging. Through the SDK client
→ the real proxy subprocess → tests/malformed_upstream.py (a real stdio upstream)."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client as mcp_stdio_client
from support.guard import REPO, guard_env, proxy_args, query, text_of, write_policy

pytestmark = pytest.mark.anyio

UPSTREAM = REPO / "tests" / "malformed_upstream.py"
TIMEOUT = 4  # the proxy's upstream timeout in these tests, seconds
PROMPTLY = 30


@pytest.mark.parametrize("mode", ["object_id", "missing_id"])
async def test_an_answer_with_an_unreadable_id_is_discarded_the_session_kept(
    tmp_path: Path, mode: str
) -> None:
    pol = write_policy(tmp_path / "p.json", {"version": "1", "default": "allow", "rules": {}})
    args = proxy_args(
        tmp_path, pol, upstream=[sys.executable, str(UPSTREAM), mode], server_name="raw"
    )
    env = guard_env(tmp_path, MCP_GUARD_PRINCIPAL="alice", MCP_GUARD_UPSTREAM_TIMEOUT=str(TIMEOUT))
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "odoo_mcp_guard", *args], env=env
    )
    log = tmp_path / "proxy.log"
    with log.open("w") as errlog:
        async with Client(mcp_stdio_client(params, errlog=errlog), read_timeout_seconds=60) as c:
            await c.list_tools()
            with anyio.fail_after(PROMPTLY):
                first = await c.call_tool("get_note", {})
            assert not first.is_error and text_of(first).startswith("note "), text_of(first)
            results = {}

            async def call(key: str, arguments: dict[str, object]) -> None:
                results[key] = await c.call_tool("get_note", arguments)

            with anyio.fail_after(PROMPTLY):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call, "lost", {"bad": True})
                    await anyio.sleep(0)  # (order only; nothing waits on time here)
                    tg.start_soon(call, "during", {})
            # the call whose answer was unreadable failed, clearly, at the timeout
            lost = results["lost"]
            said = text_of(lost)
            assert lost.is_error and "get_note" in said, said
            assert f"did not answer get_note within {TIMEOUT:g} s" in said, said
            assert "not valid JSON-RPC" in said and "disconnected" not in said, said
            # the call sent beside it was answered, by the same upstream process
            assert text_of(results["during"]) == text_of(first), text_of(results["during"])
            with anyio.fail_after(PROMPTLY):
                after = await c.call_tool("get_note", {})
            assert text_of(after) == text_of(first), text_of(after)
    failed = query(tmp_path, "SELECT detail FROM audit WHERE outcome = 'failed'")
    assert len(failed) == 1 and "did not answer" in failed[0][0], failed
    assert len(query(tmp_path, "SELECT 1 FROM audit WHERE outcome = 'allowed'")) == 4
    stderr = log.read_text()
    assert "Traceback" not in stderr and "lost" not in stderr.replace("lost its", ""), stderr
    lines = [line for line in stderr.splitlines() if "not valid JSON-RPC" in line]
    assert len(lines) == 1 and "discarded" in lines[0] and "reconnect" not in lines[0], stderr
