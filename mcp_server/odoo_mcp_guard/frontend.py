"""The MCP plumbing shared by the two front-ends (``serve`` and ``proxy``).

Built on the SDK's low-level ``Server`` so that the guard sees every ``tools/call``
exactly as it arrived on the wire: a server middleware takes the raw params before
the SDK validates them (a non-object ``arguments`` would otherwise be answered by
the SDK, unaudited) and hands them to the front-end's ``handle_call``; the SDK then
only ever sees a well-formed placeholder call whose handler returns the guard's answer.

Identity: on stdio the principal is ``MCP_GUARD_PRINCIPAL`` (else ``stdio:<user>``);
on streamable HTTP it is the owner of the bearer token (``TokenStore``), checked by
a small ASGI layer before the SDK sees the request (401 otherwise, unless anonymous
access was allowed on the command line).

Logging goes to stderr only: on stdio, stdout is the protocol pipe.
"""

from __future__ import annotations

import contextvars
import errno
import functools
import getpass
import json
import logging
import os
import socket
import sys
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from odoo_mcp_guard import __version__
from odoo_mcp_guard.auth import TOKENS_FILENAME, TokenError, TokenStore, check_principal
from odoo_mcp_guard.backends import Backend, BackendName, open_backend
from odoo_mcp_guard.catalog import Classification, classify_definition, definition_hash
from odoo_mcp_guard.guard import Continuation, Guard, GuardRefusal
from odoo_mcp_guard.metrics import CALL_SECONDS, MetricsEndpoint, count_decision, tool_label
from odoo_mcp_guard.names import arguments_digest, canonical_json, check_tool_name
from odoo_mcp_guard.odoo_rpc import OdooError
from odoo_mcp_guard.policy import PolicyUnavailable
from odoo_mcp_guard.store import ApprovalError, AuditEvent, GuardStore, PinnedTool, StoreError

log = logging.getLogger("odoo_mcp_guard.frontend")

PRINCIPAL_SCOPE_KEY = "odoo_mcp_guard.principal"
POLICY_POLL_SECONDS = 0.5
CATALOG_RETRY_SECONDS = 5.0

# The SDK validates and dispatches this placeholder; the real call travels in RAW_CALL.
PLACEHOLDER_TOOL = "odoo_mcp_guard.guarded_call"
RAW_CALL: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "odoo_mcp_guard_raw_call", default=None
)

# A short id per MCP request, in every log record made while it is handled.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "odoo_mcp_guard_request_id", default=None
)

CallAnswer = types.CallToolResult | types.InputRequiredResult
MAX_ARGUMENTS_BYTES = 64 * 1024


def arguments_size_problem(tool: str, arguments: object) -> str | None:
    """None if ``arguments`` are plain JSON of a bounded size, else a one-line reason."""
    try:
        size = len(canonical_json(arguments))
    except (TypeError, ValueError):
        return f"Invalid arguments for {tool}: they are not plain JSON. Nothing was done."
    if size > MAX_ARGUMENTS_BYTES:
        return (
            f"Invalid arguments for {tool}: {size} bytes, more than the {MAX_ARGUMENTS_BYTES} "
            "allowed. Nothing was done."
        )
    return None


def json_result(payload: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(payload, ensure_ascii=False))],
        structured_content=payload,
    )


def error_result(message: str, structured: dict[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)],
        structured_content=structured,
        is_error=True,
    )


class ToolFailure(Exception):
    """A tool ran (or was sent) and could not do what was asked; the message is safe to show."""


# What every front-end tells its client about approvals, after saying what it serves.
APPROVAL_INSTRUCTIONS = (
    "Calls that need an approval answer with a pending request reference: ask an approver, "
    "then call again with the same arguments."
)


