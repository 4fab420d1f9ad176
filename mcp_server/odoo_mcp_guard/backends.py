"""Which backend the front-end and the CLI use: the embedded store (local) or the Odoo add-on
(odoo), each as the ports it serves (stores/ports.py). What a backend does not serve is None
here, with the place where it is done instead (``Backend.elsewhere``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from odoo_mcp_guard.engines import DATABASE_URL_ENV, configured_database_url
from odoo_mcp_guard.guard import local_approval_hint
from odoo_mcp_guard.odoo_backend import (
    ODOO_APPROVAL_HINT,
    AuditFlusher,
    AuditSpool,
    OdooApprovals,
    OdooConnections,
    OdooPins,
    OdooPolicySource,
)
from odoo_mcp_guard.odoo_rpc import OdooClient, OdooConfig, OdooError
from odoo_mcp_guard.policy import PolicySource
from odoo_mcp_guard.ratelimit import RedisRateLimiter, configured_rate_limiter
from odoo_mcp_guard.settings import env_number
from odoo_mcp_guard.stores.kept import replay_kept
from odoo_mcp_guard.stores.local import LocalPins, LocalRates, Store, open_database
from odoo_mcp_guard.stores.ports import (
    Decisions,
    GuardStore,
    PolicyPort,
    RequestReader,
    ToolAcceptance,
)

log = logging.getLogger(__name__)

BackendName = Literal["local", "odoo"]
Managed = Literal["approvals", "tools", "connections"]

# The add-on's window actions, as Odoo 18 addresses them: <url>/odoo/action-<xml id>[/<id>].
_ODOO_ACTIONS: dict[Managed, tuple[str, str]] = {
    "approvals": ("approvals are decided in Odoo", "mcp_guard.mcp_approval_request_action"),
    "tools": ("tool definitions are accepted in Odoo", "mcp_guard.mcp_tool_action"),
    "connections": ("connections are managed in Odoo", "mcp_guard.mcp_connection_action"),
}


@dataclass
class Backend:
    name: BackendName
    policy: PolicyPort
    store: GuardStore
    approval_hint: str
    # The operator's side (the CLI): reading requests is served by both backends; deciding
    # them, accepting a tool's changed definition and importing connections only where they
    # are kept locally (None: see ``elsewhere``).
    requests: RequestReader
    decisions: Decisions | None
    acceptance: ToolAcceptance | None
    imports_connections: bool
    odoo_url: str | None = None
    background: list[AuditFlusher] = field(default_factory=list)
    # Shared rate-limit counters ($MCP_GUARD_REDIS_URL); None: the store counts.
    rate_limiter: RedisRateLimiter | None = None
    # Where audit events the store cannot take at exit are kept (stores/kept.py).
    data_dir: Path | None = None
    # Run at close, before the store is closed (the guard's audit events not written yet).
    closing: list[Callable[[], None]] = field(default_factory=list)
    _started: bool = field(default=False, repr=False)

    def elsewhere(self, what: Managed, record_id: int | None = None) -> str:
        """One line: where ``what`` is done when this backend does not do it here."""
        text, action = _ODOO_ACTIONS[what]
        record = f"/{record_id}" if record_id is not None else ""
        return f"{text}: {self.odoo_url}/odoo/action-{action}{record}"

    def start(self) -> None:
        self.policy.start()  # both sources re-read their policy off the event loop
        for service in self.background:
            service.start()
        self._started = True

    def close(self) -> None:
        for hook in self.closing:
            hook()
        self.policy.stop()
        if self._started:
            for service in self.background:
                service.stop()
        if self.rate_limiter is not None:
            self.rate_limiter.close()
        self.store.close()


def odoo_config(config_file: Path | None) -> OdooConfig | None:
    if config_file is not None:
        return OdooConfig.from_file(config_file)
    return OdooConfig.from_env()


def chosen_backend(
    backend: BackendName | None, config_file: Path | None
) -> tuple[BackendName, OdooConfig | None]:
    """``backend`` None means: odoo when Odoo is configured (ODOO_URL or a config file)."""
    config = odoo_config(config_file)
    chosen: BackendName = backend or ("odoo" if config is not None else "local")
    if chosen == "odoo" and config is None:
        raise OdooError(
            "protocol",
            "--backend odoo needs ODOO_URL, ODOO_DB, ODOO_USERNAME and "
            "ODOO_API_KEY (or a --odoo-config file)",
        )
    return chosen, config


def local_backend(
    store: Store, data_dir: Path, policy_file: Path | None, database_url: str | None
) -> Backend:
    """The embedded store: every port, and the operator's decisions, on this host."""
    return Backend(
        "local",
        PolicySource(policy_file),
        store,
        local_approval_hint(data_dir, database_url, policy_file),
        requests=store,
        decisions=store,
        acceptance=store,
        imports_connections=True,
        rate_limiter=configured_rate_limiter(store.hit_rate_limits),
        data_dir=data_dir,
    )


