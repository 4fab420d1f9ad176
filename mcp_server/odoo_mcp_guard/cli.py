"""The ``odoo-mcp-guard`` command: serve, and the operator's tools (policy, approvals,
connections, audit, tokens) on the configured backend, as the server opens it: the embedded
store, or Odoo when ODOO_URL (or --odoo-config) is set."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from odoo_mcp_guard import __version__
from odoo_mcp_guard.auth import TOKENS_FILENAME, TokenError, TokenStore
from odoo_mcp_guard.backends import Backend, chosen_backend, local_backend, odoo_backend
from odoo_mcp_guard.catalog import classify_definition
from odoo_mcp_guard.data_tools import DATA_TOOLS
from odoo_mcp_guard.engines import (
    DATABASE_URL_ENV,
    PostgresEngine,
    postgres_store_exists,
    sqlite_store_exists,
)
from odoo_mcp_guard.files import FileReadError, read_regular_file
from odoo_mcp_guard.names import check_tool_name, json_shown, server_name_problem, shown
from odoo_mcp_guard.odoo_rpc import OdooError
from odoo_mcp_guard.policy import PolicyError, PolicySource, PolicyUnavailable, load_policy_file
from odoo_mcp_guard.policy_core import DEFAULT_APPROVER_GROUP
from odoo_mcp_guard.settings import SettingError, env_choice, url_problem
from odoo_mcp_guard.store import (
    DB_FILENAME,
    ApprovalError,
    ApprovalRequest,
    Connection,
    PinnedTool,
    Store,
    StoreError,
    data_to_json,
    default_data_dir,
)
from odoo_mcp_guard.stores.ports import Decisions

PROG = "odoo-mcp-guard"
POLICY_ENV = "MCP_GUARD_POLICY"
MAX_IMPORT_BYTES = 4 << 20  # a connections export is a few kilobytes


class UsageError(Exception):
    """A user mistake: reported as one line on stderr, exit status 2."""


def _print_json(value: Any) -> None:
    # Names and connection fields come from agents: nothing in them may act on a terminal.
    print(json_shown(data_to_json(value)))


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _store(args: argparse.Namespace) -> Store:
    """The store, created if it does not exist yet (for commands that write)."""
    return Store.open(args.data_dir, args.database_url)


def _store_location(args: argparse.Namespace) -> str:
    """Where the store is looked for, as it may be shown (a database URL without password)."""
    if args.database_url:
        return PostgresEngine(args.database_url).location
    return str(args.data_dir)


def _existing_store(args: argparse.Namespace, *, note: bool = True) -> Store | None:
    """The store if there is one; None (and a note on stderr) when this data directory or
    database has none yet: a read never creates a store (no file, no table), and says where
    it looked."""
    if args.database_url:
        exists = postgres_store_exists(PostgresEngine(args.database_url))
        why = "the guard has not run with this database; nothing was created in it"
    else:
        path = args.data_dir / DB_FILENAME
        try:
            exists = sqlite_store_exists(path)
        except OSError as exc:
            raise StoreError(
                f"cannot read the data directory {args.data_dir}: {exc.strerror}"
            ) from None
        why = (
            "the guard has not run with this data directory; give --data-dir DIR or set "
            "MCP_GUARD_DATA_DIR"
        )
    if not exists:
        if note:
            print(
                f"{PROG}: note: no guard store in {_store_location(args)} ({why})", file=sys.stderr
            )
        return None
    return Store.open(args.data_dir, args.database_url)


def _odoo_config_path(args: argparse.Namespace) -> Path | None:
    return Path(args.odoo_config).expanduser() if args.odoo_config else None


def _backend(
    args: argparse.Namespace, *, create: bool = False, note: bool = True
) -> Backend | None:
    """The backend the server would use with the same settings (--backend, ODOO_URL or
    --odoo-config, --data-dir, --database-url). Local: the store, created for a command that
    writes; None when a read finds none (``_existing_store`` says where it looked)."""
    name, config = chosen_backend(args.backend, _odoo_config_path(args))
    if config is None or name == "local":
        store = _store(args) if create else _existing_store(args, note=note)
        if store is None:
            return None
        return local_backend(store, args.data_dir, _policy_path(args), args.database_url)
    # The policy comes from Odoo: only a --policy given here is worth the warning.
    given = getattr(args, "policy", None)
    return odoo_backend(config, args.data_dir, Path(given).expanduser() if given else None)


def _policy_path(args: argparse.Namespace) -> Path | None:
    given = getattr(args, "policy", None)
    if given:
        path = Path(given).expanduser()
        # A path typed on the command line that is not there is a mistake, not "no rules yet".
        if not path.is_file():
            raise UsageError(f"--policy {given}: no such file")
        return path
    from_env = os.environ.get(POLICY_ENV)
    return Path(from_env).expanduser() if from_env else None


# --- serve ---------------------------------------------------------------------------


def _frontend_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What serve and proxy take alike from the command line."""
    return {
        "transport": args.transport,
        "host": args.host,
        "port": args.port,
        "policy_file": _policy_path(args),
        "data_dir": args.data_dir,
        "allow_anonymous": args.allow_anonymous,
        "backend": args.backend,
        "odoo_config": _odoo_config_path(args),
    }


def cmd_serve(args: argparse.Namespace) -> int:
    from odoo_mcp_guard.server import run_server

    run_server(**_frontend_settings(args))
    return 0


