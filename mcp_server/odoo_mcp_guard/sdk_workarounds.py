"""Every workaround for the MCP Python SDK (2.3.0) in one place: an SDK upgrade touches
this file. Each says what it works around, and what would let it go.

1. The raw call (``guard_raw_calls`` + ``raw_call``). The SDK validates ``tools/call``
   params before any handler runs: a non-object ``arguments`` (or a bad name) would be
   answered by the SDK itself, unaudited and unjudged. A server middleware takes the raw
   params off the request, keeps them in a contextvar, and hands the SDK a well-formed
   placeholder call whose handler then judges the raw call (``Frontend._call_tool``).
   Goes when the SDK lets a server see (or own) the validation of a call's params.

2. ``tools.listChanged`` advertised on every transport (``advertise_list_changed``). The
   HTTP session manager builds its ``initialize`` answer from the default initialization
   options, which advertise no list changes; the default is patched to advertise them.
   Goes when the session manager takes notification options.

3. The connection of a 2025-era session (``session_connection``). ``ctx.session`` is made
   anew per request; the connection behind it (which can send ``tools/list_changed``) has
   no public accessor from a low-level handler context, hence the private attribute, read
   defensively. Goes when the SDK exposes it.

4. One JSON answer per call for a 2025-era HTTP session that cannot be asked anything
   (``json_answers_without_questions``). The SDK answers every request of a session as an
   SSE stream (a task, a memory stream and several writes per call) or, for the whole
   server, as one JSON body, which drops the call's back channel. The only request a
   front-end sends a client on that channel is ``elicitation/create``, and only to a client
   that declared the ``elicitation`` capability; a session whose ``initialize`` declared
   neither it nor ``sampling`` (nor ``roots``) has nothing to lose, and is switched to JSON
   answers as its ``initialize`` is read (that answer is JSON too). Notifications to the
   session (list changes) use its GET stream either way. Goes when the SDK chooses the
   answer's form per session.

5. A ``tools/call`` forwarded upstream as raw JSON-RPC (``modern_call_envelope``,
   ``read_call_result``; proxy.py ``_send_raw``). The SDK's client session sends each call
   through a dispatcher, a task and memory streams per HTTP POST, parses the answer into
   message models and validates it twice; on a 2026-07-28 upstream over HTTP (stateless: no
   session, nothing asked on the call's stream) the proxy posts the call itself on the same
   HTTP client. What it must send and how an answer is read stay the SDK's: the session's
   private ``_stamp`` (the ``_meta`` envelope and ``Mcp-*`` headers) and its result checks
   (``validate_server_result``, later-revision fields dropped, the call's result adapter).
   Goes when the SDK's client session can send a prepared request and read a raw result.

6. An upstream answer the SDK cannot parse (``guard_unparseable_answers``): a lone surrogate,
   nesting or a number past its parser's limits. Its stdio transport logs the parse error
   with a traceback quoting the line (and what it holds: a password beside the surrogate),
   then drops it: the call it answered waits for the upstream timeout. Its line parser is
   replaced: an unparseable line is never logged; when its top-level ``id`` can be read
   (``top_level_id``) it becomes a JSON-RPC error for that request (``UNREADABLE_ANSWER``);
   a line that looks like a message but names no request (its id an object, or none) is
   handed on as ``UnreadableLine`` (the proxy discards it and keeps the session: a call it
   answered fails at the upstream timeout, not before, since which one it was cannot be
   told; attack 17 found a session dropped for one such line); any other line
   (text printed on stdout) is dropped, as the SDK does. Its HTTP transport does answer the
   call with an error, but quoting the body, and logs it with a traceback: those log records
   lose the exception, and ``unreadable_answer`` tells the proxy such an error (never shown).
   Goes when the SDK fails the request an unparseable answer names, without quoting it.

7. A closed session told from an upstream's own error (``session_closed``). The SDK fails a
   call whose session closed with ``CONNECTION_CLOSED`` (-32000), the code JSON-RPC servers
   commonly use for their own errors: an upstream's ``-32000 "boom"`` was read as a
   disconnect (the session dropped, the upstream's message lost). The SDK's closure is its
   exact error ("Connection closed", no data). Goes when the SDK raises a distinct exception.

8. A stdio client's line the SDK cannot parse (``answering_unreadable_requests``). The SDK's
   stdio server hands the parse error on as an exception, which its session only logs: a
   request that named an ``id`` would wait forever, and nothing is audited. The server's
   read stream is relayed: each such line is told to the front-end (audited as 'invalid',
   redacted and cut: Guard.unreadable_message), and one whose ``id`` can be read is answered
   with a JSON-RPC parse error (-32700). A request whose ``id`` is missing or not a JSON-RPC
   id (1.5, null, true, an object), which the SDK reads as a notification and ignores, is
   told too, and not handed on (outside round 20). Goes when the SDK answers and reports
   them itself.

9. A ``tools/call`` answered without the SDK's server session (``DirectCalls``). Each
   request of a session otherwise crosses the SDK's server transport (a memory stream per
   request, the session's message router), its dispatcher (a task per request), the
   middleware chain and request/result models: about two thirds of a proxied call's CPU.
   A call qualifies only when nothing but the call can travel on its answer: a POST on an
   established 2025-era session answered in JSON (workaround 4: its client can be asked
   nothing), by the principal that opened it (``SessionLimits``) and the credential the
   SDK bound it to, whose body is one JSON-RPC request ``tools/call`` without ``_meta``,
   with the headers the SDK's transport accepts (transport security, ``Accept``,
   ``Content-Type``, a body within its limit) and ``MCP-Protocol-Version`` equal to the
   session's negotiated version. Anything else, or anything this SDK does not offer as
   this was written for, is handed to the SDK unchanged (the body replayed). The call
   itself takes the SDK path's way into the front-end (``Frontend.answer_call``: the raw
   params as workaround 1 has them, the principal from the bearer scope, the same
   ``Guard.call``), with a request context built from the session's own connection (which
   the SDK's requests teach this class), and is answered as the SDK answers: the result
   dumped and checked for the negotiated version (``_dump_result``,
   ``serialize_server_result``), a handler failure mapped as its dispatcher maps it, the
   same JSON-RPC body and headers; a ``notifications/cancelled`` for it ends it with the
   SDK's ``REQUEST_CANCELLED``, and it holds the session's idle timer as a request does.
   Not done: 2026-07-28 requests (stateless, no session to find; each builds a new
   connection from its envelope) and SSE sessions (the call's back channel). Goes when the
   SDK serves a request without a task, a stream and models per message, or lets a server
   answer a method itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import math
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import anyio
import mcp_types as types
import pydantic_core
from mcp.server import Server
from mcp.server import runner as sdk_runner
from mcp.server import streamable_http as sdk_streamable_http
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.session import ServerSession
from mcp.server.streamable_http import (
    MCP_SESSION_ID_HEADER,
    REQUEST_CANCELLED,
    check_accept_headers,
)
from mcp.shared.dispatcher import coerce_request_id
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.shared.jsonrpc_dispatcher import (
    cancelled_request_id_from_params,
    handler_exception_to_error_data,
)
from mcp.shared.message import SessionMessage
from mcp_types import methods as sdk_methods
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from odoo_mcp_guard.metrics import DIRECT_CALLS

log = logging.getLogger("odoo_mcp_guard.sdk")

# 1. The SDK validates and dispatches this placeholder; the real call travels in RAW_CALL.
PLACEHOLDER_TOOL = "odoo_mcp_guard.guarded_call"
RAW_CALL: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "odoo_mcp_guard_raw_call", default=None
)


async def guard_raw_calls(
    ctx: ServerRequestContext[Any, Any], call_next: CallNext
) -> HandlerResult:
    """Middleware: a ``tools/call`` goes on as the placeholder, its raw params in RAW_CALL."""
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


def raw_call(placeholder_name: str) -> Mapping[str, Any] | None:
    """The raw params of the call being handled, or None if it did not come through
    ``guard_raw_calls`` (it must then be refused, never run unguarded)."""
    raw = RAW_CALL.get()
    return raw if raw is not None and placeholder_name == PLACEHOLDER_TOOL else None


def advertise_list_changed(server: Server[Any]) -> None:
    """2. Make the default initialization options advertise ``tools.listChanged``."""
    create_options = server.create_initialization_options

    def with_list_changed(
        notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        options = notification_options or NotificationOptions(tools_changed=True)
        return create_options(options, *args, **kwargs)

    server.create_initialization_options = with_list_changed  # type: ignore[method-assign]  # no SDK hook


def session_connection(ctx: ServerRequestContext[Any, Any]) -> Any | None:
    """3. The connection behind a 2025-era ``ctx.session`` that can announce list changes."""
    connection = getattr(ctx.session, "_connection", None)
    if connection is not None and hasattr(connection, "send_tool_list_changed"):
        return connection
    return None


# 4. What a client's initialize declares that needs the call's SSE back channel.
_ASKED_CAPABILITIES = ("elicitation", "sampling", "roots")


def json_answers_without_questions(server: Server[Any]) -> bool:
    """4. Sessions whose client cannot be asked anything are answered with one JSON body
    per request. Call after ``server.streamable_http_app``; False (and SSE for every
    session, as before) when the SDK's session manager is not the one this was written for."""
    manager = getattr(server, "_session_manager", None)
    admit = getattr(manager, "_admit_session", None)
    if manager is None or admit is None or getattr(manager, "json_response", True):
        log.warning("the MCP SDK's session manager changed: every answer stays an SSE stream")
        return False

    def admitted(requestor: Any) -> Any:
        transport = admit(requestor)
        handle = getattr(transport, "handle_request", None)
        if transport is not None and handle is not None:
            transport.handle_request = _deciding_on_initialize(transport, handle)
        return transport

    manager._admit_session = admitted  # no SDK hook
    return True


