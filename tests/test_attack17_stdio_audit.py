"""Attack 17 (outside tester), finding 2: a stdio client's line that is not JSON-RPC was
answered (-32700, sdk_workarounds 8) or dropped, but not audited (invariant 7: every decision
is). Each such line is one audit event, outcome 'invalid', tool '-', "unparseable request",
with the line's size and SHA-256 and a short excerpt, redacted and escaped: never the line
itself. A real ``serve`` over stdio, raw lines; the audit read through the real CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.guard import run_cli
from support.raw_stdio import raw_stdio

pytestmark = pytest.mark.anyio

SECRET = "hunter2-beside-the-garbage"
GARBAGE = [
    "this is not json",
    '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"password":"' + SECRET + '"',
    '{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"x":"\\ud800","p":"' + SECRET + '"}}',
    '["a", "json", "array", "is", "no", "message"]',
    "x" * 20000,
    "\x1b[31mred\x1b[0m",
]
# Outside round 20: a request whose id is missing or no JSON-RPC id, which the SDK reads as a
# notification and ignores, left no trace. Each is one 'invalid' event too, and never runs.
DISCONNECT = '"method":"tools/call","params":{"name":"odoo_disconnect","arguments":{"alias":"p"}}'
ODD_IDS = [
    '{"jsonrpc":"2.0",' + ("" if rid is None else f'"id":{rid},') + DISCONNECT + "}"
    for rid in ("1.5", "null", "true", '{"x":1}', "[1]", None)
]


async def test_every_unparseable_line_is_audited_once_redacted(tmp_path: Path) -> None:
    async with raw_stdio(tmp_path) as raw:
        with anyio.fail_after(60):
            await raw.initialize()
            for line in GARBAGE + ODD_IDS:
                await raw.send(line)
            # the session goes on: a good call is answered (after the garbage, in order)
            call = {"name": "odoo_connections", "arguments": {}}
            await raw.send({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": call})
            while (got := await raw.answer()).get("id") != 9:
                assert "error" in got, got  # the parse errors of lines naming an id
            assert "result" in got, got
            errors = await raw.close()
    assert "Traceback" not in errors and SECRET not in errors
    tail = run_cli(tmp_path, "audit", "tail", "-n", "50", "--json")
    assert SECRET not in tail.stdout and "\x1b" not in tail.stdout
    events = [e for e in json.loads(tail.stdout) if e["outcome"] == "invalid"]
    assert len(events) == len(GARBAGE) + len(ODD_IDS), events
    for event in events:
        assert event["tool"] == "-" and event["principal"] == "alice", event
        assert event["detail"].startswith("unparseable request ("), event
        assert len(event["detail"]) < 250 and "garbage" not in event["detail"], event
    without_id = [e for e in events if "a request without a valid id" in e["detail"]]
    assert len(without_id) == len(ODD_IDS), events
    events = [e for e in events if e not in without_id]
    hashes = {e["arguments_hash"] for e in events}
    expected = {
        hashlib.sha256(line.encode("utf-8", "surrogatepass")).hexdigest() for line in GARBAGE
    }
    assert hashes == expected
    allowed = [e for e in json.loads(tail.stdout) if e["outcome"] == "allowed"]
    assert len(allowed) == 1 and allowed[0]["tool"] == "odoo_connections"
    assert not [e for e in json.loads(tail.stdout) if e["tool"] == "odoo_disconnect"]


@pytest.mark.unit  # in-process: the relay alone, its audit failing
@pytest.mark.parametrize("kind", ["without_id", "unparseable"])
async def test_a_failure_to_audit_an_unreadable_request_is_logged(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Whether the line could not be parsed or is a request without a valid id, an audit
    that fails is never dropped silently: one error line says the request was not audited
    (the same line for both)."""
    import mcp_types as types
    from mcp.shared.message import SessionMessage
    from pydantic import ValidationError

    from odoo_mcp_guard.sdk_workarounds import answering_unreadable_requests

    if kind == "without_id":
        item: Any = SessionMessage(
            types.JSONRPCNotification(jsonrpc="2.0", method="tools/call", params={})
        )
    else:
        try:
            types.jsonrpc_message_adapter.validate_json("this is not json", by_name=False)
        except ValidationError as exc:
            item = exc

    def failing_audit(line: str, why: str) -> None:
        raise RuntimeError("the audit failed")

    read_send, read = anyio.create_memory_object_stream[Any](1)
    write, write_read = anyio.create_memory_object_stream[Any](1)
    with anyio.fail_after(10), caplog.at_level("ERROR", logger="odoo_mcp_guard.sdk"):
        async with answering_unreadable_requests(read, write, failing_audit) as relayed:
            await read_send.send(item)
            await read_send.aclose()
            handed_on = [got async for got in relayed]
    write_read.close()
    write.close()
    assert kind == "without_id" or len(handed_on) == 1, handed_on  # the SDK still logs it
    assert kind == "unparseable" or not handed_on, handed_on  # never run
    lines = [r.getMessage() for r in caplog.records if r.name == "odoo_mcp_guard.sdk"]
    assert lines == ["an unreadable request was not audited: RuntimeError"], lines