# --- proxy ---------------------------------------------------------------------------


def cmd_proxy(args: argparse.Namespace) -> int:
    from odoo_mcp_guard.argcheck import pattern_seconds
    from odoo_mcp_guard.proxy import UpstreamConfig, parse_env, parse_headers, run_proxy

    if bool(args.upstream_command) == bool(args.upstream_url):
        raise UsageError("give exactly one of --upstream-command and --upstream-url")
    if args.upstream_command:
        try:
            command = shlex.split(args.upstream_command)
        except ValueError as exc:
            raise UsageError(f"--upstream-command: {exc}") from None
        if not command:
            raise UsageError("--upstream-command is empty")
        if args.upstream_header:
            raise UsageError("--upstream-header goes with --upstream-url")
    else:
        command = None
        if not args.upstream_url.startswith(("http://", "https://")):
            raise UsageError("--upstream-url must be an http:// or https:// URL")
        if (problem := url_problem(args.upstream_url)) is not None:
            raise UsageError(f"--upstream-url: {problem}")
        if args.upstream_env:
            raise UsageError("--upstream-env goes with --upstream-command")
    if args.server_name is not None and (problem := server_name_problem(args.server_name)):
        raise UsageError(f"--server-name {problem}")
    pattern_seconds()  # a bad MCP_GUARD_PATTERN_SECONDS: one line now, not at the first call
    for tool in args.connection_tool:
        if check_tool_name(tool) is not None:
            raise UsageError(f"--connection-tool {tool[:80]!r}: not a tool name")
    try:
        config = UpstreamConfig(
            command=command,
            env=parse_env(args.upstream_env),
            url=args.upstream_url,
            headers=parse_headers(args.upstream_header),
            server_name=args.server_name,
            mode=env_choice("MCP_GUARD_UPSTREAM_MODE", "auto", ("auto", "legacy")),
            connection_tools=frozenset(args.connection_tool),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    run_proxy(config, **_frontend_settings(args))
    return 0


# --- tools (pinned upstream definitions) ----------------------------------------------


def _pinned_server(pins: list[PinnedTool], given: str | None, tool: str) -> str:
    servers = sorted({pin.server for pin in pins})
    if given is not None:
        if given not in servers:
            raise UsageError(f"no pinned tools for server {given!r}")
        return given
    # Without --server: the one server where this tool awaits acceptance, else the only one.
    waiting = sorted({pin.server for pin in pins if pin.tool == tool and pin.changed})
    if len(waiting) == 1:
        return waiting[0]
    if len(servers) != 1:
        known = ", ".join(repr(server) for server in servers) or "none yet"
        raise UsageError(f"name the server with --server (known: {known})")
    return servers[0]


def _definition_text(definition: dict[str, Any]) -> list[str]:
    """A tool definition as lines a person reads and a diff compares: the description as
    written, then the rest as JSON."""
    lines = ["description:"]
    lines += [f"  {line}" for line in str(definition.get("description", "")).splitlines()]
    rest = {key: value for key, value in definition.items() if key != "description"}
    lines += json.dumps(rest, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    return lines


def _definition_diff(pin: PinnedTool) -> list[str]:
    """The changed definition against the accepted one (what ``tools accept`` would accept)."""
    if pin.pending_definition is None:
        return []
    return list(
        difflib.unified_diff(
            _definition_text(pin.definition),
            _definition_text(pin.pending_definition),
            f"accepted {pin.definition_hash[:12]}",
            f"changed {(pin.pending_hash or '')[:12]}",
            lineterm="",
            n=2,
        )
    )


def _tools_in_force(
    args: argparse.Namespace, one: str | None = None
) -> tuple[list[PinnedTool], Any]:
    """The pinned tools, and the policy in force as the guard with the same settings
    (--policy or $MCP_GUARD_POLICY, else the built-in one; Odoo's with the Odoo backend).
    ``one``: what a command on one tool looks for, which no store at all cannot have."""
    backend = _backend(args) if one is None else _backend_or_none(args, one)
    if backend is None:
        pins: list[PinnedTool] = []
        source: Any = PolicySource(_policy_path(args))
    else:
        pins = backend.store.list_pinned(args.server)
        source = backend.policy
        source.refresh()  # the policy in force: the file's, or Odoo's
    if source.last_error:
        raise UsageError(source.last_error)
    if args.server is not None and not pins and backend is not None:
        known = sorted({pin.server for pin in backend.store.list_pinned()})
        if known:
            names = ", ".join(shown(name) for name in known)
            raise UsageError(f"no tools recorded for server {args.server!r} (known: {names})")
    return pins, source.current()


def cmd_tools_list(args: argparse.Namespace) -> int:
    pins, policy = _tools_in_force(args)
    rows = []
    for pin in pins:
        # Judged as listed: the accepted definition (a changed one is refused anyway); the
        # decision carries the class it was taken with (a Manager's override included).
        decision = policy.decide(pin.tool, pin.server, classify_definition(pin.definition))
        action = "hidden" if decision.hidden else decision.action
        rows.append((pin, decision.risk, action))
    if args.json:
        _print_json(
            [
                {
                    **pin.model_dump(),
                    "risk_class": risk.risk_class if risk else None,
                    "risk_reason": risk.reason if risk else None,
                    "decision": action,
                    "changed": pin.changed,
                }
                for pin, risk, action in rows
            ]
        )
        return 0
    if not rows:
        print("no tools recorded yet" + (f" for server {args.server!r}" if args.server else ""))
        return 0
    builtin = (
        " (no --policy given, $MCP_GUARD_POLICY unset)" if policy.source == "<built-in>" else ""
    )
    print(f"decisions of the policy {shown(policy.source)}{builtin}")
    table = [("SERVER", "TOOL", "CLASS", "DECISION", "STATE", "DEFINITION")]
    for pin, risk, action in rows:
        state = "CHANGED (refused until accepted)" if pin.changed else "pinned"
        hashes = pin.definition_hash[:12] + (
            f" -> {pin.pending_hash[:12]}" if pin.pending_hash else ""
        )
        cls = risk.risk_class if risk else "-"
        table.append((shown(pin.server), shown(pin.tool), cls, action, state, hashes))
    widths = [max(len(row[col]) for row in table) for col in range(len(table[0]) - 1)]
    for index, row in enumerate(table):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())
        if index == 0:
            continue
        pin, risk, _ = rows[index - 1]
        if risk is not None:
            print(f"    class: {shown(risk.reason)}")
        for line in _definition_diff(pin):  # read before `tools accept`
            print(f"    {shown(line)}")
    return 0


def cmd_tools_show(args: argparse.Namespace) -> int:
    pins, policy = _tools_in_force(args, f"tool {args.name!r}")
    server = _pinned_server(pins, args.server, args.name)
    pin = next((p for p in pins if p.server == server and p.tool == args.name), None)
    if pin is None:
        raise UsageError(f"no tool {args.name!r} recorded for server {server!r}")
    decision = policy.decide(pin.tool, pin.server, classify_definition(pin.definition))
    if args.json:
        _print_json({**pin.model_dump(), "decision": decision.action, "changed": pin.changed})
        return 0
    lines = [
        f"tool:       {pin.tool}",
        f"server:     {pin.server}",
        f"decision:   {'hidden' if decision.hidden else decision.action} (policy {policy.source})",
        f"class:      {decision.risk.risk_class if decision.risk else '-'}"
        + (f" ({decision.risk.reason})" if decision.risk else ""),
        f"accepted:   {pin.definition_hash[:12]} at {_when(pin.accepted_at)}"
        + (f" by {pin.accepted_by}" if pin.accepted_by else ""),
    ]
    if pin.changed:
        lines.append(
            f"CHANGED:    {(pin.pending_hash or '')[:12]} since {_when(pin.pending_since)}; "
            f"refused until accepted (odoo-mcp-guard tools accept {pin.tool} "
            f"--server {shlex.quote(pin.server)} --definition {(pin.pending_hash or '')[:12]})"
        )
        lines += ["", *_definition_diff(pin)]
    else:
        lines += ["", *_definition_text(pin.definition)]
    print("\n".join(shown(line) for line in lines))
    return 0


def cmd_tools_accept(args: argparse.Namespace) -> int:
    backend = _backend_or_none(args, "pinned tools")
    if backend.acceptance is None:
        raise UsageError(backend.elsewhere("tools"))
    server = _pinned_server(backend.store.list_pinned(), args.server, args.name)
    pin = backend.acceptance.accept_pinned(
        server, args.name, args.accepted_by, definition=args.definition
    )
    print(f"{pin.tool} of {server}: new definition {pin.definition_hash[:12]} accepted")
    return 0


# --- policy --------------------------------------------------------------------------


def cmd_policy_check(args: argparse.Namespace) -> int:
    try:
        policy = load_policy_file(Path(args.file))
    except PolicyError as exc:
        count = len(exc.faults)
        faults = f"{count} fault{'s' if count != 1 else ''}"
        print(
            f"{PROG}: {shown(exc.source)}: invalid policy ({faults})",
            file=sys.stderr,
        )
        for fault in exc.faults:
            print(f"  {shown(fault)}", file=sys.stderr)
        return 1
    print("\n".join(shown(line) for line in policy.describe()))
    from odoo_mcp_guard.server import TOOL_NAMES

    for warning in policy.warnings(TOOL_NAMES):
        print(f"{PROG}: warning: {shown(args.file)}: {shown(warning)}", file=sys.stderr)
    return 0


def cmd_policy_show(args: argparse.Namespace) -> int:
    source = PolicySource(_policy_path(args))
    if source.last_error:
        raise UsageError(source.last_error)
    policy = source.current()
    if args.json:
        _print_json(policy.document.to_json_dict())
    else:
        print("\n".join(shown(line) for line in policy.describe()))
    return 0


# --- approvals -----------------------------------------------------------------------


def _as_now(request: ApprovalRequest, now: float) -> ApprovalRequest:
    """The request as it stands now: pending or approved past its expiry is expired (the
    store marks it so at its next use)."""
    if request.state in ("pending", "approved") and request.expires_at <= now:
        return request.model_copy(update={"state": "expired"})
    return request


def _clipped(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _arguments_text(request: ApprovalRequest) -> str:
    """The arguments on one line (redacted when the request was built)."""
    return json.dumps(request.arguments, ensure_ascii=False, separators=(", ", ": "))


def _server_text(request: ApprovalRequest) -> str:
    """The server a request is bound to (schema v10), as shown."""
    if request.server is None:
        return "none (filed before requests named their server: it answers for no call)"
    return shown(request.server) if request.server else "-"


def _request_line(request: ApprovalRequest) -> str:
    server = shown(request.server) if request.server else "-"
    return (
        f"{request.ref}  {request.state:<9}  {shown(request.tool):<20}  on {server}  "
        f"by {shown(request.principal)}  filed {_when(request.created_at)}  "
        f"{shown(_clipped(_arguments_text(request), 100))}"
    )


# What a request's connection is to the call: the connection in force now is shown beside it.
_CONNECTION_ROLES = {"odoo_connect": "replaces", "odoo_disconnect": "removes"}


def _connection_in_force(backend: Backend, request: ApprovalRequest) -> str | None:
    """The connection the request would replace, remove or (a data tool's) act through, as
    it is now (no secrets): a data call naming no alias acts through the only one."""
    alias = request.arguments.get("alias")
    role = _CONNECTION_ROLES.get(request.tool)
    if role is None and request.tool in DATA_TOOLS and alias is None:
        try:
            connections = backend.store.list_connections()
        except (StoreError, OdooError, ApprovalError):
            return None
        alias = connections[0].alias if len(connections) == 1 else None
    if request.tool in DATA_TOOLS:
        role = "acts through"
    if role is None or not isinstance(alias, str):
        return None
    try:
        found = backend.store.get_connection(alias)
        now = backend.store.connection_binding(alias) if found is not None else ""
    except (StoreError, OdooError, ApprovalError):
        return None
    if found is None:
        return None
    conn = found.public()
    # A request is for the connection it was filed for: another one under its alias is not it.
    other = (
        "  (NOT the connection this request was filed for: it changed since; the request "
        "will not be used for it)"
        if request.connection_binding is not None and request.connection_binding != now
        else ""
    )
    return (
        f"{role + ':':<11} {conn['alias']}: {conn['url']}  "
        f"db={conn['db']}  user={conn['username']}  {conn['protocol']}{other}"
    )


def _recorded_stake(request: ApprovalRequest) -> list[str]:
    """What the front-end that filed the request recorded it would replace or remove (the
    proxy: an upstream's connection as its listing showed it then), one line each."""
    stake = request.at_stake
    if not isinstance(stake, dict):
        return []
    roles = ("replaces", "removes", "acts through")
    role = stake.get("role") if stake.get("role") in roles else "replaces"
    alias = stake.get("alias")
    lines = []
    for conn in stake.get("connections") or ():
        if not isinstance(conn, dict):
            continue
        user = conn.get("username", conn.get("user"))
        lines.append(
            f"{role + ':':<11} {conn.get('alias')}: {conn.get('url', '?')}  "
            f"db={conn.get('db', '?')}  user={user if user is not None else '?'}"
            + (f"  {conn['protocol']}" if conn.get("protocol") else "")
            + "  (as the upstream listed it when filed)"
        )
    for conn in stake.get("stale") or ():
        if not isinstance(conn, dict):
            continue
        lines.append(
            f"{'replaces:':<11} {conn.get('alias')}: {_stake_values(conn.get('recorded'))} "
            f"(the guard's record) -> {_stake_values(conn.get('listed'))} (as the upstream "
            "listed it when filed: its view differs from the record and may be stale)"
        )
    if stake.get("note") or not lines:
        unnamed = "none named" if role == "acts through" else "unknown connection"
        what = alias if isinstance(alias, str) else unnamed
        lines.append(f"{role + ':':<11} {what} ({stake.get('note') or 'as filed'})")
    return lines


def _stake_values(values: Any) -> str:
    """A connection's values as recorded in a request's stake, on one line ('absent': none)."""
    if not isinstance(values, dict) or not values:
        return "absent"
    user = values.get("username", values.get("user"))
    return (
        f"{values.get('url', '?')}  db={values.get('db', '?')}  "
        f"user={user if user is not None else '?'}"
    )


def _request_detail(request: ApprovalRequest, in_force: Sequence[str] = ()) -> list[str]:
    lines = [
        f"request:    {request.ref} (id {request.id})",
        f"state:      {request.state}",
        f"tool:       {request.tool}",
        f"server:     {_server_text(request)}",
        f"arguments:  {_arguments_text(request)}",
        *in_force,
        f"hash:       {request.arguments_hash}",
        f"requester:  {request.principal}",
        f"approvers:  {request.approver_group or DEFAULT_APPROVER_GROUP}, "
        f"{len(request.approvals)} of {request.quorum} approved"
        + (f" ({', '.join(request.approvals)})" if request.approvals else ""),
        f"reason:     {request.reason or '-'}",
        f"filed:      {_when(request.created_at)}",
        f"expires:    {_when(request.expires_at)}",
    ]
    if request.decided_by:
        lines.append(f"decided by: {request.decided_by} at {_when(request.decided_at)}")
        lines.append(f"note:       {request.decision_note or '-'}")
    if request.consumed_at:
        lines.append(f"used:       {_when(request.consumed_at)}")
    if request.result_note:
        lines.append(f"result:     {request.result_note}")
    return lines


def cmd_approvals_list(args: argparse.Namespace) -> int:
    backend = _backend(args)
    requests = []
    if backend is not None:
        now = time.time()
        if args.state:  # judged as the requests stand now (a stale pending one is expired)
            found = backend.requests.list_requests(None, max(args.limit, 1000))
        else:
            found = backend.requests.list_requests(None, args.limit)
        requests = [_as_now(request, now) for request in found]
        requests = [r for r in requests if args.state in (None, r.state)][: args.limit]
    if args.json:
        _print_json([request.summary() for request in requests])
    elif not requests:
        print("no approval requests" + (f" in state {args.state}" if args.state else ""))
    else:
        print("\n".join(_request_line(request) for request in requests))
    return 0


def _backend_or_none(args: argparse.Namespace, what: str) -> Backend:
    """The backend for a command on one record: with no local store there is none."""
    backend = _backend(args, note=False)
    if backend is None:
        raise UsageError(f"no {what} (no guard store in {_store_location(args)})")
    return backend


def _get_request(backend: Backend, key: str) -> ApprovalRequest:
    request = backend.requests.get_request(key)
    if request is None:
        raise UsageError(f"no approval request {key!r}")
    return request


def cmd_approvals_show(args: argparse.Namespace) -> int:
    backend = _backend_or_none(args, f"approval request {args.id!r}")
    request = _as_now(_get_request(backend, args.id), time.time())
    if args.json:
        _print_json(request.summary())
    else:
        in_force = _recorded_stake(request)
        if not in_force:
            current = _connection_in_force(backend, request)
            in_force = [current] if current else []
        print("\n".join(shown(line) for line in _request_detail(request, in_force)))
    return 0


def _decisions(args: argparse.Namespace) -> tuple[Backend, Decisions]:
    """Where requests are decided here; elsewhere (Odoo): one line saying where, nothing
    touched."""
    backend = _backend_or_none(args, f"approval request {args.id!r}")
    if backend.decisions is None:
        found = backend.requests.get_request(args.id)
        raise UsageError(backend.elsewhere("approvals", found.id if found else None))
    return backend, backend.decisions


def _approvers(backend: Backend, request: ApprovalRequest) -> list[str] | None:
    """Who may decide ``request`` on this store: the names the policy in force lists for its
    approver group (``approvers``); None: anyone but the requester (the default group, not
    listed). A group the policy does not list has no approver here: nobody decides."""
    group = request.approver_group or DEFAULT_APPROVER_GROUP
    try:
        policy = backend.policy.current()
    except PolicyUnavailable as exc:
        raise UsageError(f"{request.ref} cannot be decided: {exc}") from None
    names = policy.approvers_of(group)
    if names is None and group != DEFAULT_APPROVER_GROUP:
        raise UsageError(
            f"{request.ref} is decided by the approver group {group}, which the policy in force "
            f"({policy.source}) does not list under approvers: nobody can decide it here "
            "(pass --policy FILE as the guard was given it)"
        )
    return names


def _people(backend: Backend) -> dict[str, list[str]] | None:
    """The persons the policy in force declares ({person: [principals]}); None: not declared
    (four-eyes compares names as given). ``_approvers`` has read the policy already."""
    return backend.policy.current().people


def _decide(args: argparse.Namespace, approve: bool) -> int:
    backend, decisions = _decisions(args)
    request = _get_request(backend, args.id)
    decided = decisions.decide(
        request.id,
        approve=approve,
        approver=args.approver,
        note=args.note,
        approvers=_approvers(backend, request),
        people=_people(backend),
    )
    if approve and decided.state == "pending":
        print(
            f"{decided.ref}: approval {len(decided.approvals)} of {decided.quorum} recorded "
            f"(by {shown(args.approver.strip())}); it needs "
            f"{decided.quorum - len(decided.approvals)} more from other approvers"
        )
        return 0
    verb = "approved" if approve else "rejected"
    print(f"{decided.ref} {verb} by {shown(decided.decided_by)}")
    if approve:
        print(
            f"valid until {_when(decided.expires_at)}, for one call of {shown(decided.tool)} "
            f"by {shown(decided.principal)} with the same arguments"
        )
    return 0


def cmd_approvals_approve(args: argparse.Namespace) -> int:
    return _decide(args, approve=True)


def cmd_approvals_reject(args: argparse.Namespace) -> int:
    return _decide(args, approve=False)


def cmd_approvals_cancel(args: argparse.Namespace) -> int:
    request = _decisions(args)[1].cancel_request(args.id, by=args.approver, note=args.note)
    print(f"{request.ref} cancelled by {shown(request.decided_by)}")
    return 0


# --- connections ---------------------------------------------------------------------

# odoo-claude-mcp and its forks spell some keys differently.
_SYNONYMS = {
    "name": "alias",
    "database": "db",
    "user": "username",
    "login": "username",
    "apikey": "api_key",
    "key": "api_key",
}


def _connection_from(entry: Any, index: int) -> Connection:
    if not isinstance(entry, dict):
        raise UsageError(f"connections[{index}]: expected an object, got {type(entry).__name__}")
    fields = {_SYNONYMS.get(key, key): value for key, value in entry.items()}
    known = set(Connection.model_fields)
    try:
        return Connection.model_validate({k: v for k, v in fields.items() if k in known})
    except ValidationError as exc:
        raise UsageError(
            "; ".join(
                f"connections[{index}].{shown('.'.join(str(part) for part in error['loc']))}: "
                f"{shown(error['msg'])}"
                for error in exc.errors()
            )
        ) from None


def cmd_connections_list(args: argparse.Namespace) -> int:
    backend = _backend(args)
    connections = [conn.public() for conn in backend.store.list_connections()] if backend else []
    if args.json:
        _print_json(connections)
    elif not connections:
        print("no connections")
    else:
        for conn in connections:
            # A newline in a stored field must not forge a row, nor an ESC drive the terminal.
            print(
                f"{shown(conn['alias']):<16} {shown(conn['url'])}  db={shown(conn['db'])}  "
                f"user={shown(conn['username'])}  {shown(conn['protocol'])}"
            )
    return 0


def cmd_connections_import(args: argparse.Namespace) -> int:
    name = shown(args.file)
    try:
        data = json.loads(read_regular_file(Path(args.file), MAX_IMPORT_BYTES).decode("utf-8"))
    except FileReadError as exc:
        raise UsageError(f"cannot read {name}: {exc}") from None
    except (ValueError, RecursionError) as exc:  # JSON, UTF-8, a 5000-digit integer, depth
        raise UsageError(f"{name}: not valid JSON: {shown(exc)}") from None
    entries = data.get("connections") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise UsageError(f'{name}: expected a list of connections or {{"connections": [...]}}')
    # Every fault of the file at once, and nothing imported unless there is none.
    connections, faults = [], []
    for index, entry in enumerate(entries):
        try:
            connections.append(_connection_from(entry, index))
        except UsageError as exc:
            faults.append(str(exc))
    if faults:
        raise UsageError(f"{name}: nothing imported: " + "; ".join(faults))
    backend = _backend(args, create=True)
    assert backend is not None  # created
    if not backend.imports_connections:
        raise UsageError(backend.elsewhere("connections"))
    store = backend.store
    added, skipped = [], []
    for conn in connections:
        # An import never replaces a connection: replacing one is a removal, which is gated.
        (added if store.add_connection(conn) else skipped).append(conn.alias)
    print(f"imported {len(added)} connection(s)" + (f": {', '.join(added)}" if added else ""))
    if skipped:
        print(f"skipped {len(skipped)} existing alias(es), not replaced: {', '.join(skipped)}")
    return 0


# --- audit, tokens -------------------------------------------------------------------


def cmd_audit_tail(args: argparse.Namespace) -> int:
    backend = _backend(args)  # with Odoo: this host's spool of what it sent to Odoo
    events = backend.store.audit_tail(args.n) if backend else []
    if args.json:
        _print_json([event.model_dump() for event in events])
    elif not events:
        print("no audit events")
    else:
        previous = None
        for event in events:
            ref = f" {event.request_ref}" if event.request_ref else ""
            # A long message is shown once, cut to a line; the next identical one says so.
            detail = _clipped(event.detail, AUDIT_DETAIL_WIDTH)
            if event.detail and event.detail == previous and len(event.detail) > 40:
                detail = "(same message as above)"
            previous = event.detail
            print(
                f"{event.time}  {event.outcome:<17} {shown(event.tool):<20} "
                f"{shown(event.principal)}{ref}  {shown(detail)}".rstrip()
            )
    return 0


AUDIT_DETAIL_WIDTH = 120


# The largest id or count a store takes (SQLite and PostgreSQL integers are 64-bit).
MAX_WHOLE = 2**63 - 1


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (one line otherwise)."""

    def parse(text: str) -> int:
        stripped = text.strip()
        digits = stripped[1:] if stripped[:1] in ("+", "-") else stripped
        if not (digits.isascii() and digits.isdigit()):
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number")
        # No 5000-digit number is converted (int() refuses those with a traceback).
        value = int(stripped) if len(digits) <= 30 else None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text[:40]} is not from {low} to {high}")
        return value

    return parse


_positive = _whole(1, 1_000_000)


def _request_key(text: str) -> str:
    """An approval request's id (ASCII digits) or reference (MCPR-00001): anything else (other
    scripts' digits, "MCPR-\uff11") and an id beyond what a store holds are refused here, in
    one line naming it."""
    key = text.strip()
    ref = _REQUEST_REF.fullmatch(key)
    if ref is None:
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is not a request id (digits 0-9) or reference (MCPR-00001, "
            "MCPR/2026/00001)"
        )
    digits = ref[1] or ref[2]
    if len(digits) > 30 or not 1 <= int(digits) <= MAX_WHOLE:
        raise argparse.ArgumentTypeError(f"{text[:40]!r}: no request has such an id")
    return key


# ASCII digits only: str.isdigit() and int() also take "١" and "１". Odoo's own reference,
# "MCPR/2026/00006", is one too.
_REQUEST_REF = re.compile(r"(?i:MCPR-)?([0-9]+)|(?i:MCPR)/[0-9]{4}/([0-9]+)", re.ASCII)


def _tokens(args: argparse.Namespace) -> TokenStore:
    return TokenStore(args.data_dir / TOKENS_FILENAME)


def cmd_tokens_add(args: argparse.Namespace) -> int:
    tokens = _tokens(args)
    had_one = args.principal in tokens.principals()
    if had_one and not args.rotate:
        # Replacing it would lock out every client holding the old one at once.
        raise UsageError(
            f"{args.principal} already has a token; a new one (--rotate) makes the old one "
            "invalid at once for every client that uses it"
        )
    token = tokens.add(args.principal)
    print(token)
    print(f"token for {args.principal}: shown once, stored hashed", file=sys.stderr)
    if had_one:
        print(
            f"the old token of {args.principal} is no longer valid (a running guard refuses "
            "it from its next request)",
            file=sys.stderr,
        )
    return 0


def cmd_tokens_list(args: argparse.Namespace) -> int:
    principals = _tokens(args).principals()
    print("\n".join(principals) if principals else "no tokens")
    return 0


def cmd_tokens_remove(args: argparse.Namespace) -> int:
    if not _tokens(args).remove(args.principal):
        raise UsageError(f"no token for {args.principal!r}")
    print(f"token for {args.principal} removed")
    return 0


# --- parser --------------------------------------------------------------------------


DATA_DIR_HELP = (
    "the guard's data directory (default: $MCP_GUARD_DATA_DIR, else "
    "$XDG_DATA_HOME/odoo-mcp-guard, else ~/.local/share/odoo-mcp-guard)"
)
DATABASE_URL_HELP = (
    "postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE: keep connections, approvals, audit and "
    f"pinned tools in PostgreSQL (default: ${DATABASE_URL_ENV}, else the SQLite file in the "
    "data directory)"
)


class _Parser(argparse.ArgumentParser):
    """argparse's parser whose mistakes are one line (the README's promise): the command, the
    fault and where to read more, without the usage argparse prints before them. Its
    subcommands' parsers are of this class too (add_subparsers gives them the parent's)."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            2, f"{shown(self.prog)}: error: {shown(message)} (see {shown(self.prog)} --help)\n"
        )