def _deciding_on_initialize(transport: Any, handle: Any) -> Any:
    """The transport's ``handle_request`` for the request opening the session: the
    ``initialize`` it carries is read first (and replayed to the SDK), so that the session's
    form of answer is set before anything is answered; then the original takes over."""

    async def opening(scope: Any, receive: Any, send: Any) -> None:
        del transport.handle_request  # every later request: the SDK's own method
        read: list[Any] = []
        if scope.get("method") == "POST":
            while True:
                message = await receive()
                read.append(message)
                if message.get("type") != "http.request" or not message.get("more_body"):
                    break
            body = b"".join(m.get("body", b"") for m in read if m.get("type") == "http.request")
            if _cannot_be_asked(body):
                transport.is_json_response_enabled = True

        async def replay() -> Any:
            return read.pop(0) if read else await receive()

        await handle(scope, replay, send)

    return opening


def _cannot_be_asked(body: bytes) -> bool:
    """Whether an opening request is an ``initialize`` declaring none of the capabilities
    a server needs to ask the client something."""
    try:
        message = json.loads(body)
    except ValueError:
        return False
    params = message.get("params") if isinstance(message, dict) else None
    caps = params.get("capabilities") if isinstance(params, dict) else None
    return (
        message.get("method") == "initialize"
        and isinstance(caps, dict)
        and all(caps.get(key) is None for key in _ASKED_CAPABILITIES)
    )


