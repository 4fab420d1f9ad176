"""``odoo-mcp-guard proxy``: the guard in front of any MCP server.

One persistent session to the upstream (a command over stdio, or a streamable-HTTP URL) with
the proxy's own credentials (never the client's). ``tools/list`` answers from a cache of the
upstream's tools, filtered by the policy; a call is judged by ``Guard.call`` exactly as in
``serve`` (guard.py: name, listed, deny, definition, arguments, rate limits, approval,
audit), the proxy answering the guard's questions (``Served``: its tools, their schemas,
their pinned definitions, the upstream's readiness, connection upserts), and only then
forwarded, with exactly the arguments that were judged.

Tool-definition pinning: the hash of each upstream tool's definition (name, description,
input schema, annotations) is recorded the first time it is seen (store table
``pinned_tools``). A tool whose definition later changes is listed with its pinned
definition and refused until the change is accepted (``odoo-mcp-guard tools accept``).

Elicitation: the upstream session negotiates 2026-07-28 when the upstream can, so that an
elicitation arrives as an ``input_required`` result. To a 2026-07-28 client it is passed on
as is (its ``requestState`` wrapped with the call it belongs to and a single-use key, and
sealed by the SDK's ``RequestStateBoundary``). The client's answer is a call: it passes
``Guard.call`` like any other (policy, rate limit, an approval of its own where the tool
needs one, audit) and its state is spent when it runs, so a replay is refused. To a
2025-11-25 client the proxy asks the questions itself with ``elicitation/create`` and retries
upstream within the one judged call. A 2025-era upstream's ``elicitation/create`` is passed
to the 2025-era client whose call is in flight.

Connection changes: a tool the catalog recognises as adding, replacing or activating a
connection (``odoo_connect``: "Add/update an Odoo connection", ``user_connection_add``,
``identify``, ``user_connection_activate``) replaces a connection unless it provably adds a
new one, and a replacement is a removal: the call is then also governed by the
``odoo_disconnect`` rule, as in ``serve``. Only an upsert whose connections the proxy can
list (the known pair ``odoo_connect``/``odoo_connections``) may be judged new: when the alias
is absent from that list, and the upstream keeps several connections (it offers their
removal tool; without it, as odoo-claude-mcp with ``SINGLE_CONNECTION=1``, any upsert while
a connection exists replaces it). The check and the forward hold a lease on the upstream's
connections in the shared store (leases.py), so that two replicas cannot both judge one
alias new; a replica that cannot get it refuses the call. The list is asked fresh each time,
and checked against the replicas' shared record of the aliases their upstreams listed or
they created (and did not remove): an upstream that does not list an alias the record knows
has a stale view (e.g. one of several odoo-claude-mcp processes on one data directory, each
with what it loaded at start), and nothing it would write is judged new. A request to remove
or replace a connection is bound to what the listing says of it and to the alias's generation
in that record (bumped by every change of it the guard lets through, and by a listing seen to
differ): an approval does not answer for the alias re-created since, even with the same values.
A call of a tool that is neither a read nor recognised as a connection tool, one of whose
string arguments names a connection the proxy knows (listed now, or in the record), is judged
a change of that connection as well (``_named_connections``): the catalog's words cannot know
every name of a connection's end (outside round 24: ``odoo_reset``, ``odoo_do``).
A data call needing an approval (a tool with a ``connection`` or ``alias`` argument) is bound
likewise to the connection the upstream would act through: the listed one it names, else the
only one listed (odoo-claude-mcp's fallback), read under the lease and held until it is done.

Upstream results (every content block: text, embedded resources' text and URIs, resource
links; structured content; every ``_meta``; error results and errors), the questions of an
input request, and the upstream's tool descriptions (before they are pinned, listed or shown)
pass the one redaction rule (``policy_core.redact``) before the client or the audit sees them.

The forward, once a call is judged: to a 2026-07-28 upstream over HTTP (stateless), the call
is posted as raw JSON-RPC on the session's own HTTP client (``_send_raw``; the SDK's envelope
and result checks, sdk_workarounds 5), without the client session's dispatcher, tasks and
message models. Its answer is taken only if it is this request's (its id), within
``MCP_GUARD_UPSTREAM_MAX_ANSWER`` bytes, a result of the negotiated version matching the
tool's output schema; a claimed list change on the call's stream is a reason to list again
(and pin), never taken on trust; anything else fails the call, in doubt. Every other forward
(a stdio or 2025-era upstream, a continuation) goes through the SDK's session;
``MCP_GUARD_UPSTREAM_PASSTHROUGH=0`` sends every call that way.

Upstream crash or disconnect: the calls in flight get a clear error (their effect upstream is
unknown; nothing is retried), the proxy stays up and reconnects with a backoff. An answer that
is not valid JSON-RPC (sdk_workarounds 6; on the raw path, parsed as strictly as the SDK does)
fails its call at once, in doubt, without a word of it shown or logged; a stdio line that names
no request drops the session, as a disconnect.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import json
import logging
import os
import re
import secrets
import shlex
import sys
import threading
import unicodedata
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import anyio
import anyio.abc
import httpx2
import jsonschema
import mcp_types as types
import pydantic_core
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ValidationError

from odoo_mcp_guard.argcheck import TooSlow, bounded_validator, first_error, pattern_seconds
from odoo_mcp_guard.backends import Backend
from odoo_mcp_guard.catalog import (
    changes_connection,
    classify_tool,
    definition_hash,
    definition_of,
)
from odoo_mcp_guard.engines import StoreError
from odoo_mcp_guard.frontend import (
    APPROVAL_INSTRUCTIONS,
    Frontend,
    StartFailure,
    ToolFailure,
    arguments_size_problem,
)
from odoo_mcp_guard.guard import (
    RUNNING_ON_APPROVAL,
    CallRefused,
    Continuation,
    Guard,
    GuardRefusal,
    Refusal,
    upstream_down,
)
from odoo_mcp_guard.identity import shown
from odoo_mcp_guard.leases import Leases, differs
from odoo_mcp_guard.logs import set_known_secrets
from odoo_mcp_guard.metrics import UPSTREAM_ERRORS
from odoo_mcp_guard.names import arguments_hash, check_tool_name
from odoo_mcp_guard.policy import PolicyUnavailable
from odoo_mcp_guard.policy_core import (
    DERIVED_SERVER_MARK,
    MIN_KNOWN_SECRET,
    SOURCE_HASH_KEY,
    LineRedaction,
    _hide_known,
    _known_forms,
    alias_form_kinds,
    alias_forms,
    alias_problem,
    canonical_bytes,
    hide_url_paths,
    is_secret_key,
    is_secret_query_key,
    pinned_definition,
    redact,
    redact_result,
    redact_schema,
    redact_text,
    redact_tool,
    url_path_secrets,
)
from odoo_mcp_guard.runner import make_guard, run_frontend
from odoo_mcp_guard.sdk_workarounds import (
    UnreadableLine,
    guard_unparseable_answers,
    modern_call_envelope,
    raw_calls_supported,
    read_call_result,
    session_closed,
    unreadable_answer,
)
from odoo_mcp_guard.settings import env_choice, env_count, env_number
from odoo_mcp_guard.store import GuardStore, PinnedTool
from odoo_mcp_guard.stores.models import connection_identity

log = logging.getLogger("odoo_mcp_guard.proxy")
# The principal of the client's call being handled (per task): the proxy's own calls
# upstream for it pass the gate under that principal.
_CALLER: contextvars.ContextVar[str | None] = contextvars.ContextVar("caller", default=None)
# What the call being judged would replace or remove, as the proxy knows it (set within
# ``also_governed_by``; recorded on the approval request the guard files for the call).
_AT_STAKE: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "at_stake", default=None
)
# The identity of that connection (models.connection_identity of what the listing said of
# it; '' : the call changes none that exists): an approval request is bound to it, and is not
# used for another connection that took the alias since (invariant 14).
_BINDING: contextvars.ContextVar[str | None] = contextvars.ContextVar("binding", default=None)
# What a data call being judged holds until it is done (``also_governed_by``): the lease on
# the upstream's connections, taken when its binding is asked (``connection_binding``), so
# that the connection it was judged (and approved) for is the one it is sent to.
_HELD: contextvars.ContextVar[AsyncExitStack | None] = contextvars.ContextVar("held", default=None)


@dataclass
class _Change:
    """A connection change being judged (``also_governed_by``): whether the guard let it run
    (``forwarded``: from then on it may reach the upstream)."""

    forwarded: bool = False


# The connection change being judged; its ``execute`` (``handle_call``) marks it forwarded.
_CHANGE: contextvars.ContextVar[_Change | None] = contextvars.ContextVar("change", default=None)
# A call's client answers (a 2026-07-28 continuation's inputResponses), and the connections a
# 2025-era client's answer during the call may not name (their aliases, whether only as a
# whole): an answer is part of what the call does (outside round 25).
_ANSWERS: contextvars.ContextVar[Any] = contextvars.ContextVar("answers", default=None)
# A continuation's questions (as the upstream asked them) and the upstream's own state: what
# the upstream may fill in or carry over into the call it continues (outside round 33).
_ASKED: contextvars.ContextVar[tuple[Any, str | None] | None] = contextvars.ContextVar(
    "asked", default=None
)
_NAMEABLE: contextvars.ContextVar[tuple[tuple[str, ...], bool] | None] = contextvars.ContextVar(
    "nameable", default=None
)
# What an approver is shown of a connection the upstream lists (redacted), and how many.
_STAKE_FIELDS = ("url", "db", "username", "user", "protocol")
_STAKE_MAX = 5

PROXY_NAME = "odoo-mcp-guard-proxy"
# Read when the proxy is imported (by `proxy` inside the CLI's error handling): a bad value
# is one line naming the variable.
CONNECT_WAIT_SECONDS = env_number("MCP_GUARD_UPSTREAM_WAIT", 10.0, low=0, high=3600)
CALL_TIMEOUT_SECONDS = env_number("MCP_GUARD_UPSTREAM_TIMEOUT", 300.0, low=0, high=86400)
# The largest answer to one call read from an HTTP upstream on the raw path (bytes).
MAX_ANSWER_BYTES = env_count("MCP_GUARD_UPSTREAM_MAX_ANSWER", 64 * 1024 * 1024, low=1, high=2**40)
# "0": every call goes through the SDK's client session (no raw JSON-RPC path).
PASSTHROUGH = env_choice("MCP_GUARD_UPSTREAM_PASSTHROUGH", "1", ("1", "0")) == "1"
_RAW_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
MAX_INPUT_ROUNDS = 10
UPSTREAM_META = "odoo-mcp-guard/upstream"  # tools/list _meta: the upstream is down
STATE_TTL_SECONDS = 600.0  # how long a client may take to answer an input request
_STATE_KIND = "odoo-mcp-guard/continuation"
# Removing a connection is governed by this rule, whichever tool would do it (invariant 11).
REMOVAL_RULE = "odoo_disconnect"
_CONNECTION_KEYS = ("alias", "connection", "name")  # the argument naming the connection
# The argument by which a data tool names the connection it acts through (odoo-claude-mcp's
# "connection", default "default"; "name" is too common a field to mean a connection).
_DATA_CONNECTION_KEYS = ("connection", "alias")
# The upserts whose connections the proxy can list: upsert -> (its list tool, its removal
# tool). Any other tool that changes connections is judged a replacement.
_CONNECTION_LISTS = {"odoo_connect": ("odoo_connections", "odoo_disconnect")}
# The lease on an upstream's connections outlives the longest call it covers.
LEASE_SECONDS = CALL_TIMEOUT_SECONDS + CONNECT_WAIT_SECONDS + 60
LEASE_BUSY = (
    "Refused: another call (possibly on another replica of this proxy) is changing this "
    "upstream's connections right now, or its outcome is still unknown; nothing was sent "
    "upstream. Try again in a moment."
)


class UpstreamFailure(ToolFailure):
    """The upstream could not answer the call; the message is safe to show. ``in_doubt``:
    the call may have reached the upstream and acted (connection lost, timeout)."""

    def __init__(self, message: str, *, in_doubt: bool = False):
        super().__init__(redact_text(KNOWN_SECRETS.hide(message)))
        self.in_doubt = in_doubt


@dataclass(frozen=True)
class _Flight:
    """A call in flight on the upstream session: the 2025-era client its questions may be
    passed to (None: none), or why none is passed on (``Proxy._no_questions``)."""

    asker: ServerRequestContext[Any, Any] | None
    unasked: str | None = None
    nameable: tuple[tuple[str, ...], bool] | None = None  # _NAMEABLE's, for the answers


def _answer_problem(
    nameable: tuple[tuple[str, ...], bool] | None, answer: Any, params: Any
) -> str | None:
    """Why a client's answer is not passed to the upstream: it names a connection the proxy
    knows (``nameable``: _NAMEABLE's), in a call judged not to change one (it would change
    it unjudged); an accepted answer names what the question's schema (``params``: the
    upstream's, unredacted) fills in for what it leaves out too (outside round 32)."""
    if nameable is None or not isinstance(answer, types.ElicitResult):
        return None
    aliases, whole_only = nameable
    content = answer.content or {}
    filled: list[Any] | None = []
    schema = getattr(params, "requested_schema", None)
    if answer.action == "accept" and isinstance(schema, Mapping):
        filled = _schema_values(schema, skip=())
    given = _alias_words({"a": content, "filled": filled}, whole_only=whole_only)
    given.unread = filled is None
    named = sorted(a for a in aliases if given.names(a))
    if not named:
        return None
    return (
        f"the client's answer names the connection {named[0]!r}, which this call was not "
        "judged to change: the proxy does not pass it on, and the call was abandoned "
        "(name the connection in the call's arguments, to be judged with it)."
    )


@dataclass
class _Sending:
    """What became of one call's HTTP requests to the upstream (see ``_WatchedTransport``)."""

    unreached: bool = False  # a request could not connect: none of its bytes left
    maybe_sent: bool = False  # a request connected (or failed in a way that may have sent it)

    @property
    def nothing_sent(self) -> bool:
        return self.unreached and not self.maybe_sent


# The call being sent, seen by the transport: the SDK runs each POST in its sender's context.
_SENDING: contextvars.ContextVar[_Sending | None] = contextvars.ContextVar(
    "odoo_mcp_guard_sending", default=None
)


class _WatchedTransport(httpx2.AsyncBaseTransport):
    """The upstream's HTTP transport, telling a call whose request never connected
    (``ConnectError``: nothing was sent) from one that may have reached the upstream."""

    def __init__(self) -> None:
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        sending = _SENDING.get()
        try:
            response = await self._inner.handle_async_request(request)
        except (httpx2.ConnectError, httpx2.ConnectTimeout):
            if sending is not None:
                sending.unreached = True
            raise
        except BaseException:
            if sending is not None:
                sending.maybe_sent = True
            raise
        if sending is not None:
            sending.maybe_sent = True
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


# --- configuration ------------------------------------------------------------------------


@dataclass
class UpstreamConfig:
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    server_name: str | None = None
    mode: str = "auto"  # the upstream session's era: auto (2026-07-28 when offered) | legacy
    # Tools the operator declares as changing connections (--connection-tool), whatever
    # their wording says.
    connection_tools: frozenset[str] = frozenset()

    @property
    def server_id(self) -> str:
        """The name approvals, pinned definitions and per-server rules are kept under:
        --server-name, else a name derived from the whole upstream (``derived_server_name``):
        a readable part (the program's name, or the URL's host[:port]) and a digest of the
        whole command line or URL, so that two upstreams of one program (or on one host) are
        two servers (outside round 18, F1)."""
        if self.server_name:
            return self.server_name
        return derived_server_name(self.command, self.url, self.env, self.headers)


def derived_server_name(
    command: Sequence[str] | None,
    url: str | None,
    env: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """``python /x/a/server.py`` → ``server~1a2b3c4d``, ``http://h:8069/a/mcp`` →
    ``h:8069~5e6f7a8b``: the digest covers the whole normalised upstream (``upstream_key``),
    its --upstream-env and --upstream-header included (``ODOO_URL=https://prod`` and
    ``=https://test`` behind one command are two servers: outside round 19, F2)."""
    if url:
        parts = urlsplit(url)
        host = parts.hostname or "upstream"
        readable = f"{host}:{parts.port}" if parts.port else host
    else:
        assert command
        readable = derived_program_name(command)
    key = [*upstream_key(command, url), *_settings_key(env or {}, headers or {})]
    digest = hashlib.sha256(canonical_bytes(key)).hexdigest()[:8]
    return f"{readable[:120]}{DERIVED_SERVER_MARK}{digest}"


def upstream_key(command: Sequence[str] | None, url: str | None) -> list[str]:
    """What identifies an upstream, without its secrets: the URL's scheme, host, port, path
    and query (no secret parameter, user, password or header), or the command line,
    secret values hidden and paths made absolute (``server.py`` run here is not ``server.py``
    run elsewhere)."""
    if url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
        query = [
            f"{key}={redact_text(value)}"
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if not is_secret_query_key(key)
        ]
        path = parts.path or "/"
        return ["url", scheme, (parts.hostname or "").lower(), str(port), path, *query]
    assert command
    secrets_of = operator_secrets(UpstreamConfig(command=list(command)))
    words = ["command"]
    for word in command:
        for secret in sorted(secrets_of, key=len, reverse=True):
            word = word.replace(secret, "<secret>")
        word = redact_text(word)
        option, equals, value = word.partition("=")
        as_option = equals and word.startswith("-")
        words.append(f"{option}={_as_path(value)}" if as_option else _as_path(word))
    return words


def _settings_key(env: Mapping[str, str], headers: Mapping[str, str]) -> list[str]:
    """The upstream's --upstream-env and --upstream-header as part of what identifies it
    (they may choose its target: ``ODOO_URL``, ``X-Odoo-Database``), a value under a secret
    name (``is_secret_key``: ``ODOO_PASSWORD``, ``Authorization``) by its name only, so a
    rotated credential is the same server; URLs without their credentials (``redact_text``).
    Only 8 hex digits of the whole reach the name."""

    def word(kind: str, name: str, value: str) -> str:
        return f"{kind}:{name}=" + ("<secret>" if is_secret_key(name) else redact_text(value))

    words = [word("env", name, value) for name, value in sorted(env.items())]
    words += [
        word("header", name.strip().lower(), value)
        for name, value in sorted(headers.items(), key=lambda item: item[0].strip().lower())
    ]
    return words


def _as_path(word: str) -> str:
    """An absolute, normalised path for a word that names one (it holds a separator, or a
    file of that name is here); other words as they are."""
    if not word or "://" in word or word.startswith("-"):
        return word
    if os.sep in word or (os.altsep and os.altsep in word) or os.path.exists(word):
        return os.path.normpath(os.path.abspath(os.path.expanduser(word)))
    return word


# Programs that run another one, named by their first argument that is not an option.
_LAUNCHERS = {
    "uvx",
    "npx",
    "pnpx",
    "bunx",
    "uv",
    "pipx",
    "node",
    "deno",
    "bun",
    "docker",
    "podman",
    "env",
    "sh",
    "bash",
}
_LAUNCHER_WORDS = {"run", "tool", "exec", "x", "dlx"}  # `uv tool run`, `pnpm dlx`, ...


def derived_program_name(command: Sequence[str]) -> str:
    """``uvx odoo-claude-mcp`` → odoo-claude-mcp, ``python /x/server.py --port 1`` → server,
    ``npx -y @scope/server-files /tmp`` → server-files, ``/opt/bin/odoo-mcp`` → odoo-mcp."""
    program = Path(command[0]).name or "upstream"
    launcher = program in _LAUNCHERS or program.startswith("python")
    # Never a word the redaction would hide ("--api-key X", "token=X", a URL's password):
    # the name is stored and shown everywhere.
    shown_words = set(redact_text(shlex.join(command)).split())
    if launcher:
        for word in command[1:]:
            if word.startswith("-") or word in _LAUNCHER_WORDS or "=" in word:
                continue
            if shlex.quote(word) not in shown_words:
                continue  # the value of a secret option
            name = word.rstrip("/").rsplit("/", 1)[-1]
            name = name.split("@", 1)[0] if not name.startswith("@") else name
            for suffix in (".py", ".js", ".mjs", ".ts"):
                name = name.removesuffix(suffix)
            if name:
                program = name
            break
    return program[:200] if redact_text(program) == program else "upstream"


def parse_env(items: list[str]) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--upstream-env {item!r}: expected KEY=VALUE")
        env[key.strip()] = value
    return env


def parse_headers(items: list[str]) -> dict[str, str]:
    headers = {}
    for item in items:
        key, sep, value = item.partition(":")
        if not sep or not key.strip() or any(ch.isspace() for ch in key.strip()):
            raise ValueError(f"--upstream-header {item!r}: expected 'Name: value'")
        headers[key.strip()] = value.strip()
    return headers


# --- secrets known by value ----------------------------------------------------------------

# How many secrets of forwarded calls are remembered (the most recent ones).
FORWARDED_SECRETS = 32


class KnownSecrets:
    """Values this proxy knows are secret, hidden by value (``policy_core._known_forms``: as
    they are, escaped, encoded, in base64, spaced out, in halves...) in everything that comes
    back from the upstream (results, errors, listings, questions, its stderr, and so the audit
    trail) and in the proxy's own log lines: the operator's credentials for the upstream
    (``operator_secrets``: every --upstream-env and --upstream-header value but plainly not
    credentials, the --upstream-url's password, query values and path tokens, the values of
    secret options of --upstream-command), and the secrets of the calls
    forwarded (``argument_secrets``: an ``odoo_connect``'s password or api_key), the last
    FORWARDED_SECRETS of them, whichever session sent them: an upstream may echo a
    connection's password in any later answer, or on its stderr, which all sessions share.

    Pinned definitions (``hide(pinned=True)``: the catalog, ``tools list``/``show``, Odoo's
    ``mcp.tool``) hide them all too (outside round 23), but for a forwarded value that the
    definitions listed when it was first sent already held (``add_forwarded(listed=)``: a
    password such as "note"): no news from the upstream, and hidden it would change the pins
    of tools that never echoed anything with each call (refused until accepted again). A
    normal run (no echo) so pins every tool alike across calls, restarts and replicas; a
    definition that starts repeating a client's password is a changed one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._operator: tuple[str, ...] = ()
        self._forwarded: deque[str] = deque(maxlen=FORWARDED_SECRETS)
        self._listed: set[str] = set()  # forwarded values the listed definitions held

    def set_operator(self, values: Collection[str]) -> None:
        with self._lock:
            self._operator = tuple(sorted(set(values)))

    def add_forwarded(
        self, values: Collection[str], *, listed: Callable[[], Any] | None = None
    ) -> None:
        """Remember ``values`` (the secrets of a call forwarded); ``listed``: the definitions
        the upstream lists now, before the call (a value they hold is not hidden in pins),
        asked only for a value not already remembered (not on every call's path)."""
        with self._lock:
            new = [value for value in values if value not in self._forwarded]
        definitions = listed() if new and listed is not None else None
        held = {value for value in new if definitions is not None and _holds(definitions, value)}
        with self._lock:
            for value in values:
                if value in self._forwarded:
                    self._forwarded.remove(value)
                elif value in held:
                    self._listed.add(value)
                self._forwarded.append(value)
            self._listed &= set(self._forwarded)

    def operator(self) -> tuple[str, ...]:
        with self._lock:
            return self._operator

    def values(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted({*self._operator, *self._forwarded}))

    def pinned(self) -> tuple[str, ...]:
        """The secrets hidden in pinned definitions: all but the forwarded values the listed
        definitions already held when they were sent."""
        with self._lock:
            return tuple(sorted({*self._operator, *(set(self._forwarded) - self._listed)}))

    def hide(self, value: Any, *, pinned: bool = False) -> Any:
        """``value`` (a string, or a dumped message) with every known secret replaced
        (``pinned``: a definition as it is pinned, with the secrets ``pinned()`` names)."""
        pattern = _known_forms(self.pinned() if pinned else self.values())
        # policy_core's walk: past MAX_DEPTH a value is replaced by the marker, never shown
        return value if pattern is None else _hide_known(value, pattern, 0)


def _holds(value: Any, secret: str) -> bool:
    """Whether ``value`` (dumped definitions) shows ``secret`` in a form hidden by value."""
    pattern = _known_forms((secret,))
    return pattern is not None and _hide_known(value, pattern, 0) != value


KNOWN_SECRETS = KnownSecrets()


# What plainly is not a credential the operator gives the upstream, by its name: an
# environment variable naming a place, an address, a user, a setting (PATH, LANG, ODOO_URL,
# ODOO_DB, ODOO_USER, LOG_LEVEL...); a URL's query parameter of the same kind ("db", "page");
# a header that only says what is sent or accepted. Every other value is a known secret.
_PLAIN_ENV = re.compile(
    r"(?i)(?:PATH|HOME|PWD|OLDPWD|SHELL|TERM|USER|LOGNAME|HOSTNAME|TMPDIR|TEMP|TMP|LANG"
    r"|LANGUAGE|LC_\w+|TZ|DEBUG|VERBOSE|NO_COLOR|COLUMNS|LINES|LOG\w*|PYTHON\w*|NODE_\w+"
    r"|NPM_CONFIG_\w+|UV_\w+|XDG_\w+|DISPLAY|EDITOR|PAGER"
    r"|\w*_(?:URL|URI|HOST|HOSTNAME|PORT|DB|DATABASE|DBNAME|USER|LOGIN|USERNAME|DIR|PATH|FILE"
    r"|HOME|LEVEL|DEBUG|TIMEOUT|PROTOCOL|SCHEME|MODE|ENV|ENVIRONMENT|REGION|LOCALE|LANG|TZ"
    r"|VERSION|VERIFY|VERIFY_SSL|SSL|FORMAT|NAME|LIMIT|COUNT|SIZE|WORKERS|RETRIES|DATA|ROOT"
    r"|CACHE|CONFIG|CONF|STATE|BIN|CMD|COMMAND))"
)
_PLAIN_QUERY = re.compile(
    r"(?i)(?:db|database|dbname|user|username|login|page|per_page|limit|offset|lang|locale"
    r"|tz|format|mode|version|v|debug|protocol|region|\w*_(?:db|user|name|page|lang))"
)
_PLAIN_HEADERS = frozenset(
    {"accept", "accept-language", "accept-encoding", "accept-charset", "content-type"}
    | {"content-language", "user-agent", "mcp-protocol-version", "cache-control", "pragma"}
    | {"connection", "origin", "referer", "x-requested-with"}
)
# A value too plain to hide without destroying what is shown: digits, a boolean.
_PLAIN_VALUE = re.compile(r"(?i)\d+|true|false|yes|no|on|off|none|null")


def _plain_value(value: str) -> bool:
    value = value.strip()
    return len(value) < MIN_KNOWN_SECRET or _PLAIN_VALUE.fullmatch(value) is not None


def _plain_env_value(value: str) -> bool:
    """Too plain to hide (_plain_value), or a file or directory of this host (a data path)."""
    if _plain_value(value):
        return True
    with suppress(OSError, ValueError):
        return os.path.isabs(value) and os.path.exists(value)
    return False


def _url_secrets(url: str) -> set[str]:
    """The password of a URL's userinfo and the values of its query and fragment parameters
    (an Azure Function's "?code=", a signature), but for those plainly not credentials."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return set()
    found = {password, unquote(password)} if password else set()
    for key, value in parse_qsl(parts.query + "&" + parts.fragment, keep_blank_values=False):
        if is_secret_query_key(key) or not (_PLAIN_QUERY.fullmatch(key) or _plain_value(value)):
            found.add(value)
    return found


def _is_url(value: str) -> bool:
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    return bool(parts.scheme and parts.netloc) and not any(ch.isspace() for ch in value.strip())


def _header_secrets(value: str) -> set[str]:
    """A secret header's value, and the credentials in it ("Bearer X", "Basic base64(u:pw)")."""
    found = {value}
    scheme, _, credentials = value.partition(" ")
    credentials = credentials.strip()
    if credentials:
        found.add(credentials)
        if scheme.lower() == "basic":
            with suppress(ValueError, UnicodeDecodeError):
                found.add(base64.b64decode(credentials, validate=True).decode().partition(":")[2])
    return found


def operator_secrets(config: UpstreamConfig) -> set[str]:
    """The credentials the operator gives the upstream (see ``KnownSecrets``): every
    --upstream-env value but those whose name plainly is not a credential's (``_PLAIN_ENV``)
    or too plain to hide (``_plain_env_value``), and of a URL its password and query values;
    every --upstream-header value but a plain header's (``_PLAIN_HEADERS``); the password,
    query values and path segments that may be credentials of the --upstream-url
    (``policy_core.url_path_secrets``); the values of secret options of --upstream-command."""
    found: set[str] = set()
    for key, value in config.env.items():
        if "://" in value:
            found |= _url_secrets(value)
        secret_name = is_secret_key(key) and key.upper() not in ("PWD", "OLDPWD")
        plain = _PLAIN_ENV.fullmatch(key) or _plain_env_value(value) or _is_url(value)
        if secret_name or not plain:
            found.add(value)
    if config.url:
        # and what in its path may be an access token (as hosted MCP servers take one:
        # "/t/TOKEN/mcp"). Not a command's URL: what names a command upstream would change.
        found |= _url_secrets(config.url) | set(url_path_secrets(config.url))
    for name, value in config.headers.items():
        if is_secret_key(name) or not (
            name.strip().lower() in _PLAIN_HEADERS or _plain_value(value)
        ):
            found |= _header_secrets(value)
    command = list(config.command or ())
    for index, word in enumerate(command):
        option, equals, value = word.lstrip("-").partition("=")
        if word.startswith("-") and is_secret_key(option):
            if equals:
                found.add(value)
            elif index + 1 < len(command):
                found.add(command[index + 1])
        elif "://" in word:
            found |= _url_secrets(word)
    return {value for value in found if value and value.strip()}


def argument_secrets(arguments: Any, depth: int = 0) -> set[str]:
    """The values under secret names in a call's arguments (a connection's password)."""
    found: set[str] = set()
    if depth > 16:
        return found
    if isinstance(arguments, dict):
        for key, value in arguments.items():
            if isinstance(value, str) and is_secret_key(key) and value.strip():
                found.add(value)
            elif isinstance(value, (dict, list)):
                found |= argument_secrets(value, depth + 1)
    elif isinstance(arguments, list):
        for item in arguments:
            found |= argument_secrets(item, depth + 1)
    return found


# --- the upstream session ------------------------------------------------------------------


# The longest piece of an upstream's stderr redacted as one line (a longer line is cut).
STDERR_LINE_LIMIT = 64 * 1024


class RedactedStderr:
    """What an upstream command writes on its stderr, copied onto the proxy's stderr line by
    line through the one redaction (policy_core.LineRedaction, control characters escaped
    by identity.shown): an upstream may log the
    arguments it was given, a URL with its password among them. One pipe for every start
    of the command; a thread copies it until the proxy exits."""

    def __init__(self) -> None:
        read, write = os.pipe()
        self.file = os.fdopen(write, "w")  # the child's stderr (stdio_client's errlog)
        self._thread = threading.Thread(
            target=self._copy, args=(read,), name="upstream-stderr", daemon=True
        )
        self._thread.start()

    @staticmethod
    def _copy(fd: int) -> None:
        # across lines: a private key block is hidden whole, not only its BEGIN line
        # a line cut at STDERR_LINE_LIMIT: redacted with its continuation; known secrets by value
        redaction = LineRedaction(known=KNOWN_SECRETS.values)
        # a block of base64 wrapped in lines: judged whole (its lines held until its last)
        with os.fdopen(fd, "rb") as source:
            while raw := source.readline(STDERR_LINE_LIMIT):
                cut = not raw.endswith(b"\n")
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                RedactedStderr._write(redaction.lines(text, cut=cut))
        RedactedStderr._write(redaction.finish())

    @staticmethod
    def _write(lines: list[str]) -> None:
        if not lines:
            return
        try:
            # escaped: an ESC or a CR from the upstream cannot forge the guard's log
            sys.stderr.write("".join(shown(line) + "\n" for line in lines))
            sys.stderr.flush()
        except (OSError, ValueError):  # our stderr is gone: keep draining the pipe
            pass

    def close(self, wait: float = 2.0) -> None:
        """Stop feeding the pipe and let the copy finish what the command wrote (up to
        ``wait`` seconds): its last lines are shown before the proxy's own."""
        self.file.close()
        self._thread.join(wait)


class Upstream:
    """One persistent client session to the upstream, reconnected when it drops."""

    def __init__(self, config: UpstreamConfig, proxy: ProxyServer):
        self.config = config
        self.proxy = proxy
        self.client: Client | None = None
        self._stderr: RedactedStderr | None = None  # an upstream command's, once started
        # The HTTP client of the session being opened, and of ``client`` once it is served:
        # what the raw path posts on (``ProxyServer._send_raw``); None: no raw path.
        self._opening_http: httpx2.AsyncClient | None = None
        self.raw_http: httpx2.AsyncClient | None = None
        self._raw_ids = 0
        self.connected = anyio.Event()
        self._broken = anyio.Event()
        self._refresh = anyio.Event()
        self.connections = 0
        # Why the last attempt to connect failed (None while connected, or not known yet).
        self.outage: str | None = None
        # The first attempt's outcome, awaited before anything is served (``ProxyServer.
        # started``); a command that cannot start then ends the proxy instead of serving.
        self.attempted = anyio.Event()
        self.serving = False
        self.start_failure: str | None = None
        # Why the proxy dropped the session itself (said to the calls it cut short).
        self.broken_by = ""
        # Messages of the upstream discarded as not JSON-RPC and naming no request (so far).
        self.unreadable_lines = 0

    def _client(self) -> Client:
        guard_unparseable_answers()  # an unparseable answer fails its call, unlogged
        kwargs: dict[str, Any] = {
            "mode": self.config.mode,
            "read_timeout_seconds": CALL_TIMEOUT_SECONDS,
            "elicitation_callback": self.proxy.upstream_elicitation,
            "message_handler": self._on_message,
        }
        if self.config.url:
            http = httpx2.AsyncClient(
                headers=self.config.headers,
                timeout=httpx2.Timeout(CALL_TIMEOUT_SECONDS),
                transport=_WatchedTransport(),
            )
            self._opening_http = http
            return Client(streamable_http_client(self.config.url, http_client=http), **kwargs)
        assert self.config.command
        env = dict(os.environ)
        # The proxy's own secrets are not the upstream's business.
        for key in ("MCP_GUARD_TOKENS", "ODOO_API_KEY", "ODOO_PASSWORD", "MCP_GUARD_PRINCIPAL"):
            env.pop(key, None)
        env.update(self.config.env)
        params = StdioServerParameters(
            command=self.config.command[0], args=self.config.command[1:], env=env
        )
        if self._stderr is None:
            self._stderr = RedactedStderr()
        return Client(stdio_client(params, errlog=self._stderr.file), **kwargs)

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, UnreadableLine):
            # Which call it answers (if any) cannot be told: it is discarded, and the session
            # kept (the upstream's other calls go on). A call it did answer is not left to
            # hang: it fails when the upstream timeout passes (``_no_answer``), audited.
            self.unreadable_lines += 1
            log.warning(
                "upstream %s: %s: discarded, not shown (a call it answered fails after %g s)",
                self.proxy.server_id,
                message,
                CALL_TIMEOUT_SECONDS,
            )
            return
        method = getattr(message, "method", None) or getattr(
            getattr(message, "root", None), "method", None
        )
        if method == "notifications/tools/list_changed":
            self.list_changed()

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                async with self._client() as client, anyio.create_task_group() as tg:
                    if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
                        # Listening before the first listing: no change can fall in between.
                        await tg.start(self._listen, client)
                    await self.proxy.load_tools(client)
                    self.raw_http = self._raw_http_for(client)
                    self.client = client
                    self.connections += 1
                    self.broken_by = ""
                    if self.outage is not None:
                        log.warning("upstream %s is back", self.proxy.server_id)
                    self.outage = None
                    self.attempted.set()
                    self.connected.set()
                    backoff = 0.2
                    log.info("upstream connected (%s)", client.protocol_version)
                    tg.start_soon(self._refresher, client)
                    await self._broken.wait()
                    tg.cancel_scope.cancel()
            except Exception as exc:  # the upstream went away or never came: reconnect
                cause = _cause(exc, self.config)
                if self.connections == 0 and self.config.command and not self.serving:
                    # A command that cannot start: the proxy fails at start (started()).
                    self.start_failure = cause
                    if self._stderr is not None:  # its own messages shown before ours
                        self._stderr.close()
                        self._stderr = None
                    self.attempted.set()
                    return
                if cause != self.outage:  # once per cause, not every backoff
                    log.warning("upstream %s is down: %s", self.proxy.server_id, cause)
                self.outage = cause
                self.attempted.set()
            self.client = None
            self.raw_http = None
            self.connected = anyio.Event()
            self._broken = anyio.Event()
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _raw_http_for(self, client: Client) -> httpx2.AsyncClient | None:
        """The HTTP client a call may be posted on as raw JSON-RPC: only to an HTTP upstream
        whose session is 2026-07-28 (stateless: no session to carry, and nothing is asked
        on a call's own stream, an elicitation being an ``input_required`` result)."""
        if (
            not PASSTHROUGH
            or not self.config.url
            or client.protocol_version not in MODERN_PROTOCOL_VERSIONS
            or not raw_calls_supported(client.session)
        ):
            return None
        return self._opening_http

    def next_raw_id(self) -> str:
        self._raw_ids += 1
        return f"guard-{self._raw_ids}"

    def list_changed(self) -> None:
        """The upstream says its tools changed: list them again (and pin what changed)."""
        self._refresh.set()

    def mark_broken(self) -> None:
        """The session is gone: no call may use it; the run loop reconnects."""
        self.client = None
        self.raw_http = None
        self.connected = anyio.Event()
        self._broken.set()

    async def _refresher(self, client: Client) -> None:
        while True:
            await self._refresh.wait()
            self._refresh = anyio.Event()
            try:
                await self.proxy.load_tools(client)
            except Exception as exc:
                log.warning("cannot refresh the upstream tools: %s", _describe(exc))
                self.mark_broken()
                return

    async def _listen(
        self, client: Client, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        started = False
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                task_status.started()
                started = True
                async for _event in subscription:
                    self._refresh.set()
        except Exception as exc:
            if started:  # the stream broke: so did the session, most likely
                log.warning("upstream subscription lost: %s", _describe(exc))
            else:  # no listen support upstream: list changes go unseen
                log.info("upstream subscriptions/listen unavailable: %s", _describe(exc))
        if started:
            self.mark_broken()
        else:
            task_status.started()

    async def first_listing(self) -> None:
        """Just after start, give the upstream a moment to answer its first tools/list."""
        if self.connections == 0 and self.client is None:
            with anyio.move_on_after(CONNECT_WAIT_SECONDS):
                await self.attempted.wait()  # connected, or known to be down

    async def ready(self) -> Client:
        if self.client is not None:  # the common case: no cancel scope to set up
            return self.client
        with anyio.move_on_after(CONNECT_WAIT_SECONDS):
            # Until it is back, or an attempt to reach it has failed (said at once).
            while self.client is None and self.outage is None:
                event = self.connected
                with anyio.move_on_after(0.25):
                    await event.wait()
        if self.client is None:
            cause = self.outage or f"no answer within {CONNECT_WAIT_SECONDS:g} s"
            raise UpstreamFailure(upstream_down(self.proxy.server_id, cause))
        return self.client


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _cause(exc: BaseException, config: UpstreamConfig) -> str:
    """Why an attempt to reach the upstream failed, in a few words; a URL in them (where the
    upstream redirects to) shown without what in its path may be a credential, and the known
    secrets hidden (the line is a call's refusal, so audited, and logged)."""
    return KNOWN_SECRETS.hide(hide_url_paths(_cause_text(exc, config)))


def _cause_text(exc: BaseException, config: UpstreamConfig) -> str:
    leaf = _leaf(exc)
    program = config.command[0] if config.command else ""
    if isinstance(leaf, ListingRefused):
        return str(leaf)
    if isinstance(leaf, ValidationError):  # one line, not pydantic's (outside round 23)
        count = leaf.error_count()
        return f"its {leaf.title} is not valid MCP ({count} error{'' if count == 1 else 's'})"
    if isinstance(leaf, FileNotFoundError) and program:
        where = "" if os.sep in program else " on PATH"
        return f"{shlex.quote(program)} was not found{where}"
    if isinstance(leaf, PermissionError) and program:
        return f"{shlex.quote(program)} cannot be run (permission denied)"
    if isinstance(leaf, MCPError) and leaf.error.code == types.CONNECTION_CLOSED and program:
        return "it exited before completing the MCP handshake (its own messages, if any, are above)"
    if isinstance(leaf, httpx2.ConnectError | httpx2.ConnectTimeout) and config.url:
        parts = urlsplit(config.url)
        where = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        return f"{where} does not accept connections ({leaf})"
    return _describe(leaf)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"[:300]


# One listing of the upstream's tools is bounded (outside round 18, F6): an upstream that
# pages forever (the same nextCursor again, or new ones without end) fails the listing, and
# with it the session: calls are refused with the reason, as when the upstream is down.
LISTING_PAGES = 100
LISTING_TOOLS = 10_000


class ListingRefused(Exception):
    """The upstream's tools/list cannot be used; the message says why, in one line."""


# What a complete listing holds besides its connections: their number, nothing else.
_LISTING_COUNT = "count"


def _complete_listing(payload: Any) -> list[Any] | None:
    """The items of a connection listing (``{"connections": [...]}``, optionally with
    ``"count"``, the number of items; or a bare list), or None for any other shape. Fail
    closed (outside rounds 22 and 23): a listing may say in any words that it is one page of
    more, that it filtered or hid some (``next``, ``links.next``, ``@odata.nextLink``,
    ``truncated_at``, ``meta.total``, a note), or list connections under another key. An alias
    such a listing hides would be judged new, and an ``odoo_connect`` of it let through without
    approval would replace it; so only the shapes odoo-claude-mcp and this guard answer are
    trusted, and any other judges the call as a replacement."""
    if isinstance(payload, list):
        return payload
    if not isinstance(payload, dict) or not isinstance(payload.get("connections"), list):
        return None
    items: list[Any] = payload["connections"]
    others = set(payload) - {"connections"}
    if others - {_LISTING_COUNT}:
        return None
    count = payload.get(_LISTING_COUNT, len(items))
    if type(count) is not int or count != len(items):
        return None
    return items


def _listed_connections(result: Any, key: str) -> dict[str, dict[str, Any]] | None:
    """The connections a successful answer of a list tool lists, by alias (the items' ``key``,
    else their ``alias``), or None when it cannot be read (``_complete_listing``)."""
    if not isinstance(result, types.CallToolResult) or result.is_error:
        return None
    payload: Any = result.structured_content
    if isinstance(payload, dict) and set(payload) == {"result"}:
        # the SDK's structured form of a tool returning a string ({"result": "<the JSON>"},
        # read from its text) or a list ({"result": [...]}): outside rounds 33 and 34
        wrapped = payload["result"]
        payload = (
            wrapped if isinstance(wrapped, list) else None if isinstance(wrapped, str) else payload
        )
    if payload is None:
        text = "".join(b.text for b in result.content if isinstance(b, types.TextContent))
        try:
            payload = json.loads(text)
        except ValueError:
            return None
    items = _complete_listing(payload)
    if items is None:
        return None
    aliases = [item.get(key) if isinstance(item, dict) else None for item in items]
    if key != "alias" and not all(isinstance(a, str) for a in aliases):
        aliases = [item.get("alias") if isinstance(item, dict) else None for item in items]
    if not all(isinstance(a, str) for a in aliases):
        return None
    return {alias: item for alias, item in zip(aliases, items, strict=True)}


async def _listing(client: Client) -> list[types.Tool]:
    """All pages of the upstream's tools/list: at most LISTING_PAGES pages and LISTING_TOOLS
    tools, no cursor twice, all within one CALL_TIMEOUT_SECONDS."""
    fetched: list[types.Tool] = []
    seen: set[str] = set()
    cursor = None
    with anyio.move_on_after(CALL_TIMEOUT_SECONDS) as scope:
        for _page in range(LISTING_PAGES):
            page = await client.list_tools(cursor=cursor, cache_mode="bypass")
            fetched.extend(page.tools)
            if len(fetched) > LISTING_TOOLS:
                raise ListingRefused(f"its tools/list names more than {LISTING_TOOLS} tools")
            cursor = page.next_cursor
            if not cursor:
                return fetched
            if cursor in seen:
                raise ListingRefused("its tools/list returned the same nextCursor twice")
            seen.add(cursor)
    if scope.cancelled_caught:
        raise ListingRefused(f"its tools/list did not end within {CALL_TIMEOUT_SECONDS:g} s")
    raise ListingRefused(f"its tools/list did not end within {LISTING_PAGES} pages")


# --- the proxy -----------------------------------------------------------------------------


class ProxyServer(Frontend):
    def __init__(
        self,
        guard: Guard,
        store: GuardStore,
        config: UpstreamConfig,
        *,
        stdio_principal: str | None = None,
    ):
        super().__init__(
            guard,
            store,
            name=PROXY_NAME,
            instructions="Tools of another MCP server behind a policy guard. "
            + APPROVAL_INSTRUCTIONS,
            stdio_principal=stdio_principal,
            # Outermost: seals the requestState handed to clients, verifies what comes back.
            middleware=(
                RequestStateBoundary(
                    RequestStateSecurity.ephemeral(ttl=STATE_TTL_SECONDS),
                    default_audience=PROXY_NAME,
                ),
            ),
        )
        self.config = config
        self.server_id = config.server_id
        KNOWN_SECRETS.set_operator(operator_secrets(config))
        set_known_secrets(KNOWN_SECRETS.values)  # the proxy's own log lines too
        self.upstream = Upstream(config, self)
        self.tools: dict[str, types.Tool] = {}  # what is listed: upstream tools, pinned form
        self.changed: dict[str, PinnedTool] = {}  # tools refused until a change is accepted
        self._current: dict[str, types.Tool] = {}  # the upstream's tools as listed (redacted)
        self._served: dict[str, types.Tool] = {}  # ... as the upstream serves them (pinned by)
        self._listed_twice: dict[str, list[types.Tool]] = {}  # names listed more than once
        self._fresh_listing = False  # True while the catalog of a listing just made is applied
        self._validators: dict[str, Any] = {}  # compiled input schemas, by tool
        self._upserts: dict[str, bool] = {}  # whether a tool adds-or-updates connections
        # Connection changes run one at a time: between "does the alias exist?" and the
        # upstream's write, no other change through this proxy can create it (the lease in
        # the shared store does the same across replicas).
        self._upsert_lock = anyio.Lock()
        self._leases: Leases | None = None
        self._local = _LocalRecord()  # the record without a shared store: this process's
        # Every call on the upstream session that has not been answered yet (the clients'
        # and the proxy's own), with the 2025-era client context that may be asked for it
        # (None: a 2026-07-28 client, or the proxy itself, which nobody can ask mid-call).
        self._in_flight: dict[object, _Flight] = {}

    # -- tools/list ------------------------------------------------------------------------

    async def load_tools(self, client: Client) -> None:
        """Fetch the upstream tools (all pages), pin them, and announce a changed list."""
        fetched = await _listing(client)
        usable: dict[str, types.Tool] = {}
        listings: dict[str, list[types.Tool]] = {}
        for tool in fetched:
            if check_tool_name(tool.name) is not None:
                log.warning("upstream tool %r ignored (bad name)", tool.name[:80])
            elif KNOWN_SECRETS.hide(tool.name) != tool.name:
                # Listed as "get_***" it would be served under a name nobody was shown, and
                # its real name would carry the secret into the audit, the catalog and the
                # metrics' labels (outside round 20, F1): not served at all.
                log.warning("upstream tool %r ignored (its name holds a secret)", tool.name)
            else:
                usable.setdefault(tool.name, tool)
                listings.setdefault(tool.name, []).append(tool)
        # A name listed more than once (on one page or across pages) is not "the first one":
        # which definition the upstream runs cannot be known. It is a change of that tool
        # (pinned as all its listings, so shown as CHANGED) and refused while the upstream
        # lists it more than once, accepted or not (outside round 17, F2).
        twice = {name: tools for name, tools in listings.items() if len(tools) > 1}
        for name in twice:
            log.warning("upstream tool %r listed %d times: refused", name, len(twice[name]))
        self._listed_twice = twice
        self._served = usable
        self._current = {name: redacted_tool(tool) for name, tool in usable.items()}
        self.catalog_ready = True
        self._fresh_listing = True
        try:
            await self.publish_catalog()
        finally:
            self._fresh_listing = False

    def served_definitions(self) -> dict[str, dict[str, Any]]:
        # Pinned redacted, hashed with the served definition (policy_core.pinned_definition):
        # a change the redaction hides is still a change.
        return {name: self._pin_form(name) for name in self._served}

    def _pin_form(self, name: str) -> dict[str, Any]:
        """The definition ``name`` is pinned as: its listing's, or, listed more than once,
        all of them (each description shown, the last one's schema), so that the pin shows
        a change and its hash changes with any of them."""
        listed = self._listed_twice.get(name)
        if not listed:
            return _pinned_form(self._served[name])
        forms = [_pinned_form(tool) for tool in listed]
        texts = [str(form.get("description", "")) for form in forms]
        head = f"[listed {len(forms)} times by the upstream; refused while it is] "
        both = {**forms[-1], "description": head + "\n---\n".join(texts)}
        both["inputSchema"] = {
            **(both.get("inputSchema") if isinstance(both.get("inputSchema"), dict) else {}),
            "x-mcp-guard-listings": forms,
        }
        return both

    async def catalog_applied(self, pins: dict[str, PinnedTool]) -> None:
        """List each tool in its pinned form; a changed one is refused until accepted."""
        tools, changed = {}, {}
        relist = False
        for name, tool in self._current.items():
            pin = pins[name]
            if not pin.changed and name in self.changed and not self._fresh_listing:
                # Accepted since (Odoo's acceptance arrives with a catalog report made of
                # what was last listed): served only once a fresh listing shows the upstream
                # serves the accepted definition still (outside round 17, F10).
                pin, relist = self.changed[name], True
            if pin.changed:
                changed[name] = pin
                # Listed as accepted: a changed description never reaches the agent unreviewed.
                tool = _listed_pin(pin.definition)
            tools[name] = tool
        before = (self.tools, set(self.changed))
        self.tools, self.changed = tools, changed
        self._validators, self._upserts = {}, {}
        if changed:
            log.warning("upstream tools changed since pinned: %s", ", ".join(sorted(changed)))
        if before != (tools, set(changed)) and before != ({}, set()):
            await self.notify_tools_changed()
        self._visible = tuple(self._visible_names())
        if relist:
            self.upstream.list_changed()

    def _visible_names(self) -> list[str]:
        try:
            return self.guard.visible(list(self.tools))
        except Exception:
            log.exception("cannot compute the visible tools")
            return []

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        self._remember_session(ctx)
        await self.upstream.first_listing()
        tools = self.tools
        listed = [tools[n] for n in self._visible_names() if n in tools]
        cause = self.outage()
        if cause is None:
            return types.ListToolsResult(tools=listed)
        # Said where a listing can say it: its _meta (the list may be empty or stale).
        down = {"server": self.server_id, "status": "down", "cause": cause}
        return types.ListToolsResult(tools=listed, _meta={UPSTREAM_META: down})

    # -- what the guard asks (guard.Served) ------------------------------------------------

    def served(self) -> Collection[str]:
        return self.tools.keys()

    async def definition_problem(self, tool: str) -> Refusal | None:
        refusal = await super().definition_problem(tool)
        if refusal is None and tool in self._listed_twice:
            message = (
                f"Refused: the upstream lists '{tool}' more than once; which definition it "
                "would run cannot be known, so it is not called while it does (accepted or "
                "not). Nothing was sent upstream."
            )
            return Refusal("denied", message, {"status": "definition_changed", "tool": tool})
        if refusal is not None or tool not in self.changed or not await self._still_changed(tool):
            return refusal
        message = (
            f"Refused: the upstream changed the definition of '{tool}' since it was accepted; "
            "it cannot be called until a Manager accepts the new definition "
            f"({self.store.accept_hint(self.server_id, tool)}). Nothing was sent upstream."
        )
        return Refusal("denied", message, {"status": "definition_changed", "tool": tool})

    def outage(self) -> str | None:
        return self.upstream.outage if self.upstream.client is None else None

    async def started(self) -> None:
        """A command that cannot start ends the proxy here, with one line; an upstream
        slower than CONNECT_WAIT_SECONDS to answer is waited for while serving."""
        with anyio.move_on_after(CONNECT_WAIT_SECONDS):
            await self.upstream.attempted.wait()
        self.upstream.serving = True
        cause = self.upstream.start_failure
        if cause is not None:
            assert self.config.command
            command = hide_url_paths(redact_text(shlex.join(self.config.command)))[:200]
            raise StartFailure(f"the upstream command '{command}' cannot start: {cause}")

    async def readiness_problem(self, tool: str) -> Refusal | None:
        try:  # refused before an approval could be spent on a call that cannot be sent
            await self.upstream.ready()
        except UpstreamFailure as failure:
            UPSTREAM_ERRORS.inc()
            return Refusal("unavailable", str(failure), {"status": "unavailable"})
        return None

    @asynccontextmanager
    async def also_governed_by(
        self, tool: str, arguments: dict[str, Any]
    ) -> AsyncIterator[Sequence[str]]:
        """A change of a connection that exists is a removal as well (invariant 11): governed
        by ``odoo_disconnect`` too; judged as one when the proxy cannot tell. Such calls, and
        removals of a connection the proxy can list, run one at a time, under a lease on the
        upstream's connections shared by the replicas; one whose outcome upstream is unknown
        keeps the lease until it expires. Under it, the replicas' shared record of the
        upstream's aliases (leases.py) is kept: an upsert adds its alias, a removal takes it
        off."""
        removed = self._removed_alias(tool, arguments)
        naming: list[str] = []
        unknown = False  # an unrecognised tool's call the proxy cannot judge by a listing
        others: list[str] = []
        other_names: _Given | None = None
        own: frozenset[str] = frozenset()
        if (tool == REMOVAL_RULE or self._pair(tool) is not None) and tool in self.tools:
            # The pair the proxy knows names the connection it changes by ``alias``; any other
            # argument naming one the proxy knows may be the upstream's key for it
            # ({"alias": "ghost", "name": "prod"}: outside round 27): a change of it as well,
            # judged under the lease, against what is listed there.
            named = (("alias", removed) if tool == REMOVAL_RULE else None) or (
                self._upsert_alias(tool, arguments)
            )
            own = alias_forms(named[1]) if named is not None and named[1] else frozenset()
            besides = named[0] if named is not None else "alias"
            other_names = self._given(tool, arguments, skipped={besides}, whole_only=True)
            if tool == REMOVAL_RULE and removed is None:
                # no alias at all: what its other arguments name is what it removes
                others = await self._named_connections(tool, arguments, besides=besides) or []
                other_names = None
                if others:
                    removed, others = others[0], others[1:]
        elif not self._changes_connection(tool) and removed is None:
            # A tool the catalog does not recognise, given a connection the proxy knows by its
            # alias, is judged a change of that connection (outside round 24); given anything
            # while the upstream's listing cannot be read, of whichever it names (round 34).
            named_now = await self._named_connections(tool, arguments)
            unknown = named_now is None
            naming = named_now or []
        if not self._changes_connection(tool) and removed is None and not naming and not unknown:
            # A data call: what ``connection_binding`` takes to bind it is held until it is
            # done (nothing unless it needs an approval).
            async with AsyncExitStack() as held:
                token = _HELD.set(held)
                try:
                    yield ()
                finally:
                    _HELD.reset(token)
            return
        async with self._upsert_lock:
            key = f"connections:{self.server_id}"
            holder = await self._acquire_lease(key)
            if holder is None:
                raise CallRefused(Refusal("unavailable", LEASE_BUSY, {"status": "busy"}))
            in_doubt = True  # until the upstream's answer (or no call at all) is known
            stake: contextvars.Token[dict[str, Any] | None] | None = None
            change = _Change()
            changing = _CHANGE.set(change)
            try:
                if removed is not None:
                    exists = None
                    listing = await self._listing(tool, "alias")
                    alias: str | None = removed
                elif naming or unknown:
                    exists = None
                    listing = await self._listing(tool, "alias", lister=self._data_lister())
                    alias = naming[0] if naming else None
                else:
                    exists, listing = await self._connection_exists(tool, arguments)
                    if exists is None:
                        log.warning("%s may replace a connection: judged as a replacement", tool)
                    if listing is None and self._pair(tool) is None:
                        # which connection it changes is unknown (it is bound to them all):
                        # what the upstream holds is observed now, so that a listing a client
                        # takes before the approval is no change of what it is bound to
                        listing = await self._listing(tool, "alias", lister=self._data_lister())
                    named = self._upsert_alias(tool, arguments)
                    alias = named[1] if named is not None and self._pair(tool) else None
                if other_names:
                    try:
                        known = set(await self._aliases("known_aliases", key))
                    except Exception as exc:
                        raise self._record_fault(exc) from None
                    others = sorted(
                        a
                        for a in known | set(listing or ())
                        if other_names.names(a) and not alias_forms(a) & own
                    )
                # What the listing says now is recorded, except the aliases it shows otherwise
                # than the replicas' record holds: the upstream's view is not the record's (a
                # stale replica's), and whatever it writes may put them back as it sees them.
                # Each is at stake as a replacement (shown with what the record holds and what
                # the listing says), and the record keeps its view until a call let through
                # (approved as such) is listed after.
                stale = await self._observe(key, listing)
                if stale:
                    log.warning(
                        "the upstream %s lists %d connection(s) otherwise than the replicas' "
                        "record: %s judged as a replacement of each",
                        self.server_id,
                        len(stale),
                        tool,
                    )
                if removed is not None:
                    at_stake = self._stake(tool, "removes", removed, listing, stale=stale)
                elif naming:
                    at_stake = self._named_stake(tool, naming, listing, stale)
                elif unknown:
                    at_stake = self._stake(tool, "removes", None, listing, stale=stale)
                elif exists is False and not stale and not others:
                    at_stake = None
                else:
                    at_stake = self._stake(
                        tool, "replaces", alias, listing, exists=exists, stale=stale
                    )
                if at_stake is not None and others:
                    why = (
                        f"its arguments also name the connection(s) "
                        f"{', '.join(others[:_STAKE_MAX])}: judged a change of each (an "
                        "upstream may key its connections by another argument)"
                    )
                    _add_named(at_stake, others, listing, why)
                # Bound to the connection instance: what the listing says of it and its
                # generation in the replicas' record (a removal and re-creation through the
                # guard is another instance, whatever its values: ABA).
                binding = ""
                generations = await self._generation_binding(key, at_stake)
                if at_stake is not None:
                    binding = connection_identity(redact({**at_stake, "generations": generations}))
                stake = _AT_STAKE.set(at_stake)
                bound = _BINDING.set(binding)
                # What the call changes, if sent: its alias, any listed one it may name (folded
                # alike) and the aliases listed otherwise than recorded (None: which is unknown,
                # or a single-connection upstream's: every alias).
                upserted = self._upsert_alias(tool, arguments) if removed is None else None
                touched: set[str] | None = {removed} if removed is not None else None
                if naming:
                    touched = set(naming)
                if upserted is not None and not self._single_connection(tool):
                    touched = {upserted[1]}
                if touched is not None:
                    touched |= set(stale) | set(others)
                    if at_stake is not None:
                        touched |= {c["alias"] for c in at_stake.get("connections", ())}
                try:
                    governed = exists is not False or bool(stale) or bool(others)
                    yield (REMOVAL_RULE,) if governed and removed is None else ()
                except UpstreamFailure as failure:
                    in_doubt = failure.in_doubt
                    if in_doubt:  # it may have changed: a new generation (fail closed)
                        await self._changed_through_guard(key, touched)
                    if in_doubt and upserted is not None:  # it may exist now: known
                        await self._aliases("saw_aliases", key, {upserted[1]})
                    raise
                except GuardRefusal:  # nothing was sent
                    in_doubt = False
                    raise
                except BaseException:
                    # Anything else (an approval the backend refused to file, a store error,
                    # a cancellation): in doubt only if the call was let run (it may have
                    # reached the upstream); else nothing was sent, and the lease is released.
                    in_doubt = change.forwarded
                    raise
                # Sent and answered: a new generation before the lease is released (a change
                # that cannot be recorded keeps the lease until it expires).
                in_doubt = not await self._changed_through_guard(key, touched)
                if removed is not None:
                    await self._aliases("removed_alias", key, removed)
                elif naming or unknown:
                    await self._record_named(tool, key, naming, listing)
                else:
                    await self._record_upsert(tool, arguments, key)
                if not in_doubt:  # the call let through: its upstream's view is the record's
                    in_doubt = not await self._record_after(tool, key)
            finally:
                _CHANGE.reset(changing)
                if stake is not None:
                    _AT_STAKE.reset(stake)
                    _BINDING.reset(bound)
                if not in_doubt:  # else the lease stays until it expires
                    with anyio.CancelScope(shield=True):  # released even when cancelled
                        await self._release_lease(key, holder)

    async def _named_connections(
        self, tool: str, arguments: dict[str, Any], *, besides: str | None = None
    ) -> list[str] | None:
        """The connections a call of a tool that is neither a read nor a recognised connection
        tool names: the aliases, known to the proxy (listed by the upstream now, or in the
        replicas' record of what its listings showed and the guard let through), that one of
        its arguments names once folded (``alias_forms``), as ``_alias_words`` reads them. The
        argument by which a data tool names the connection it acts through is not one
        (``connection``: it uses it, ``connection_binding`` binds it). Such a call is judged a
        change of each (``also_governed_by``): the catalog's words cannot know every name an
        upstream gives the end of a connection (outside round 24: ``odoo_reset``).
        The upstream cannot be listed (no list tool, or not callable, or unreadable): the
        record alone. The record cannot be read: nothing is judged (fail closed).
        ``besides``: a connection tool's call, which names the connection it changes by that
        argument: the connections its other arguments name as a whole value (an upstream may
        key its connections by ``name``: outside round 27)."""
        if tool not in self.tools:
            return []
        if besides is None:
            if tool == REMOVAL_RULE or classify_tool(self.tools[tool]).risk_class == "read":
                return []
            used = self._data_connection(tool, arguments)
            # A tool that names the connection it acts through (``connection``) is taken at
            # its word: its other arguments name a connection only as a whole. Any other
            # tool's name one in any word of a text ("odoo://prod", "staging,prod"), a number
            # or a key too (outside round 25).
            skipped = {used[0]} if used is not None else set()
            whole_only = used is not None
        else:
            skipped, whole_only = {besides}, True
        given = self._given(tool, arguments, skipped=skipped, whole_only=whole_only)
        key = f"connections:{self.server_id}"
        try:
            known = set(await self._aliases("known_aliases", key))
        except Exception as exc:
            raise self._record_fault(exc) from None
        listing = None
        lister = self._data_lister()
        if given and lister is not None:
            listing = await self._listing(tool, "alias", lister=lister)
        if listing is not None and not set(listing) <= known:
            try:
                await self._aliases("saw_aliases", key, set(listing))
            except Exception as exc:
                raise self._record_fault(exc) from None
        if given and listing is None and besides is None and self._listing_allowed(lister):
            # the upstream lists its connections in a way the proxy cannot read (or listing
            # failed): what the call names cannot be told, fail closed (outside round 34)
            return None
        aliases = known | set(listing or ())
        if besides is None:
            # what a 2025-era client answers during the call is read the same way (_Flight)
            _NAMEABLE.set((tuple(sorted(aliases)), whole_only))
        return sorted(a for a in aliases if given.names(a))

    def _given(
        self, tool: str, arguments: dict[str, Any], *, skipped: set[str], whole_only: bool
    ) -> _Given:
        """What a call's arguments (but ``skipped``) may name a connection by: what the
        upstream is given, the arguments and the values its schema fills in or fixes (a
        ``default``, ``const`` or one-value ``enum`` anywhere but under a given or skipped
        argument: ``purge(target="prod")`` called with nothing names prod, as does a default
        in ``$defs``, ``anyOf`` or a nested object: outside rounds 27 and 28), and a 2026-07-28
        client's answers to the upstream's questions, part of the call."""
        given_arguments = {k: v for k, v in arguments.items() if k not in skipped}
        # the schema as the upstream listed it, not as redacted for display: a default under
        # a key the redaction rule hides ("session") is what the upstream fills in (round 32)
        served = self._served.get(tool) or self.tools[tool]
        filled = _schema_values(served.input_schema, skip=skipped)
        # the arguments' names too ({"prod": true}: outside round 32), a level down
        given = _alias_words({"": given_arguments, "filled": filled}, whole_only=whole_only)
        given |= _alias_words({"answers": _ANSWERS.get()}, whole_only=whole_only)
        if filled is None:
            given.unread = True
        asked = _ASKED.get()
        if asked is not None:
            # a continuation: what its questions' schemas fill in for what an answer leaves
            # out or empties, and the upstream's own state (it may carry the target over)
            questions, upstream_state = asked
            for question in questions.values() if isinstance(questions, Mapping) else ():
                params = question.get("params") if isinstance(question, Mapping) else None
                schema = params.get("requestedSchema") if isinstance(params, Mapping) else None
                asked_values = _schema_values(schema, skip=()) if schema is not None else []
                if asked_values is None:
                    given.unread = True
                else:
                    given |= _alias_words({"": asked_values}, whole_only=whole_only)
            given |= _alias_words({"": upstream_state}, whole_only=whole_only)
        return given

    def _named_stake(
        self,
        tool: str,
        named: list[str],
        listing: dict[str, dict[str, Any]] | None,
        stale: dict[str, str],
    ) -> dict[str, Any]:
        """What an approver is shown of the connections an unrecognised tool's call names:
        each, as the upstream lists it (``_stake`` of the first, the others added)."""
        stake = self._stake(tool, "removes", named[0], listing, stale=stale)
        why = (
            f"'{tool}' is not recognised as a connection tool, but its arguments name the "
            f"connection(s) {', '.join(named[:_STAKE_MAX])}: judged a change (it may end or "
            "replace each)"
        )
        _add_named(stake, named[1:], listing, why)
        return stake

    async def _record_named(
        self,
        tool: str,
        key: str,
        named: list[str],
        before: dict[str, dict[str, Any]] | None,
    ) -> None:
        """After an unrecognised tool's call that named connections was let through: each
        named alias the upstream listed before it and no longer lists is removed from the
        record (what the listing shows now is observed, as after a change let through)."""
        lister = self._data_lister()
        if before is None or lister is None:
            return
        after = await self._listing(tool, "alias", lister=lister)
        if after is None:
            return
        for alias in named:
            if alias in before and alias not in after:
                await self._aliases("removed_alias", key, alias)
        await self._observe(key, after, accept=True)

    def at_stake(self, tool: str) -> dict[str, Any] | None:
        """What an approver is shown of the connections a call acts on, as listed: with every
        secret known by value hidden, as in a result (outside round 23: an operator's token
        or a forwarded password in a listed URL, database or user)."""
        stake = _AT_STAKE.get()
        return None if stake is None else KNOWN_SECRETS.hide(stake)

    async def connection_binding(self, tool: str, arguments: dict[str, Any]) -> str | None:
        """A connection change's: what ``also_governed_by`` bound it to. A data tool's (one
        with a connection argument): the connection the upstream would act through, read
        under the lease on the upstream's connections, held until the call is done."""
        bound = _BINDING.get()
        if bound is not None:
            return bound
        named = self._data_connection(tool, arguments)
        if named is None:
            return None
        held = _HELD.get()
        if held is not None:
            await held.enter_async_context(self._connections_held())
        binding, stake = await self._data_binding(tool, named[1])
        if held is not None:  # shown to approvers (``at_stake``) while the call is judged
            held.callback(_AT_STAKE.reset, _AT_STAKE.set(stake))
        return binding

    @asynccontextmanager
    async def _connections_held(self) -> AsyncIterator[None]:
        """The lease on the upstream's connections (no change through any replica while
        held); refused when another call holds it."""
        async with self._upsert_lock:
            key = f"connections:{self.server_id}"
            holder = await self._acquire_lease(key)
            if holder is None:
                raise CallRefused(Refusal("unavailable", LEASE_BUSY, {"status": "busy"}))
            try:
                yield
            finally:
                await self._release_lease(key, holder)

    def _data_connection(
        self, tool: str, arguments: dict[str, Any]
    ) -> tuple[str, str | None] | None:
        """The argument by which a call that does not change connections names the one it
        acts through, and its value (its schema's default when absent; None: none named), or
        None when the tool has no such argument."""
        if tool == REMOVAL_RULE or self._changes_connection(tool) or tool not in self.tools:
            return None
        properties = self.tools[tool].input_schema.get("properties")
        if not isinstance(properties, dict):
            return None
        key = next((k for k in _DATA_CONNECTION_KEYS if k in properties), None)
        if key is None:
            return None
        spec = properties[key]
        alias = arguments.get(key, spec.get("default") if isinstance(spec, dict) else None)
        return key, alias if isinstance(alias, str) else None

    async def _data_binding(self, tool: str, named: str | None) -> tuple[str, dict[str, Any]]:
        """The identity of what a data call would act through: the listed connection it names
        (or those folding alike), else, as odoo-claude-mcp falls back, the only one listed;
        what the listing says of it and its generation in the replicas' record. Unlisted (the
        proxy cannot list the connections), or resolving to none: every alias's generation
        (any change through the guard is another binding). And what an approver is shown of
        it (the request's ``at_stake``)."""
        key = f"connections:{self.server_id}"
        listing = await self._listing(tool, "alias", lister=self._data_lister())
        try:
            generations = await self._aliases("generations", key)
        except Exception as exc:
            raise self._record_fault(exc) from None
        acts: dict[str, Any] = {"named": named, "through": None, "generations": generations}
        stake: dict[str, Any] = {"role": "acts through", "alias": named, "connections": []}
        if listing is None:
            stake["note"] = "the proxy cannot list the upstream's connections: which is unknown"
        else:
            if named is not None and named in listing:
                through = [named]
            else:
                forms = alias_forms(named) if named is not None else frozenset()
                through = sorted(a for a in listing if alias_forms(a) & forms)
                if not through and len(listing) == 1:
                    through = list(listing)
                    stake["note"] = "not named, or not listed: the upstream's only connection"
            acts["through"] = [{"alias": a, **_shown_fields(listing[a])} for a in through]
            if through:
                # and the name it gives: an unlisted one may still be a session the upstream
                # keeps under it (odoo-claude-mcp's odoo_web_login), changed through the guard
                bound = {*through, *([named] if named is not None else [])}
                acts["generations"] = {a: generations.get(a, 0) for a in sorted(bound)}
            else:
                stake["note"] = "no listed connection answers to it: the call would fail"
            stake["connections"] = acts["through"][:_STAKE_MAX]
        return connection_identity(redact(acts)), redact(stake)

    def _listing_allowed(self, lister: str | None) -> bool:
        """Whether the policy lets ``lister`` be called (allowed, not hidden), or cannot say (no
        usable policy: fail closed). A listing the operator denies is no listing: aliases are
        then known from the replicas' record alone (README)."""
        if lister is None:
            return False
        try:
            policy = self.guard.policy.current()
        except PolicyUnavailable:
            return True
        decision = policy.decide(lister, self.server_id, self.risks.get(lister))
        return decision.action == "allow" and not decision.hidden

    def _data_lister(self) -> str | None:
        """The upstream's tool listing its connections (of the pair the proxy knows)."""
        return next(
            (
                lister
                for lister, _removal in _CONNECTION_LISTS.values()
                if self._usable_lister(lister)
            ),
            None,
        )

    def _stake(
        self,
        tool: str,
        role: str,
        alias: str | None,
        listing: dict[str, dict[str, Any]] | None,
        *,
        exists: bool | None = True,
        stale: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """What an approver is shown of the connection a call replaces or removes: its alias
        (and any listed alias whose folded forms meet its own: ``policy_core.alias_forms``) and
        what the upstream's listing says of it (redacted when recorded), or why the proxy
        cannot tell; and each alias the listing shows otherwise than the replicas' record
        (``stale``), with what the record holds of it and what the listing says."""
        note = None
        if listing is None:
            note = "the proxy cannot list the upstream's connections: what it holds is unknown"
        forms = alias_forms(alias) if alias is not None else set()
        named = sorted(a for a in listing or () if alias_forms(a) & forms)
        if alias is None:
            note = (
                f"which connection '{tool}' changes is unknown to the proxy; judged as a "
                "replacement"
            )
            at = []
        elif named:
            at = named
        elif listing is not None and alias_problem(alias) is not None:
            # letters the proxy cannot compare ("прод"): an upstream may read them as any
            # alias it holds (outside round 27), so every listed connection is at stake
            at = sorted(listing)
            note = (
                f"the alias {alias!a} is not written in A-Z a-z 0-9 _ . -: the upstream may "
                "read it as any connection it holds"
            )
        elif listing is not None and role == "replaces" and self._single_connection(tool):
            at = sorted(listing)  # a single-connection upstream: what it holds is replaced
            note = "the upstream keeps a single connection: it is replaced"
        else:
            at = []
            if listing is not None:
                note = (
                    "not listed by the upstream (its view may be stale): what it holds is unknown"
                    if exists is None
                    else "not listed by the upstream"
                )
        connections = [
            {"alias": name, **_shown_fields((listing or {}).get(name, {}))}
            for name in at[:_STAKE_MAX]
        ]
        stake: dict[str, Any] = {"role": role, "alias": alias, "connections": connections}
        if note is not None:
            stake["note"] = note
        if stale:
            stake["stale"] = [
                {
                    "alias": name,
                    "recorded": _recorded_fields(stale[name]),
                    "listed": _shown_fields((listing or {}).get(name, {})),
                }
                for name in sorted(stale)[:_STAKE_MAX]
            ]
            stake["note"] = (
                "the upstream lists connection(s) otherwise than the guard last let through or "
                "saw (its view may be stale): this call may write them back as it lists them"
            )
        return stake

    def argument_problem(self, name: str, arguments: dict[str, Any]) -> str | None:
        problem = arguments_size_problem(name, arguments)
        if problem is not None:
            return problem
        validator = self._validators.get(name)
        if validator is None:
            try:
                validator = bounded_validator(self.tools[name].input_schema)
            except jsonschema.exceptions.SchemaError:
                validator = False  # the upstream's schema is its own to enforce
            self._validators[name] = validator
        if validator is False:
            return None
        try:
            error = first_error(validator, arguments)
        except TooSlow as slow:
            return (
                f"Refused: checking the arguments of {name} against the tool's schema took too "
                f"long ({slow}, run on the arguments; the limit is {pattern_seconds():g} s). "
                "Nothing was sent upstream."
            )
        if error is None:
            return None
        where = ".".join(str(p) for p in error.absolute_path) or "arguments"
        if error.validator in ("required", "additionalProperties"):
            fault = str(error.message)[:300]  # names a field, never a value
        else:  # never echo a value (it may be a secret): the field and the kind of fault
            fault = f"'{where}' fails the tool's schema ({error.validator})"
        return f"Invalid arguments for {name}: {fault}. Nothing was done."

    # -- tools/call ------------------------------------------------------------------------

    async def handle_call(
        self, ctx: ServerRequestContext[Any, Any], principal: str, raw: Mapping[str, Any]
    ) -> types.CallToolResult | types.InputRequiredResult:
        name = raw.get("name")
        arguments = raw.get("arguments")
        if arguments is None:  # MCP: arguments are optional; absent or null means none
            arguments = {}
        continuation: Continuation | None = None
        responses: Any = None
        upstream_state: str | None = None
        if raw.get("requestState") is not None:
            # A continuation is a call: it takes exactly a call's path through the guard.
            responses = raw.get("inputResponses")
            _ANSWERS.set(responses)
            continuation, upstream_state = self._continuation(
                principal, name, arguments, raw["requestState"], responses
            )
        await self.upstream.first_listing()
        _CALLER.set(principal)  # this task's: the calls the proxy makes for it are its

        async def execute(args: dict[str, Any]) -> types.CallToolResult | types.InputRequiredResult:
            assert isinstance(name, str)
            change = _CHANGE.get()
            if change is not None:  # a connection change let run: it may reach the upstream
                change.forwarded = True
            return await self._forward(ctx, principal, name, args, responses, upstream_state)

        return await self.judge(
            principal, name, arguments, execute=execute, continuation=continuation
        )

    # -- connection upserts (DESIGN invariant 11) ----------------------------------------------

    def _changes_connection(self, name: str) -> bool:
        """Whether a tool adds, replaces or activates a connection (not a mere read)."""
        found = self._upserts.get(name)
        if found is None:
            tool = self.tools.get(name)
            found = (
                tool is not None
                and name != REMOVAL_RULE  # the removal itself: its own rule governs it
                and (
                    name in self.config.connection_tools
                    or (
                        classify_tool(tool).risk_class != "read"
                        and changes_connection(definition_of(tool))
                    )
                )
            )
            self._upserts[name] = found
        return found

    @staticmethod
    def _pair(tool: str) -> str | None:
        """The upsert of the listable pair ``tool`` belongs to (as the upsert or the removal:
        ``odoo_connect``), else None."""
        return next(
            (up for up, (_lister, removal) in _CONNECTION_LISTS.items() if tool in (up, removal)),
            None,
        )

    def _connection_lister(self, tool: str) -> str | None:
        """The read tool listing the connections ``tool`` (the upsert or the removal of a
        listable pair) writes (``odoo_connections``)."""
        upsert = self._pair(tool)
        lister = _CONNECTION_LISTS[upsert][0] if upsert is not None else None
        return lister if lister is not None and self._usable_lister(lister) else None

    def _usable_lister(self, lister: str) -> bool:
        """Whether the upstream serves ``lister`` as accepted, as a read."""
        tool = self.tools.get(lister)
        return (
            tool is not None
            and lister not in self.changed
            and classify_tool(tool).risk_class == "read"
        )

    def _single_connection(self, upsert: str) -> bool:
        """An upstream that lists its connections but offers no tool to remove one keeps a
        single connection (odoo-claude-mcp with SINGLE_CONNECTION=1): an upsert replaces it."""
        pair = self._pair(upsert)
        return pair is not None and _CONNECTION_LISTS[pair][1] not in self._current

    async def _acquire_lease(self, key: str) -> str | None:
        if await self._acquire_record() is None:  # no engine of its own: this process only
            return "local"
        return await anyio.to_thread.run_sync(
            self._leases.acquire, key, self.guard.clock(), LEASE_SECONDS
        )

    async def _release_lease(self, key: str, holder: str) -> None:
        if self._leases is not None:
            await anyio.to_thread.run_sync(self._leases.release, key, holder)

    def _upsert_alias(self, upsert: str, arguments: dict[str, Any]) -> tuple[str, str] | None:
        """The argument naming the connection an upsert writes, and its value (None: the
        proxy cannot tell which)."""
        properties = self.tools[upsert].input_schema.get("properties")
        if not isinstance(properties, dict):
            return None
        key = next((k for k in _CONNECTION_KEYS if k in properties), None)
        if key is None:
            return None
        spec = properties[key]
        alias = arguments.get(key, spec.get("default") if isinstance(spec, dict) else None)
        return (key, alias) if isinstance(alias, str) else None

    def _removed_alias(self, tool: str, arguments: dict[str, Any]) -> str | None:
        """The alias a call of the removal tool of a listable pair removes, else None."""
        if tool != REMOVAL_RULE or tool not in self.tools:
            return None
        if not any(removal == tool for _lister, removal in _CONNECTION_LISTS.values()):
            return None
        alias = arguments.get("alias")
        return alias if isinstance(alias, str) else None

    async def _aliases(self, operation: str, key: str, *args: Any) -> Any:
        """The replicas' shared record of the upstream's aliases and their generations
        (leases.py), or this process's own when the store has no engine of its own."""
        if await self._acquire_record() is None:
            return getattr(self._local, operation)(key, *args)
        return await anyio.to_thread.run_sync(getattr(self._leases, operation), key, *args)

    async def _observe(
        self, key: str, listing: dict[str, dict[str, Any]] | None, *, accept: bool = False
    ) -> dict[str, str]:
        """What the listing says now is recorded (an alias listed otherwise than the last time
        is a new generation), under the lease; unless ``accept``, an alias listed otherwise
        than the record holds is left as recorded and returned (alias -> what the record
        holds). The record cannot be read: nothing is judged (fail closed)."""
        if listing is None:
            return {}
        seen = {alias: _listed_form(item) for alias, item in listing.items()}
        try:
            # An alias the replicas know and this listing lacks: the listing is stale (the
            # missing-alias rule, _connection_exists), not a removal to record.
            kept = frozenset(await self._aliases("known_aliases", key)) - set(listing)
            differing: dict[str, str] = await self._aliases(
                "observed", key, seen, accept, frozenset() if accept else kept
            )
        except Exception as exc:
            raise self._record_fault(exc) from None
        return differing

    @staticmethod
    def _record_fault(exc: Exception) -> StoreError:
        log.warning("cannot read the record of the upstream's connections: %s", exc)
        return StoreError(
            "the guard's record of the upstream's connections cannot be read "
            f"({redact_text(str(exc))[:200]})"
        )

    async def _record_after(self, tool: str, key: str) -> bool:
        """After a change the guard let through: what the upstream lists now is the record's
        view (accepted, aliases listed otherwise included: the call was judged a replacement
        of each). False when it cannot be recorded."""
        lister = self._connection_lister(tool)
        if lister is None:
            return True
        listing = await self._listing(tool, "alias")
        try:
            await self._observe(key, listing, accept=True)
        except StoreError:
            return False
        return True

    async def _generation_binding(
        self, key: str, at_stake: dict[str, Any] | None
    ) -> dict[str, int]:
        """The generations of the aliases at stake (every alias's when which one is unknown),
        read under the lease. The record cannot be read: nothing is judged (fail closed)."""
        try:
            generations = await self._aliases("generations", key)
        except Exception as exc:
            raise self._record_fault(exc) from None
        if at_stake is None:  # nothing at stake: nothing to bind
            return {}
        alias = at_stake.get("alias")
        if not isinstance(alias, str):
            return generations
        aliases = {
            alias,
            *(c["alias"] for c in at_stake.get("connections", ())),
            *(c["alias"] for c in at_stake.get("stale", ())),
        }
        return {name: generations.get(name, 0) for name in sorted(aliases)}

    async def _changed_through_guard(self, key: str, aliases: set[str] | None) -> bool:
        """A change the guard let through (or may have): a new generation for each alias it
        touches (None: which is unknown, every alias). False when it cannot be recorded."""
        try:
            await self._aliases("bump", key, aliases)
        except Exception:
            log.exception("cannot record a connection change in the guard's record")
            return False
        return True

    async def _acquire_record(self) -> Leases | None:
        engine = getattr(self.store, "engine", None)
        if engine is None:
            return None
        if self._leases is None:
            self._leases = await anyio.to_thread.run_sync(Leases, engine)
        return self._leases

    async def _connection_exists(
        self, upsert: str, arguments: dict[str, Any]
    ) -> tuple[bool | None, dict[str, dict[str, Any]] | None]:
        """Whether the connection an upsert would write exists upstream; None when the proxy
        cannot tell (no list tool for it, no key, an error, an answer it cannot read, or an
        upstream whose listing lacks an alias the replicas know: its view is stale, as that
        of an upstream process sharing its data with another one's, and a write from it may
        overwrite what it does not see); and the upstream's listing (alias -> what it lists of
        it), None when it was not listed."""
        named = self._upsert_alias(upsert, arguments)
        if named is None:
            return None, None
        listing = await self._listing(upsert, named[0])
        if listing is None:
            return None, None
        listed = set(listing)
        key = f"connections:{self.server_id}"
        known = await self._aliases("known_aliases", key)
        await self._aliases("saw_aliases", key, listed)
        alias = named[1]
        if self._single_connection(upsert):
            return bool(listed or known), listing
        if alias_problem(alias) is not None and listed | known:
            return None, listing  # letters the proxy cannot compare: which is unknown
        if any(alias_forms(a) & alias_forms(alias) for a in listed | known):
            return True, listing  # an upstream may normalise the alias it is given
        unseen = known - listed
        if unseen:
            log.warning(
                "the upstream %s does not list %d connection(s) the replicas know: its view "
                "is stale, %s judged as a replacement",
                self.server_id,
                len(unseen),
                upsert,
            )
            return None, listing
        return False, listing

    async def _record_upsert(self, upsert: str, arguments: dict[str, Any], key: str) -> None:
        """After an upsert was carried out: what the upstream lists now, else (it cannot be
        listed) its alias, is recorded as known to the replicas."""
        named = self._upsert_alias(upsert, arguments) if self._connection_lister(upsert) else None
        if named is None:
            return
        listing = await self._listing(upsert, named[0])
        await self._aliases("saw_aliases", key, set(listing) if listing is not None else {named[1]})

    async def _listing(
        self, tool: str, key: str, *, lister: str | None = None
    ) -> dict[str, dict[str, Any]] | None:
        """The connections the upstream lists now, by alias (its list tool, ``lister`` or the
        one of ``tool``'s pair, called fresh, on the client's behalf, for ``tool``), or None
        when it cannot be listed or read."""
        lister = lister or self._connection_lister(tool)
        if lister is None:
            return None
        principal = _CALLER.get()
        if principal is None:
            return None

        async def send(args: dict[str, Any]) -> Any:
            return await self._send(lister, args, None, None)

        try:
            # The proxy's own call, on the client's behalf: the same gate (a hidden, denied or
            # gated lister is not called), counted and audited under the client's principal.
            result = await self.guard.call(
                self, principal, lister, {}, execute=send, behalf_of=tool
            )
        except GuardRefusal as refusal:
            log.warning("cannot list the upstream's connections: %s", refusal.message)
            return None
        except UpstreamFailure as failure:
            log.warning("cannot list the upstream's connections: %s", failure)
            return None
        return _listed_connections(result, key)

    async def _client_listed(self, name: str, result: Any) -> None:
        """A listing of the upstream's connections a client called (the pair's list tool) is
        recorded as the proxy's own are (``_connection_exists``, ``_observe``): its aliases
        are known to the replicas (an upstream whose listing lacks one cannot call anything
        new), and what it says of each is what the record last saw (an alias listed otherwise
        is a new generation). A known alias it no longer shows is gone: a new generation (as
        for a change let through), and another when it is listed again. A listing that
        cannot be read records nothing; the record cannot be written: the client still has
        its answer (a change judged later reads the record, and fails closed)."""
        if name != self._data_lister():
            return
        listing = _listed_connections(result, "alias")
        if listing is None:
            return
        key = f"connections:{self.server_id}"
        try:
            known = await self._aliases("known_aliases", key)
            await self._aliases("saw_aliases", key, set(listing))
            await self._observe(key, listing)
            gone = known - set(listing)
            if gone:
                await self._aliases("bump", key, gone)
        except Exception as exc:
            log.warning(
                "cannot record the upstream's connections a client listed: %s",
                redact_text(str(exc))[:200],
            )

    async def _still_changed(self, name: str) -> bool:
        """Whether a changed tool is still refused: a Manager may have accepted it since.
        With Odoo the acceptance is Odoo's alone: it arrives with the next catalog report
        (``catalog_applied``), never from this host's local store."""
        if not self.store.accepts_locally:
            return True
        pins = await anyio.to_thread.run_sync(self.store.list_pinned, self.server_id)
        pin = next((pin for pin in pins if pin.tool == name), None)
        current, served = self._current.get(name), self._served.get(name)
        if pin is None or pin.changed or current is None or served is None:
            return True
        if pin.definition_hash != definition_hash(self._pin_form(name)):
            return True
        if not await self._serves_as_accepted(name, pin.definition_hash):
            return True
        current = self._current.get(name)
        if current is None:
            return True
        log.info("changed definition of %s accepted; serving it", name)
        self.changed.pop(name, None)
        self.tools = {**self.tools, name: current}
        self.risks = {**self.risks, name: classify_tool(current)}
        self._validators.pop(name, None)
        self._upserts.pop(name, None)
        await self.notify_tools_changed()
        return False

    async def _serves_as_accepted(self, name: str, accepted: str) -> bool:
        """Whether the upstream serves ``name`` now as the definition just accepted: listed
        again before anything runs on it (outside round 17, F10). The definition accepted is
        the one last seen; an upstream may have changed it since without saying so (it
        announces changes as it likes, and a refused call never reaches it). A new
        definition seen now is pinned as the pending one, and the tool stays refused."""
        client = self.upstream.client
        if client is None:
            return False
        try:
            await self.load_tools(client)
        except Exception as exc:
            log.warning("cannot list the upstream tools again: %s", _describe(exc))
            return False
        if name not in self._served or name in self._listed_twice:
            return False
        return definition_hash(self._pin_form(name)) == accepted

    def _continuation(
        self, principal: str, name: object, arguments: object, wire: object, responses: Any
    ) -> tuple[Continuation, str | None]:
        """The proxy's own state (sealed and verified by the SDK's boundary), which must name
        this principal, tool and arguments (else the guard refuses it); what it continues is
        then judged as a call, on its arguments and what it adds: the questions, the client's
        answers and the upstream's state (hashed). Returns it and the upstream's own state."""
        try:
            state: Any = json.loads(wire) if isinstance(wire, str) else None
            valid = (
                isinstance(state, dict)
                and state.get("k") == _STATE_KIND
                and state.get("p") == principal
                and state.get("t") == name
                and state.get("h") == arguments_hash(arguments)
                and isinstance(state.get("n"), str)
                and isinstance(state.get("e"), int | float)
                and isinstance(state.get("u"), str | None)
            )
        except (TypeError, ValueError):
            valid = False
        if not valid:
            fault = "Refused: this requestState does not belong to this call."
            return Continuation(key="", expires_at=0.0, fault=fault), None
        upstream = state["u"]
        _ASKED.set((state.get("q"), upstream))
        inputs = {
            "questions": state.get("q"),
            "answers": responses,
            "upstream_state_sha256": (
                hashlib.sha256(upstream.encode("utf-8")).hexdigest() if upstream else None
            ),
        }
        return Continuation(key=state["n"], expires_at=float(state["e"]), inputs=inputs), upstream

    async def _forward(
        self,
        ctx: ServerRequestContext[Any, Any],
        principal: str,
        name: str,
        arguments: dict[str, Any],
        responses: Any,
        upstream_state: str | None,
    ) -> types.CallToolResult | types.InputRequiredResult:
        modern_client = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        unasked = self._no_questions(name, modern_client)
        asker = None if modern_client or unasked else ctx
        # an upstream may echo a connection's password in any answer, or on its stderr
        KNOWN_SECRETS.add_forwarded(
            argument_secrets(arguments),
            listed=lambda: [definition_of(tool) for tool in self._served.values()],
        )
        result = await self._send(
            name, arguments, responses, upstream_state, asker=asker, unasked=unasked
        )
        rounds = 0
        while isinstance(result, types.InputRequiredResult):
            if unasked:
                raise UpstreamFailure(unasked)
            if modern_client:
                return self._hand_on(result, principal, name, arguments)
            rounds += 1
            if rounds > MAX_INPUT_ROUNDS:
                raise UpstreamFailure(
                    f"The upstream asked for input more than {MAX_INPUT_ROUNDS} times; "
                    "the call was abandoned."
                )
            answers = await self._ask_legacy_client(ctx, result.input_requests or {})
            result = await self._send(name, arguments, answers, result.request_state, asker=asker)
        await self._client_listed(name, result)
        return _redacted(result)

    def _no_questions(self, name: str, modern_client: bool) -> str | None:
        """Why no question the upstream asks during this call of ``name`` is passed on to the
        client (its call then fails), or None. A connection change was judged by its arguments
        (which alias it writes or removes, whether that is new): an answer could name another
        connection (outside round 21). A call running on an approval, for a 2025-era client,
        would take the answer within that call, unjudged; a 2026-07-28 client's answer is a
        call of its own (a continuation), with an approval of its own where one is needed."""
        if name == REMOVAL_RULE or self._changes_connection(name) or _CHANGE.get() is not None:
            return (
                f"The upstream asked a question during {name}, which changes a connection: an "
                "answer could name another connection than the one judged, so the proxy does "
                "not pass it on, and the call was abandoned."
            )
        approval = None if modern_client else RUNNING_ON_APPROVAL.get()
        if approval is not None:
            return (
                f"The upstream asked a question during {name}, which runs on approval "
                f"{approval}: an answer no approver saw cannot run on it, so "
                "the proxy does not pass it on, and the call was abandoned (a client of "
                "protocol 2026-07-28 answers in a call of its own, approved on its own)."
            )
        return None

    async def _send(
        self,
        name: str,
        arguments: dict[str, Any],
        responses: Any,
        state: str | None,
        *,
        asker: ServerRequestContext[Any, Any] | None = None,
        unasked: str | None = None,
    ) -> types.CallToolResult | types.InputRequiredResult:
        """One request upstream, counted in flight until it is answered: a question the
        upstream asks meanwhile is passed on only when this is the one call in flight
        (``upstream_elicitation``), and only to ``asker``, the 2025-era client of the call;
        ``unasked``: why it is not passed on at all (``_no_questions``)."""
        flight = object()
        self._in_flight[flight] = _Flight(asker, unasked, _NAMEABLE.get())
        try:
            return await self._send_once(name, arguments, responses, state)
        except UpstreamFailure:
            UPSTREAM_ERRORS.inc()
            raise
        finally:
            del self._in_flight[flight]

    async def _send_once(
        self, name: str, arguments: dict[str, Any], responses: Any, state: str | None
    ) -> types.CallToolResult | types.InputRequiredResult:
        client = await self.upstream.ready()
        http = self.upstream.raw_http
        if http is not None and responses is None and state is None:
            return await self._send_raw(client, http, name, arguments)
        sending = _Sending()
        token = _SENDING.set(sending)
        unreadable = self.upstream.unreadable_lines
        try:
            return await client.session.call_tool(
                name,
                arguments,
                input_responses=responses,
                request_state=state,
                allow_input_required=True,
            )
        except MCPError as exc:
            if session_closed(exc.error):
                raise self._lost(sending, self.upstream.broken_by) from None
            if unreadable_answer(exc.error):
                raise _unreadable(name) from None
            if exc.error.code == types.REQUEST_TIMEOUT and exc.error.data is None:
                discarded = self.upstream.unreadable_lines != unreadable
                raise _no_answer(name, discarded) from None
            raise UpstreamFailure(
                f"The upstream server answered with an error: {exc}",
                in_doubt=exc.error.code == types.REQUEST_TIMEOUT,
            ) from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError):
            raise self._lost(sending, self.upstream.broken_by) from None
        except httpx2.HTTPError as exc:
            raise self._lost(sending, str(exc)) from None
        except ValidationError:  # not a tools/call result (outside round 23: a traceback)
            raise UpstreamFailure(
                "The upstream's answer was refused: it is not a tools/call result.", in_doubt=True
            ) from None
        except RuntimeError as exc:  # the SDK's check of a result against its output schema
            raise UpstreamFailure(f"The upstream's answer was refused: {exc}"[:500]) from None
        finally:
            _SENDING.reset(token)

    async def _send_raw(
        self, client: Client, http: httpx2.AsyncClient, name: str, arguments: dict[str, Any]
    ) -> types.CallToolResult | types.InputRequiredResult:
        """The judged call posted upstream as raw JSON-RPC (sdk_workarounds 5), on the
        session's own HTTP client: the answer must be this request's (its id), within
        MAX_ANSWER_BYTES, and is then read and checked as the SDK's session would (the
        negotiated version's result, the tool's output schema)."""
        envelope = modern_call_envelope(client.session, name, arguments)
        if envelope is None:  # not expected once raw_calls_supported said yes
            raise UpstreamFailure("The proxy cannot prepare the call; nothing was sent upstream.")
        params, headers = envelope
        request_id = self.upstream.next_raw_id()
        body = json.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
        assert self.config.url
        sending = _Sending()
        token = _SENDING.set(sending)
        try:
            async with http.stream(
                "POST", self.config.url, content=body, headers={**_RAW_HEADERS, **headers}
            ) as response:
                answer = await self._raw_answer(response, request_id)
        except _NotJsonRpc:
            raise _unreadable(name) from None
        except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
            raise self._lost(sending, str(exc)) from None
        except httpx2.TimeoutException:
            raise UpstreamFailure(
                f"The upstream server did not answer within {CALL_TIMEOUT_SECONDS:g} s; whether "
                "it acted is unknown.",
                in_doubt=True,
            ) from None
        except httpx2.HTTPError as exc:
            raise self._lost(sending, str(exc)) from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError):
            raise self._lost(sending) from None
        finally:
            _SENDING.reset(token)
        error = answer.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            text = error.get("message") if isinstance(error, dict) else None
            raise UpstreamFailure(
                "The upstream server answered with an error: "
                + (text[:500] if isinstance(text, str) else "(no message)"),
                in_doubt=code == types.REQUEST_TIMEOUT,
            )
        try:
            result = read_call_result(client.session, answer["result"])
        except ValidationError:
            raise UpstreamFailure(
                "The upstream's answer was refused: it is not a tools/call result.", in_doubt=True
            ) from None
        if not isinstance(result, types.CallToolResult | types.InputRequiredResult):
            raise UpstreamFailure(
                "The upstream's answer was refused: a result of a kind the proxy does not pass on.",
                in_doubt=True,
            )
        if isinstance(result, types.CallToolResult) and not result.is_error:
            try:
                await client.session.validate_tool_result(name, result)
            except RuntimeError as exc:  # the tool's output schema, checked as the SDK does
                raise UpstreamFailure(f"The upstream's answer was refused: {exc}"[:500]) from None
        return result

    async def _raw_answer(self, response: httpx2.Response, request_id: str) -> dict[str, Any]:
        """The JSON-RPC answer to ``request_id`` in an upstream's HTTP response (one JSON body,
        or an SSE stream whose notifications come first). Anything else fails the call, in
        doubt (the upstream had it): an answer to another id, a question on the call's
        stream, an unreadable or oversized frame, no answer at all."""
        kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        status = response.status_code
        if kind == "application/json":
            answer = self._raw_message(await _capped_body(response), request_id)
            if answer is None:
                raise _raw_fault("a JSON body that is not the call's answer")
            return answer
        if kind == "text/event-stream" and status < 300:
            async for data in _sse_data(response):
                answer = self._raw_message(data, request_id)
                if answer is not None:
                    return answer
            raise _raw_fault("no answer before its stream ended")
        raise UpstreamFailure(
            f"The upstream server answered HTTP {status} ({kind or 'no content type'}) to the "
            "call; whether it acted is unknown.",
            in_doubt=status < 400 or status >= 500,
        )

    def _raw_message(self, data: bytes, request_id: str) -> dict[str, Any] | None:
        """One JSON-RPC message from the upstream: the call's answer is returned; a
        notification of a list change is heeded, any other notification dropped (None);
        anything else fails the call."""
        try:
            # As strict as the SDK's parser: no lone surrogate, bounded nesting and numbers.
            message = pydantic_core.from_json(data)
        except ValueError:
            raise _NotJsonRpc from None
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise _raw_fault("a frame that is not a JSON-RPC message")
        if "id" not in message:
            if not isinstance(message.get("method"), str):
                raise _raw_fault("a JSON-RPC message with neither an id nor a method")
            if message["method"] == "notifications/tools/list_changed":
                self.upstream.list_changed()  # listed again, and pinned: never taken on trust
            return None
        if "method" in message:
            raise _raw_fault("a request on the call's own stream, which has no way back")
        if message["id"] is None and "error" in message and "result" not in message:
            return message  # the upstream could not read the request: an error, never a result
        if message["id"] != request_id:
            raise _raw_fault("an answer to a request the proxy never sent")
        has_result, has_error = "result" in message, "error" in message
        if has_result == has_error or (has_result and not isinstance(message["result"], dict)):
            raise _raw_fault("a malformed answer")
        return message

    def _lost(self, sending: _Sending, detail: str = "") -> UpstreamFailure:
        """The session broke during a call: in doubt, unless the call never connected."""
        self.upstream.mark_broken()
        if sending.nothing_sent:  # e.g. an HTTP upstream gone while the proxy was idle
            return UpstreamFailure(
                f"Refused: the upstream server {self.server_id} is not reachable (it does not "
                "accept connections); nothing was sent to it. The proxy keeps reconnecting."
            )
        return UpstreamFailure(_lost_message(detail), in_doubt=True)

    def _hand_on(
        self,
        result: types.InputRequiredResult,
        principal: str,
        name: str,
        arguments: dict[str, Any],
    ) -> types.InputRequiredResult:
        """Pass the upstream's questions to a 2026-07-28 client, the call bound to its state."""
        state = {
            "k": _STATE_KIND,
            "p": principal,
            "t": name,
            "h": arguments_hash(arguments),
            "u": result.request_state,
            # the questions, as the approver of an answer is shown them
            "q": {
                key: request.model_dump(by_alias=True, mode="json", exclude_none=True)
                for key, request in (result.input_requests or {}).items()
            },
            "n": secrets.token_urlsafe(16),  # single use (Guard.call spends it)
            "e": self.guard.clock() + STATE_TTL_SECONDS,
        }
        asked = _to_client(result)  # the questions: through the one redaction rule
        return asked.model_copy(
            update={"request_state": json.dumps(state, separators=(",", ":")), "meta": None}
        )

    async def _ask_legacy_client(
        self, ctx: ServerRequestContext[Any, Any], requests: Mapping[str, Any]
    ) -> dict[str, Any]:
        answers: dict[str, Any] = {}
        for key, request in requests.items():
            if not isinstance(request, types.ElicitRequest):
                raise UpstreamFailure(
                    f"The upstream asked the client for {request.method}, which the proxy does "
                    "not pass on; the call was abandoned."
                )
            answer = await _ask_client(ctx, request.params)
            if isinstance(answer, types.ErrorData):
                raise UpstreamFailure(f"The client could not answer the question: {answer.message}")
            problem = _answer_problem(_NAMEABLE.get(), answer, request.params)
            if problem is not None:
                raise UpstreamFailure(f"Refused by the proxy: {problem}")
            answers[key] = answer
        return answers

    async def upstream_elicitation(
        self, _ctx: Any, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        """A 2025-era upstream asks mid-call, with nothing saying for which call (stdio
        carries no relation, and the SDK's client passes none on). It is passed on only when
        it can belong to one call alone: the one call in flight on the upstream session, of a
        2025-era client, which alone is asked. Any other case (several calls in flight, of
        any era, the proxy's own, none) is refused: a question never reaches, and an answer
        never comes from, a client whose call it may not be."""
        flights = list(self._in_flight.values())
        if len(flights) == 1 and flights[0].unasked is not None:
            log.warning("an upstream question refused: %s", flights[0].unasked)
            return types.ErrorData(
                code=types.INVALID_REQUEST, message=f"Refused by the proxy: {flights[0].unasked}"
            )
        askers = [flight.asker for flight in flights]
        if len(askers) != 1 or askers[0] is None:
            log.warning(
                "an upstream question refused: %d calls in flight, it cannot be told whose it is",
                len(askers),
            )
            return types.ErrorData(
                code=types.INVALID_REQUEST,
                message="Refused by the proxy: it cannot tell which client's call this question "
                "belongs to.",
            )
        answer = await _ask_client(askers[0], params)
        problem = _answer_problem(flights[0].nameable, answer, params)
        if problem is not None:
            log.warning("an answer refused: %s", problem)
            return types.ErrorData(
                code=types.INVALID_REQUEST, message=f"Refused by the proxy: {problem}"
            )
        return answer

    # -- running ---------------------------------------------------------------------------

    async def run_upstream(self) -> None:
        await self.upstream.run()


# The words of a text that may be a connection's alias: runs of letters, digits, "_", "-"
# and "."; runs of what is not a space ("eu/prod1", "team@acme"); and, finer, of letters and
# digits alone ("prod.example.com" names prod), also any number of them in a row ("main db",
# "disconnect main eu prod db", "pr\u2800od": outside rounds 26 and 27).
_ALIAS_WORD = re.compile(r"[\w.-]+")
_ALIAS_TOKEN = re.compile(r"\S+")
_ALIAS_PART = re.compile(r"[^\W_]+")


@dataclass
class _Given:
    """What a call's arguments may name a connection by: folded words (``alias_forms``), and
    texts as their folded parts run together, with where each part starts and ends (an alias
    names a text when its form is one part or several in a row)."""

    words: set[str] = field(default_factory=set)
    runs: list[tuple[str, frozenset[int]]] = field(default_factory=list)
    # A schema too large to read whole (``_schema_values``): what the upstream fills in is
    # unknown, and every connection may be named (fail closed).
    unread: bool = False

    def __bool__(self) -> bool:
        return bool(self.words or self.runs or self.unread)

    def __ior__(self, other: _Given) -> _Given:
        self.words |= other.words
        self.runs.extend(other.runs)
        self.unread = self.unread or other.unread
        return self

    def add_text(self, text: str) -> None:
        """The words of a text, as written and as NFKC shows it with what shows nothing
        removed ("pr\u200bod" is one word)."""
        shown = "".join(
            ch
            for ch in unicodedata.normalize("NFKC", text)
            if unicodedata.category(ch) not in ("Cf", "Mn", "Me")
        )
        for form in {text, shown}:
            parts = _ALIAS_PART.findall(form)
            for word in (*_ALIAS_WORD.findall(form), *_ALIAS_TOKEN.findall(form), *parts):
                self.words |= alias_forms(word)
            if len(parts) < 2:
                continue
            # the parts' folded forms run together, one run per kind of form
            folds = [alias_form_kinds(part) for part in parts]
            for index in range(3):
                joined, cuts, at = "", {0}, 0
                for forms in folds:
                    piece = forms[index]
                    joined += piece
                    at += len(piece)
                    cuts.add(at)
                self.runs.append((joined, frozenset(cuts)))

    def names(self, alias: str) -> bool:
        """Whether the arguments name ``alias``: a word's form meets one of its forms, or one
        of its forms is one or more parts of a text in a row."""
        if self.unread:
            return True
        forms = alias_forms(alias)
        if forms & self.words:
            return True
        for joined, cuts in self.runs:
            for form in forms:
                start = joined.find(form)
                while start != -1:
                    if start in cuts and start + len(form) in cuts:
                        return True
                    start = joined.find(form, start + 1)
        return False


def _alias_words(arguments: Any, *, whole_only: bool) -> _Given:
    """What a call's arguments may name a connection by (``_Given``): each string value,
    number (a whole float also as an integer: 1e20) and key at any depth as a whole, and
    unless ``whole_only``, each word of it and its words in a row."""
    given = _Given()
    stack = [arguments]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend(item.values())
            stack.extend(k for k in item if item is not arguments)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, (str, int, float)) and not isinstance(item, bool):
            texts = [str(item)]
            if isinstance(item, float) and item.is_integer():
                texts.append(str(int(item)))
            for text in texts:
                given.words |= alias_forms(text)
                if not whole_only:
                    given.add_text(text)
    return given


# How much of a schema ``_schema_values`` reads: past it, what it fills in is unknown.
_SCHEMA_MAX_VALUES = 1000
_SCHEMA_MAX_NODES = 20_000
_SCHEMA_MAX_DEPTH = 64


def _schema_values(schema: Any, *, skip: Collection[str]) -> list[Any] | None:
    """The values a JSON schema fills in or fixes (``default``, ``const``, a one-value
    ``enum``) anywhere in it, a given argument's own too (an upstream may read ``""``, ``null``
    or ``[]`` as "the default": outside round 33), but nothing under the top-level properties
    named in ``skip``. None when the schema is too large or too deep to read whole: what it
    fills in is unknown (outside round 32)."""
    values: list[Any] = []
    stack: list[tuple[Any, int]] = [(schema, 0)]
    visited = 0
    while stack:
        node, depth = stack.pop()
        visited += 1
        if (
            depth > _SCHEMA_MAX_DEPTH
            or visited > _SCHEMA_MAX_NODES
            or len(values) > _SCHEMA_MAX_VALUES
        ):
            return None
        if isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
            continue
        if not isinstance(node, Mapping):
            continue
        for key in ("default", "const"):
            if key in node:
                values.append(node[key])
        enum = node.get("enum")
        if isinstance(enum, list) and len(enum) == 1:
            values.append(enum[0])
        for key, child in node.items():
            if key == "properties" and depth == 0 and isinstance(child, Mapping):
                stack.extend((v, depth + 1) for k, v in child.items() if k not in skip)
            elif key not in ("default", "const", "enum", "examples") and isinstance(
                child, (Mapping, list)
            ):
                stack.append((child, depth + 1))
    return values


def _add_named(
    stake: dict[str, Any], named: list[str], listing: dict[str, dict[str, Any]] | None, why: str
) -> None:
    """Each of ``named`` added to what an approver is shown of a call's stake (as listed),
    with why it is at stake."""
    shown = {c["alias"] for c in stake["connections"]}
    for alias in named:
        if alias not in shown and len(stake["connections"]) < _STAKE_MAX:
            item = (listing or {}).get(alias, {})
            stake["connections"].append({"alias": alias, **_shown_fields(item)})
    stake["note"] = f"{why}; {stake['note']}" if stake.get("note") else why


def _shown_fields(item: Any) -> dict[str, str]:
    """What an approver is shown of a listed connection: its fields that name it (url, db,
    user...), as the listing says them (redacted where recorded)."""
    if not isinstance(item, dict):
        return {}
    return {
        field: str(value)[:300]
        for field, value in item.items()
        if field in _STAKE_FIELDS and isinstance(value, str | int | bool)
    }


def _listed_form(item: Any) -> str:
    """What the replicas' record holds of a listed connection: its identity (every field,
    redacted) and what an approver is shown of it (redacted)."""
    shown = redact(_shown_fields(item))
    return json.dumps(
        {"identity": connection_identity(redact(item)), "shown": shown}, sort_keys=True
    )


def _recorded_fields(recorded: str) -> dict[str, Any]:
    """What the record holds of an alias, as shown to an approver ({}: absent)."""
    try:
        shown = json.loads(recorded).get("shown", {}) if recorded else {}
    except (ValueError, AttributeError):
        shown = {}
    return shown if isinstance(shown, dict) else {}


class _LocalRecord:
    """The record of ``leases.Leases`` (aliases seen, their generations) kept in this process,
    for a store without an engine of its own."""

    def __init__(self) -> None:
        self._known: dict[str, set[str]] = {}
        self._generations: dict[str, dict[str, tuple[int, str]]] = {}

    def known_aliases(self, key: str) -> set[str]:
        return set(self._known.get(key, set()))

    def saw_aliases(self, key: str, aliases: set[str]) -> None:
        self._known.setdefault(key, set()).update(aliases)

    def removed_alias(self, key: str, alias: str) -> None:
        self._known.setdefault(key, set()).discard(alias)

    def generations(self, key: str) -> dict[str, int]:
        return {alias: gen for alias, (gen, _) in self._generations.get(key, {}).items()}

    def bump(self, key: str, aliases: set[str] | None) -> None:
        record = self._generations.setdefault(key, {})
        for alias in set(record) if aliases is None else aliases:
            record[alias] = (record.get(alias, (0, ""))[0] + 1, "changed")

    def observed(
        self,
        key: str,
        listing: dict[str, str],
        accept: bool = False,
        kept: frozenset[str] = frozenset(),
    ) -> dict[str, str]:
        record = self._generations.setdefault(key, {})
        differing: dict[str, str] = {}
        for alias in set(record) | set(listing):
            gen, before = record.get(alias, (0, None))
            now = listing.get(alias, "")
            if before == now:
                continue
            if not accept and (
                differs(before, now) or (alias in kept and before not in (None, "", "changed"))
            ):
                differing[alias] = before
                continue
            record[alias] = (gen + 1, now)
        return differing


class _Held:
    """A requested schema held aside, already redacted by ``policy_core.redact_schema``,
    while the rest of the message passes ``redact_result`` (which leaves other types alone)."""

    def __init__(self, value: Any):
        self.value = value


def _aside(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _Held(redact_schema(v)) if k == "requestedSchema" else _aside(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_aside(item) for item in value]
    return value


def _back(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _back(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_back(item) for item in value]
    return value.value if isinstance(value, _Held) else value


_Message = TypeVar("_Message", bound=BaseModel)


def _to_client(message: _Message) -> _Message:
    """The one place an upstream's message to a client passes the redaction rule (DESIGN
    invariants 7 and 13), whatever the era: results, the questions of an input request
    (2026-07-28) and of ``elicitation/create`` (2025-11-25). Everything through
    ``policy_core.redact_result`` (binary payloads judged as base64 only where MCP puts them);
    a question's requested schema keeps its shape, its texts and a secret field's values
    redacted (``policy_core.redact_schema``)."""
    dumped = message.model_dump(by_alias=True, mode="json", exclude_none=True)
    redacted = _back(redact_result(_aside(KNOWN_SECRETS.hide(dumped))))
    if redacted == dumped:  # nothing to hide: the upstream's message as it was parsed
        return message
    return type(message).model_validate(redacted)


def _redacted(result: types.CallToolResult) -> types.CallToolResult:
    """The upstream's result with every secret replaced: every content block (text, embedded
    resources' text and URIs, resource links), the structured content and every ``_meta``."""
    return _to_client(result)


async def _ask_client(
    ctx: ServerRequestContext[Any, Any], params: types.ElicitRequestParams
) -> types.ElicitResult | types.ErrorData:
    """An upstream's question asked of the client of the call it belongs to (on that call's
    stream), through the one redaction rule; a client that did not say it can be asked
    (the ``elicitation`` capability) is not: its session may have no way back."""
    capabilities = getattr(ctx.session, "client_capabilities", None)
    if capabilities is None or getattr(capabilities, "elicitation", None) is None:
        return types.ErrorData(
            code=types.INVALID_REQUEST,
            message="The client of this call cannot be asked questions (no elicitation "
            "capability).",
        )
    request = _to_client(types.ElicitRequest(params=params))
    try:
        return await ctx.session.send_request(
            request,
            types.ElicitResult,
            metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
        )
    except MCPError as exc:
        return exc.error


def redacted_tool(tool: types.Tool) -> types.Tool:
    """An upstream tool as it is listed and shown: the whole definition through the one
    redaction rule (``policy_core.redact_tool``); names and types as they are."""
    dumped = tool.model_dump(by_alias=True, mode="json", exclude_none=True)
    hidden = redact_tool(KNOWN_SECRETS.hide(dumped))
    return tool if hidden == dumped else types.Tool.model_validate(hidden)


def _pinned_form(tool: types.Tool) -> dict[str, Any]:
    # every secret known by value (KnownSecrets.pinned): what is pinned is shown, in the
    # catalog, by the CLI and in Odoo (outside round 23)
    return pinned_definition(KNOWN_SECRETS.hide(definition_of(tool), pinned=True))


def _listed_pin(definition: dict[str, Any]) -> types.Tool:
    """A pinned definition as it is listed: without the hash of the served one."""
    schema = definition.get("inputSchema")
    if isinstance(schema, dict) and SOURCE_HASH_KEY in schema:
        schema = {k: v for k, v in schema.items() if k != SOURCE_HASH_KEY}
        definition = {**definition, "inputSchema": schema}
    return types.Tool.model_validate(definition)


class _NotJsonRpc(Exception):
    """An upstream's frame that cannot be parsed (the call's name is added by the caller)."""


def _unreadable(tool: str) -> UpstreamFailure:
    return UpstreamFailure(
        f"The upstream answered {tool} with a message that is not valid JSON-RPC (the proxy "
        "cannot read it, so nothing of it is shown). Whether it acted is unknown; the call "
        "was not retried.",
        in_doubt=True,
    )


def _no_answer(tool: str, discarded: bool) -> UpstreamFailure:
    """No answer to ``tool`` within the upstream timeout; ``discarded``: meanwhile the
    upstream sent a message naming no request (``UnreadableLine``), which may have been it."""
    why = (
        " Meanwhile it sent a message that is not valid JSON-RPC and names no request "
        "(discarded, not shown): it may have been this call's answer."
        if discarded
        else ""
    )
    return UpstreamFailure(
        f"The upstream server did not answer {tool} within {CALL_TIMEOUT_SECONDS:g} s.{why} "
        "Whether it acted is unknown; the call was not retried.",
        in_doubt=True,
    )


def _raw_fault(what: str) -> UpstreamFailure:
    return UpstreamFailure(
        f"The upstream's answer was refused: {what}. The call reached the upstream; whether "
        "it acted is unknown.",
        in_doubt=True,
    )


async def _capped_body(response: httpx2.Response) -> bytes:
    """The response body, refused beyond MAX_ANSWER_BYTES (as it arrives, not once read)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise _raw_fault(f"more than {MAX_ANSWER_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise _raw_fault(f"more than {MAX_ANSWER_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _sse_data(response: httpx2.Response) -> AsyncIterator[bytes]:
    """The data of each event of an SSE stream, the whole stream within MAX_ANSWER_BYTES."""
    size = 0
    data: list[bytes] = []
    buffer = b""
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise _raw_fault(f"more than {MAX_ANSWER_BYTES} bytes")
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            line = line.removesuffix(b"\r")
            if not line:  # the end of an event
                if data:
                    yield b"\n".join(data)
                data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            # event:, id:, retry: and comments carry nothing the proxy needs
    if data:
        yield b"\n".join(data)


def _lost_message(detail: str = "") -> str:
    why = f" ({detail})" if detail else ""
    return (
        f"The upstream server disconnected during the call{why}. Whether it acted is unknown; "
        "the call was not retried. The proxy is reconnecting: check the upstream's state "
        "before calling again."
    )


def build(backend: Backend, config: UpstreamConfig, *, principal: str | None = None) -> ProxyServer:
    return ProxyServer(make_guard(backend), backend.store, config, stdio_principal=principal)


def run_proxy(config: UpstreamConfig, **settings: Any) -> None:
    """Proxy until the client goes away (stdio) or the process is stopped (HTTP); the
    settings are ``runner.run_frontend``'s (transport, host, port, policy_file, ...)."""

    def builder(backend: Backend, principal: str | None) -> Any:
        proxy = build(backend, config, principal=principal)
        return proxy, (proxy.run_upstream,)

    run_frontend(builder, **settings)