def odoo_backend(config: OdooConfig, data_dir: Path, policy_file: Path | None) -> Backend:
    """Odoo's ports; the audit spool, pinned tools and rate counters in the local SQLite file.
    Requests are decided, tool definitions accepted and connections managed in Odoo."""
    if policy_file is not None:
        log.warning("with the Odoo backend the policy comes from Odoo; %s is ignored", policy_file)
    client = OdooClient(config)
    poll = env_number("MCP_GUARD_POLICY_POLL", 3.0, low=0, high=3600)
    db = open_database(data_dir)  # creates the directory and file with safe modes
    connections = OdooConnections(client, connections_ttl=poll)
    spool = AuditSpool(db, client)
    replay_kept(data_dir, spool.append_audit)  # events an earlier run could not store
    approvals = OdooApprovals(client, db, spool, connections)
    rates = LocalRates(db)
    store = GuardStore(
        connections=connections,
        approvals=approvals,
        audit=spool,
        pins=OdooPins(client, LocalPins(db)),
        rates=rates,
        close=db.close,
        engine=db.engine,
    )
    policy = OdooPolicySource(
        client,
        poll_interval=poll,
        max_age=env_number("MCP_GUARD_POLICY_MAX_AGE", 60.0, low=0, high=86400),
    )
    flush = env_number("MCP_GUARD_AUDIT_FLUSH", 1.0, low=0, high=3600)
    flusher = AuditFlusher(spool, interval=flush)
    return Backend(
        "odoo",
        policy,
        store,
        ODOO_APPROVAL_HINT,
        requests=approvals,
        decisions=None,
        acceptance=None,
        imports_connections=False,
        odoo_url=config.url.rstrip("/"),
        background=[flusher],
        rate_limiter=configured_rate_limiter(rates.hit_rate_limits),
        data_dir=data_dir,
    )


def open_backend(
    data_dir: Path,
    policy_file: Path | None,
    *,
    backend: BackendName | None = None,
    config_file: Path | None = None,
    database_url: str | None = None,
) -> Backend:
    """The configured backend (``chosen_backend``), for the front-end.

    The local backend keeps its store in PostgreSQL when ``database_url`` (default:
    $MCP_GUARD_DATABASE_URL) is set, else in the SQLite file of ``data_dir``. The Odoo
    backend's local part (audit spool, rate-limit counters) stays in SQLite per replica:
    Odoo is its shared store. With $MCP_GUARD_REDIS_URL set, rate-limit counters are shared
    in Redis by every replica (ratelimit.py), whichever the backend."""
    chosen, config = chosen_backend(backend, config_file)
    database_url = database_url or configured_database_url()
    if config is None or chosen == "local":
        store = Store.open(data_dir, database_url)
        return local_backend(store, data_dir, policy_file, database_url)
    if database_url:
        log.warning(
            "with the Odoo backend Odoo is the shared store; %s is not used (the audit spool "
            "and rate-limit counters stay in the local SQLite file)",
            DATABASE_URL_ENV,
        )
    return odoo_backend(config, data_dir, policy_file)
