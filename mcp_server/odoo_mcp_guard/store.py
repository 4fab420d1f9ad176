"""The guard's store, as its callers import it: the models (stores/models.py), the ports
(stores/ports.py), the local backend's ``Store`` (stores/local.py), and where the data lives."""

from __future__ import annotations

import os
from pathlib import Path

from odoo_mcp_guard.engines import StoreError
from odoo_mcp_guard.stores.local import DB_FILENAME, Store, open_database
from odoo_mcp_guard.stores.models import (
    ApprovalError,
    ApprovalRequest,
    AuditEvent,
    Connection,
    Outcome,
    PinnedTool,
    RequestState,
    data_to_json,
    utc_iso,
)
from odoo_mcp_guard.stores.ports import GuardStore
from odoo_mcp_guard.stores.schema import MIGRATIONS

__all__ = [
    "DB_FILENAME",
    "MIGRATIONS",
    "ApprovalError",
    "ApprovalRequest",
    "AuditEvent",
    "Connection",
    "GuardStore",
    "Outcome",
    "PinnedTool",
    "RequestState",
    "Store",
    "StoreError",
    "builtin_data_dir",
    "data_to_json",
    "default_data_dir",
    "open_database",
    "utc_iso",
]


def builtin_data_dir() -> Path:
    """The data directory when nothing names one: what a shell on this host finds too."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "odoo-mcp-guard"


def default_data_dir() -> Path:
    configured = os.environ.get("MCP_GUARD_DATA_DIR")
    if configured:
        return Path(configured).expanduser()
    return builtin_data_dir()
