"""The bypass corpus (tests/bypass_corpus.json) applied to the proxy.

The upstream (tests/upstream_server.py) serves ``odoo_disconnect`` and holds the aliases
'prod' and 'staging'. Under policy 'hidden' the proxy hides it; under 'approval' it needs an
approval, and one for ``odoo_disconnect {"alias": "prod"}`` by the caller is already granted.
After every case both aliases must still exist upstream, nothing may have reached the upstream
and the approval must be unused; at the end the exact approved call goes through, once.

Every case must be refused the way the corpus expects (a tool error, a JSON-RPC error, an HTTP
4xx). The texts are checked where the proxy shares them with ``serve`` (names, the envelope,
batches); argument cases are checked for the refusal only, since the upstream's schema is not
``serve``'s (a call the schema accepts but that differs from the approved one is answered
"Approval required" instead of naming the field).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.guard import (
    RawHttpSession,
    RawStdioSession,
    free_port,
    guard_command,
    http_client,
    http_process,
    proxy_args,
    proxy_stdio_client,
    run_cli,
    upstream_calls,
    upstream_command,
    write_policy,
)
from test_bypass_corpus import (
    CASES,
    POLICIES,
    TRANSPORTS,
    ClientTransport,
    RawTransport,
    run_corpus,
)
from test_bypass_corpus import runs_on as corpus_runs_on

PRINCIPAL = "alice"
SHARED_TEXT = ("name-", "batch-", "method-", "params-", "body-")


def upstream_aliases(state: Path) -> list[str]:
    import json

    return sorted(json.loads(state.read_text(encoding="utf-8"))["aliases"])


def prepare(data_dir: Path, which: str) -> tuple[Path, Path]:
    data_dir.mkdir(parents=True, exist_ok=True)
    rules: dict[str, Any] = {
        "odoo_disconnect": {"action": "require_approval", "reason": "Cannot be undone"},
        "noop": {"action": "allow"},
    }
    document = {
        "version": "1",
        "default": "deny",
        "hide": ["odoo_disconnect"] if which == "hidden" else [],
        "rules": rules,
    }
    return write_policy(data_dir / "policy.json", document), data_dir / "upstream.json"


def adapted(case: dict[str, Any]) -> dict[str, Any]:
    if case["id"].startswith(SHARED_TEXT):
        return case
    return {**case, "contains": None}


@contextmanager
def proxy_http(data_dir: Path, pol: Path, state: Path) -> Iterator[Any]:
    port = free_port()
    args = proxy_args(data_dir, pol, upstream=upstream_command(state), transport="http", port=port)
    with http_process(guard_command(*args), data_dir, port) as running:
        yield running


@pytest.mark.anyio
@pytest.mark.parametrize("which", POLICIES)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_bypass_corpus_through_proxy(tmp_path: Path, transport: str, which: str) -> None:
    cases = [c for c in CASES if c["policy"] == which and corpus_runs_on(c, transport)]
    assert cases
    pol, state = prepare(tmp_path, which)
    stdio_args = proxy_args(tmp_path, pol, upstream=upstream_command(state))
    async with AsyncExitStack() as stack:
        if transport == "stdio":
            session: Any = RawStdioSession(tmp_path, PRINCIPAL, args=stdio_args)
            stack.callback(session.close)
            channel: Any = RawTransport(session)
        elif transport == "http":
            running = stack.enter_context(proxy_http(tmp_path, pol, state))
            token = run_cli(tmp_path, "tokens", "add", PRINCIPAL).stdout.strip().splitlines()[-1]
            session = RawHttpSession(running.url, token)
            stack.callback(session.close)
            channel = RawTransport(session)
        elif transport == "stdio-modern":
            client = await stack.enter_async_context(
                proxy_stdio_client(tmp_path, stdio_args, principal=PRINCIPAL)
            )
            channel = ClientTransport(client)
        else:
            running = stack.enter_context(proxy_http(tmp_path, pol, state))
            token = run_cli(tmp_path, "tokens", "add", PRINCIPAL).stdout.strip().splitlines()[-1]
            client = await stack.enter_async_context(http_client(running.url, token))
            assert client.protocol_version == "2026-07-28"
            channel = ClientTransport(client)

        # The upstream is up (the proxy listed its tools) before the corpus runs.
        warm = await channel.call({"name": "noop", "arguments": {}})
        assert warm.check({"expect": "tool_error"}) is not None, "the proxy is not serving"

        def reached() -> str | None:
            if [c for c in upstream_calls(state) if c["tool"] == "odoo_disconnect"]:
                return "A CALL REACHED THE UPSTREAM"
            return None

        await run_corpus(
            channel,
            cases,
            tmp_path,
            which,
            aliases_now=lambda: upstream_aliases(state),
            harm=reached,
            adapt=adapted,
        )
