"""The schema of the guard's database, as versioned migrations (engines.Database applies
them). Written in SQLite's dialect with upper-case type names; engines.PostgresEngine.ddl
translates them."""

from __future__ import annotations

_SCHEMA_V1 = """
CREATE TABLE connections (
    alias TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    db TEXT NOT NULL,
    username TEXT NOT NULL,
    password TEXT,
    api_key TEXT,
    protocol TEXT NOT NULL,
    verify_ssl INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE approval_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ref TEXT UNIQUE,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    arguments_hash TEXT NOT NULL,
    principal TEXT NOT NULL,
    reason TEXT,
    state TEXT NOT NULL CHECK (state IN
        ('pending','approved','rejected','cancelled','expired','done','failed')),
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    expires_in INTEGER NOT NULL,
    decided_by TEXT,
    decided_at REAL,
    decision_note TEXT,
    consumed_at REAL,
    result_note TEXT,
    reported INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX approval_requests_call ON approval_requests (tool, arguments_hash, principal, state);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    time TEXT NOT NULL,
    principal TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments_hash TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    request_ref TEXT
);
CREATE TABLE rate_events (
    principal TEXT NOT NULL,
    tool TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX rate_events_key ON rate_events (principal, tool, at);
"""

# v2: the Odoo backend keeps its audit spool in ``audit`` (``exported`` once Odoo stored it) and
# remembers which Odoo request answers which call.
_SCHEMA_V2 = """
ALTER TABLE audit ADD COLUMN exported INTEGER NOT NULL DEFAULT 0;
CREATE INDEX audit_unexported ON audit (exported, id);
CREATE TABLE remote_requests (
    remote_id INTEGER PRIMARY KEY,
    ref TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments_hash TEXT NOT NULL,
    principal TEXT NOT NULL,
    reported INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX remote_requests_call ON remote_requests (tool, arguments_hash, principal);
"""

# v3: tool-definition pinning for the proxy (both backends keep it here): the accepted
# definition of each upstream tool, and a changed one waiting for a Manager's acceptance.
_SCHEMA_V3 = """
CREATE TABLE pinned_tools (
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    definition TEXT NOT NULL,
    first_seen REAL NOT NULL,
    accepted_at REAL NOT NULL,
    accepted_by TEXT,
    pending_hash TEXT,
    pending_definition TEXT,
    pending_since REAL,
    PRIMARY KEY (server, tool)
);
"""

# v4: approver routing and quorum (issue 14): a request carries the approver group and quorum
# of the rule it was filed under, and the hash of that rule (policy_core.approval_terms); each
# approval is one row of ``approval_votes`` (one per approver; the request is approved at quorum).
_SCHEMA_V4 = """
ALTER TABLE approval_requests ADD COLUMN approver_group TEXT;
ALTER TABLE approval_requests ADD COLUMN quorum INTEGER NOT NULL DEFAULT 1;
ALTER TABLE approval_requests ADD COLUMN rule_binding TEXT;
CREATE TABLE approval_votes (
    request_id INTEGER NOT NULL,
    approver TEXT NOT NULL,
    at REAL NOT NULL,
    note TEXT,
    PRIMARY KEY (request_id, approver)
);
"""

# v5: a request also carries the bindings of the other rules its call passes, in order (a
# replacement of a connection: odoo_disconnect's), space-separated; NULL (filed before) reads
# as none, so a replacement filed before v5 reads as filed under a changed rule (fail closed).
_SCHEMA_V5 = """
ALTER TABLE approval_requests ADD COLUMN also_bindings TEXT;
"""

# v6: what a request's call would replace or remove, as the front-end knew it when the request
# was filed (JSON, redacted): the proxy's view of an upstream's connection, which the guard's
# own store does not hold. NULL: nothing recorded (``serve`` shows its connection as it is now).
_SCHEMA_V6 = """
ALTER TABLE approval_requests ADD COLUMN at_stake TEXT;
"""

# v7: a request is bound to the connection it was filed for, not to its alias (invariant 14): the
# identity of the connection its call removes or replaces, as it was when filed ('' : none;
# NULL: filed before v7, which binds nothing and so no longer answers for a call that removes
# or replaces one). A connection row gets a revision that changes on every replacement; the
# Odoo backend keeps the binding of each request it filed in ``remote_requests``.
_SCHEMA_V7 = """
ALTER TABLE connections ADD COLUMN revision TEXT;
ALTER TABLE approval_requests ADD COLUMN connection_binding TEXT;
ALTER TABLE remote_requests ADD COLUMN connection_binding TEXT;
"""

# v8: four-eyes by person is decided on the persons in force when it counted (attack 13): the
# requester's persons as the policy in force said when the guard filed the request (JSON list of
# identity.listed_form names; '[]': the policy declared ``people`` and none listed the principal,
# so nobody can decide it; NULL: no ``people``, or filed before v8), and each vote's approver's
# persons when the vote was given (NULL: none declared).
_SCHEMA_V8 = """
ALTER TABLE approval_requests ADD COLUMN requester_persons TEXT;
ALTER TABLE approval_votes ADD COLUMN persons TEXT;
"""

# v9: who may decide a request is frozen on it when the guard files it (attack 14): the approver
# group's members (identity.principal_key) and the entries of ``people`` that say who they are
# (JSON, identity.frozen_electorate), so that a --policy given at approval can neither add a
# name to the group nor split one person into two votes of a quorum. NULL: nothing frozen (a
# request filed through the store by a caller that names no group). A request pending when the
# store is upgraded gets a value that names no electorate: nobody decides it (fail closed), and
# the agent's next call files a new one.
_SCHEMA_V9 = """
ALTER TABLE approval_requests ADD COLUMN electorate TEXT;
UPDATE approval_requests SET electorate = 'filed before v9' WHERE state = 'pending'
"""

# v10: a request is bound to the server it was filed on (outside round 17, F5), as to its tool,
# arguments hash and principal (invariant 3): the proxy's server name (--server-name, else the
# one derived from the upstream), ``serve``'s own name. Two front-ends sharing one store each
# find, consume and withdraw only their own server's requests. NULL: filed before v10, which
# binds no server and so answers for no call (fail closed: the agent's next call files a new
# request, bound to its server); ``approvals show``/``list`` say so. The Odoo backend keeps the
# server of each request it filed in ``remote_requests`` likewise.
_SCHEMA_V10 = """
ALTER TABLE approval_requests ADD COLUMN server TEXT;
ALTER TABLE remote_requests ADD COLUMN server TEXT;
"""

# Versioned migrations, applied in order in one transaction (SQLite: PRAGMA user_version;
# PostgreSQL: the guard_schema_version table, under an advisory lock). Written in SQLite's
# dialect with upper-case type names; engines.PostgresEngine.ddl translates them.
MIGRATIONS: list[str] = [
    _SCHEMA_V1,
    _SCHEMA_V2,
    _SCHEMA_V3,
    _SCHEMA_V4,
    _SCHEMA_V5,
    _SCHEMA_V6,
    _SCHEMA_V7,
    _SCHEMA_V8,
    _SCHEMA_V9,
    _SCHEMA_V10,
]
