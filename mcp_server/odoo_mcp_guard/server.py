"""The guarded MCP server: ``odoo_connect``, ``odoo_connections``, ``odoo_disconnect``.

Built on the SDK's low-level ``Server`` so that the guard sees every ``tools/call``
exactly as it arrived on the wire: a server middleware takes the raw params before
the SDK validates them (a non-object ``arguments`` would otherwise be answered by
the SDK, unaudited) and hands them to ``Guard.call``; the SDK then only ever sees a
well-formed placeholder call whose handler returns the guard's answer. ``tools/list``
returns ``Guard.visible`` of the served tools.

Identity: on stdio the principal is ``MCP_GUARD_PRINCIPAL`` (else ``stdio:<user>``);
on streamable HTTP it is the owner of the bearer token (``TokenStore``), checked by
a small ASGI layer before the SDK sees the request (401 otherwise, unless anonymous
access was allowed on the command line).

Logging goes to stderr only: on stdio, stdout is the protocol pipe.
"""

from __future__ import annotations

import contextvars
import getpass
import json
import logging
import os
import sys
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from odoo_mcp_guard import __version__
from odoo_mcp_guard.auth import TokenStore
from odoo_mcp_guard.backends import Backend, BackendName, open_backend
from odoo_mcp_guard.data_tools import DATA_TOOLS, DataToolError, DataTools
from odoo_mcp_guard.guard import Guard, GuardRefusal
from odoo_mcp_guard.names import TOOL_NAME_RE, arguments_hash, canonical_json
from odoo_mcp_guard.odoo_rpc import OdooError
from odoo_mcp_guard.policy import PolicyUnavailable
from odoo_mcp_guard.store import ApprovalError, AuditEvent, Connection, Store, StoreError

log = logging.getLogger("odoo_mcp_guard.server")

SERVER_NAME = "odoo-mcp-guard"
PRINCIPAL_SCOPE_KEY = "odoo_mcp_guard.principal"
MAX_ARGUMENTS_BYTES = 64 * 1024
POLICY_POLL_SECONDS = 0.5

# The SDK validates and dispatches this placeholder; the real call travels in _RAW_CALL.
_PLACEHOLDER_TOOL = "odoo_mcp_guard.guarded_call"
_RAW_CALL: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "odoo_mcp_guard_raw_call", default=None
)


# --- tool arguments -------------------------------------------------------------------


def _check_alias(value: str) -> str:
    # Same alphabet as tool names, and exact: a look-alike alias can never be created
    # next to a real one, nor stand for it.
    if len(value) > 64 or not TOOL_NAME_RE.fullmatch(value):
        raise ValueError("alias must be 1 to 64 characters from A-Z a-z 0-9 _ . -")
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
    protocol: Literal["xmlrpc", "jsonrpc"] = Field(default="xmlrpc", description="RPC protocol")
    verify_ssl: bool = Field(default=True, description="Verify the server's TLS certificate")

    _alias = field_validator("alias")(_check_alias)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or any(ch.isspace() for ch in value):
            raise ValueError("url must be an http:// or https:// URL without spaces")
        return value


class AliasArgs(_Args):
    alias: str = Field(description="Alias of the connection")

    _alias = field_validator("alias")(_check_alias)


class NoArgs(_Args):
    pass


class ToolFailure(Exception):
    """A tool ran and could not do what was asked; the message is safe to show."""


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
    try:
        size = len(canonical_json(arguments))
    except (TypeError, ValueError):
        return f"Invalid arguments for {tool}: they are not plain JSON. Nothing was done."
    if size > MAX_ARGUMENTS_BYTES:
        return (
            f"Invalid arguments for {tool}: {size} bytes, more than the {MAX_ARGUMENTS_BYTES} "
            "allowed. Nothing was done."
        )
    try:
        spec.args_model.model_validate(arguments)
    except ValidationError as exc:
        return _describe_validation(tool, exc)
    return None


# --- the server -----------------------------------------------------------------------


