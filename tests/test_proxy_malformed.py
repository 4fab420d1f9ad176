"""Attack 15: an upstream answers a call with a line the SDK cannot parse (a lone surrogate,
5,000 nested arrays, 3,000 nested objects, a 5,000-digit number) and the password beside it.
Through the SDK client → the real proxy subprocess → tests/malformed_upstream.py: the agent
gets one clear error at once (never a hang), the audit says the call failed and why, and the
proxy's stderr holds neither a traceback nor the upstream's line."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client as mcp_stdio_client
from support.guard import (
    REPO,
    free_port,
    guard_env,
    http_process,
    proxy_args,
    query,
    text_of,
    write_policy,
)

pytestmark = pytest.mark.anyio

UPSTREAM = REPO / "tests" / "malformed_upstream.py"
HOSTILE_HTTP = REPO / "tests" / "hostile_http_upstream.py"
SECRET = "Zq9secretX"
HTTP_SECRET = "HOSTILE-S3CRET"  # tests/hostile_http_upstream.py's
PROMPTLY = 20  # seconds; the proxy's own upstream timeout is 300


async def calls_through_proxy(
    tmp_path: Path, mode: str, calls: int = 2, *, failing: bool = True, **env: str
) -> tuple[list[str], str]:
    """The texts of ``calls`` calls of get_note (failed ones, unless not ``failing``), and
    the proxy's stderr."""
    pol = write_policy(tmp_path / "p.json", {"version": "1", "default": "allow", "rules": {}})
    args = proxy_args(
        tmp_path, pol, upstream=[sys.executable, str(UPSTREAM), mode], server_name="raw"
    )
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "odoo_mcp_guard", *args],
        env=guard_env(tmp_path, MCP_GUARD_PRINCIPAL="alice", **env),
    )
    log = tmp_path / "proxy.log"
    texts = []
    with log.open("w") as errlog:
        async with Client(mcp_stdio_client(params, errlog=errlog), read_timeout_seconds=60) as c:
            await c.list_tools()
            for _ in range(calls):
                with anyio.fail_after(PROMPTLY):
                    result = await c.call_tool("get_note", {})
                assert result.is_error == failing, text_of(result)
                texts.append(text_of(result))
    return texts, log.read_text()


@pytest.mark.parametrize("mode", ["surrogate", "deep", "deep_meta", "bigint"])
async def test_an_unparseable_answer_fails_the_call_at_once(tmp_path: Path, mode: str) -> None:
    texts, stderr = await calls_through_proxy(tmp_path, mode)
    for text in texts:  # the second call too: the proxy and its upstream session live on
        assert "get_note" in text and "not valid JSON-RPC" in text, text
        assert SECRET not in text
    failed = query(tmp_path, "SELECT detail FROM audit WHERE outcome = 'failed'")
    assert len(failed) == 2 and all("not valid JSON-RPC" in row[0] for row in failed), failed
    assert "Traceback" not in stderr and "input_value" not in stderr, stderr
    assert SECRET not in stderr, stderr


async def test_an_unparseable_line_with_no_id_is_discarded_the_session_kept(
    tmp_path: Path,
) -> None:
    """Nothing says which call the line answers: it is discarded (one line in the log, without
    it), the session kept (attack 17), and the call in flight fails, in doubt, at the upstream
    timeout (MCP_GUARD_UPSTREAM_TIMEOUT), saying an unreadable message came meanwhile."""
    texts, stderr = await calls_through_proxy(tmp_path, "no_id", MCP_GUARD_UPSTREAM_TIMEOUT="3")
    for text in texts:
        assert "did not answer get_note within 3 s" in text, text
        assert "not valid JSON-RPC" in text and "disconnected" not in text, text
        assert SECRET not in text
    assert len(query(tmp_path, "SELECT 1 FROM audit WHERE outcome = 'failed'")) == 2
    drops = [line for line in stderr.splitlines() if "not valid JSON-RPC" in line]
    assert len(drops) == 2 and all("discarded" in line for line in drops), stderr
    assert "reconnecting" not in stderr, stderr
    assert "Traceback" not in stderr and SECRET not in stderr, stderr


