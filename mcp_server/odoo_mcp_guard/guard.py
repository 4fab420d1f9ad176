"""The one gate every ``tools/call`` and every continuation passes, in one order:

    name → listed (not hidden, served) → definition unchanged → not denied → arguments
    → what the call also does (its rules) → rate limits (all or nothing) → approval
    → execute, with each decision audited here, by ``Guard._audit`` alone.

What only a front-end knows (the tools it serves, their argument schemas, whether a served
definition changed, whether its upstream is reachable, what else a call would do) it
supplies through ``Served``; the order, the refusals and the audit are the guard's.
Nothing executes unless the decision for that exact call was ``allow``, or
``require_approval`` with an approval consumed for it (DESIGN invariants 1-3, 6, 7, 9).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import os
import shlex
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from odoo_mcp_guard.catalog import Classification
from odoo_mcp_guard.engines import DATABASE_URL_ENV, StoreError
from odoo_mcp_guard.identity import requester_persons
from odoo_mcp_guard.logs import redact_line
from odoo_mcp_guard.metrics import APPROVALS, count_decision
from odoo_mcp_guard.names import arguments_digest, check_tool_name, printable_name
from odoo_mcp_guard.odoo_rpc import OdooError
from odoo_mcp_guard.policy import Decision, Policy, PolicyUnavailable
from odoo_mcp_guard.policy_core import (
    ApprovalTerms,
    arguments_secrets,
    gating_terms,
    redact_known,
    redact_text,
)
from odoo_mcp_guard.ratelimit import Limit, RateLimiter, RateLimitUnavailable
from odoo_mcp_guard.store import (
    ApprovalError,
    ApprovalRequest,
    AuditEvent,
    GuardStore,
    Outcome,
    builtin_data_dir,
)
from odoo_mcp_guard.stores.kept import replay_kept, save_kept
from odoo_mcp_guard.stores.ports import PolicyPort

log = logging.getLogger(__name__)
T = TypeVar("T")

# The approval the call now executing runs on (its reference; None: it runs without one), for
# the task running ``execute``. A front that could let the client add to a call mid-way (the
# proxy passing on an upstream's question) must not let an answer no approver saw run on it.
RUNNING_ON_APPROVAL: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "running_on_approval", default=None
)

LOCAL_APPROVAL_HINT = (
    "an approver (not you) runs `odoo-mcp-guard approvals approve {ref} --as NAME` "
    "on the guard's host"
)


def cli_invocation() -> list[str]:
    """The command that runs this guard's CLI from any shell on this host (the running
    executable by its absolute path: it is often not on PATH, e.g. in a virtualenv)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name.split(".")[0] == "odoo_mcp_guard":  # python -m
        return [sys.executable, "-m", "odoo_mcp_guard"]
    argv0 = sys.argv[0] if sys.argv else ""
    found = argv0 if os.sep in argv0 else shutil.which(argv0 or "odoo-mcp-guard")
    if found and os.path.basename(found).startswith("odoo-mcp-guard"):
        return [os.path.abspath(found)]
    return [shutil.which("odoo-mcp-guard") or "odoo-mcp-guard"]


def local_approval_hint(
    data_dir: Path, database_url: str | None = None, policy_file: Path | None = None
) -> str:
    """LOCAL_APPROVAL_HINT with the exact command that decides on this guard's store (and
    reads the approver groups of this guard's policy file)."""
    words = [*cli_invocation(), "approvals", "approve", "REF", "--as", "NAME"]
    if data_dir.absolute() != builtin_data_dir().absolute():
        words += ["--data-dir", str(data_dir)]
    if policy_file is not None:
        words += ["--policy", str(policy_file.absolute())]
    command = shlex.join(words).replace("{", "{{").replace("}", "}}").replace("REF", "{ref}", 1)
    where = f" with {DATABASE_URL_ENV} set as for the guard" if database_url else ""
    return f"an approver (not you) runs `{command}` on the guard's host{where}"


# What the approval backend raises when it cannot answer: the call is then refused as
# 'unavailable', naming the cause (fail closed, invariant 6).
BACKEND_ERRORS = (ApprovalError, StoreError, OdooError)
# Audit events kept in memory while the store cannot take them; past this, logged only.
MAX_UNWRITTEN_AUDIT = 10_000


@dataclass(frozen=True)
class Refusal:
    """Why a call must not run: ``message`` for the agent, ``outcome`` for the audit."""

    outcome: Outcome
    message: str
    structured: dict[str, Any] | None = None


