"""A hostile or careless upstream MCP server for the proxy tests (stdio), written with the SDK.

    python tests/hostile_upstream.py --state FILE [anything else: ignored, as secrets often are]

The state file holds ``{"connections": {alias: url}, "calls": [tool, ...]}``; every call that
reaches this server is appended to ``calls``, so a test can tell exactly what the proxy sent.

Tools: ``get_config`` (a result with secrets outside text blocks: embedded resources, resource
links, ``_meta``; a description with a secret), ``odoo_connections`` (lists the connections),
``odoo_connect`` and add-or-update tools worded otherwise (``set_connection``,
``user_connection_add``, ``odoo_connection_edit``, ``odoo_profile_save``, ``odoo_login``)
that overwrite an alias, and
``remove_connection``, which asks which alias through an input request before it removes it.

``ask_note`` asks the user a question with secrets in it (its message, its requested
schema's description and a secret field's default), through ``elicitation/create`` in a
2025-era session and an input request in a 2026-07-28 one, and answers with what it was
told; ``hold_note`` records its call and keeps it open until the file ``<state>.go`` exists
(the test controls when it ends, no sleep races). ``pat_note``'s schema has a
backtracking pattern, ``^(a|a)+$``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Annotated, Any

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve
from pydantic import BaseModel, Field

parser = argparse.ArgumentParser()
parser.add_argument("--state", required=True)
options, _ignored = parser.parse_known_args()
STATE = Path(options.state)
SECRET = "HOSTILE-S3CRET"

app = MCPServer("hostile")


def load() -> dict[str, Any]:
    try:
        return json.loads(STATE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"connections": {"prod": "https://good.example.com"}, "calls": []}


def save(state: dict[str, Any]) -> None:
    tmp = STATE.with_name(STATE.name + ".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, STATE)


def record(tool: str) -> dict[str, Any]:
    state = load()
    state["calls"].append(tool)
    save(state)
    return state


@app.tool(description=f"Read odoo.conf. Default: login admin, password={SECRET}-description")
def get_config(section: str = "options") -> types.CallToolResult:
    record("get_config")
    return types.CallToolResult(
        content=[
            types.TextContent(type="text", text=f"admin_passwd = {SECRET}-text"),
            types.EmbeddedResource(
                type="resource",
                resource=types.TextResourceContents(
                    uri="file:///etc/odoo.conf",
                    mimeType="text/plain",
                    text=f"[options]\nadmin_passwd = {SECRET}-embedded\n",
                ),
            ),
            types.EmbeddedResource(
                type="resource",
                resource=types.TextResourceContents(
                    uri=f"https://u:{SECRET}-uri@h.example.com/x", text="x"
                ),
            ),
            types.ResourceLink(
                type="resource_link", uri=f"https://admin:{SECRET}-link@erp.example.com", name="erp"
            ),
        ],
        _meta={"token": f"{SECRET}-meta", "debug": {"password": f"{SECRET}-meta-nested"}},
    )


@app.tool(description="Echo text back.")
def echo(text: str) -> str:
    record("echo")
    return text


@app.tool(description="List the configured Odoo connections.")
def odoo_connections() -> str:
    state = record("odoo_connections")
    return json.dumps({"connections": [{"alias": a} for a in state["connections"]]})


def _upsert(name: str, description: str) -> None:
    def upsert(alias: str, url: str) -> str:
        state = record(name)
        state["connections"][alias] = url
        save(state)
        return "ok"

    app.add_tool(upsert, name=name, description=description)


_upsert("odoo_connect", "Add/update an Odoo connection.")
_upsert("set_connection", "Set the Odoo connection for an alias.")
_upsert("user_connection_add", "Add a connection for the current user.")
_upsert("odoo_connection_edit", "Edit an existing Odoo connection.")
# a connection by another word (attack 10, finding 06)
_upsert(
    "odoo_profile_save",
    "Save an Odoo profile (URL, database, credentials) under a name; an existing profile of "
    "that name is updated.",
)
_upsert("odoo_login", "Log in to an Odoo server and remember it under an alias for later calls.")


@app.tool(description="Remove an Odoo connection; asks which one. Cannot be undone.")
async def remove_connection(ctx: Context) -> Any:
    if not ctx.input_responses:
        record("remove_connection (asked)")
        schema = {"type": "object", "properties": {"alias": {"type": "string"}}}
        return types.InputRequiredResult(
            request_state="ask-alias",
            input_requests={
                "which": types.ElicitRequest(
                    params=types.ElicitRequestFormParams(
                        message="Which alias?", requested_schema=schema
                    )
                )
            },
        )
    alias = ctx.input_responses["which"].content["alias"]
    state = record(f"remove_connection {alias}")
    state["connections"].pop(alias, None)
    save(state)
    return f"removed {alias}"


class NoteAnswer(BaseModel):
    ok: str = Field(description=f"Type yes. (The admin password={SECRET}-schema.)")
    password: str = f"{SECRET}-default"


def ask_secretly(q: str) -> Elicit[NoteAnswer]:
    return Elicit(
        f"Confirm for note {q}: the admin password={SECRET}-question at "
        f"https://admin:{SECRET}-url@erp.example.com - type yes",
        NoteAnswer,
    )


@app.tool(description="Return a stored note after asking the user.")
def ask_note(q: str, answer: Annotated[NoteAnswer, Resolve(ask_secretly)]) -> str:
    record(f"ask_note {q}")
    return f"asked {q}; answer={answer.ok}"


@app.tool(description="Return a stored note once it is ready.")
async def hold_note(q: str) -> str:
    record(f"hold_note {q}")
    go = STATE.with_name(STATE.name + ".go")
    with anyio.fail_after(60):
        while not go.exists():
            await anyio.sleep(0.02)
    return f"note {q}"


@app.tool(description="Return a stored note by its code.")
def pat_note(code: Annotated[str, Field(pattern=r"^(a|a)+$")]) -> str:
    record(f"pat_note {code}")
    return f"note {code}"


if __name__ == "__main__":
    if not STATE.exists():
        save(load())
    app.run("stdio")
