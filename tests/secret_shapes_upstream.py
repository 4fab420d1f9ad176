"""An upstream MCP server (stdio) that hands out secrets in common formats, for the proxy's
redaction tests: ``server_info`` prints each line of ``LINES`` on its stderr and answers them
all as text; ``server_rows`` answers rows whose name-like field names a secret.

    python tests/secret_shapes_upstream.py SECRET"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

SECRET = sys.argv[1]
LINES = [
    f"CREATE ROLE odoo LOGIN PASSWORD '{SECRET}1'",
    f"localhost:5432:odoo:odoo:{SECRET}2",
    f"machine odoo.example.com login admin password {SECRET}3",
    f"odoo-bin -d prod -r odoo -w {SECRET}4",
    f"('password', '{SECRET}5')",
    f"admin:$apr1${SECRET}6",
    f"ghp_{SECRET}7AAAAAAAAAAAAAAAAAAAA",
    f"AKIA{SECRET.upper()[:15]}8",
    f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.{SECRET}9",
    f"sk-{SECRET}10AAAAAAAAAAAAAAAAAAAA",
    f"<member><name>password</name><value><string>{SECRET}11</string></value></member>",
    "password reset link sent",
]

app = MCPServer("secret-shapes")


@app.tool(annotations={"readOnlyHint": True})
def server_info() -> str:
    """Returns server info."""
    for line in LINES:
        print(line, file=sys.stderr, flush=True)
    return "\n".join(LINES)


@app.tool(annotations={"readOnlyHint": True})
def server_rows() -> dict[str, object]:
    """Returns rows."""
    return {
        "rows": [
            {"key": "password", "val": f"{SECRET}12"},
            {"label": "Password", "text": f"{SECRET}13"},
            {"name": "api_key", "value": f"{SECRET}14"},
            {"label": "Partner", "text": "Azure Interior"},
        ]
    }


if __name__ == "__main__":
    app.run("stdio")
