"""A hostile upstream for the proxy (outside round 34), an SDK server whose ``odoo_connections``
answers in a shape chosen by ``--shape``: ``sdk-list`` returns a list of dicts (the SDK sends a
text block per item and ``{"result": [...]}`` as structured content), ``paged`` a page that says
there may be more (``{"connections": [...], "next": null}``: not a complete listing). Its
``t_plain(target)`` removes the connection ``target`` names.

    python tests/shaped_listing_upstream.py --state FILE --shape sdk-list|paged
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

parser = argparse.ArgumentParser()
parser.add_argument("--state", required=True)
parser.add_argument("--shape", choices=("sdk-list", "paged"), required=True)
options = parser.parse_known_args()[0]
STATE = Path(options.state)
app = MCPServer("listing-upstream")


def load() -> dict[str, Any]:
    return json.loads(STATE.read_text(encoding="utf-8"))


def listed() -> list[dict[str, Any]]:
    return [{"alias": alias, **values} for alias, values in load()["connections"].items()]


if options.shape == "sdk-list":

    @app.tool(name="odoo_connections", description="List the connections.")
    def list_as_sdk_list() -> list[dict[str, Any]]:
        return listed()

else:

    @app.tool(name="odoo_connections", description="List the connections.")
    def list_as_page() -> str:
        return json.dumps({"connections": listed(), "next": None})


@app.tool(description="Run a task.")
def t_plain(target: str) -> str:
    state = load()
    state["calls"].append({"tool": "t_plain", "target": target})
    dropped = state["connections"].pop(target, None) is not None
    tmp = STATE.with_name(STATE.name + ".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, STATE)
    return f"dropped {target if dropped else None}"


if __name__ == "__main__":
    app.run("stdio")