def unavailable(cause: str) -> Refusal:
    return Refusal(
        "unavailable",
        f"Refused: the approval backend is unavailable ({cause}); nothing was done.",
        {"status": "unavailable"},
    )


def upstream_down(server: str, cause: str) -> str:
    """What a call is told while the server behind a proxy cannot be reached."""
    return (
        f"Refused: the upstream server {server} is down: {cause}. Nothing was sent to it; "
        "the proxy keeps reconnecting."
    )


def _stake_shown(stake: dict[str, Any] | None, arguments: Any) -> dict[str, Any] | None:
    """What an approver is shown at stake, with the secrets of the call filed hidden by value
    as in its arguments (``redact_arguments``): a connection listed with the password the call
    forwards in its database, URL or login."""
    return None if stake is None else redact_known(stake, arguments_secrets(arguments))


class GuardRefusal(Exception):
    """The call must not run. ``message`` is meant for the agent, ``outcome`` for the audit."""

    def __init__(self, outcome: Outcome, message: str, structured: dict[str, Any] | None = None):
        super().__init__(message)
        self.outcome = outcome
        self.message = message
        self.structured = structured


class CallRefused(Exception):
    """Raised by a ``Served`` hook that refuses the call itself (e.g. a busy lease); the
    guard audits it like any refusal."""

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.message)
        self.refusal = refusal


class Served(Protocol):
    """What a front-end (``serve``, ``proxy``, a test's) tells the guard about its tools."""

    server_id: str  # the catalog its tools are kept under
    risks: Mapping[str, Classification]  # the class of each served tool (catalog.py)

    def served(self) -> Collection[str]:
        """The tools it serves now (listed unless the policy hides them)."""
        ...

    async def definition_problem(self, tool: str) -> Refusal | None:
        """None if ``tool`` is served as it was accepted (and the catalog could be checked)."""
        ...

    def argument_problem(self, tool: str, arguments: dict[str, Any]) -> str | None:
        """None if the arguments fit the tool's schema and the call could run, else a
        one-line reason naming the fault, never a value. May raise ``BACKEND_ERRORS``."""
        ...

    async def readiness_problem(self, tool: str) -> Refusal | None:
        """None if the call could be carried out now (e.g. the upstream is reachable)."""
        ...

    def outage(self) -> str | None:
        """Why the tools it serves cannot be known now (the upstream behind a proxy is
        down: its tools may be missing from ``served``), else None."""
        ...

    def also_governed_by(
        self, tool: str, arguments: dict[str, Any]
    ) -> AbstractAsyncContextManager[Sequence[str]]:
        """The rules of what the call would also do (a replacement of a connection is also a
        removal), held until the call is done. May raise ``BACKEND_ERRORS`` or
        ``CallRefused``."""
        ...

    def at_stake(self, tool: str) -> dict[str, Any] | None:
        """What the call being judged would replace or remove, as the front-end knows it
        (asked within ``also_governed_by``: the proxy's view of its upstream's connection),
        recorded on the approval request it files so that approvers see it; None: nothing
        to record."""
        ...

    async def connection_binding(self, tool: str, arguments: dict[str, Any]) -> str | None:
        """The identity of the connection the call would remove, replace or act through,
        as it is now ('' : none; None: the call is about no connection), asked within
        ``also_governed_by`` of a call that needs an approval. An approval request is bound to
        it: a request filed for one connection does not answer for another that took its
        alias since (invariant 14); a data call naming no connection, or one that is not
        there, is bound to the one it would act through (the only one). May raise
        ``BACKEND_ERRORS`` or ``CallRefused``."""
        ...


@dataclass(frozen=True)
class Continuation:
    """A client's answers to a judged call's input request (``requestState``). It is a call
    and passes the gate as one; its state is single use, until ``expires_at``. ``fault``:
    the front-end found the state not to belong to this call (refused as 'invalid')."""

    key: str  # unique to the one input request it answers
    expires_at: float
    fault: str | None = None
    # What the continuation adds to the call's arguments (the questions it answers, the
    # answers, the upstream's state): bound into its arguments hash and its approval, and
    # shown to the approver. An approval for one answer is not one for another.
    inputs: dict[str, Any] | None = None


def bound_arguments(arguments: object, continuation: Continuation | None) -> object:
    """What a call is judged, hashed and approved on: its arguments, and for a continuation
    what it answers and how."""
    if continuation is None or continuation.inputs is None:
        return arguments
    return {"arguments": arguments, "continuation": continuation.inputs}


