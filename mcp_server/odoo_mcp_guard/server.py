"""The guarded MCP server: ``odoo_connect``, ``odoo_connections``, ``odoo_disconnect``
(and, with Odoo configured, the Odoo data tools).

The MCP plumbing (identity, the tools/call middleware that hands every raw call to the
guard, list_changed, the transports) is ``frontend.Frontend``'s; this module holds the
tools, their argument models and what they do. ``tools/list`` returns ``Guard.visible``
of the served tools.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from odoo_mcp_guard.backends import Backend
from odoo_mcp_guard.catalog import classify_tool, definition_of
from odoo_mcp_guard.data_tools import DATA_TOOLS, DataToolError, DataTools
from odoo_mcp_guard.frontend import (
    APPROVAL_INSTRUCTIONS,
    CallAnswer,
    Frontend,
    ToolFailure,
    arguments_size_problem,
    json_result,
)
from odoo_mcp_guard.guard import Guard
from odoo_mcp_guard.names import GUARD_SERVER_NAME, check_secret, check_text, check_url
from odoo_mcp_guard.odoo_rpc import OdooError
from odoo_mcp_guard.policy_core import alias_problem
from odoo_mcp_guard.runner import make_guard, run_frontend
from odoo_mcp_guard.store import ApprovalError, Connection, GuardStore, StoreError

log = logging.getLogger("odoo_mcp_guard.server")

SERVER_NAME = GUARD_SERVER_NAME  # no proxy may take it (names.server_name_problem)

# Whether the call being run was judged as the replacement of an existing connection
# (``also_governed_by``), for ``_connect``.
_REPLACING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "odoo_mcp_guard_replacing", default=False
)
# The connection the call being run removes or replaces, as the guard judged (and an approval
# was given for) it: the store acts on that connection only (``connection_binding``).
_JUDGED: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "odoo_mcp_guard_judged", default=None
)


def _names_connection(tool: str, alias: object) -> bool:
    """Whether the call is a data tool's acting through the connection it names."""
    spec = TOOLS.get(tool)
    return spec is not None and spec.data and isinstance(alias, str)


# --- tool arguments -------------------------------------------------------------------


def _check_alias(value: str) -> str:
    # Same alphabet as tool names, and exact: a look-alike alias can never be created
    # next to a real one, nor stand for it (policy_core.alias_problem, the add-on's rule too).
    problem = alias_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ConnectArgs(_Args):
    alias: str = Field(description="Short name for the connection, e.g. 'prod'")
    url: str = Field(
        min_length=1, max_length=2048, description="Odoo base URL, e.g. https://erp.example.com"
    )
    db: str = Field(min_length=1, max_length=256, description="Odoo database name")
    username: str = Field(min_length=1, max_length=256, description="Odoo login")
    password: str | None = Field(default=None, max_length=1024, description="Odoo password")
    api_key: str | None = Field(
        default=None, max_length=1024, description="Odoo API key (instead of a password)"
    )
    protocol: Literal["xmlrpc", "jsonrpc", "json2"] = Field(
        default="xmlrpc", description="RPC protocol (json2: Odoo 19 and later, with an API key)"
    )
    verify_ssl: bool = Field(default=True, description="Verify the server's TLS certificate")

    _alias = field_validator("alias")(_check_alias)

    # The same checks as every other way a connection comes in (store.Connection).
    _url = field_validator("url")(check_url)

    @field_validator("db", "username")
    @classmethod
    def _text(cls, value: str, info: ValidationInfo) -> str:
        return check_text(value, info.field_name or "value")

    @field_validator("password", "api_key")
    @classmethod
    def _secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        return check_secret(value, info.field_name or "secret")


class AliasArgs(_Args):
    alias: str = Field(description="Alias of the connection")

    _alias = field_validator("alias")(_check_alias)


class NoArgs(_Args):
    pass


@dataclass(frozen=True)
class ToolSpec:
    tool: types.Tool
    args_model: type[BaseModel]
    data: bool = False  # an Odoo data tool (runs on a connection, in a worker thread)


def _tool(
    name: str,
    description: str,
    model: type[BaseModel],
    annotations: types.ToolAnnotations,
    *,
    data: bool = False,
) -> ToolSpec:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return ToolSpec(
        types.Tool(
            name=name, description=description, input_schema=schema, annotations=annotations
        ),
        model,
        data,
    )