class Frontend:
    """A guarded MCP server: identity, the tools/call middleware, list_changed fan-out.

    Subclasses provide ``_list_tools``, ``_visible_names`` and ``handle_call``."""

    def __init__(
        self,
        guard: Guard,
        store: GuardStore,
        *,
        name: str,
        instructions: str,
        stdio_principal: str | None = None,
        middleware: tuple[Callable[..., Awaitable[HandlerResult]], ...] = (),
    ):
        self.guard = guard
        self.store = store
        # The catalog this front-end serves: the name its tools are kept under, and the
        # risk class of each listed tool (catalog.py), judged by the guard.
        self.server_id = name
        self.risks: dict[str, Classification] = {}
        self.own_tools = False  # True: the guard's own tools, pinned as they change
        self.catalog_ready = False  # True once the served tools are known
        self._catalog_epoch = ""
        self._catalog_retry_at = 0.0
        self.stdio_principal = stdio_principal
        self.bus = InMemorySubscriptionBus()
        self._legacy_sessions: weakref.WeakSet[Any] = weakref.WeakSet()
        self._visible: tuple[str, ...] = ()
        self.server: Server[Any] = Server(
            name,
            version=__version__,
            instructions=instructions,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(self.bus),
            # No x-mcp-header annotations: nothing for the SDK to check against Mcp-Param-*,
            # and no tools/list round trip per call on the 2026-07-28 HTTP path.
            get_tool_input_schema=lambda _name: None,
        )
        self.server.middleware.extend(middleware)
        self.server.middleware.append(self._middleware)
        # The HTTP session manager builds its initialize answer from the default options:
        # make the default advertise tools.listChanged, which both transports send.
        create_options = self.server.create_initialization_options

        def create_with_list_changed(
            notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
        ) -> Any:
            options = notification_options or NotificationOptions(tools_changed=True)
            return create_options(options, *args, **kwargs)

        self.server.create_initialization_options = create_with_list_changed  # type: ignore[method-assign]

    def init_options(self) -> Any:
        return self.server.create_initialization_options()

    # -- to provide ----------------------------------------------------------------------

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        raise NotImplementedError

    def _visible_names(self) -> list[str]:
        raise NotImplementedError

    async def handle_call(
        self, ctx: ServerRequestContext[Any, Any], principal: str, raw: Mapping[str, Any]
    ) -> CallAnswer:
        raise NotImplementedError

    def _serves(self, name: str) -> bool:
        raise NotImplementedError

    def _argument_problem(self, name: str, arguments: dict[str, Any]) -> str | None:
        """None if the arguments fit the tool's schema (and the call could run), else a clear
        one-line reason. May raise the backend's errors: the call is then 'unavailable'."""
        raise NotImplementedError

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

    # -- tools/call ----------------------------------------------------------------------

    async def _middleware(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        request_id = REQUEST_ID.set(uuid.uuid4().hex[:16])
        try:
            return await self._guarded(ctx, call_next)
        finally:
            REQUEST_ID.reset(request_id)

    async def _guarded(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method != "tools/call" or ctx.request_id is None:
            return await call_next(ctx)
        raw = ctx.params
        placeholder: dict[str, Any] = {"name": PLACEHOLDER_TOOL, "arguments": {}}
        if isinstance(raw, Mapping) and "_meta" in raw:
            placeholder["_meta"] = raw["_meta"]
        token = RAW_CALL.set(raw if isinstance(raw, Mapping) else {"name": None, "_raw": raw})
        try:
            # The SDK still checks the envelope (initialisation, _meta, protocol era) and
            # serialises the result; the call itself is only ever judged by the guard.
            return await call_next(replace(ctx, params=placeholder))
        finally:
            RAW_CALL.reset(token)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> CallAnswer:
        raw = RAW_CALL.get()
        if raw is None or params.name != PLACEHOLDER_TOOL:
            # Not reached through the middleware: refuse rather than run unguarded.
            return error_result("This call did not pass the guard and was refused.")
        self._remember_session(ctx)
        principal = self._principal(ctx)
        if principal is None:
            return error_result("The caller is not authenticated; the call was refused.")
        name = raw.get("name")
        served = isinstance(name, str) and check_tool_name(name) is None and self._serves(name)
        started = time.perf_counter()
        try:
            return await self.handle_call(ctx, principal, raw)
        except Exception:
            log.exception("unexpected error while handling a tools/call")
            return error_result(
                "The call failed inside the guard (an internal error, logged on the server)."
            )
        finally:
            label = tool_label(name, None if served else "unknown")
            elapsed = time.perf_counter() - started
            CALL_SECONDS.labels(label).observe(elapsed)
            log.debug("tools/call %s by %s answered in %.3f s", label, principal, elapsed)

    async def judge(
        self,
        principal: str,
        name: object,
        arguments: object,
        *,
        listed: Collection[str],
        execute: Callable[[dict[str, Any]], Awaitable[CallAnswer]],
        also_governed_by: Sequence[str] = (),
        continuation: Continuation | None = None,
    ) -> CallAnswer:
        """``Guard.call``, its refusals and failures turned into error results."""
        unreported = self.store.catalog_unreported(self.server_id)
        if unreported is not None and isinstance(name, str) and self._serves(name):
            # Odoo has not seen this catalog: a changed definition could not be caught.
            return self._unavailable(principal, name, arguments, unreported)
        try:
            return await self.guard.call(
                principal,
                name,  # type: ignore[arg-type]  # the guard refuses non-strings itself
                arguments,
                listed=listed,
                execute=execute,
                also_governed_by=also_governed_by,
                server=self.server_id,
                risks=self.risks,
                continuation=continuation,
            )
        except GuardRefusal as refusal:
            return error_result(refusal.message, refusal.structured)
        except ToolFailure as failure:
            return error_result(str(failure))
        except (ApprovalError, StoreError, OdooError) as exc:
            # The approval backend failed while judging the call (fail closed, invariant 6).
            return self._unavailable(principal, name, arguments, str(exc))

    def _invalid_arguments(
        self, principal: str, name: object, arguments: object
    ) -> types.CallToolResult | None:
        """A call to a served, visible, not denied tool whose arguments break its schema is
        refused (and audited) here, before an approval could be filed for a call that could
        never run. Everything else is the guard's to answer."""
        if not (isinstance(name, str) and self._serves(name) and isinstance(arguments, dict)):
            return None  # the guard answers: invalid name, unknown tool, not an object
        try:
            decision = self.guard.policy.current().decide(name)
        except PolicyUnavailable:
            return None  # no usable policy: the guard answers 'unavailable'
        if decision.hidden or decision.action == "deny":
            return None  # hidden and denied tools are refused as such, whatever the arguments
        try:
            problem = self._argument_problem(name, arguments)
        except (ApprovalError, StoreError, OdooError) as exc:  # fail closed, naming the cause
            return self._unavailable(principal, name, arguments, str(exc))
        if problem is None:
            return None
        self.audit(principal, name, arguments, "invalid", problem)
        return error_result(problem)

    def _unavailable(
        self, principal: str, name: object, arguments: object, cause: str
    ) -> types.CallToolResult:
        message = f"Refused: the approval backend is unavailable ({cause}); nothing was done."
        self.audit(principal, name, arguments, "unavailable", message)
        return error_result(message, {"status": "unavailable"})

    def audit(
        self, principal: str, name: object, arguments: object, outcome: Any, detail: str
    ) -> None:
        """Record a decision taken outside ``Guard.call``; a refusal stands even if this fails."""
        digest = arguments_digest(arguments)
        count_decision(name, outcome)
        try:
            self.store.append_audit(
                AuditEvent(
                    principal=principal,
                    tool=name if isinstance(name, str) else repr(name)[:128],
                    arguments_hash=digest,
                    outcome=outcome,
                    detail=detail[:1000],
                )
            )
        except Exception:
            log.exception("cannot audit a %r decision", outcome)

    # -- the tool catalog ----------------------------------------------------------------

    def served_definitions(self) -> dict[str, dict[str, Any]]:
        """The definitions of the tools this front-end serves now, by name."""
        raise NotImplementedError

    async def catalog_applied(self, pins: dict[str, PinnedTool]) -> None:
        """Called with the pins of the served tools after each ``publish_catalog``."""

    async def publish_catalog(self) -> dict[str, PinnedTool]:
        """Record the served tools in the catalog (the store's pins; with Odoo,
        ``report_catalog``) and classify each as it is listed (its pinned definition)."""
        definitions = {
            name: (definition_hash(definition), definition)
            for name, definition in self.served_definitions().items()
        }
        pins = await anyio.to_thread.run_sync(
            functools.partial(
                self.store.pin_tools, self.server_id, definitions, accept_changes=self.own_tools
            )
        )
        self.risks = {name: classify_definition(pin.definition) for name, pin in pins.items()}
        self._catalog_epoch = self.guard.policy.catalog_epoch
        await self.catalog_applied(pins)
        return pins

    async def _catalog_due(self) -> bool:
        if not self.catalog_ready:
            return False
        epoch = self.guard.policy.catalog_epoch
        if epoch != self._catalog_epoch:
            return True
        if self.store.catalog_unreported(self.server_id) is None:
            return False
        now = time.monotonic()
        if now < self._catalog_retry_at:
            return False
        self._catalog_retry_at = now + CATALOG_RETRY_SECONDS
        return True

    # -- tools/list_changed --------------------------------------------------------------

    async def watch_policy(self) -> None:
        """Announce tools/list_changed when a policy change alters the visible tools, and
        report the catalog again when the policy source says it may be due."""
        self._visible = tuple(self._visible_names())
        while True:
            if await self._catalog_due():
                try:
                    await self.publish_catalog()
                except Exception:
                    log.exception("cannot record the tool catalog")
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
                except TokenError as exc:  # the file broke while serving: one line, refused
                    log.error("cannot check the bearer token: %s", exc)
                    principal = None
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


async def _json_error(
    send: Any,
    status: int,
    code: int,
    message: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
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
                *headers,
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


# --- HTTP sessions ----------------------------------------------------------------------

SESSIONS_PER_PRINCIPAL_ENV = "MCP_GUARD_HTTP_SESSIONS_PER_PRINCIPAL"
SESSION_IDLE_ENV = "MCP_GUARD_HTTP_SESSION_IDLE"
# Tests only: a file holding a number of seconds added to the session clock, so that a test
# moves time forward instead of waiting for an idle timeout.
SESSION_CLOCK_ENV = "MCP_GUARD_TEST_SESSION_CLOCK"
SESSION_HEADER = b"mcp-session-id"
PROTOCOL_HEADER = b"mcp-protocol-version"


class SessionSettings(BaseModel):
    """Limits on the 2025-era (stateful) MCP sessions of the HTTP transport."""

    model_config = ConfigDict(extra="forbid")

    per_principal: int = Field(default=32, ge=1, le=100_000)
    idle_timeout: float = Field(default=1800.0, gt=0, le=7 * 86400, allow_inf_nan=False)

    @classmethod
    def from_env(cls) -> SessionSettings:
        """From the environment; a bad value is a ValueError naming the variable."""
        names = {"per_principal": SESSIONS_PER_PRINCIPAL_ENV, "idle_timeout": SESSION_IDLE_ENV}
        given = {field: os.environ.get(env, "").strip() for field, env in names.items()}
        try:
            return cls.model_validate({field: raw for field, raw in given.items() if raw})
        except ValidationError as exc:
            field = str(exc.errors()[0]["loc"][0])
            message = exc.errors()[0]["msg"]
            raise ValueError(f"{names[field]}={given[field]!r}: {message}") from None


def session_clock() -> Callable[[], float]:
    """Monotonic seconds; moved forward by the file ``MCP_GUARD_TEST_SESSION_CLOCK`` names."""
    configured = os.environ.get(SESSION_CLOCK_ENV)
    if not configured:
        return time.monotonic
    path = Path(configured)

    def clock() -> float:
        try:
            offset = float(path.read_text(encoding="utf-8").strip() or 0)
        except (OSError, ValueError):
            offset = 0.0
        return time.monotonic() + offset

    return clock


@dataclass(slots=True)
class _Session:
    principal: str
    scope: dict[str, Any]  # of the request that opened it: to close it as its owner
    last_used: float
    in_flight: int = 0


class SessionLimits:
    """ASGI layer between the bearer check and the SDK: at most ``per_principal`` open
    2025-era sessions per principal, and a session with no request in flight for
    ``idle_timeout`` seconds is closed (through the SDK, as its owner's DELETE would).

    The SDK keeps every session (its transport, streams and server task) until the client
    deletes it or its own idle timeout, with one limit for all callers: without this, one
    token could open sessions until the process runs out of memory. A request over the
    limit is answered 429 with a one-line JSON-RPC error; expired sessions are closed
    before a new one is refused, and by ``sweep`` in the background."""

    def __init__(
        self,
        app: Any,
        settings: SessionSettings,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.app = app
        self.settings = settings
        self.clock = clock
        self._sessions: dict[str, _Session] = {}
        self._opening: dict[str, int] = {}  # principal -> opening requests in flight

    def open_sessions(self, principal: str) -> int:
        held = sum(1 for session in self._sessions.values() if session.principal == principal)
        return held + self._opening.get(principal, 0)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        principal = scope.get(PRINCIPAL_SCOPE_KEY)
        if scope["type"] != "http" or not isinstance(principal, str):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        session_id = headers.get(SESSION_HEADER, b"").decode("latin-1")
        if session_id:
            await self._in_session(session_id, scope, receive, send)
            return
        version = headers.get(PROTOCOL_HEADER, b"").decode("latin-1")
        opens = scope.get("method") == "POST" and (
            not version or version in HANDSHAKE_PROTOCOL_VERSIONS
        )
        if not opens:  # 2026-07-28 requests are stateless; the rest the SDK refuses
            await self.app(scope, receive, send)
            return
        await self._open(principal, scope, receive, send)

    async def _in_session(
        self, session_id: str, scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        session = self._sessions.get(session_id)
        if session is None:  # not one we keep: the SDK answers (404, or its own checks)
            await self.app(scope, receive, send)
            return
        status = 0

        async def watch(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        session.in_flight += 1
        try:
            await self.app(scope, receive, watch)
        finally:
            session.in_flight -= 1
            session.last_used = self.clock()
            owner = scope.get(PRINCIPAL_SCOPE_KEY) == session.principal
            ended = status == 404 or (scope.get("method") == "DELETE" and status < 300)
            if owner and ended:  # closed by its client, or gone from the SDK
                self._sessions.pop(session_id, None)

    async def _open(self, principal: str, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.close_idle()
        limit = self.settings.per_principal
        if self.open_sessions(principal) >= limit:
            log.warning("refused a new MCP session for %s: %d are open", principal, limit)
            await _json_error(
                send,
                429,
                -32000,
                f"Too many open MCP sessions for {principal}: at most {limit}; close one "
                f"(HTTP DELETE) or let one stay idle for {self.settings.idle_timeout:g} s.",
                [(b"retry-after", str(self._retry_after(principal)).encode())],
            )
            return
        self._opening[principal] = self._opening.get(principal, 0) + 1
        opened: list[str] = []

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                for key, value in message.get("headers", ()):
                    if key.lower() == SESSION_HEADER:
                        opened.append(value.decode("latin-1"))
            await send(message)

        kept = {**scope, "headers": list(scope.get("headers", ()))}
        try:
            await self.app(scope, receive, watch)
        finally:
            self._opening[principal] -= 1
            if not self._opening[principal]:
                del self._opening[principal]
            for session_id in opened:
                self._sessions[session_id] = _Session(principal, kept, self.clock())

    def _retry_after(self, principal: str) -> int:
        idle = [
            s.last_used
            for s in self._sessions.values()
            if s.principal == principal and not s.in_flight
        ]
        wait = (
            min(idle) + self.settings.idle_timeout - self.clock()
            if idle
            else self.settings.idle_timeout
        )
        return max(1, int(wait + 0.999))

    async def close_idle(self) -> int:
        """Close every session idle for the timeout; how many were closed."""
        deadline = self.clock() - self.settings.idle_timeout
        expired = [
            (session_id, session)
            for session_id, session in self._sessions.items()
            if not session.in_flight and session.last_used <= deadline
        ]
        # Forgotten first, all at once: they no longer count, whatever the SDK answers, and a
        # concurrent call does not close them twice.
        for session_id, _session in expired:
            del self._sessions[session_id]
        for session_id, session in expired:
            await self._delete(session_id, session)
        return len(expired)

    async def _delete(self, session_id: str, session: _Session) -> None:
        """End a session in the SDK with a DELETE as its owner would send it."""
        headers = [
            (key, value)
            for key, value in session.scope["headers"]
            if key not in (SESSION_HEADER, b"content-type", b"content-length")
        ]
        headers.append((SESSION_HEADER, session_id.encode("latin-1")))
        scope = {**session.scope, "method": "DELETE", "headers": headers}
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(message: dict[str, Any]) -> None:
            return None

        try:
            with anyio.fail_after(10):
                await self.app(scope, receive, discard)
        except Exception:
            log.exception("cannot close an idle MCP session of %s", session.principal)
        else:
            log.info("closed an idle MCP session of %s", session.principal)

    async def sweep(self) -> None:
        """Close idle sessions in the background, a few times per idle period."""
        interval = min(max(self.settings.idle_timeout / 4, 1.0), 60.0)
        while True:
            await anyio.sleep(interval)
            try:
                await self.close_idle()
            except Exception:
                log.exception("cannot close idle MCP sessions")


# --- running --------------------------------------------------------------------------


def stdio_principal() -> str:
    """MCP_GUARD_PRINCIPAL, else ``stdio:<OS user>``; refused (TokenError) when it is not a
    name approvers can be compared with."""
    configured = os.environ.get("MCP_GUARD_PRINCIPAL", "").strip()
    if configured:
        check_principal(configured, "MCP_GUARD_PRINCIPAL")
        return configured
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    check_principal(f"stdio:{user}", "the OS user name")
    return f"stdio:{user}"


def open_backend_or_exit(
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


def make_guard(backend: Backend) -> Guard:
    return Guard(
        backend.policy,
        backend.store,
        approval_hint=backend.approval_hint,
        rate_limiter=backend.rate_limiter,
    )


def http_app(
    frontend: Frontend,
    data_dir: Path,
    host: str,
    *,
    allow_anonymous: bool,
    sessions: SessionSettings | None = None,
) -> tuple[Any, SessionLimits]:
    """The ASGI app, and its session limits (whose ``sweep`` runs beside it)."""
    settings = sessions or SessionSettings()
    # The SDK's own idle timeout stays as a backstop; the limits decide first.
    app = frontend.server.streamable_http_app(host=host, session_idle_timeout=settings.idle_timeout)
    limits = SessionLimits(app, settings, session_clock())
    tokens = TokenStore(data_dir / TOKENS_FILENAME)
    # /metrics is answered before the bearer check (unauthenticated, same listener).
    asgi = MetricsEndpoint(BearerPrincipal(limits, tokens, allow_anonymous=allow_anonymous))
    return asgi, limits


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id inside a request."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


# Libraries that log whole protocol messages (arguments, so secrets) at DEBUG: never below INFO.
CHATTY_LOGGERS = ("mcp", "mcp_types", "httpx", "httpx2", "httpcore", "sse_starlette", "redis")


def setup_logging() -> None:
    """stderr; MCP_GUARD_LOG_LEVEL (WARNING), MCP_GUARD_LOG_FORMAT=text|json (text)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("MCP_GUARD_LOG_FORMAT", "text").strip().lower() == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(os.environ.get("MCP_GUARD_LOG_LEVEL", "WARNING").upper())
    for name in CHATTY_LOGGERS:
        library = logging.getLogger(name)
        library.setLevel(max(logging.INFO, root.level))


Background = Callable[[], Awaitable[None]]
Builder = Callable[[Backend, "str | None"], "tuple[Frontend, tuple[Background, ...]]"]


def run_frontend(
    builder: Builder,
    transport: str,
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
    else the embedded store in ``data_dir``. ``builder(backend, stdio principal or None)``
    makes the front-end and its background tasks; the backend is closed on the way out."""
    setup_logging()
    if transport not in ("stdio", "http"):
        raise ValueError(f"unknown transport {transport!r}")
    sessions = None
    if transport == "http":
        try:
            sessions = SessionSettings.from_env()
        except ValueError as exc:
            _exit_with(str(exc))
        # Before anything is served: a broken tokens file would refuse every request.
        try:
            TokenStore(data_dir / TOKENS_FILENAME).hashes()
        except TokenError as exc:
            _exit_with(str(exc))
    else:
        try:
            principal = stdio_principal()
        except TokenError as exc:
            _exit_with(str(exc))
    listener = None
    opened = open_backend_or_exit(data_dir, policy_file, backend, odoo_config)
    try:
        if transport == "http":
            # Bound once the backend is ready (a client that can connect is served), and
            # here, so that a port in use is one line and a non-zero exit.
            listener = listen(host, port)
        if transport == "stdio":

            async def stdio() -> None:
                frontend, background = builder(opened, principal)
                await serve_stdio(frontend, *background)

            anyio.run(stdio)
        else:

            async def http() -> None:
                assert listener is not None
                frontend, background = builder(opened, None)
                await serve_http(
                    frontend,
                    data_dir,
                    host,
                    listener,
                    allow_anonymous,
                    *background,
                    sessions=sessions,
                )

            anyio.run(http)
    finally:
        if listener is not None:
            listener.close()
        opened.close()


def _exit_with(message: str) -> NoReturn:
    print(f"odoo-mcp-guard: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def listen(host: str, port: int) -> socket.socket:
    """The HTTP listening socket, bound here so that a refusal is one line, not a traceback
    from inside the server (and "serving on" is printed only once it is bound)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        _exit_with(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        why = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
        _exit_with(f"cannot listen on {host}:{port}: {why} (choose another with --port)")
    return sock


async def serve_stdio(frontend: Frontend, *background: Background) -> None:
    """Serve one client on stdin/stdout, with ``background`` tasks alongside."""
    from mcp.server.stdio import stdio_server

    async with anyio.create_task_group() as tg:
        tg.start_soon(frontend.watch_policy)
        for task in background:
            tg.start_soon(task)
        async with stdio_server() as (read, write):
            await frontend.server.run(read, write, frontend.init_options())
        tg.cancel_scope.cancel()


async def serve_http(
    frontend: Frontend,
    data_dir: Path,
    host: str,
    listener: socket.socket,
    allow_anonymous: bool,
    *background: Background,
    sessions: SessionSettings | None = None,
) -> None:
    """Serve streamable HTTP on ``listener`` (see ``listen``), bound to ``host``."""
    import uvicorn

    port = listener.getsockname()[1]
    app, limits = http_app(
        frontend, data_dir, host, allow_anonymous=allow_anonymous, sessions=sessions
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host

    async def announce() -> None:
        while not server.started:  # uvicorn has no "started" event to wait on
            await anyio.sleep(0.02)
        print(f"odoo-mcp-guard: serving on http://{shown}:{port}/mcp", file=sys.stderr, flush=True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(frontend.watch_policy)
        tg.start_soon(limits.sweep)
        tg.start_soon(announce)
        for task in background:
            tg.start_soon(task)
        await server.serve(sockets=[listener])
        tg.cancel_scope.cancel()