def _json_result(payload: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(payload, ensure_ascii=False))],
        structured_content=payload,
    )


def _error_result(message: str, structured: dict[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)],
        structured_content=structured,
        is_error=True,
    )


class GuardedServer:
    """The tools, the guard in front of them, and the MCP plumbing of both transports."""

    def __init__(
        self,
        guard: Guard,
        store: Store,
        *,
        stdio_principal: str | None = None,
    ):
        self.guard = guard
        self.store = store
        self.stdio_principal = stdio_principal
        self.data = DataTools()
        self.bus = InMemorySubscriptionBus()
        self._legacy_sessions: weakref.WeakSet[Any] = weakref.WeakSet()
        self._visible: tuple[str, ...] = tuple(self._visible_names())
        self.server: Server[Any] = Server(
            SERVER_NAME,
            version=__version__,
            instructions=(
                "Manages Odoo connections behind a policy guard. Calls that need an approval "
                "answer with a pending request reference: ask an approver, then call again "
                "with the same arguments."
            ),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(self.bus),
            # No x-mcp-header annotations: nothing for the SDK to check against Mcp-Param-*,
            # and no tools/list round trip per call on the 2026-07-28 HTTP path.
            get_tool_input_schema=lambda _name: None,
        )
        self.server.middleware.append(self._middleware)

    def init_options(self) -> Any:
        return self.server.create_initialization_options(NotificationOptions(tools_changed=True))

    # -- identity ------------------------------------------------------------------------

    def _principal(self, ctx: ServerRequestContext[Any, Any]) -> str | None:
        request = ctx.request
        if request is not None:
            scope = getattr(request, "scope", None)
            principal = scope.get(PRINCIPAL_SCOPE_KEY) if isinstance(scope, Mapping) else None
            return principal if isinstance(principal, str) and principal else None
        return self.stdio_principal

    def _remember_session(self, ctx: ServerRequestContext[Any, Any]) -> None:
        """Keep (weakly) the connection of a 2025-era client, to tell it of list changes.

        ``ctx.session`` is made anew for each request; the connection behind it lives as
        long as the client is connected. The SDK has no public accessor for it from a
        low-level handler context (2.3.0), hence the private attribute, read defensively.
        """
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return
        connection = getattr(ctx.session, "_connection", None)
        if connection is not None and hasattr(connection, "send_tool_list_changed"):
            self._legacy_sessions.add(connection)

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

    async def _middleware(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method != "tools/call" or ctx.request_id is None:
            return await call_next(ctx)
        raw = ctx.params
        placeholder: dict[str, Any] = {"name": _PLACEHOLDER_TOOL, "arguments": {}}
        if isinstance(raw, Mapping) and "_meta" in raw:
            placeholder["_meta"] = raw["_meta"]
        token = _RAW_CALL.set(raw if isinstance(raw, Mapping) else {"name": None, "_raw": raw})
        try:
            # The SDK still checks the envelope (initialisation, _meta, protocol era) and
            # serialises the result; the call itself is only ever judged by the guard.
            return await call_next(replace(ctx, params=placeholder))
        finally:
            _RAW_CALL.reset(token)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        raw = _RAW_CALL.get()
        if raw is None or params.name != _PLACEHOLDER_TOOL:
            # Not reached through the middleware: refuse rather than run unguarded.
            return _error_result("This call did not pass the guard and was refused.")
        self._remember_session(ctx)
        principal = self._principal(ctx)
        if principal is None:
            return _error_result("The caller is not authenticated; the call was refused.")
        name = raw.get("name")
        arguments = raw.get("arguments")
        if arguments is None:  # MCP: arguments are optional; absent or null means none
            arguments = {}
        try:
            return await self.dispatch(principal, name, arguments)
        except Exception:
            log.exception("unexpected error while handling a tools/call")
            return _error_result(
                "The call failed inside the guard (an internal error, logged on the server)."
            )

    async def dispatch(
        self, principal: str, name: object, arguments: object
    ) -> types.CallToolResult:
        """Judge and (when allowed) run one call. Every call, valid or not, goes through
        ``Guard.call``, except a call to a served, visible, not denied tool whose arguments
        break its schema: that one is refused (and audited) here, before an approval could
        be filed for a call that could never run."""
        invalid = self._invalid_arguments(principal, name, arguments)
        if invalid is not None:
            return invalid
        also: list[str] = []
        if name == "odoo_connect" and isinstance(arguments, dict):
            alias = arguments.get("alias")
            try:  # never guess "new" when the store cannot say: that would skip the gate
                exists = isinstance(alias, str) and self.store.get_connection(alias) is not None
            except (ApprovalError, StoreError, OdooError) as exc:
                return self._unavailable(principal, name, arguments, str(exc))
            if exists:
                also.append("odoo_disconnect")  # a replacement removes the old connection
        replacing = bool(also)

        async def execute(args: dict[str, Any]) -> types.CallToolResult:
            assert isinstance(name, str)
            try:
                return await self._execute(name, args, replacing=replacing)
            except (ApprovalError, StoreError, OdooError, DataToolError) as exc:
                raise ToolFailure(str(exc)) from None

        try:
            return await self.guard.call(
                principal,
                name,  # type: ignore[arg-type]  # the guard refuses non-strings itself
                arguments,
                listed=TOOL_NAMES,
                execute=execute,
                also_governed_by=also,
            )
        except GuardRefusal as refusal:
            return _error_result(refusal.message, refusal.structured)
        except ToolFailure as failure:
            return _error_result(str(failure))
        except (ApprovalError, StoreError, OdooError) as exc:
            # The approval backend failed while judging the call (fail closed, invariant 6).
            return self._unavailable(principal, name, arguments, str(exc))

    def _unavailable(
        self, principal: str, name: object, arguments: object, cause: str
    ) -> types.CallToolResult:
        message = f"Refused: the approval backend is unavailable ({cause}); nothing was done."
        try:
            digest = arguments_hash(arguments)
        except (TypeError, ValueError):
            digest = "-"
        try:
            self.store.append_audit(
                AuditEvent(
                    principal=principal,
                    tool=name if isinstance(name, str) else repr(name)[:128],
                    arguments_hash=digest,
                    outcome="unavailable",
                    detail=message[:1000],
                )
            )
        except Exception:  # the refusal stands even if it cannot be recorded
            log.exception("cannot audit an 'unavailable' refusal")
        return _error_result(message, {"status": "unavailable"})

    def _invalid_arguments(
        self, principal: str, name: object, arguments: object
    ) -> types.CallToolResult | None:
        if not (isinstance(name, str) and name in TOOLS and isinstance(arguments, dict)):
            return None  # the guard answers: invalid name, unknown tool, not an object
        try:
            decision = self.guard.policy.current().decide(name)
        except PolicyUnavailable:
            return None  # no usable policy: the guard answers 'unavailable'
        if decision.hidden or decision.action == "deny":
            return None  # hidden and denied tools are refused as such, whatever the arguments
        problem = validate_arguments(name, arguments)
        if problem is None:
            return None
        try:
            digest = arguments_hash(arguments)
        except (TypeError, ValueError):
            digest = "-"
        self.store.append_audit(
            AuditEvent(
                principal=principal,
                tool=name,
                arguments_hash=digest,
                outcome="invalid",
                detail=problem[:1000],
            )
        )
        return _error_result(problem)

    async def _execute(
        self, name: str, args: dict[str, Any], *, replacing: bool
    ) -> types.CallToolResult:
        try:  # validated before the guard judged the call; never run on bad input anyway
            model = TOOLS[name].args_model.model_validate(args)
        except ValidationError as exc:
            raise ToolFailure(_describe_validation(name, exc)) from None
        if TOOLS[name].data:
            return await self._data_tool(name, model)
        if isinstance(model, ConnectArgs):
            return self._connect(model, replacing=replacing)
        if isinstance(model, AliasArgs):
            return self._disconnect(model.alias)
        return self._connections()

    async def _data_tool(self, name: str, args: Any) -> types.CallToolResult:
        conn = DataTools.pick(self.store.list_connections(), args.alias)
        payload = await anyio.to_thread.run_sync(self.data.run, name, args, conn)
        return _json_result(payload)

    def _connections(self) -> types.CallToolResult:
        connections = [conn.public() for conn in self.store.list_connections()]
        return _json_result({"connections": connections, "count": len(connections)})

    def _connect(self, args: ConnectArgs, *, replacing: bool) -> types.CallToolResult:
        if not args.password and not args.api_key:
            raise ToolFailure("odoo_connect needs a password or an api_key; nothing was saved.")
        exists = self.store.get_connection(args.alias) is not None
        if exists and not replacing:
            # The alias appeared after the guard judged this call as a plain addition.
            raise ToolFailure(
                f"A connection named '{args.alias}' now exists; replacing it is governed like "
                "odoo_disconnect. Call again to have the replacement judged."
            )
        conn = Connection(**args.model_dump())
        created = self.store.add_connection(conn)
        return _json_result({"alias": args.alias, "created": created, "connection": conn.public()})

    def _disconnect(self, alias: str) -> types.CallToolResult:
        if not self.store.remove_connection(alias):
            raise ToolFailure(f"There is no connection named '{alias}'; nothing was removed.")
        return _json_result({"alias": alias, "removed": True})

    # -- tools/list_changed --------------------------------------------------------------

    async def watch_policy(self) -> None:
        """Announce tools/list_changed when a policy change alters the visible tools."""
        while True:
            await anyio.sleep(POLICY_POLL_SECONDS)
            visible = tuple(self._visible_names())
            if visible == self._visible:
                continue
            self._visible = visible
            log.info("visible tools changed: %s", ", ".join(visible) or "(none)")
            await self.notify_tools_changed()

    async def notify_tools_changed(self) -> None:
        await self.bus.publish(ToolsListChanged())  # 2026-07-28: subscriptions/listen streams
        for session in list(self._legacy_sessions):  # 2025-era sessions
            try:
                with anyio.fail_after(2):
                    await session.send_tool_list_changed()
            except Exception:  # a closed session: forget it
                log.debug("cannot notify a session; dropping it", exc_info=True)
                self._legacy_sessions.discard(session)


# --- HTTP identity --------------------------------------------------------------------


class BearerPrincipal:
    """ASGI layer: bearer token → principal, or 401 before the SDK sees the request."""

    def __init__(self, app: Any, tokens: TokenStore, *, allow_anonymous: bool):
        self.app = app
        self.tokens = tokens
        self.allow_anonymous = allow_anonymous

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        principal = None
        header = None
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                header = value.decode("latin-1")
                break
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                try:
                    principal = self.tokens.verify(token.strip())
                except Exception:
                    log.exception("cannot check the bearer token")
                    principal = None
            if principal is None:
                await _unauthorized(send, "invalid_token", "The bearer token is not valid.")
                return
        elif self.allow_anonymous:
            principal = "anonymous"
        else:
            await _unauthorized(send, "invalid_request", "A bearer token is required.")
            return
        scope = dict(scope)
        scope[PRINCIPAL_SCOPE_KEY] = principal
        # Lets the SDK bind a legacy session to the principal that opened it.
        scope["user"] = AuthenticatedUser(AccessToken(token="", client_id=principal, scopes=[]))
        if scope.get("method") == "POST":
            receive = await _single_message_body(receive, send)
            if receive is None:
                return
        await self.app(scope, receive, send)


async def _single_message_body(receive: Any, send: Any) -> Any:
    """Refuse a JSON-RPC batch (a JSON array) with a clear error; MCP has no batches.

    Reads the body only up to its first significant byte, then replays what was read.
    Returns the replaying ``receive``, or None when the request was answered here.
    """
    buffered: list[dict[str, Any]] = []
    while True:
        message = await receive()
        buffered.append(message)
        if message["type"] != "http.request":
            break
        head = message.get("body", b"").lstrip(b" \t\r\n")
        if head or not message.get("more_body", False):
            if head[:1] == b"[":
                await _json_error(
                    send,
                    400,
                    -32600,
                    "Invalid request: JSON-RPC batches are not accepted; send one request "
                    "object per HTTP request.",
                )
                return None
            break

    async def replay() -> dict[str, Any]:
        if buffered:
            return buffered.pop(0)
        return await receive()

    return replay


async def _json_error(send: Any, status: int, code: int, message: str) -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _unauthorized(send: Any, error: str, description: str) -> None:
    body = json.dumps({"error": error, "error_description": description}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (
                    b"www-authenticate",
                    f'Bearer error="{error}", error_description="{description}"'.encode(),
                ),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- running --------------------------------------------------------------------------


def stdio_principal() -> str:
    configured = os.environ.get("MCP_GUARD_PRINCIPAL", "").strip()
    if configured:
        return configured
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"stdio:{user}"


def build(backend: Backend, *, principal: str | None = None) -> GuardedServer:
    guard = Guard(backend.policy, backend.store, approval_hint=backend.approval_hint)  # type: ignore[arg-type]
    return GuardedServer(guard, backend.store, stdio_principal=principal)


def _open_backend(
    data_dir: Path,
    policy_file: Path | None,
    backend: BackendName | None,
    odoo_config: Path | None,
) -> Backend:
    try:
        opened = open_backend(data_dir, policy_file, backend=backend, config_file=odoo_config)
    except (OdooError, StoreError, ValueError) as exc:
        print(f"odoo-mcp-guard: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    opened.start()
    return opened


def http_app(guarded: GuardedServer, data_dir: Path, host: str, *, allow_anonymous: bool) -> Any:
    app = guarded.server.streamable_http_app(host=host)
    tokens = TokenStore(data_dir / "tokens.json")
    return BearerPrincipal(app, tokens, allow_anonymous=allow_anonymous)


def _setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            stream=sys.stderr,
            level=os.environ.get("MCP_GUARD_LOG_LEVEL", "WARNING").upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )


def run_server(
    transport: Literal["stdio", "http"],
    host: str,
    port: int,
    policy_file: Path | None,
    data_dir: Path,
    allow_anonymous: bool,
    *,
    backend: BackendName | None = None,
    odoo_config: Path | None = None,
) -> None:
    """Serve until the client goes away (stdio) or the process is stopped (HTTP).

    ``backend`` None: the Odoo add-on when Odoo is configured (ODOO_URL or ``odoo_config``),
    else the embedded store in ``data_dir``."""
    _setup_logging()
    if transport not in ("stdio", "http"):
        raise ValueError(f"unknown transport {transport!r}")
    opened = _open_backend(data_dir, policy_file, backend, odoo_config)
    try:
        if transport == "stdio":
            anyio.run(_serve_stdio, opened)
        else:
            anyio.run(_serve_http, opened, data_dir, host, port, allow_anonymous)
    finally:
        opened.close()


async def _serve_stdio(backend: Backend) -> None:
    from mcp.server.stdio import stdio_server

    guarded = build(backend, principal=stdio_principal())
    async with anyio.create_task_group() as tg:
        tg.start_soon(guarded.watch_policy)
        async with stdio_server() as (read, write):
            await guarded.server.run(read, write, guarded.init_options())
        tg.cancel_scope.cancel()


async def _serve_http(
    backend: Backend, data_dir: Path, host: str, port: int, allow_anonymous: bool
) -> None:
    import uvicorn

    guarded = build(backend)
    app = http_app(guarded, data_dir, host, allow_anonymous=allow_anonymous)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    print(f"odoo-mcp-guard: serving on http://{host}:{port}/mcp", file=sys.stderr, flush=True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(guarded.watch_policy)
        await server.serve()
        tg.cancel_scope.cancel()