TOOLS: dict[str, ToolSpec] = {
    spec.tool.name: spec
    for spec in (
        _tool(
            "odoo_connect",
            "Add an Odoo connection under an alias. Replacing an existing alias removes the "
            "old connection and is governed like odoo_disconnect (it may need an approval).",
            ConnectArgs,
            types.ToolAnnotations(
                title="Add an Odoo connection",
                read_only_hint=False,
                destructive_hint=True,
                idempotent_hint=False,
                open_world_hint=False,
            ),
        ),
        _tool(
            "odoo_connections",
            "List the configured Odoo connections (never their passwords or API keys).",
            NoArgs,
            types.ToolAnnotations(
                title="List Odoo connections",
                read_only_hint=True,
                destructive_hint=False,
                idempotent_hint=True,
                open_world_hint=False,
            ),
        ),
        _tool(
            "odoo_disconnect",
            "Remove an Odoo connection. This cannot be undone; the policy usually requires an "
            "approval by a person other than the requester.",
            AliasArgs,
            types.ToolAnnotations(
                title="Remove an Odoo connection",
                read_only_hint=False,
                destructive_hint=True,
                idempotent_hint=False,
                open_world_hint=False,
            ),
        ),
    )
}
for _name, (_model, _description, _read_only) in DATA_TOOLS.items():
    TOOLS[_name] = _tool(
        _name,
        _description + " Runs as the connection's Odoo user; Odoo's access rules apply.",
        _model,
        types.ToolAnnotations(
            read_only_hint=_read_only,
            destructive_hint=_name in ("odoo_write", "odoo_unlink"),
            idempotent_hint=_read_only,
            open_world_hint=True,
        ),
        data=True,
    )
TOOL_NAMES: tuple[str, ...] = tuple(TOOLS)


def _describe_validation(tool: str, exc: ValidationError) -> str:
    """One sentence naming what is wrong, never echoing a value (it may be a password)."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        if error["type"] == "extra_forbidden":
            parts.append(f"unexpected field '{where}'")
        elif error["type"] == "missing":
            parts.append(f"'{where}' is required")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            parts.append(f"'{where}': {message}")
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return f"Invalid arguments for {tool}: " + "; ".join(parts) + ". Nothing was done."


def validate_arguments(tool: str, arguments: dict[str, Any]) -> str | None:
    """None if ``arguments`` fit the tool's schema, else a clear one-line reason."""
    spec = TOOLS.get(tool)
    if spec is None:
        return f"Unknown tool {tool}."
    problem = arguments_size_problem(tool, arguments)
    if problem is not None:
        return problem
    try:
        spec.args_model.model_validate(arguments)
    except ValidationError as exc:
        return _describe_validation(tool, exc)
    return None


# --- the server -----------------------------------------------------------------------