def _store_options(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """--data-dir and --database-url, accepted before or after the command: a command's own
    copy only counts when given (SUPPRESS), so it never resets the global one."""
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--data-dir", type=Path, default=default, metavar="DIR", help=DATA_DIR_HELP)
    parser.add_argument("--database-url", default=default, metavar="URL", help=DATABASE_URL_HELP)
    parser.add_argument(
        "--backend",
        choices=["local", "odoo"],
        default=default,
        help="where policy, connections, approvals and audit live (default: odoo when ODOO_URL "
        "or --odoo-config is set, else the local store)",
    )
    parser.add_argument(
        "--odoo-config",
        default=default,
        metavar="FILE",
        help="TOML or JSON file with url, db, username, api_key (instead of ODOO_* variables)",
    )


def _add(
    sub: argparse._SubParsersAction,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    help_text: str,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    _store_options(parser)
    return parser


def _group(
    sub: argparse._SubParsersAction, name: str, help_text: str
) -> argparse._SubParsersAction:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    parser.set_defaults(handler=lambda _args: _no_command(parser, commands))
    return commands


def _no_command(parser: argparse.ArgumentParser, commands: argparse._SubParsersAction) -> int:
    """A group (or the program) given no command: one line naming the commands."""
    parser.error("a command is required: " + ", ".join(commands.choices))


def _frontend_options(parser: argparse.ArgumentParser) -> None:
    """The options serve and proxy share."""
    parser.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="stdio: one client on stdin/stdout (default); http: streamable HTTP on --host "
        "and --port, with bearer tokens",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=_whole(0, 65535), default=8765, help="HTTP port (default 8765)"
    )
    parser.add_argument(
        "--policy", metavar="FILE", help=f"policy file (default: ${POLICY_ENV}, else built-in)"
    )
    parser.add_argument(
        "--allow-anonymous",
        action="store_true",
        help="HTTP: accept requests without a bearer token (principal 'anonymous')",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="A policy and four-eyes approval gate for MCP tools that manage Odoo "
        "connections.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _store_options(parser, top=True)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    parser.set_defaults(handler=lambda _args: _no_command(parser, sub))

    serve = _add(sub, "serve", cmd_serve, "run the guarded MCP server")
    _frontend_options(serve)

    proxy = _add(sub, "proxy", cmd_proxy, "run the guard in front of another MCP server")
    upstream = proxy.add_mutually_exclusive_group()
    upstream.add_argument(
        "--upstream-command", help='the upstream server\'s command line, e.g. "npx some-mcp"'
    )
    upstream.add_argument("--upstream-url", help="the upstream's streamable-HTTP URL")
    proxy.add_argument(
        "--upstream-env",
        action="append",
        default=[],
        metavar="K=V",
        help="an environment variable for the upstream command (repeatable)",
    )
    proxy.add_argument(
        "--upstream-header",
        action="append",
        default=[],
        metavar='"K: V"',
        help="an HTTP header sent to the upstream URL, e.g. its own credentials (repeatable)",
    )
    proxy.add_argument(
        "--server-name",
        default=None,
        help="the name pinned tool definitions are kept under (default: from the upstream)",
    )
    proxy.add_argument(
        "--connection-tool",
        action="append",
        default=[],
        metavar="TOOL",
        help="an upstream tool that adds or changes connections, whatever its wording: "
        "also governed by the odoo_disconnect rule unless it provably adds one (repeatable)",
    )
    _frontend_options(proxy)

    tools = _group(
        sub, "tools", "the tool catalog: served tools, their risk class, pinned definitions"
    )
    tools_list = _add(
        tools,
        "list",
        cmd_tools_list,
        "list the tools served so far, with risk class and reason, the decision the policy "
        "gives each, and changed definitions",
    )
    tools_list.add_argument("--server", default=None, help="only this server")
    tools_list.add_argument(
        "--policy", metavar="FILE", help=f"policy file (default: ${POLICY_ENV}, else built-in)"
    )
    tools_list.add_argument("--json", action="store_true")
    tools_show = _add(
        tools,
        "show",
        cmd_tools_show,
        "show a tool's definition, the decision in force, and a changed definition as a diff "
        "against the accepted one",
    )
    tools_show.add_argument("name", help="the tool name")
    tools_show.add_argument("--server", default=None, help="the server (if more than one)")
    tools_show.add_argument(
        "--policy", metavar="FILE", help=f"policy file (default: ${POLICY_ENV}, else built-in)"
    )
    tools_show.add_argument("--json", action="store_true")
    accept = _add(tools, "accept", cmd_tools_accept, "accept a tool's changed definition (Manager)")
    accept.add_argument("name", help="the tool name")
    accept.add_argument("--server", default=None, help="the upstream server (if more than one)")
    accept.add_argument(
        "--as", dest="accepted_by", default=os.environ.get("USER", "cli"), help="who accepts"
    )
    accept.add_argument(
        "--definition",
        metavar="HASH",
        default=None,
        help="the changed definition reviewed (its hash as `tools show` prints it): refused "
        "if the upstream has changed it again since",
    )

    policy = _group(sub, "policy", "check or show a policy document")
    check = _add(policy, "check", cmd_policy_check, "validate a policy file, print its rules")
    check.add_argument("file")
    show = _add(policy, "show", cmd_policy_show, "print the policy in force")
    show.add_argument(
        "--policy", metavar="FILE", help=f"policy file (default: ${POLICY_ENV}, else built-in)"
    )
    show.add_argument("--json", action="store_true", help="print the JSON document")

    approvals = _group(sub, "approvals", "list and decide approval requests")
    listing = _add(approvals, "list", cmd_approvals_list, "list approval requests, newest first")
    listing.add_argument(
        "--state",
        choices=["pending", "approved", "rejected", "cancelled", "expired", "done", "failed"],
    )
    listing.add_argument("--limit", type=_whole(1, 1_000_000), default=200)
    listing.add_argument("--json", action="store_true")
    for name, handler, text in (
        ("show", cmd_approvals_show, "show one request"),
        ("approve", cmd_approvals_approve, "approve a pending request (not your own)"),
        ("reject", cmd_approvals_reject, "reject a pending request (not your own)"),
        ("cancel", cmd_approvals_cancel, "cancel a pending or approved request"),
    ):
        command = _add(approvals, name, handler, text)
        command.add_argument("id", type=_request_key, help="request id or reference (MCPR-00001)")
        if name == "show":
            command.add_argument("--json", action="store_true")
        if name in ("approve", "reject", "cancel"):
            command.add_argument(
                "--as",
                dest="approver",
                metavar="NAME",
                required=True,
                help="who cancels (recorded and audited)"
                if name == "cancel"
                else "the approver's name; must differ from the requester",
            )
            command.add_argument("--note", default=None, help="a note for the requester")
        if name in ("approve", "reject"):
            command.add_argument(
                "--policy",
                metavar="FILE",
                help=f"the guard's policy file, whose approvers name who may decide (default: "
                f"${POLICY_ENV}, else built-in)",
            )

    connections = _group(sub, "connections", "list or import Odoo connections")
    conn_list = _add(connections, "list", cmd_connections_list, "list connections (no secrets)")
    conn_list.add_argument("--json", action="store_true")
    conn_import = _add(
        connections,
        "import",
        cmd_connections_import,
        "import odoo-claude-mcp's connections.json (existing aliases are kept)",
    )
    conn_import.add_argument("file")

    audit = _group(sub, "audit", "read the audit trail")
    tail = _add(audit, "tail", cmd_audit_tail, "print the newest audit events")
    tail.add_argument(
        "-n", type=_positive, default=20, help="how many events, 1 or more (default 20)"
    )
    tail.add_argument("--json", action="store_true")

    tokens = _group(sub, "tokens", "bearer tokens for the HTTP transport")
    add = _add(tokens, "add", cmd_tokens_add, "create a token for a principal (printed once)")
    add.add_argument("principal")
    add.add_argument(
        "--rotate",
        action="store_true",
        help="replace the principal's existing token (the old one stops working at once)",
    )
    _add(tokens, "list", cmd_tokens_list, "list principals that have a token")
    remove = _add(tokens, "remove", cmd_tokens_remove, "remove a principal's token")
    remove.add_argument("principal")
    return parser


# Free text the CLI records in the store (dest: the option as typed). A command line that is
# not UTF-8 reaches Python surrogate-escaped, which no store can encode: refused up front.
_RECORDED_TEXT = {"note": "--note", "approver": "--as", "accepted_by": "--as"}


def _check_recorded_text(args: argparse.Namespace) -> None:
    for dest, option in _RECORDED_TEXT.items():
        value = getattr(args, dest, None)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise UsageError(f"{option} is not valid UTF-8 text") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # The one place that says where the data lives, for every command (serve included).
    args.data_dir = (args.data_dir or default_data_dir()).expanduser().absolute()
    if args.database_url:
        # Every path that opens the store (serve, proxy, open_backend) reads it from there.
        os.environ[DATABASE_URL_ENV] = args.database_url
    args.database_url = os.environ.get(DATABASE_URL_ENV) or None
    try:
        _check_recorded_text(args)
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except (
        UsageError,
        ApprovalError,
        StoreError,
        TokenError,
        PolicyError,
        OdooError,
        SettingError,
    ) as exc:
        print(f"{PROG}: error: {shown(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as exc:  # an unwritable data directory, a full disk...: one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{PROG}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
