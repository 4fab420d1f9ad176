"""A careless MCP server over streamable HTTP (outside tester, round 18): it quotes what it was
sent, the request's headers and the query of the URL it was reached at (as an Azure Function's
``?code=`` or an API gateway's subscription key), in a result (``whoami``), in a tool error
(``whoami_fail``) and on its stderr.

    python tests/echo_http_upstream.py --port N"""

from __future__ import annotations

import argparse
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
options = parser.parse_args()

mcp = MCPServer("echo-http")


def _seen(ctx: Context) -> str:
    headers = ctx.headers or {}
    request = ctx.request_context.request
    query = str(getattr(getattr(request, "url", None), "query", ""))
    lines = [f"{name}: {value}" for name, value in headers.items()] + [f"query: {query}"]
    text = "\n".join(lines)
    print(f"request seen:\n{text}", file=sys.stderr, flush=True)
    return text


@mcp.tool(annotations={"readOnlyHint": True})
def whoami(ctx: Context) -> str:
    """What this server was sent."""
    return _seen(ctx)


@mcp.tool(annotations={"readOnlyHint": True})
def whoami_fail(ctx: Context) -> str:
    """What this server was sent, in an error."""
    raise ToolError("refused the request:\n" + _seen(ctx))


if __name__ == "__main__":
    mcp.run("streamable-http", host="127.0.0.1", port=options.port)