# 5. A tools/call sent upstream without the client session's machinery.


def modern_call_envelope(
    session: Any, name: str, arguments: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The params and headers the session would send for this call on a 2026-07-28
    connection, or None when the SDK does not offer them as this was written for."""
    stamp = getattr(session, "_stamp", None)
    if stamp is None:
        return None
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    data: dict[str, Any] = {"method": "tools/call", "params": params}
    opts: dict[str, Any] = {}
    stamp(data, opts)
    headers = opts.get("headers")
    if not isinstance(headers, dict):
        return None
    return data["params"], {str(k): str(v) for k, v in headers.items()}


def read_call_result(session: Any, raw: dict[str, Any]) -> Any:
    """A raw ``tools/call`` result read exactly as the session reads it (pydantic's
    ValidationError when it does not conform to the negotiated version)."""
    from mcp.client import session as sdk_session

    sdk_session._clamp_inbound_ttl(raw)
    version = getattr(session, "_negotiated_version", None) or "2025-11-25"
    with contextlib.suppress(KeyError):  # no schema for this version: as the SDK does
        sdk_methods.validate_server_result("tools/call", version, raw)
    foreign = sdk_session._later_revision_fields("tools/call", version)
    if not foreign.isdisjoint(raw):
        raw = {key: value for key, value in raw.items() if key not in foreign}
    return session._call_tool_adapter.validate_python(raw, by_name=False)


def raw_calls_supported(session: Any) -> bool:
    """Whether this SDK's client session has what ``modern_call_envelope`` and
    ``read_call_result`` use (else every call goes through the session)."""
    from mcp.client import session as sdk_session

    return (
        hasattr(session, "_stamp")
        and hasattr(session, "_call_tool_adapter")
        and hasattr(sdk_session, "_clamp_inbound_ttl")
        and hasattr(sdk_session, "_later_revision_fields")
        and hasattr(sdk_methods, "validate_server_result")
    )


# 6. A stdio upstream's line the SDK cannot parse.

# The message of the error an unparseable answer becomes (proxy.py tells it by this).
UNREADABLE_ANSWER = "odoo-mcp-guard: the upstream's answer is not valid JSON-RPC"


class UnreadableLine(Exception):
    """A line from a stdio upstream that is not valid JSON-RPC and names no request."""

    def __init__(self) -> None:
        super().__init__(
            "the upstream sent a message that is not valid JSON-RPC and names no request"
        )


# The tokens that matter to find a top-level key: strings and brackets (nothing recursive).
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]')
_KEY_END = re.compile(r"\s*:")
_ID_VALUE = re.compile(r'\s*("(?:[^"\\]|\\.)*"|-?\d{1,20})\s*[,}]')


def top_level_id(line: str) -> str | int | None:
    """The ``id`` of a JSON object's top level, read without parsing the rest (which may be
    nested past any parser's limit): a string or an integer, else None."""
    if not line.lstrip().startswith("{"):
        return None
    depth = 0
    for token in _TOKENS.finditer(line):
        text = token.group()
        if text in "{[":
            depth += 1
        elif text in "}]":
            depth -= 1
            if depth <= 0:
                return None
        elif depth == 1 and text == '"id"' and (key := _KEY_END.match(line, token.end())):
            value = _ID_VALUE.match(line, key.end())
            if value is None:
                return None
            try:
                rid = json.loads(value.group(1))
            except ValueError:
                return None
            # a lone surrogate in the id cannot be a request the proxy sent
            if isinstance(rid, str) and not rid.isprintable():
                return None
            return rid
    return None


def _guarded_parse_line(line: str) -> SessionMessage | Exception:
    """The SDK's stdio line parser, never logging the line (see 6 above)."""
    import mcp_types as types

    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except Exception:
        pass
    rid = top_level_id(line)
    if rid is not None:
        error = types.ErrorData(code=types.PARSE_ERROR, message=UNREADABLE_ANSWER)
        return SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=rid, error=error))
    if line.lstrip().startswith("{"):
        return UnreadableLine()
    log.warning("the upstream wrote a line on stdout that is not JSON-RPC: dropped")
    return ValueError("a line that is not JSON-RPC")


