"""The bypass corpus (tests/bypass_corpus.json), run against live servers.

Each (transport, policy) pair gets one server and one data directory holding the connections
'prod' and 'staging'. Under policy 'approval' an approval for ``odoo_disconnect {"alias":
"prod"}`` is already granted to the caller, so a case that slipped through would remove prod.
After every case both connections must exist and the approval must be unused; at the end the
exact approved call still works, which shows the setup was live.

Transports: raw JSON-RPC over stdio and over streamable HTTP (2025-11-25, so that anything
can be sent: non-object arguments, batches), and the SDK client on the 2026-07-28 era over
stdio and HTTP for the cases it can express.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.guard import (
    RawHttpSession,
    RawStdioSession,
    aliases,
    approve,
    http_client,
    http_guard,
    parse_http_body,
    policy,
    request_state,
    run_cli,
    stdio_client,
    text_of,
    write_policy,
)

CORPUS_PATH = Path(__file__).with_name("bypass_corpus.json")
CORPUS = json.loads(CORPUS_PATH.read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = CORPUS["cases"]
TRANSPORTS = ("stdio", "http", "stdio-modern", "http-modern")
POLICIES = ("hidden", "approval")
EXPECTS = ("tool_error", "jsonrpc_error", "http_error")
KINDS = ("call", "message", "http_body")
PRINCIPAL = "alice"


def expand(value: Any) -> Any:
    """Apply the corpus generators ($repeat, $concat, $keys, $nest)."""
    if isinstance(value, list):
        return [expand(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "$repeat" in value:
        return value["$repeat"] * value["times"]
    if "$concat" in value:
        return "".join(expand(part) for part in value["$concat"])
    if "$nest" in value:
        nested: dict[str, Any] = {}
        for _ in range(value["$nest"]):
            nested = {"a": nested}
        return nested
    out = {key: expand(item) for key, item in value.items() if key != "$keys"}
    out.update({f"k{i}": i for i in range(value.get("$keys", 0))})
    return out


def client_can_send(case: dict[str, Any]) -> bool:
    """Whether the SDK client can express this call (a string name, object arguments)."""
    if case["kind"] != "call" or not case.get("sdk_client", True):
        return False
    params = case["params"]
    arguments = params.get("arguments")
    object_arguments = arguments is None or isinstance(arguments, dict)
    return isinstance(params.get("name"), str) and object_arguments


def runs_on(case: dict[str, Any], transport: str) -> bool:
    if transport.endswith("-modern"):
        base = transport.split("-")[0]
        return client_can_send(case) and base in case.get("transports", TRANSPORTS)
    return transport in case.get("transports", TRANSPORTS)


def test_corpus_shape() -> None:
    ids = [case["id"] for case in CASES]
    assert len(CASES) >= 40 and len(set(ids)) == len(ids)
    for case in CASES:
        assert case["policy"] in POLICIES and case["expect"] in EXPECTS, case["id"]
        assert case["kind"] in KINDS, case["id"]
        assert set(case.get("transports", TRANSPORTS)) <= set(TRANSPORTS), case["id"]
    covered = {case["id"].split("-")[0] for case in CASES}
    assert {"name", "args", "batch", "overwrite"} <= covered
    # Every transport runs a good part of the corpus.
    for transport in TRANSPORTS:
        assert sum(runs_on(case, transport) for case in CASES) >= 40, transport


# --- one live setup per (transport, policy) -------------------------------------------------


def prepare(data_dir: Path, which: str) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    pol = write_policy(
        data_dir / "policy.json",
        policy(hide=["odoo_disconnect"]) if which == "hidden" else policy(),
    )
    conns = [
        {
            "alias": alias,
            "url": f"https://{alias}.example.com",
            "db": alias,
            "username": "admin",
            "password": "pw",
        }
        for alias in ("prod", "staging")
    ]
    (data_dir / "connections.json").write_text(json.dumps(conns), encoding="utf-8")
    run_cli(data_dir, "connections", "import", str(data_dir / "connections.json"))
    return pol


class Answer:
    """A transport-neutral view of one reply."""

    def __init__(self, status: int | None, body: Any = None, result: Any = None):
        self.status = status
        self.body = body
        self.result = result  # a CallToolResult from the SDK client

    def check(self, case: dict[str, Any]) -> str | None:
        """None if the answer is the refusal the case expects, else what is wrong."""
        expect, contains = case["expect"], case.get("contains")
        if isinstance(self.body, dict) and "dropped" in self.body:
            return None if self.body["dropped"] else "a dropped message was answered"
        if self.result is not None:
            if expect != "tool_error" or not self.result.is_error:
                return f"expected {expect}, got a result (is_error={self.result.is_error})"
            text = text_of(self.result)
            return None if contains is None or contains in text else f"text was {text!r}"
        body = self.body if isinstance(self.body, dict) else {}
        if expect == "http_error":
            if self.status is None or not 400 <= self.status < 500:
                return f"expected HTTP 4xx, got {self.status}: {str(self.body)[:200]}"
            message = (body.get("error") or {}).get("message", "")
            if contains is not None and contains not in message:
                return f"error message was {message!r}"
            return None
        if expect == "jsonrpc_error":
            error = body.get("error")
            if not isinstance(error, dict) or not error.get("message"):
                return f"expected a JSON-RPC error, got {str(self.body)[:200]}"
            if contains is not None and contains not in error["message"]:
                return f"error message was {error['message']!r}"
            return None
        result = body.get("result")
        if not isinstance(result, dict) or result.get("isError") is not True:
            return f"expected an isError result, got {str(self.body)[:300]}"
        text = "\n".join(block.get("text", "") for block in result.get("content", []))
        return None if contains is None or contains in text else f"text was {text!r}"


class RawTransport:
    def __init__(self, session: RawStdioSession | RawHttpSession):
        self.session = session
        self.next_id = 1000

    async def call(self, params: Any) -> Answer:
        reply = self.session.call(params)
        return Answer(reply["status"], reply["body"])

    async def send(self, case: dict[str, Any]) -> Answer:
        if case["kind"] == "call":
            return await self.call(expand(case["params"]))
        if case["kind"] == "message":
            self.next_id += 1
            message = {**case["message"], "id": self.next_id}
            if isinstance(self.session, RawStdioSession):
                if case.get("stdio_expect") == "no_reply":
                    return self.unanswered(message)
                return Answer(None, self.session.request(message))
            response = self.session.post(message)
            return Answer(response.status_code, parse_http_body(response))
        assert isinstance(self.session, RawHttpSession)
        response = self.session.post(None, raw=expand(case["body"]).encode("utf-8"))
        return Answer(response.status_code, parse_http_body(response))

    def unanswered(self, message: dict[str, Any]) -> Answer:
        """Send a message the SDK drops; a ping sent after it must be answered, it never."""
        assert isinstance(self.session, RawStdioSession)
        self.session.send(message)
        self.next_id += 1
        ping = {"jsonrpc": "2.0", "id": self.next_id, "method": "ping"}
        self.session.send(ping)
        seen = []
        while True:
            assert self.session.proc.stdout is not None
            reply = json.loads(self.session.proc.stdout.readline())
            seen.append(reply.get("id"))
            if reply.get("id") == ping["id"]:
                break
        return Answer(None, {"dropped": message["id"] not in seen})


class ClientTransport:
    def __init__(self, client: Any):
        self.client = client

    async def call(self, params: dict[str, Any]) -> Answer:
        result = await self.client.call_tool(params["name"], params.get("arguments"))
        return Answer(None, result=result)

    async def send(self, case: dict[str, Any]) -> Answer:
        return await self.call(expand(case["params"]))


@contextmanager
def raw_session(transport: str, data_dir: Path, pol: Path) -> Iterator[Any]:
    if transport == "stdio":
        session = RawStdioSession(data_dir, PRINCIPAL, pol)
        try:
            yield session
        finally:
            session.close()
        return
    with http_guard(data_dir, pol) as running:
        session = RawHttpSession(running.url, running.token(PRINCIPAL))
        try:
            yield session, running
        finally:
            session.close()


@pytest.mark.anyio
@pytest.mark.parametrize("which", POLICIES)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_bypass_corpus(tmp_path: Path, transport: str, which: str) -> None:
    cases = [c for c in CASES if c["policy"] == which and runs_on(c, transport)]
    assert cases
    pol = prepare(tmp_path, which)
    async with AsyncExitStack() as stack:
        if transport == "stdio":
            session = stack.enter_context(raw_session("stdio", tmp_path, pol))
            channel: Any = RawTransport(session)
        elif transport == "http":
            session, _running = stack.enter_context(raw_session("http", tmp_path, pol))
            channel = RawTransport(session)
        elif transport == "stdio-modern":
            client = await stack.enter_async_context(
                stdio_client(tmp_path, principal=PRINCIPAL, policy_file=pol)
            )
            assert client.protocol_version == "2026-07-28"
            channel = ClientTransport(client)
        else:
            running = stack.enter_context(http_guard(tmp_path, pol))
            client = await stack.enter_async_context(
                http_client(running.url, running.token(PRINCIPAL))
            )
            assert client.protocol_version == "2026-07-28"
            channel = ClientTransport(client)

        await run_corpus(channel, cases, tmp_path, which, aliases_now=lambda: aliases(tmp_path))


async def run_corpus(
    channel: Any,
    cases: list[dict[str, Any]],
    data_dir: Path,
    which: str,
    *,
    aliases_now: Callable[[], list[str]],
    harm: Callable[[], str | None] = lambda: None,
    adapt: Callable[[dict[str, Any]], dict[str, Any]] = lambda case: case,
) -> None:
    """Send every case; after each, 'prod' and 'staging' must exist (``aliases_now``), no other
    ``harm`` be done and the granted approval be unused; then the control call works."""
    control = {"name": "odoo_disconnect", "arguments": {"alias": "prod"}}
    ref = None
    if which == "approval":
        pending = await channel.call(control)
        structured = (
            pending.result.structured_content
            if pending.result is not None
            else pending.body["result"]["structuredContent"]
        )
        ref = structured["request"]
        approve(data_dir, ref, "carol")

    failures = []
    for case in cases:
        answer = await channel.send(case)
        problem = answer.check(adapt(case))
        if problem:
            failures.append(f"{case['id']}: {problem}")
        if aliases_now() != ["prod", "staging"]:
            failures.append(f"{case['id']}: CONNECTIONS CHANGED: {aliases_now()}")
            break
        damage = harm()
        if damage:
            failures.append(f"{case['id']}: {damage}")
            break
        if ref is not None and request_state(data_dir, ref) != "approved":
            failures.append(f"{case['id']}: APPROVAL USED: {request_state(data_dir, ref)}")
            break
    assert not failures, "\n".join(failures)

    # The setup was live: the exact approved call goes through, once.
    final = await channel.call(control)
    if which == "approval":
        assert final.check({"expect": "tool_error"}) is not None, "the control call failed"
        assert aliases_now() == ["staging"]
        assert request_state(data_dir, ref) == "done"
    else:
        assert final.check({"expect": "tool_error", "contains": "hidden"}) is None
        assert aliases_now() == ["prod", "staging"]