@pytest.mark.parametrize("passthrough", ["1", "0"])
async def test_an_unparseable_http_answer_fails_the_call_at_once(
    tmp_path: Path, passthrough: str
) -> None:
    """The same answers from an HTTP upstream (tests/hostile_http_upstream.py --malformed),
    on the raw path (2026-07-28) and through the SDK's session; as a JSON body or an SSE event."""
    pol = write_policy(tmp_path / "p.json", {"version": "1", "default": "allow", "rules": {}})
    port = free_port()
    state = tmp_path / "upstream.json"
    command = [sys.executable, str(HOSTILE_HTTP), "--state", str(state), "--port", str(port)]
    data = tmp_path / "guard"
    env = {"MCP_GUARD_UPSTREAM_PASSTHROUGH": passthrough}
    tools = ["bad_surrogate", "bad_deep", "bad_deep_meta", "bad_bigint", "bad_sse"]
    log = tmp_path / "proxy.log"
    with http_process([*command, "--malformed"], tmp_path / "up", port) as up:
        args = proxy_args(data, pol, upstream=up.url, server_name="hostile")
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "odoo_mcp_guard", *args],
            env=guard_env(data, MCP_GUARD_PRINCIPAL="alice", **env),
        )
        with log.open("w") as errlog:
            async with Client(
                mcp_stdio_client(params, errlog=errlog), read_timeout_seconds=60
            ) as client:
                for tool in [*tools, *tools]:  # twice: the proxy serves on
                    with anyio.fail_after(PROMPTLY):
                        result = await client.call_tool(tool, {})
                    said = text_of(result)
                    assert result.is_error and "not valid JSON-RPC" in said, (tool, said)
                    assert tool in said and HTTP_SECRET not in said, said
                fine = await client.call_tool("fine", {})
                assert not fine.is_error, text_of(fine)
    failed = query(data, "SELECT detail FROM audit WHERE outcome = 'failed'")
    assert len(failed) == 2 * len(tools), failed
    assert all("not valid JSON-RPC" in row[0] for row in failed), failed
    stderr = log.read_text()
    assert "Traceback" not in stderr and "input_value" not in stderr, stderr
    assert HTTP_SECRET not in stderr, stderr


async def test_plain_text_on_stdout_is_dropped_quietly(tmp_path: Path) -> None:
    """An upstream printing text on its stdout keeps its session (as with the SDK alone),
    and the text is not logged."""
    texts, stderr = await calls_through_proxy(tmp_path, "noise", failing=False)
    assert texts == ["note", "note"]
    assert "Traceback" not in stderr and SECRET not in stderr, stderr


async def test_an_answer_that_is_no_tools_call_result_fails_the_call_in_one_line(
    tmp_path: Path,
) -> None:
    """Outside round 23: the SDK's validation error reached the proxy's log as a traceback,
    and the audit as its text, quoting the values; now one line, in doubt (it may have acted)."""
    texts, stderr = await calls_through_proxy(tmp_path, "invalid_result")
    for text in texts:
        assert "it is not a tools/call result" in text and SECRET not in text, text
    failed = query(tmp_path, "SELECT detail FROM audit WHERE outcome = 'failed'")
    assert len(failed) == 2 and all(SECRET not in row[0] for row in failed), failed
    assert "Traceback" not in stderr and SECRET not in stderr, stderr


async def test_an_upstream_error_with_code_32000_is_not_a_disconnect(tmp_path: Path) -> None:
    """-32000 is also the SDK's code for a closed session: the upstream's own error is
    passed on as its error (redacted), the session kept."""
    texts, stderr = await calls_through_proxy(tmp_path, "server_error")
    for text in texts:
        assert "answered with an error: boom" in text and "disconnected" not in text, text
        assert SECRET not in text
    assert "Traceback" not in stderr and SECRET not in stderr, stderr


@pytest.mark.unit
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"jsonrpc":"2.0","id":3,"result":{}}', 3),
        ('{"result":{"id":5,"s":"}\\"{"},"id":"g-1"}', "g-1"),
        ('{"result":{"id":5}}', None),
        ('{"a":' + "[" * 5000 + "]" * 5000 + ',"id":7}', 7),
        ('{"id":"\\ud800"}', None),
        ('{"id":1.5}', None),
        ("[1]", None),
        ("text", None),
    ],
)
def test_the_top_level_id_of_an_unparseable_line(line: str, expected: object) -> None:
    from odoo_mcp_guard.sdk_workarounds import top_level_id

    assert top_level_id(line) == expected
