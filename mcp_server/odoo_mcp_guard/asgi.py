"""The ASGI layers in front of the SDK's streamable-HTTP app: the bearer token → principal
(401 before the SDK sees the request), JSON-RPC batches refused, and limits on the
2025-era sessions a principal may keep open."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from odoo_mcp_guard.auth import ANONYMOUS_PRINCIPAL, TokenError, TokenStore

log = logging.getLogger("odoo_mcp_guard.asgi")

# Where the bearer layer leaves the principal, for the front-end to read (Frontend._principal).
PRINCIPAL_SCOPE_KEY = "odoo_mcp_guard.principal"


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
            principal = ANONYMOUS_PRINCIPAL
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


# sdk_workarounds.DirectCalls: (scope, receive, send, session id) -> None when it answered the
# request, else the receive to hand it on with (replaying what it read).
DirectHook = Callable[
    [dict[str, Any], Callable[[], Awaitable[Any]], Any, str],
    Awaitable[Callable[[], Awaitable[Any]] | None],
]


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
        direct: DirectHook | None = None,
    ):
        self.app = app
        self.settings = settings
        self.clock = clock
        self.direct = direct
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
            owner = scope.get(PRINCIPAL_SCOPE_KEY) == session.principal
            if self.direct is not None and owner and scope.get("method") == "POST":
                # sdk_workarounds 9: a plain tools/call answered here, else handed on
                handed = await self.direct(scope, receive, watch, session_id)
                if handed is None:
                    return
                receive = handed
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