def session_closed(error: Any) -> bool:
    """7. Whether the session's error for a call is the SDK's own: the session closed."""
    return (
        getattr(error, "code", None) == -32000  # CONNECTION_CLOSED
        and getattr(error, "message", None) == "Connection closed"
        and getattr(error, "data", None) is None
    )


# What the SDK's HTTP transport says (and logs) of an answer it cannot parse.
_SDK_UNPARSEABLE = ("Failed to parse JSON response", "Failed to parse SSE message")
_SDK_UNPARSEABLE_LOGS = ("Error parsing JSON response", "Error parsing SSE message")


def unreadable_answer(error: Any) -> bool:
    """Whether the session's error for a call (its ``ErrorData``) says the upstream's answer
    could not be parsed; its message may quote the answer, and is not to be shown."""
    message = getattr(error, "message", None)
    return (
        getattr(error, "code", None) == -32700  # PARSE_ERROR
        and isinstance(message, str)
        and (message == UNREADABLE_ANSWER or message.startswith(_SDK_UNPARSEABLE))
    )


class _WithoutTheAnswer(logging.Filter):
    """The SDK's HTTP transport logs an unparseable answer with its exception, which quotes
    the answer: the record keeps its place, not the exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in _SDK_UNPARSEABLE_LOGS:
            record.msg = "an upstream answer could not be read (not shown)"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_HTTP_FILTER = _WithoutTheAnswer()


def guard_unparseable_answers() -> None:
    """6. Install both (once); the SDK's own behaviour is kept, with a warning, where it is
    not the one this was written for."""
    logging.getLogger("mcp.client.streamable_http").addFilter(_HTTP_FILTER)  # a set: once
    _guard_stdio_lines()


def _guard_stdio_lines() -> bool:
    from mcp.client import stdio as sdk_stdio

    current = getattr(sdk_stdio, "_parse_line", None)
    if current is _guarded_parse_line:
        return True
    if current is None:
        log.warning("the MCP SDK's stdio transport changed: unparseable upstream lines are its own")
        return False
    sdk_stdio._parse_line = _guarded_parse_line  # no SDK hook
    return True


# 8. A stdio client's line the SDK cannot parse.

UNREADABLE_REQUEST = "odoo-mcp-guard: the request is not valid JSON-RPC"


def _unreadable_request_answer(error: Exception) -> SessionMessage | None:
    """The error answer for a parse error whose input (pydantic keeps the line) names a
    request, else None."""
    import mcp_types as types

    errors = getattr(error, "errors", None)
    try:
        line = errors()[0].get("input") if callable(errors) else None
    except Exception:  # not the pydantic error this was written for
        return None
    rid = top_level_id(line) if isinstance(line, str) else None
    if rid is None:
        return None
    answer = types.ErrorData(code=types.PARSE_ERROR, message=UNREADABLE_REQUEST)
    return SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=rid, error=answer))


def _unreadable_text(error: Exception) -> tuple[str, str]:
    """What the client sent, as far as the SDK's parse error keeps it (pydantic's input: the
    line, or the JSON it held; else the error's type), and why it could not be read
    (pydantic's first error, its type and message, which quote no input)."""
    errors = getattr(error, "errors", None)
    try:
        first = errors()[0] if callable(errors) else {}
        given, why = first.get("input"), f"{first.get('type')}: {first.get('msg')}"
    except Exception:  # not the pydantic error this was written for
        given, why = None, type(error).__name__
    if isinstance(given, str):
        return given.removesuffix("\n").removesuffix("\r"), why  # the line, as it was sent
    if given is not None:
        with contextlib.suppress(Exception):
            return json.dumps(given, ensure_ascii=False, default=repr), why
    return f"<{type(error).__name__}>", why


def _request_without_id(item: Any) -> bool:
    """A request whose ``id`` is missing or no JSON-RPC id (1.5, null, true, an object): the
    SDK reads it as a notification, of a method no notification has."""
    import mcp_types as types

    message = getattr(item, "message", None)
    return isinstance(message, types.JSONRPCNotification) and not message.method.startswith(
        "notifications/"
    )


@contextlib.asynccontextmanager
async def answering_unreadable_requests(
    read: Any, write: Any, on_unreadable: Callable[[str, str], None] | None = None
) -> AsyncIterator[Any]:
    """8. The stdio server's read stream, relayed: a parse error naming a request is
    answered on ``write`` and not handed on. Every line the SDK could not read (each reaches
    the stream as an exception) is first told to ``on_unreadable`` (the front-end audits it:
    the SDK itself only logs it)."""
    relay_send, relay_read = anyio.create_memory_object_stream[SessionMessage | Exception](0)

    def audit(told: Callable[[Any], tuple[str, str]], item: Any) -> None:
        """Tell ``on_unreadable`` what ``told(item)`` gives; a failure is logged, never silent
        (an event the store cannot take is kept by Guard._audit): the relay goes on."""
        assert on_unreadable is not None
        try:
            on_unreadable(*told(item))
        except Exception as exc:
            log.error("an unreadable request was not audited: %s", type(exc).__name__)

    def without_id(item: Any) -> tuple[str, str]:
        dumped = item.message.model_dump_json(by_alias=True, exclude_none=True)
        return dumped, "a request without a valid id: not run"

    async def relay() -> None:
        async with relay_send:
            async for item in read:
                if _request_without_id(item) and on_unreadable is not None:
                    # read by the SDK as a notification it ignores: dropped, but audited
                    audit(without_id, item)
                    continue
                if isinstance(item, Exception) and on_unreadable is not None:
                    audit(_unreadable_text, item)
                answer = _unreadable_request_answer(item) if isinstance(item, Exception) else None
                if answer is None:
                    await relay_send.send(item)
                    continue
                with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                    await write.send(answer)

    async with anyio.create_task_group() as tg, relay_read:
        tg.start_soon(relay)
        yield relay_read
        tg.cancel_scope.cancel()


# 9. A tools/call of a JSON-answered 2025-era HTTP session, answered without the SDK's server
# session.

DirectAnswer = Callable[[ServerRequestContext[Any, Any], Mapping[str, Any]], Awaitable[Any]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class _NoBackChannel:
    """The request channel of a call answered in JSON: as the SDK's dispatch context of a
    JSON-answered request, nothing can be asked on it and what is told on it is dropped."""

    def __init__(self, request_id: Any):
        self.request_id = request_id
        self.can_send_request = False
        self.cancel_requested = anyio.Event()

    async def notify(self, method: str, params: Any = None, opts: Any = None) -> None:
        log.debug("dropped %s: a direct call has no stream for it", method)

    async def send_raw_request(self, method: str, params: Any = None, opts: Any = None) -> Any:
        raise NoBackChannelError(method)

    async def progress(self, progress: float, total: Any = None, message: Any = None) -> None:
        return None


class DirectCalls:
    """9. The ASGI hook (``SessionLimits`` calls it for a POST on a session, by its owner):
    answers a plain ``tools/call`` of a JSON-answered session itself, or hands the request
    on (the returned ``receive`` replays what was read)."""

    def __init__(self, server: Server[Any], manager: Any, answer: DirectAnswer, path: str):
        self.server = server
        self.manager = manager
        self.answer = answer
        self.path = path
        # session id -> its connection, learnt from the SDK's own requests of the session
        self._connections: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
        # (session id, request id) -> the channel of a direct call in flight, and its scope
        self._in_flight: dict[tuple[str, Any], tuple[_NoBackChannel, anyio.CancelScope]] = {}
        server.middleware.insert(0, self._learn)

    @classmethod
    def install(
        cls, server: Server[Any], answer: DirectAnswer, path: str = "/mcp"
    ) -> DirectCalls | None:
        """Call after ``json_answers_without_questions``; None (every call through the SDK)
        when this SDK is not the one this was written for."""
        manager = getattr(server, "_session_manager", None)
        needed = ("_server_instances", "_session_owners", "max_request_body_size")
        if (
            manager is None
            or not all(hasattr(manager, name) for name in needed)
            or getattr(server, "cache_hints", {}).get("tools/call") is not None
            or not _sdk_internals()
        ):
            log.warning("the MCP SDK changed: every tools/call goes through its server session")
            return None
        return cls(server, manager, answer, path)

    async def _learn(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        connection = getattr(ctx.session, "_connection", None)
        session_id = getattr(connection, "session_id", None)
        if session_id and self._connections.get(session_id) is not connection:
            self._connections[session_id] = connection
        return await call_next(ctx)

    async def __call__(
        self, scope: dict[str, Any], receive: Receive, send: Any, session_id: str
    ) -> Receive | None:
        if scope.get("method") != "POST" or scope.get("path") != self.path:
            return receive
        transport = self.manager._server_instances.get(session_id)
        connection = self._connections.get(session_id)
        if (
            transport is None
            or connection is None
            or not getattr(transport, "is_json_response_enabled", False)
            or transport.is_terminated
            or getattr(transport, "mcp_session_id", None) != session_id
            or not connection.initialize_accepted
            or not isinstance(getattr(transport, "_requests_in_flight", None), int)
            or getattr(transport, "_security", None) is None
        ):
            return receive
        idle = transport.idle_scope
        if idle is not None and idle.cancel_called:
            return receive
        user = scope.get("user")
        requestor = authorization_context(user) if isinstance(user, AuthenticatedUser) else None
        if requestor != self.manager._session_owners.get(session_id):
            return receive
        version = connection.protocol_version
        headers = Headers(scope=scope)
        if (
            headers.getlist("mcp-session-id") != [session_id]  # the one the SDK would read
            or _declared_too_long(headers, self.manager.max_request_body_size)
            or headers.get("mcp-protocol-version") != version
            or version not in HANDSHAKE_PROTOCOL_VERSIONS
            or version in MODERN_PROTOCOL_VERSIONS
        ):
            return receive
        request = Request(scope, receive)
        if await transport._security.validate_request(request, is_post=True) is not None:
            return receive
        if not check_accept_headers(request)[0] or not transport._check_content_type(request):
            return receive
        body, replay = await _read_body(receive, self.manager.max_request_body_size)
        if body is None:
            return replay
        message = _plain_call(body)
        if message is None:
            if session_id in {key[0] for key in self._in_flight}:
                self._cancel(session_id, body)
            return replay
        await self._answer(scope, send, session_id, transport, connection, message, request)
        return None

    def _cancel(self, session_id: str, body: bytes) -> None:
        """A ``notifications/cancelled`` naming a direct call in flight cancels it (as the
        SDK's dispatcher does); the notification still goes to the SDK."""
        try:
            raw = json.loads(body)
        except ValueError:
            return
        if not isinstance(raw, dict) or raw.get("method") != "notifications/cancelled":
            return
        params = raw.get("params")
        rid = cancelled_request_id_from_params(params if isinstance(params, dict) else None)
        flight = (
            self._in_flight.get((session_id, coerce_request_id(rid))) if rid is not None else None
        )
        if flight is not None:
            flight[0].cancel_requested.set()
            flight[1].cancel()

    async def _answer(
        self,
        scope: dict[str, Any],
        send: Any,
        session_id: str,
        transport: Any,
        connection: Any,
        message: Any,
        request: Any,
    ) -> None:
        channel = _NoBackChannel(message.id)
        ctx: ServerRequestContext[Any, Any] = ServerRequestContext(
            session=ServerSession(channel, connection),  # type: ignore[arg-type]
            lifespan_context=getattr(self.manager, "_lifespan_state", None),
            protocol_version=connection.protocol_version,
            method="tools/call",
            params=message.params,
            request_id=message.id,
            request=request,
        )
        key = (session_id, coerce_request_id(message.id))
        answer: Any
        with _holding_session(transport), anyio.CancelScope() as cancel_scope:
            self._in_flight[key] = (channel, cancel_scope)
            try:
                answer = await self._run(ctx, message)
            finally:
                if self._in_flight.get(key, (None,))[0] is channel:
                    del self._in_flight[key]
        if channel.cancel_requested.is_set():  # as the SDK's transport settles it
            error = types.ErrorData(code=REQUEST_CANCELLED, message="Request cancelled")
            answer = types.JSONRPCError(jsonrpc="2.0", id=message.id, error=error)
        response = Response(
            answer.model_dump_json(by_alias=True, exclude_unset=True),
            status_code=200,
            headers={"Content-Type": "application/json", MCP_SESSION_ID_HEADER: session_id},
        )
        await response(scope, _no_more_body, send)

        DIRECT_CALLS.inc()

    async def _run(self, ctx: ServerRequestContext[Any, Any], message: Any) -> Any:
        """The call, and its JSON-RPC answer as the SDK's runner and dispatcher form it."""
        try:
            result = await self.answer(ctx, message.params)
            dumped = sdk_runner._dump_result(result)
            try:
                dumped = sdk_methods.serialize_server_result(
                    "tools/call", ctx.protocol_version, dumped
                )
            except ValidationError:
                log.exception("handler for 'tools/call' returned an invalid result")
                raise MCPError(
                    code=types.INTERNAL_ERROR, message="Handler returned an invalid result"
                ) from None
            return types.JSONRPCResponse(jsonrpc="2.0", id=message.id, result=dumped)
        except Exception as exc:
            error = handler_exception_to_error_data(exc)
            if error is None:
                log.exception("handler for 'tools/call' raised")
                error = types.ErrorData(code=0, message=str(exc))
            return types.JSONRPCError(jsonrpc="2.0", id=message.id, error=error)


def _sdk_internals() -> bool:
    """Whether this SDK has what ``DirectCalls`` uses, as it was written for."""
    return (
        hasattr(sdk_runner, "_dump_result")
        and hasattr(sdk_methods, "serialize_server_result")
        and hasattr(sdk_streamable_http.StreamableHTTPServerTransport, "_check_content_type")
    )


@contextlib.contextmanager
def _holding_session(transport: Any) -> Any:
    """As the SDK's transport holds a session while a request is served: its idle timer
    stopped, and restarted when the last request ends."""
    idle = transport.idle_scope
    timeout = getattr(transport, "_idle_timeout", None)
    if idle is None or timeout is None:
        yield
        return
    transport._requests_in_flight += 1
    idle.deadline = math.inf
    try:
        yield
    finally:
        transport._requests_in_flight -= 1
        if not transport._requests_in_flight:
            idle.deadline = anyio.current_time() + timeout


def _declared_too_long(headers: Headers, limit: int) -> bool:
    """A Content-Length past the SDK's limit (which it refuses before reading)."""
    declared = headers.get("content-length")
    return declared is not None and (not declared.isdigit() or int(declared) > limit)


async def _no_more_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """The request's body (None when past ``limit`` or not whole: the SDK refuses it), and
    a ``receive`` replaying what was read."""
    read: list[dict[str, Any]] = []
    size = 0
    whole = False
    while True:
        message = await receive()
        read.append(message)
        if message.get("type") != "http.request":
            break
        size += len(message.get("body", b""))
        if size > limit:
            break
        if not message.get("more_body"):
            whole = True
            break

    async def replay() -> dict[str, Any]:
        return read.pop(0) if read else await receive()

    if not whole:
        return None, replay
    return b"".join(m.get("body", b"") for m in read), replay


def _plain_call(body: bytes) -> Any | None:
    """The body as the SDK's transport reads it, when it is one ``tools/call`` request with
    params and no ``_meta``; else None."""

    try:
        raw = pydantic_core.from_json(body)
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get("method") != "tools/call":
        return None
    try:
        message = types.jsonrpc_message_adapter.validate_python(raw, by_name=False)
    except ValidationError:
        return None
    params = getattr(message, "params", None)
    if (
        not isinstance(message, types.JSONRPCRequest)
        or not isinstance(params, dict)
        or "_meta" in params
    ):
        return None
    return message
