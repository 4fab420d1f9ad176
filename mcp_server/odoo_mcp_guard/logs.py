"""Logging: to stderr only (on stdio, stdout is the protocol pipe), as text or one JSON
object per line, with the id of the MCP request being handled. Every line passes the one
redaction (policy_core.redact_text): a message or a traceback may quote a URL with its
password, from the guard's code or a library's."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

from odoo_mcp_guard.policy_core import redact_text
from odoo_mcp_guard.settings import env_choice

LEVELS = ("debug", "info", "warning", "error", "critical")

# A short id per MCP request, in every log record made while it is handled.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "odoo_mcp_guard_request_id", default=None
)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id inside a request."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class RedactedFormatter(logging.Formatter):
    """The text format, redacted as a whole (message and traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


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