REPLAYED = (
    "Refused: this requestState was already used (a continuation answers its input request "
    "once); nothing was sent. Call the tool again to start over."
)


@dataclass
class _Call:
    """One call as the audit records it."""

    principal: str
    tool: str
    args_hash: str
    executing: bool = False  # from here on an exception is the tool's, not the backend's
    behalf_of: str | None = None  # the client's tool this call of the front-end's is made for


class Guard:
    def __init__(
        self,
        policy: PolicyPort,
        store: GuardStore,
        *,
        approval_hint: str = LOCAL_APPROVAL_HINT,
        clock: Callable[[], float] = time.time,
        rate_limiter: RateLimiter | None = None,
        kept_dir: Path | None = None,
    ):
        self.policy = policy
        # Where an event the store cannot take is also kept at once (stores/kept.py): a
        # kill -9 before the guard's exit loses nothing (outside round 20, F4 of tester B).
        self.kept_dir = kept_dir
        self.store = store
        # Where the rate-limit counters live: this store, unless shared (ratelimit.py).
        self.hit_rate_limits: RateLimiter = rate_limiter or store.hit_rate_limits
        self.approval_hint = approval_hint
        self.clock = clock
        # Continuations already let through, until their state expires. In memory: a state
        # is sealed with this process's ephemeral key, so no other process can accept it.
        self._spent: dict[str, float] = {}
        # Audit events the store could not take (locked, down): written before the next one.
        self._unwritten: deque[AuditEvent] = deque()
        self._unwritten_lock = threading.Lock()

    # --- listing -------------------------------------------------------------------

    def visible(self, names: Iterable[str]) -> list[str]:
        """The tools an agent may see. With no usable policy nothing is listed (fail closed)."""
        try:
            policy = self.policy.current()
        except PolicyUnavailable:
            return []
        return [
            name for name in names if check_tool_name(name) is None and not policy.is_hidden(name)
        ]

    # --- calling -------------------------------------------------------------------

    async def call(
        self,
        front: Served,
        principal: str,
        tool: object,
        arguments: object,
        *,
        execute: Callable[[dict[str, Any]], Awaitable[T]],
        continuation: Continuation | None = None,
        behalf_of: str | None = None,
    ) -> T:
        """Judge one call (or continuation) as it arrived and run ``execute`` if it may run.
        Raises ``GuardRefusal`` (audited) when it may not; what ``execute`` raises is
        audited as 'failed' and passed on. ``behalf_of``: the call is the front-end's own,
        made for the client's call of that tool (the proxy lists the connections an upsert
        would write): it passes the same gate, but an approval is never filed for it."""
        fault = check_tool_name(tool)
        if fault is not None:
            # 1. The name: in the MCP alphabet, before any lookup (audited as printable).
            # redacted first: a name outside the alphabet may be a URL with its password
            shown = redact_line(tool) if isinstance(tool, str) else tool
            named = _Call(principal, printable_name(shown), "-")
            raise self._refuse(named, Refusal("invalid", f"Refused: {fault}."))
        assert isinstance(tool, str)
        bound = bound_arguments(arguments, continuation)
        call = _Call(principal, tool, arguments_digest(bound), behalf_of=behalf_of)
        try:
            return await self._judge_and_run(front, call, arguments, execute, continuation)
        except BACKEND_ERRORS as exc:
            if call.executing:
                raise
            raise self._refuse(call, unavailable(str(exc))) from None
        except CallRefused as refused:
            raise self._refuse(call, refused.refusal) from None

    async def _judge_and_run(
        self,
        front: Served,
        call: _Call,
        arguments: object,
        execute: Callable[[dict[str, Any]], Awaitable[T]],
        continuation: Continuation | None,
    ) -> T:
        tool = call.tool
        # 1. (cont.) A continuation's state names this call.
        if continuation is not None and continuation.fault is not None:
            raise self._refuse(call, Refusal("invalid", continuation.fault))
        policy = self._policy(call)
        decision = policy.decide(tool, front.server_id, front.risks.get(tool))
        # 2. Listed: not hidden, served, and called with an object.
        self._check_listed(front, call, decision, arguments)
        assert isinstance(arguments, dict)
        # 3. The definition the agent saw is the one accepted (and the catalog could be
        # checked at all: fail closed, whatever the policy says of the tool).
        refusal = await front.definition_problem(tool)
        if refusal is not None:
            raise self._refuse(call, refusal)
        # 4. Not denied by its own rule: refused as such before its arguments are looked at
        # (a denied caller learns nothing from them, e.g. which connections exist).
        self._check_not_denied(call, [decision])
        # 5. The arguments: before an approval could be filed for a call that cannot run.
        problem = front.argument_problem(tool, arguments)
        if problem is not None:
            raise self._refuse(call, Refusal("invalid", problem))
        if continuation is not None and not self._unspent(continuation):
            # Before the rate limit and the approval: a replay costs nothing and files nothing.
            raise self._refuse(call, Refusal("invalid", REPLAYED))
        refusal = await front.readiness_problem(tool)
        if refusal is not None:  # before anything is counted or filed for it
            raise self._refuse(call, refusal)
        async with front.also_governed_by(tool, arguments) as also:
            # 6. The policy of what it would also do.
            decisions = [
                decision,
                *(policy.decide(other, front.server_id, front.risks.get(other)) for other in also),
            ]
            self._check_not_denied(call, decisions[1:])
            # 7. Rate limits: charged for every rule or for none.
            self._charge_rate_limits(call, decisions)
            # 8. Approval, 9. execute.
            gating = [rule for rule in decisions if rule.action == "require_approval"]
            if gating and call.behalf_of is not None:
                message = (
                    f"Refused: '{tool}' needs an approval; the guard does not call it on behalf "
                    f"of '{call.behalf_of}'."
                )
                raise self._refuse(call, Refusal("denied", message))
            if gating:
                target = await front.connection_binding(tool, arguments)
                return await self._through_approval(
                    front, call, arguments, gating, also, execute, continuation, target
                )
            self._spend(call, continuation)
            note = "continuation (answers to an input request)" if continuation else ""
            if call.behalf_of is not None:
                note = f"called by the guard on behalf of '{call.behalf_of}'"
            self._audit(call, "allowed", note)
            return await self._execute(call, arguments, execute, None)

    def _policy(self, call: _Call) -> Policy:
        try:
            return self.policy.current()
        except PolicyUnavailable as exc:
            raise self._refuse(
                call, Refusal("unavailable", f"Refused: {exc}; no tool can run.")
            ) from None

    def _check_listed(
        self, front: Served, call: _Call, decision: Decision, arguments: object
    ) -> None:
        tool = call.tool
        if decision.hidden:
            message = f"Refused: the tool '{tool}' is hidden by policy and cannot be called."
            raise self._refuse(call, Refusal("hidden", message))
        if tool not in front.served():
            cause = front.outage()
            if cause is not None:  # not "unknown": what it serves cannot be known now
                message = upstream_down(front.server_id, cause)
                raise self._refuse(call, Refusal("unavailable", message, {"status": "down"}))
            # A name nobody listed may hold a secret known by value (an upstream's tool listed
            # as "get_***" and called by its real name, outside round 20, F1): audited and
            # answered hidden, as a log line would show it.
            shown = redact_line(tool)
            if shown != tool:
                call = replace(call, tool=shown)
            raise self._refuse(call, Refusal("unknown", f"Refused: unknown tool '{shown}'."))
        if not isinstance(arguments, dict):
            message = (
                f"Refused: the arguments of '{tool}' must be a JSON object, "
                f"not {type(arguments).__name__}."
            )
            raise self._refuse(call, Refusal("invalid", message))

    def _check_not_denied(self, call: _Call, decisions: Sequence[Decision]) -> None:
        for rule in decisions:
            if rule.hidden or rule.action == "deny":
                why = rule.reason or ("hidden by policy" if rule.hidden else "denied by policy")
                via = "" if rule.tool == call.tool else f" (it would also {rule.tool})"
                message = f"Refused: '{call.tool}' is not allowed{via}: {why}."
                raise self._refuse(call, Refusal("denied", message))

    def _charge_rate_limits(self, call: _Call, decisions: Sequence[Decision]) -> None:
        """Count the call against every rule's limit, or (one is full) against none: a
        refusal by one rule does not spend another's quota."""
        limits: dict[str, Limit] = {}
        for rule in decisions:
            if rule.rate_limit is not None and rule.tool not in limits:
                limits[rule.tool] = Limit(rule.tool, rule.rate_limit.max, rule.rate_limit.window)
        if not limits:
            return
        try:
            full = self.hit_rate_limits(call.principal, list(limits.values()), self.clock())
        except RateLimitUnavailable as exc:
            message = (
                f"Refused: '{call.tool}' is rate-limited and the shared rate-limit counter "
                f"cannot be checked ({exc}); nothing was done."
            )
            raise self._refuse(
                call, Refusal("unavailable", message, {"status": "unavailable"})
            ) from None
        if full is not None:
            limit = full.limit
            message = (
                f"Refused: rate limit for '{limit.tool}' reached ({limit.max_calls} calls "
                f"per {limit.window:g} s); retry in {full.wait:.1f} s."
            )
            structured = {"status": "rate_limited", "retry_after": round(full.wait, 3)}
            raise self._refuse(call, Refusal("rate_limited", message, structured))

    # --- the audit: every decision, written here only ------------------------------

    def unreadable_message(self, principal: str, line: str, why: str) -> None:
        """Audit a client's message that could not be read as JSON-RPC (stdio: the SDK
        answered it with a parse error, or dropped it): no tool was judged, and the decision
        (nothing runs) is recorded like any other (invariant 7). Nothing of the line is
        stored (a call's arguments never are, and this one's cannot be redacted by key): its
        size, its SHA-256 in place of the arguments hash (to match it with the client's own
        record) and ``why`` the parser refused it (its words, redacted, escaped, cut)."""
        raw = line.encode("utf-8", "surrogatepass")
        reason = printable_name(redact_text(why[:1000]), limit=160)
        detail = f"unparseable request ({len(raw)} bytes, not JSON-RPC): {reason}"
        call = _Call(principal, "-", hashlib.sha256(raw).hexdigest())
        self._audit(call, "invalid", detail, keep=True)

    def _audit(
        self,
        call: _Call,
        outcome: Outcome,
        detail: str = "",
        request_ref: str | None = None,
        *,
        keep: bool = False,
    ) -> None:
        """Write the event of one decision. ``keep``: the decision stands even if the store
        cannot take its event now (a refusal, a failure): the event is then logged as one line
        in full and written with the next event the store takes (never dropped silently);
        otherwise the error is raised and the call does not run."""
        count_decision(call.tool, outcome)
        event = AuditEvent(
            principal=call.principal,
            tool=call.tool,
            arguments_hash=call.args_hash,
            outcome=outcome,
            # redact first: a cut may hide a URL's "@"; and the secrets known by value (an
            # upstream's error quoting a forwarded password: outside round 23)
            detail=redact_line(detail)[:1000],
            request_ref=request_ref,
        )
        try:
            # the store still refusing an earlier event refuses this one too: not waited twice
            self._write_unwritten()
            self.store.append_audit(event)
        except Exception as exc:
            if not keep:
                raise
            self._keep_unwritten(event, exc)

    def _keep_unwritten(self, event: AuditEvent, exc: Exception) -> None:
        cause = " ".join(redact_text(str(exc) or type(exc).__name__).split())[:300]
        shown = json.dumps(event.model_dump(), ensure_ascii=False)
        with self._unwritten_lock:
            if len(self._unwritten) < MAX_UNWRITTEN_AUDIT:
                self._unwritten.append(event)
                log.error("audit event kept until the store takes it (%s): %s", cause, shown)
            else:  # memory is bounded: this line is then its only record
                log.error("audit event in this log only, not stored (%s): %s", cause, shown)
            if self.kept_dir is not None:
                # also in the kept file, at once (stored by its uuid once, whoever replays it)
                try:
                    save_kept(self.kept_dir, [event])
                except Exception as exc:
                    why = " ".join(redact_text(str(exc) or type(exc).__name__).split())[:300]
                    log.error("audit event %s not kept in a file (%s)", event.uuid, why)

    def _write_unwritten(self) -> None:
        """Write the events the store could not take before, in their order (idempotent on
        each event's uuid); raises at the first the store still cannot take."""
        with self._unwritten_lock:
            while self._unwritten:
                self.store.append_audit(self._unwritten[0])
                written = self._unwritten.popleft()
                log.warning("audit event %s written now that the store takes it", written.uuid)

    def save_unwritten(self) -> None:
        """At exit: the events the store has not taken yet are first kept in a file of
        ``kept_dir`` (atomic and quick: an exit cut short by the client loses nothing), then
        written to the store with one more wait, bounded by its busy timeout; those it still
        cannot take stay in the file, written at the next start (stores/kept.py). If the file
        cannot be written, the store is tried once more, and if it refuses too, one line says
        the events were not stored (each was logged in full when kept)."""
        with self._unwritten_lock:
            events = list(self._unwritten)
            if not events:
                return
            data_dir = self.kept_dir
            try:
                if data_dir is None:
                    raise OSError("no data directory")
                path = save_kept(data_dir, events)
            except Exception as exc:
                why = " ".join(redact_text(str(exc) or type(exc).__name__).split())[:300]
            else:
                self._unwritten.clear()
                log.error(
                    "%d audit events the store has not taken kept in %s until it takes them",
                    len(events),
                    path,
                )
                assert data_dir is not None
                replay_kept(data_dir, self.store.append_audit)
                return
        try:
            self._write_unwritten()
            return
        except Exception as exc:
            cause = " ".join(redact_text(str(exc) or type(exc).__name__).split())[:300]
        shown = json.dumps([e.model_dump() for e in events], ensure_ascii=False)
        log.critical(
            "%d audit events NOT stored: the store cannot take them (%s) and they cannot be "
            "kept in the data directory (%s): %s",
            len(events),
            cause,
            why,
            shown,
        )

    def _refuse(
        self, call: _Call, refusal: Refusal, request_ref: str | None = None
    ) -> GuardRefusal:
        """Audit a refusal; it stands even if the audit cannot be written now (kept)."""
        self._audit(call, refusal.outcome, refusal.message, request_ref, keep=True)
        return GuardRefusal(refusal.outcome, refusal.message, refusal.structured)

    # --- continuations ---------------------------------------------------------------

    def _unspent(self, continuation: Continuation) -> bool:
        now = self.clock()
        return continuation.key not in self._spent and now < continuation.expires_at

    def _spend(self, call: _Call, continuation: Continuation | None) -> None:
        """Claim a continuation's state for this execution. No await between the test and
        the claim: two replays in flight cannot both pass (one event loop)."""
        if continuation is None:
            return
        if not self._unspent(continuation):
            raise self._refuse(call, Refusal("invalid", REPLAYED))
        now = self.clock()
        for key in [key for key, until in self._spent.items() if until <= now]:
            del self._spent[key]
        self._spent[continuation.key] = continuation.expires_at

    # --- executing and approvals -------------------------------------------------------

    async def _execute(
        self,
        call: _Call,
        arguments: dict[str, Any],
        execute: Callable[[dict[str, Any]], Awaitable[T]],
        request: ApprovalRequest | None,
    ) -> T:
        call.executing = True
        running = RUNNING_ON_APPROVAL.set(request.ref if request is not None else None)
        try:
            return await execute(arguments)
        except Exception as exc:
            self._failed(call, request, redact_text(str(exc))[:500] or type(exc).__name__)
            raise
        except BaseException:
            # cancelled (the client went away or cancelled it, the server stopping): it may or
            # may not have acted; the trail says so, not only "allowed" or "approved_executed"
            self._failed(call, request, "cancelled before it finished: whether it acted is unknown")
            raise
        finally:
            RUNNING_ON_APPROVAL.reset(running)

    def _failed(self, call: _Call, request: ApprovalRequest | None, note: str) -> None:
        """A call that did not finish: its request (if any) marked failed, and audited."""
        if request is not None:
            try:
                self.store.mark_failed(request.id, note)
            except Exception as failure:
                cause = " ".join(redact_text(str(failure)).split())[:300]
                log.error("cannot mark request %s failed (%s)", request.ref, cause)
        self._audit(call, "failed", note, request.ref if request else None, keep=True)

    def _rule_changed(
        self, front: Served, tool: str, request: ApprovalRequest, also: Sequence[str] = ()
    ) -> str | None:
        """Why ``request`` no longer stands under the policy in force (a rule it was filed
        under, policy_core.approval_terms, changed: the call's own, or one of ``also``, the
        rules it also passes, e.g. a replacement's odoo_disconnect), or None. A binding missing
        from the request reads as changed (fail closed); a backend that keeps no bindings of
        ``also`` (Odoo) judges them itself when it consumes. A policy kept from another place
        (Odoo) may lag behind it: on a difference it is read again once."""
        if request.rule_binding is None or request.state not in ("pending", "approved"):
            return None
        tools = [tool] if request.also_bindings is None else [tool, *also]
        filed = [request.rule_binding, *(request.also_bindings or ())]
        for attempt in range(2):
            policy = self.policy.current()
            bound = policy.bindings(tools)
            index = next(
                (i for i, now in enumerate(bound) if i >= len(filed) or filed[i] != now), None
            )
            if index is None:
                return None
            if attempt == 0:
                self.policy.refresh()
        changed = tools[index]
        now = policy.decide(changed, front.server_id, front.risks.get(changed))
        rule = f"rule {now.rule!r}" if now.rule else "the default action"
        via = "" if changed == tool else " (which the call also passes)"
        return (
            f"it was filed under a rule for '{changed}'{via} that has changed since (now {rule}: "
            f"{now.action}, approver group {now.approver_group}, quorum {now.quorum})"
        )

    @staticmethod
    def _connection_changed(
        request: ApprovalRequest, target: str | None, arguments: dict[str, Any]
    ) -> str | None:
        """Why ``request`` no longer answers for the call: the connection it removes or
        replaces is not the one the request was filed for (a request filed before requests
        were bound, None, answers only where no connection is at stake), or None."""
        if request.state not in ("pending", "approved"):
            return None
        if (request.connection_binding or "") == (target or ""):
            return None
        alias = arguments.get("alias")
        if not isinstance(alias, str):  # none named: the one the call resolves to
            return "the connection the call acts on changed since it was filed"
        named = f"'{alias}'" if check_tool_name(alias) is None else "it names"
        return f"the connection {named} changed since it was filed"

    def _retired_by_backend(
        self, front: Served, call: _Call, request: ApprovalRequest, now: float
    ) -> str | None:
        """Why the backend refused to consume ``request`` if it retired it unused before its
        expiry (Odoo does so when a rule it was filed under changed, which for a rule the call
        also passes only Odoo can tell), or None (e.g. another call consumed it first)."""
        again = self.store.open_request(
            call.tool, call.args_hash, call.principal, now, server=front.server_id
        )
        if again is None or again.id != request.id:
            return None
        if again.state != "expired" or again.expires_at <= now:
            return None
        return (
            "the approval backend retired it unused: a rule it was filed under (the call's own "
            "or one it also passes) has changed since"
        )

    def _rule_changed_refusal(
        self, call: _Call, request: ApprovalRequest, changed: str
    ) -> GuardRefusal:
        self.store.retire(request.id, f"not used: {changed}")
        APPROVALS.labels("expired").inc()
        message = (
            f"Refused: the approval {request.ref} for '{call.tool}' no longer stands: "
            f"{changed}; nothing was done. Calling again files a new request under the rule "
            "in force."
        )
        structured = {"status": "rule_changed", "request": request.ref}
        return self._refuse(call, Refusal("approval_expired", message, structured), request.ref)

    async def _through_approval(
        self,
        front: Served,
        call: _Call,
        arguments: dict[str, Any],
        gating: list[Decision],
        also: Sequence[str],
        execute: Callable[[dict[str, Any]], Awaitable[T]],
        continuation: Continuation | None,
        target: str | None,
    ) -> T:
        store, tool, principal, args_hash = self.store, call.tool, call.principal, call.args_hash
        # filed, shown and consumed with what the call adds (a continuation's answers)
        approved_for: Any = bound_arguments(arguments, continuation)
        now = self.clock()
        # Bound to the server it was filed on, as to the tool, arguments and principal: a
        # front-end sharing this store for another server neither uses nor withdraws it.
        request = store.open_request(tool, args_hash, principal, now, server=front.server_id)
        replaced = ""
        changed = self._rule_changed(front, tool, request, also) if request is not None else None
        if request is not None and changed is not None:
            # Bound to the policy in force: an approval given (or to be given) under another
            # rule is not used; the request is retired and the next call files anew.
            if request.state == "approved":
                raise self._rule_changed_refusal(call, request, changed)
            store.retire(request.id, f"not used: {changed}")
            replaced = f" (request {request.ref} was withdrawn: {changed})"
            request = None
        moved = self._connection_changed(request, target, arguments) if request else None
        if request is not None and moved is not None:
            # Bound to the connection it was filed (and shown, and approved) for: once another
            # one holds its alias the approval is not used, and the call, about the connection
            # as it is now, is filed anew (as Odoo does: a changed connection makes a new
            # request).
            store.retire(request.id, f"not used: {moved}")
            given = (
                f"; the approval by {request.decided_by} was not used"
                if request.state == "approved"
                else ""
            )
            replaced = f" (request {request.ref} was withdrawn: {moved}{given})"
            APPROVALS.labels("expired").inc()
            request = None
        if request is not None and request.state == "approved":
            event = AuditEvent(
                principal=principal,
                tool=tool,
                arguments_hash=args_hash,
                outcome="approved_executed",
                detail=f"approved by {request.decided_by}",
                request_ref=request.ref,
            )
            # The state is claimed first: consuming the approval may already act (Odoo removes
            # a connection in the same transaction), and a replay must not get that far.
            self._spend(call, continuation)
            # The audit of an approved execution is written by the store, in the transaction
            # that consumes the approval (invariant 10).
            if store.consume(request.id, event, now, arguments=approved_for):
                count_decision(tool, "approved_executed")
                APPROVALS.labels("approved").inc()
                return await self._execute(call, arguments, execute, request)
            if continuation is not None:  # not used after all: the client may retry with it
                self._spent.pop(continuation.key, None)
            # The backend refused it: a rule changed where the policy is kept (Odoo, which the
            # policy in force here may lag behind; read again), or another call consumed it
            # first: this one needs an approval of its own.
            self.policy.refresh()
            changed = self._rule_changed(front, tool, request, also)
            if changed is None:
                changed = self._retired_by_backend(front, call, request, now)
            if changed is not None:
                raise self._rule_changed_refusal(call, request, changed)
        elif request is not None and request.state == "rejected":
            store.mark_reported(request.id)
            APPROVALS.labels("rejected").inc()
            note = f": {request.decision_note}" if request.decision_note else ""
            message = (
                f"Refused: request {request.ref} for '{tool}' was rejected by "
                f"{request.decided_by}{note}. Calling again files a new request."
            )
            structured = {
                "status": "rejected",
                "request": request.ref,
                "note": request.decision_note or "",
            }
            raise self._refuse(call, Refusal("approval_rejected", message, structured), request.ref)
        elif request is not None and request.state == "expired":
            store.mark_reported(request.id)
            APPROVALS.labels("expired").inc()
            if request.decided_by:  # approved, then not used in time
                message = (
                    f"Refused: the approval {request.ref} for '{tool}' given by "
                    f"{request.decided_by} has expired unused. Calling again files a new request."
                )
            else:
                message = (
                    f"Refused: request {request.ref} for '{tool}' expired before an approver "
                    "decided on it; nothing was done. Calling again files a new request."
                )
            structured = {"status": "expired", "request": request.ref}
            raise self._refuse(call, Refusal("approval_expired", message, structured), request.ref)

        reason = next((rule.reason for rule in gating if rule.reason), None)
        # Who decides (policy_core.gating_terms, as Odoo): an approver of every gating rule's
        # group (the call's own rule's first), the largest quorum, the shortest lifetime;
        # bound to the call's own rule and to those it also passes (a replacement:
        # odoo_disconnect's).
        combined = gating_terms(gating)
        expires_in = combined.expires_in
        in_force = self.policy.current()
        own, *others = in_force.bindings([tool, *also])
        terms = ApprovalTerms(combined.approver_groups[0], combined.quorum, own)
        electorate = in_force.electorate_of(combined.approver_groups)
        if len(combined.approver_groups) > 1 and electorate["members"] == []:
            message = (
                f"Refused: '{tool}' needs an approver in each of the groups "
                f"{', '.join(combined.approver_groups)} (the rules it passes), and the policy "
                "lists nobody in all of them; no request was filed."
            )
            raise self._refuse(call, Refusal("denied", message))
        # Whose the principal is, as the policy in force says, frozen on the request: a
        # --policy given at approval cannot make the requester someone else (attack 13).
        people = in_force.people
        persons = None if people is None else sorted(requester_persons(principal, people))
        filed, created = store.file_request(
            tool,
            approved_for,
            principal,
            reason,
            expires_in,
            now,
            terms=terms,
            also_bindings=others,
            connection_binding=target,
            # the call's own secrets hidden too: a listed database named as its password
            at_stake=_stake_shown(front.at_stake(tool), arguments),
            requester_persons=persons,
            # who decides, frozen likewise: a --policy given at approval can neither add a
            # name to the group nor split one person into two votes (attack 14)
            electorate=electorate,
            server=front.server_id,
        )
        if created:
            APPROVALS.labels("filed").inc()
        why = f" ({reason})" if reason else ""
        quorum = filed.quorum
        needs = (
            f"{quorum} different approvers' decisions ({len(filed.approvals)} given so far)"
            if quorum > 1
            else "an approver's decision"
        )
        message = (
            f"Approval required: '{tool}' needs {needs}{why}{replaced}. "
            f"Request {filed.ref} is pending; {self.approval_hint.format(ref=filed.ref)}. "
            "Call again with the same arguments once it is approved."
        )
        structured = {
            "status": "pending",
            "request": filed.ref,
            "id": filed.id,
            "new": created,
            "quorum": quorum,
            "approvals": len(filed.approvals),
        }
        raise self._refuse(call, Refusal("approval_pending", message, structured), filed.ref)
