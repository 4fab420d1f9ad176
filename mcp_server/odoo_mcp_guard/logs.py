"""Logging: to stderr only (on stdio, stdout is the protocol pipe), as text or one JSON
object per line, with the id of the MCP request being handled. Every line passes the one
redaction (policy_core.redact_text): a message or a traceback may quote a URL with its
password, from the guard's code or a library's; and the secrets a front-end knows by value
(the proxy's: the operator's credentials for the upstream, the secrets of calls it forwarded;
``set_known_secrets``) are hidden in it as everywhere else (policy_core.redact_known_text)."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from odoo_mcp_guard.policy_core import redact_known_text, redact_text
from odoo_mcp_guard.settings import env_choice

LEVELS = ("debug", "info", "warning", "error", "critical")

# A short id per MCP request, in every log record made while it is handled.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "odoo_mcp_guard_request_id", default=None
)


# What answers the secrets known by value at the time of a line (None: none are).
_known_secrets: Callable[[], Any] | None = None


def set_known_secrets(known: Callable[[], Any] | None) -> None:
    """Hide, in every line logged from now on, the secrets ``known()`` answers at that time."""
    global _known_secrets
    _known_secrets = known


def redact_line(text: str) -> str:
    """A log line's text redacted: the rule, and the secrets known by value."""
    secrets = _known_secrets() if _known_secrets is not None else ()
    return redact_known_text(text, secrets) if secrets else redact_text(text)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id inside a request."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact_line(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = redact_line(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class RedactedFormatter(logging.Formatter):
    """The text format, redacted as a whole (message and traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_line(super().format(record))


# Libraries that log whole protocol messages (arguments, so secrets) at DEBUG: never below INFO.
CHATTY_LOGGERS = ("mcp", "mcp_types", "httpx", "httpx2", "httpcore", "sse_starlette", "redis")


def setup_logging() -> None:
    """stderr; MCP_GUARD_LOG_LEVEL (WARNING), MCP_GUARD_LOG_FORMAT=text|json (text)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    if env_choice("MCP_GUARD_LOG_FORMAT", "text", ("text", "json")) == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(RedactedFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(env_choice("MCP_GUARD_LOG_LEVEL", "warning", LEVELS).upper())
    for name in CHATTY_LOGGERS:
        library = logging.getLogger(name)
        library.setLevel(max(logging.INFO, root.level))
