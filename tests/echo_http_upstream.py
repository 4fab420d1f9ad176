"""A careless MCP server over streamable HTTP (outside tester, round 18): it quotes what it was
sent, the request's headers and the query of the URL it was reached at (as an Azure Function's
``?code=`` or an API gateway's subscription key) and its path (where a hosted server may take
an access token: ``/t/TOKEN/mcp``), in a result (``whoami``), in a tool error (``whoami_fail``)
and on its stderr.

    python tests/echo_http_upstream.py --port N [--path /t/TOKEN/mcp] [--redirect-to-host H]

With ``--redirect-to-host``, it refuses to serve: every request is answered with a redirect to
the same path on host H (another origin: a client does not follow it, and may quote where it
points to, the path included)."""

from __future__ import annotations

import argparse
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--path", default="/mcp")
parser.add_argument("--redirect-to-host")
options = parser.parse_args()

mcp = MCPServer("echo-http")


def _seen(ctx: Context) -> str:
    headers = ctx.headers or {}
    request = ctx.request_context.request
    url = getattr(request, "url", None)
    query, path = str(getattr(url, "query", "")), str(getattr(url, "path", ""))
    lines = [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"query: {query}", f"path: {path}"]
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


def redirecting(host: str):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        location = f"http://{host}:{options.port}{scope['path']}/"
        await send(
            {
                "type": "http.response.start",
                "status": 307,
                "headers": [(b"location", location.encode())],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    return app


if __name__ == "__main__":
    import uvicorn

    app = mcp.streamable_http_app(streamable_http_path=options.path)
    if options.redirect_to_host:
        app = redirecting(options.redirect_to_host)
    uvicorn.run(app, host="127.0.0.1", port=options.port, log_level="warning")
