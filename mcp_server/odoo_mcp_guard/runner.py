"""Running a front-end: the backend opened, the guard made, stdio or streamable HTTP
served (with the ASGI layers of asgi.py), background tasks alongside, one-line exits."""

from __future__ import annotations

import errno
import getpass
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

import anyio

from odoo_mcp_guard.asgi import (
    BearerPrincipal,
    SessionLimits,
    SessionSettings,
    session_clock,
)
from odoo_mcp_guard.auth import (
    STDIO_PREFIX,
    TOKENS_FILENAME,
    TokenError,
    TokenStore,
    check_principal,
    check_token_principal,
)
from odoo_mcp_guard.backends import Backend, BackendName, open_backend
from odoo_mcp_guard.frontend import Frontend, StartFailure
from odoo_mcp_guard.guard import Guard
from odoo_mcp_guard.logs import setup_logging
from odoo_mcp_guard.metrics import MetricsEndpoint
from odoo_mcp_guard.odoo_rpc import OdooError
from odoo_mcp_guard.sdk_workarounds import (
    DirectCalls,
    answering_unreadable_requests,
    json_answers_without_questions,
)
from odoo_mcp_guard.settings import env_choice
from odoo_mcp_guard.store import StoreError


def stdio_principal() -> str:
    """MCP_GUARD_PRINCIPAL, else ``stdio:<OS user>``; refused (TokenError) when it is not a
    name approvers can be compared with, or is one the guard gives itself ('anonymous',
    'stdio:<user>': the same rule as a token's principal)."""
    configured = os.environ.get("MCP_GUARD_PRINCIPAL", "").strip()
    if configured:
        check_token_principal(configured, "MCP_GUARD_PRINCIPAL")
        return configured
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    check_principal(f"{STDIO_PREFIX}{user}", "the OS user name")
    return f"{STDIO_PREFIX}{user}"


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
    guard = Guard(
        backend.policy,
        backend.store,
        approval_hint=backend.approval_hint,
        rate_limiter=backend.rate_limiter.hit_all if backend.rate_limiter else None,
        kept_dir=backend.data_dir,
    )
    # At exit, audit events the store has not taken yet are written or kept in a file.
    backend.closing.append(guard.save_unwritten)
    return guard


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
    # A session whose client cannot be asked anything gets one JSON body per answer.
    # ...and its plain tools/call answered without the SDK's server session.
    direct = (
        DirectCalls.install(frontend.server, frontend.direct_call)
        if json_answers_without_questions(frontend.server)
        else None
    )
    limits = SessionLimits(app, settings, session_clock(), direct=direct)
    tokens = TokenStore(data_dir / TOKENS_FILENAME)
    # /metrics is answered before the bearer check (unauthenticated, same listener).
    asgi = MetricsEndpoint(BearerPrincipal(limits, tokens, allow_anonymous=allow_anonymous))
    return asgi, limits


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

            _run_or_exit(stdio)
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

            _run_or_exit(http)
    finally:
        if listener is not None:
            listener.close()
        opened.close()


EVENT_LOOP_ENV = "MCP_GUARD_EVENT_LOOP"  # "asyncio": never uvloop, even when installed


def run_loop(main: Callable[[], Awaitable[None]]) -> None:
    """``anyio.run`` on uvloop when it is installed (the ``speed`` extra), else asyncio's
    own loop. uvicorn picks httptools by itself when that is installed."""
    if env_choice(EVENT_LOOP_ENV, "auto", ("auto", "uvloop", "asyncio")) != "asyncio":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            pass
        else:
            anyio.run(main, backend_options={"use_uvloop": True})
            return
    anyio.run(main)


def _start_failure(exc: BaseException) -> StartFailure | None:
    if isinstance(exc, StartFailure):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _start_failure(inner)
            if found is not None:
                return found
    return None


def _run_or_exit(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main``; a front-end that cannot serve at all exits with its one line."""
    try:
        run_loop(main)
    except BaseException as exc:
        failure = _start_failure(exc)
        if failure is None:
            raise
        _exit_with(str(failure))


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
        await frontend.started()
        async with (
            stdio_server() as (raw_read, write),
            answering_unreadable_requests(raw_read, write, frontend.unreadable_message) as read,
        ):
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
        await frontend.started()
        await server.serve(sockets=[listener])
        tg.cancel_scope.cancel()