class GuardedServer(Frontend):
    """The tools and the guard in front of them (the MCP plumbing is ``Frontend``'s)."""

    def __init__(
        self,
        guard: Guard,
        store: GuardStore,
        *,
        stdio_principal: str | None = None,
    ):
        super().__init__(
            guard,
            store,
            name=SERVER_NAME,
            instructions="Manages Odoo connections behind a policy guard. " + APPROVAL_INSTRUCTIONS,
            stdio_principal=stdio_principal,
        )
        self.data = DataTools()
        self._visible = tuple(self._visible_names())
        self.own_tools = True
        self.risks = {name: classify_tool(spec.tool) for name, spec in TOOLS.items()}
        self.catalog_ready = True  # recorded (and reported to Odoo) by watch_policy

    def served_definitions(self) -> dict[str, dict[str, Any]]:
        return {name: definition_of(spec.tool) for name, spec in TOOLS.items()}

    # -- tools/list ----------------------------------------------------------------------

    def _visible_names(self) -> list[str]:
        try:
            return self.guard.visible(TOOL_NAMES)
        except Exception:  # no usable policy: show nothing rather than fail the listing
            log.exception("cannot compute the visible tools")
            return []

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        self._remember_session(ctx)
        return types.ListToolsResult(tools=[TOOLS[n].tool for n in self._visible_names()])

    # -- tools/call ----------------------------------------------------------------------

    async def handle_call(
        self, ctx: ServerRequestContext[Any, Any], principal: str, raw: Mapping[str, Any]
    ) -> CallAnswer:
        arguments = raw.get("arguments")
        if arguments is None:  # MCP: arguments are optional; absent or null means none
            arguments = {}
        return await self.dispatch(principal, raw.get("name"), arguments)

    async def dispatch(self, principal: str, name: object, arguments: object) -> CallAnswer:
        """Judge and (when allowed) run one call: every call goes through ``Guard.call``."""

        async def execute(args: dict[str, Any]) -> types.CallToolResult:
            assert isinstance(name, str)
            try:
                return await self._execute(name, args)
            except (ApprovalError, StoreError, OdooError, DataToolError) as exc:
                raise ToolFailure(str(exc)) from None

        return await self.judge(principal, name, arguments, execute=execute)

    # -- what the guard asks (guard.Served) ----------------------------------------------

    def served(self) -> Collection[str]:
        return TOOL_NAMES

    def argument_problem(self, tool: str, arguments: dict[str, Any]) -> str | None:
        problem = validate_arguments(tool, arguments)
        alias = arguments.get("alias")
        if problem is None and (tool == "odoo_disconnect" or _names_connection(tool, alias)):
            # Removing what is not there, or acting through a connection that is not there,
            # could never run: no approval request for it (one would be used against whatever
            # connection takes the alias later).
            alias = arguments["alias"]  # a store error here is 'unavailable' (the guard's)
            if self.store.get_connection(alias) is None:
                return (
                    f"There is no connection named '{alias}'; nothing was done and no approval "
                    "was requested."
                )
        return problem

    @asynccontextmanager
    async def also_governed_by(
        self, tool: str, arguments: dict[str, Any]
    ) -> AsyncIterator[Sequence[str]]:
        """A replacement of an existing alias removes the old connection: it is also
        governed by ``odoo_disconnect``. Never guessed "new" when the store cannot say (its
        error is the guard's 'unavailable'). A data tool naming a connection is judged (and
        approved) for the connection it acts through as it is now: the one it names, else
        the one it resolves to (the only one; '' : none)."""
        alias = arguments.get("alias")
        if tool in ("odoo_connect", "odoo_disconnect") and isinstance(alias, str):
            judged: str | None = self.store.connection_binding(alias)
        elif tool in TOOLS and TOOLS[tool].data:
            judged = self._data_binding(alias)
        else:
            judged = None
        replacing = tool == "odoo_connect" and bool(judged)
        token = _REPLACING.set(replacing)
        judged_token = _JUDGED.set(judged)
        try:
            yield ("odoo_disconnect",) if replacing else ()
        finally:
            _JUDGED.reset(judged_token)
            _REPLACING.reset(token)

    async def connection_binding(self, tool: str, arguments: dict[str, Any]) -> str | None:
        """The connection odoo_disconnect removes, odoo_connect replaces or a data tool acts
        through (the one it names or resolves to), as judged."""
        return _JUDGED.get()

    def _data_binding(self, alias: object) -> str:
        """The binding of the connection a data call acts through: the one ``alias`` names,
        else the only one there is (as ``DataTools.pick`` resolves it); '' when it resolves
        to none. An approval given while prod was the only one is not for its successor."""
        if isinstance(alias, str):
            return self.store.connection_binding(alias)
        if alias is not None:
            return ""
        connections = self.store.list_connections()
        return self.store.connection_binding(connections[0].alias) if len(connections) == 1 else ""

    async def _execute(self, name: str, args: dict[str, Any]) -> types.CallToolResult:
        try:  # validated before the guard judged the call; never run on bad input anyway
            model = TOOLS[name].args_model.model_validate(args)
        except ValidationError as exc:
            raise ToolFailure(_describe_validation(name, exc)) from None
        if TOOLS[name].data:
            return await self._data_tool(name, model)
        if isinstance(model, ConnectArgs):
            # As judged: a replacement only if the guard governed it as one.
            return self._connect(model, replacing=_REPLACING.get())
        if isinstance(model, AliasArgs):
            return self._disconnect(model.alias, binding=_JUDGED.get())
        return self._connections()

    async def _data_tool(self, name: str, args: Any) -> types.CallToolResult:
        conn = DataTools.pick(self.store.list_connections(), args.alias)
        judged = _JUDGED.get()
        if judged is not None and self.store.connection_binding(conn.alias) != judged:
            # Only through the connection the call was judged (and approved) for.
            raise ToolFailure(
                f"The connection '{conn.alias}' changed since this call was judged; nothing was "
                "done. Call again to have it judged as it is now."
            )
        payload = await anyio.to_thread.run_sync(self.data.run, name, args, conn)
        return json_result(payload)

    def _connections(self) -> types.CallToolResult:
        connections = [conn.public() for conn in self.store.list_connections()]
        return json_result({"connections": connections, "count": len(connections)})

    def _connect(self, args: ConnectArgs, *, replacing: bool) -> types.CallToolResult:
        if not args.password and not args.api_key:
            raise ToolFailure("odoo_connect needs a password or an api_key; nothing was saved.")
        conn = Connection(**args.model_dump())
        # Judged as an addition: create-if-absent, atomically in the store. Judged as a
        # replacement (the gate saw the alias and governed the call like odoo_disconnect):
        # replace.
        created = self.store.add_connection(
            conn, replace=replacing, replaces=_JUDGED.get() if replacing else None
        )
        if not created and not replacing:
            # The alias appeared after the guard judged this call as a plain addition.
            raise ToolFailure(
                f"A connection named '{args.alias}' now exists; replacing it is governed like "
                "odoo_disconnect. Call again to have the replacement judged. Nothing was saved."
            )
        shown = conn.public()  # its own password typed into its alias is hidden there too
        return json_result({"alias": shown["alias"], "created": created, "connection": shown})

    def _disconnect(self, alias: str, *, binding: str | None) -> types.CallToolResult:
        # Only the connection judged (and approved) for removal: not one that took its alias.
        if not self.store.remove_connection(alias, binding=binding):
            raise ToolFailure(f"There is no connection named '{alias}'; nothing was removed.")
        return json_result({"alias": alias, "removed": True})


# --- running --------------------------------------------------------------------------


def build(backend: Backend, *, principal: str | None = None) -> GuardedServer:
    return GuardedServer(make_guard(backend), backend.store, stdio_principal=principal)


def run_server(**settings: Any) -> None:
    """Serve until the client goes away (stdio) or the process is stopped (HTTP); the
    settings are ``runner.run_frontend``'s (transport, host, port, policy_file, ...)."""
    run_frontend(lambda backend, principal: (build(backend, principal=principal), ()), **settings)
