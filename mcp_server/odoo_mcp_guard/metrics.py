"""Prometheus metrics of this process, served at ``/metrics`` on the HTTP transport.

Labels never carry a secret or an argument value: only a tool name that passed the name
check and that this replica serves (a name outside the MCP alphabet is counted as
``invalid``, a call to a tool it does not serve as ``unknown``, one refused as hidden as
``hidden``, so that callers cannot make up label values), an outcome, or an approval state.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from odoo_mcp_guard.names import check_tool_name

DECISIONS = Counter(
    "mcp_guard_decisions",
    "Decisions taken on tool calls, by tool and outcome (as audited).",
    ["tool", "outcome"],
)
CALL_SECONDS = Histogram(
    "mcp_guard_call_duration_seconds",
    "Time to answer a tools/call, guard and execution included.",
    ["tool"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
APPROVALS = Counter(
    "mcp_guard_approval_requests",
    "Approval requests seen by this process: filed, approved (consumed), rejected, expired.",
    ["state"],
)
DIRECT_CALLS = Counter(
    "mcp_guard_direct_calls",
    "HTTP: tools/call answered without the SDK's server session (sdk_workarounds 9).",
)
UPSTREAM_ERRORS = Counter(
    "mcp_guard_upstream_errors",
    "Proxy: calls the upstream server could not answer.",
)

# Refused before the name was found among the served tools (a hide glob matches invented
# names too): labelled by the outcome, not by the name.
_BUCKETED = ("unknown", "hidden")


def tool_label(tool: object, outcome: str | None = None) -> str:
    if not isinstance(tool, str) or check_tool_name(tool) is not None:
        return "invalid"
    return outcome if outcome in _BUCKETED else tool


def count_decision(tool: object, outcome: str) -> None:
    DECISIONS.labels(tool_label(tool, outcome), outcome).inc()


class MetricsEndpoint:
    """ASGI layer: ``GET /metrics`` answered here, unauthenticated; everything else passes."""

    PATH = "/metrics"

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") != self.PATH:
            await self.app(scope, receive, send)
            return
        status, body, kind = 200, generate_latest(), CONTENT_TYPE_LATEST
        if scope.get("method") not in ("GET", "HEAD"):
            status, body, kind = 405, b"method not allowed\n", "text/plain"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", kind.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )
