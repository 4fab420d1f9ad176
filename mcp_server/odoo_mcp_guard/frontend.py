"""The MCP plumbing shared by the two front-ends (``serve`` and ``proxy``).

Built on the SDK's low-level ``Server``. Every ``tools/call`` reaches ``handle_call`` as
it arrived on the wire (sdk_workarounds.py), and every call the front-end may run goes
through ``Guard.call``: the front-end is the guard's ``Served`` (what it serves, argument
problems, definition changes, readiness, what a call would also do), the order and the
audit are the guard's.

Identity: on stdio the principal is ``MCP_GUARD_PRINCIPAL`` (else ``stdio:<user>``); on
streamable HTTP it is the owner of the bearer token, checked by the ASGI layer of asgi.py
before the SDK sees the request. Running (transports, backends): runner.py. Logging:
logs.py.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from odoo_mcp_guard import __version__
from odoo_mcp_guard.asgi import PRINCIPAL_SCOPE_KEY
from odoo_mcp_guard.catalog import Classification, classify_definition, definition_hash
from odoo_mcp_guard.guard import Continuation, Guard, GuardRefusal, Refusal, unavailable
from odoo_mcp_guard.logs import REQUEST_ID
from odoo_mcp_guard.metrics import CALL_SECONDS, tool_label
from odoo_mcp_guard.names import canonical_json, check_tool_name
from odoo_mcp_guard.sdk_workarounds import (
    advertise_list_changed,
    guard_raw_calls,
    raw_call,
    session_connection,
)
from odoo_mcp_guard.store import GuardStore, PinnedTool

log = logging.getLogger("odoo_mcp_guard.frontend")

POLICY_POLL_SECONDS = 0.5
CATALOG_RETRY_SECONDS = 5.0

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


class StartFailure(Exception):
    """The front-end cannot serve at all; the message is the one line the operator sees."""


class Frontend:
    """A guarded MCP server: identity, the tools/call path into the guard, list_changed
    fan-out, the tool catalog. It is the guard's ``Served``.

    Subclasses provide ``_list_tools``, ``_visible_names``, ``handle_call``, ``served``,
    ``argument_problem`` and ``served_definitions``; they may refine ``definition_problem``,
    ``readiness_problem`` and ``also_governed_by``."""

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
        advertise_list_changed(self.server)

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

    # -- what the guard asks (guard.Served) ----------------------------------------------

    def served(self) -> Collection[str]:
        raise NotImplementedError

    def argument_problem(self, tool: str, arguments: dict[str, Any]) -> str | None:
        raise NotImplementedError

    async def definition_problem(self, tool: str) -> Refusal | None:
        unreported = self.store.catalog_unreported(self.server_id)
        if unreported is not None:
            # Odoo has not seen this catalog: a changed definition could not be caught.
            return unavailable(unreported)
        return None

    async def readiness_problem(self, tool: str) -> Refusal | None:
        return None

    def outage(self) -> str | None:
        return None

    async def started(self) -> None:
        """Awaited once before anything is served: raises ``StartFailure`` when the
        front-end cannot serve at all (a proxy whose upstream cannot start)."""

    @asynccontextmanager
    async def also_governed_by(
        self, tool: str, arguments: dict[str, Any]
    ) -> AsyncIterator[Sequence[str]]:
        yield ()

    def at_stake(self, tool: str) -> dict[str, Any] | None:
        return None

    async def connection_binding(self, tool: str, arguments: dict[str, Any]) -> str | None:
        return None

    # -- identity ------------------------------------------------------------------------

    def unreadable_message(self, line: str, why: str) -> None:
        """A stdio client's line that is not JSON-RPC (sdk_workarounds 8): audited under the
        stdio principal, by the guard."""
        self.guard.unreadable_message(self.stdio_principal or "stdio:-", line, why)

    def _principal(self, ctx: ServerRequestContext[Any, Any]) -> str | None:
        request = ctx.request
        if request is not None:
            scope = getattr(request, "scope", None)
            principal = scope.get(PRINCIPAL_SCOPE_KEY) if isinstance(scope, Mapping) else None
            return principal if isinstance(principal, str) and principal else None
        return self.stdio_principal

    def _remember_session(self, ctx: ServerRequestContext[Any, Any]) -> None:
        """Keep (weakly) the connection of a 2025-era client, to tell it of list changes."""
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return
        connection = session_connection(ctx)
        if connection is not None:
            self._legacy_sessions.add(connection)

    # -- tools/call ----------------------------------------------------------------------

    async def _middleware(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        request_id = REQUEST_ID.set(uuid.uuid4().hex[:16])
        try:
            return await guard_raw_calls(ctx, call_next)
        finally:
            REQUEST_ID.reset(request_id)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> CallAnswer:
        """The SDK's handler: the raw call as workaround 1 keeps it."""
        return await self.answer_call(ctx, raw_call(params.name))

    async def direct_call(
        self, ctx: ServerRequestContext[Any, Any], raw: Mapping[str, Any]
    ) -> CallAnswer:
        """A call answered without the SDK's server session (sdk_workarounds 9): the
        request's id for the logs, as ``_middleware`` gives it, then the same way in."""
        request_id = REQUEST_ID.set(uuid.uuid4().hex[:16])
        try:
            return await self.answer_call(ctx, raw)
        finally:
            REQUEST_ID.reset(request_id)

    async def answer_call(
        self, ctx: ServerRequestContext[Any, Any], raw: Mapping[str, Any] | None
    ) -> CallAnswer:
        """Every ``tools/call``, whichever way it came (the SDK's handler or workaround 9):
        its raw params (None: it did not pass the guard's way in, refused), the principal
        from the bearer scope, ``handle_call`` (into ``Guard.call``), the call's metric."""
        if raw is None:
            # Not reached through the middleware: refuse rather than run unguarded.
            return error_result("This call did not pass the guard and was refused.")
        self._remember_session(ctx)
        principal = self._principal(ctx)
        if principal is None:
            return error_result("The caller is not authenticated; the call was refused.")
        name = raw.get("name")
        served = isinstance(name, str) and check_tool_name(name) is None and name in self.served()
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
        execute: Callable[[dict[str, Any]], Awaitable[CallAnswer]],
        continuation: Continuation | None = None,
    ) -> CallAnswer:
        """``Guard.call`` with this front-end as what is served; its refusals and the
        tool's failures turned into error results."""
        try:
            return await self.guard.call(
                self, principal, name, arguments, execute=execute, continuation=continuation
            )
        except GuardRefusal as refusal:
            return error_result(refusal.message, refusal.structured)
        except ToolFailure as failure:
            return error_result(str(failure))

    # -- the tool catalog ----------------------------------------------------------------

    def served_definitions(self) -> dict[str, dict[str, Any]]:
        """The definitions of the tools this front-end serves now, by name."""
        raise NotImplementedError

    async def catalog_applied(self, pins: dict[str, PinnedTool]) -> None:
        """Called with the pins of the served tools after each ``publish_catalog``."""

    async def publish_catalog(self) -> dict[str, PinnedTool]:
        """Record the served tools in the catalog (the store's pins; with Odoo,
        ``report_catalog``) and classify each as it is listed (its pinned definition)."""
        # The epoch this report answers: read before it, so a change made while the report is
        # on its way (a Manager's acceptance) is reported again, not taken as seen.
        epoch = self.guard.policy.catalog_epoch
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
        self._catalog_epoch = epoch
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
