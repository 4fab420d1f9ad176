"""The baseline for the benchmark: the same ``odoo_connections`` tool on a plain MCPServer,
reading the same store, with no guard, no policy, no audit and no authentication."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mcp_server"))

from mcp.server import MCPServer

from odoo_mcp_guard.store import Store


def build(data_dir: Path) -> MCPServer:
    store = Store.open(data_dir)
    server = MCPServer("odoo-unguarded")

    @server.tool(name="odoo_connections", description="List the configured Odoo connections.")
    def odoo_connections() -> dict[str, Any]:
        connections = [conn.public() for conn in store.list_connections()]
        return {"connections": connections, "count": len(connections)}

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    server = build(args.data_dir)
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
