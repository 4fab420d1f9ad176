"""Which backend the front-end uses: the embedded store (local) or the Odoo add-on (odoo)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from odoo_mcp_guard.engines import DATABASE_URL_ENV, configured_database_url
from odoo_mcp_guard.guard import local_approval_hint
from odoo_mcp_guard.odoo_backend import (
    ODOO_APPROVAL_HINT,
    AuditFlusher,
    OdooPolicySource,
    OdooStore,
)
from odoo_mcp_guard.odoo_rpc import OdooClient, OdooConfig, OdooError
from odoo_mcp_guard.policy import PolicySource
from odoo_mcp_guard.ratelimit import RedisRateLimiter, configured_rate_limiter
from odoo_mcp_guard.store import Store

log = logging.getLogger(__name__)

BackendName = Literal["local", "odoo"]


@dataclass
class Backend:
    name: BackendName
    policy: PolicySource | OdooPolicySource
    store: Store
    approval_hint: str
    flusher: AuditFlusher | None = None
    # Shared rate-limit counters ($MCP_GUARD_REDIS_URL); None: the store counts.
    rate_limiter: RedisRateLimiter | None = None
    _started: bool = field(default=False, repr=False)

    def start(self) -> None:
        self.policy.start()  # both sources re-read their policy off the event loop
        if self.flusher is not None:
            self.flusher.start()
        self._started = True

    def close(self) -> None:
        self.policy.stop()
        if self.flusher is not None and self._started:
            self.flusher.stop()
        if self.rate_limiter is not None:
            self.rate_limiter.close()
        self.store.close()


def odoo_config(config_file: Path | None) -> OdooConfig | None:
    if config_file is not None:
        return OdooConfig.from_file(config_file)
    return OdooConfig.from_env()


def open_backend(
    data_dir: Path,
    policy_file: Path | None,
    *,
    backend: BackendName | None = None,
    config_file: Path | None = None,
    database_url: str | None = None,
) -> Backend:
    """``backend`` None means: odoo when Odoo is configured (ODOO_URL or a config file).

    The local backend keeps its store in PostgreSQL when ``database_url`` (default:
    $MCP_GUARD_DATABASE_URL) is set, else in the SQLite file of ``data_dir``. The Odoo
    backend's local part (audit spool, rate-limit counters) stays in SQLite per replica:
    Odoo is its shared store. With $MCP_GUARD_REDIS_URL set, rate-limit counters are
    shared in Redis by every replica (ratelimit.py), whichever the backend."""
    config = odoo_config(config_file)
    chosen: BackendName = backend or ("odoo" if config is not None else "local")
    database_url = database_url or configured_database_url()
    if chosen == "local":
        store = Store.open(data_dir, database_url)
        return Backend(
            "local",
            PolicySource(policy_file),
            store,
            local_approval_hint(data_dir, database_url),
            rate_limiter=configured_rate_limiter(store.hit_rate_limits),
        )
    if config is None:
        raise OdooError(
            "protocol",
            "--backend odoo needs ODOO_URL, ODOO_DB, ODOO_USERNAME and "
            "ODOO_API_KEY (or a --odoo-config file)",
        )
    if policy_file is not None:
        log.warning("with the Odoo backend the policy comes from Odoo; %s is ignored", policy_file)
    if database_url:
        log.warning(
            "with the Odoo backend Odoo is the shared store; %s is not used (the audit spool "
            "and rate-limit counters stay in the local SQLite file)",
            DATABASE_URL_ENV,
        )
    client = OdooClient(config)
    poll = float(os.environ.get("MCP_GUARD_POLICY_POLL", "3"))
    store = OdooStore.open_with(data_dir, client, connections_ttl=poll)
    policy = OdooPolicySource(
        client,
        poll_interval=poll,
        max_age=float(os.environ.get("MCP_GUARD_POLICY_MAX_AGE", "60")),
    )
    flusher = AuditFlusher(store, interval=float(os.environ.get("MCP_GUARD_AUDIT_FLUSH", "1")))
    limiter = configured_rate_limiter(store.hit_rate_limits)
    return Backend("odoo", policy, store, ODOO_APPROVAL_HINT, flusher, limiter)
