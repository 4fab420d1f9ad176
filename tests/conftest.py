"""Fixtures and hooks only. The helpers the tests share live in ``tests/support``."""

from __future__ import annotations

import pytest

# Transitional: tests written before the helpers moved to ``support.guard`` still import them
# from here. Import from ``support.guard``; this list gets nothing new and goes away.
from support.guard import (  # noqa: F401
    INITIALIZE,
    INITIALIZED,
    LEGACY_VERSION,
    MODES,
    RAW_HEADERS,
    REPO,
    SRC,
    UPSTREAM,
    HttpGuard,
    RawHttpSession,
    RawStdioSession,
    add_token,
    aliases,
    approve,
    audit_count,
    connect_args,
    connection_row,
    db_path,
    free_port,
    guard_command,
    guard_env,
    http_client,
    http_guard,
    http_process,
    move_expiry_to_the_past,
    parse_http_body,
    policy,
    proxy_args,
    proxy_stdio_client,
    query,
    reject,
    request_state,
    run_cli,
    serve_args,
    stdio_client,
    text_of,
    upstream_calls,
    upstream_command,
    write_policy,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
