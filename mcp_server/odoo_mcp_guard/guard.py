"""The gate every tool call passes: name check, policy decision, rate limit, approval, audit.

Nothing executes unless the decision for that exact call was ``allow``, or
``require_approval`` with an approval consumed for it (DESIGN invariants 1-3, 6, 7).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from odoo_mcp_guard.catalog import Classification
from odoo_mcp_guard.engines import DATABASE_URL_ENV
from odoo_mcp_guard.metrics import APPROVALS, count_decision
from odoo_mcp_guard.names import arguments_digest, check_tool_name, printable_name
from odoo_mcp_guard.policy import Decision, PolicyUnavailable
from odoo_mcp_guard.policy_core import redact_text
from odoo_mcp_guard.ratelimit import RateLimiter, RateLimitUnavailable
from odoo_mcp_guard.store import (
    ApprovalRequest,
    AuditEvent,
    GuardStore,
    Outcome,
    builtin_data_dir,
)
from odoo_mcp_guard.stores.ports import PolicyPort

log = logging.getLogger(__name__)
T = TypeVar("T")

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


def local_approval_hint(data_dir: Path, database_url: str | None = None) -> str:
    """LOCAL_APPROVAL_HINT with the exact command that decides on this guard's store."""
    words = [*cli_invocation(), "approvals", "approve", "REF", "--as", "NAME"]
    if data_dir.absolute() != builtin_data_dir().absolute():
        words += ["--data-dir", str(data_dir)]
    command = shlex.join(words).replace("{", "{{").replace("}", "}}").replace("REF", "{ref}", 1)
    where = f" with {DATABASE_URL_ENV} set as for the guard" if database_url else ""
    return f"an approver (not you) runs `{command}` on the guard's host{where}"


class GuardRefusal(Exception):
    """The call must not run. ``message`` is meant for the agent, ``outcome`` for the audit."""

    def __init__(self, outcome: Outcome, message: str, structured: dict[str, Any] | None = None):
        super().__init__(message)
        self.outcome = outcome
        self.message = message
        self.structured = structured


@dataclass(frozen=True)
class Continuation:
    """A client's answers to a judged call's input request (``requestState``). It is a call
    and passes the gate as one; its state is single use, until ``expires_at``."""

    key: str  # unique to the one input request it answers
    expires_at: float


REPLAYED = (
    "Refused: this requestState was already used (a continuation answers its input request "
    "once); nothing was sent. Call the tool again to start over."
)


class Guard:
    def __init__(
        self,
        policy: PolicyPort,
        store: GuardStore,
        *,
        approval_hint: str = LOCAL_APPROVAL_HINT,
        clock: Callable[[], float] = time.time,
        rate_limiter: RateLimiter | None = None,
    ):
        self.policy = policy
        self.store = store
        # Where the rate-limit counters live: this store, unless shared (ratelimit.py).
        self.hit_rate_limit: RateLimiter = rate_limiter or store.hit_rate_limit
        self.approval_hint = approval_hint
        self.clock = clock
        # Continuations already let through, until their state expires. In memory: a state
        # is sealed with this process's ephemeral key, so no other process can accept it.
        self._spent: dict[str, float] = {}

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

    def _audit(
        self,
        principal: str,
        tool: str,
        args_hash: str,
        outcome: Outcome,
        detail: str = "",
        request_ref: str | None = None,
    ) -> None:
        count_decision(tool, outcome)
        self.store.append_audit(
            AuditEvent(
                principal=principal,
                tool=tool,
                arguments_hash=args_hash,
                outcome=outcome,
                detail=redact_text(detail)[:1000],  # redact first: a cut may hide a URL's "@"
                request_ref=request_ref,
            )
        )

    def _refuse(
        self,
        principal: str,
        tool: str,
        args_hash: str,
        outcome: Outcome,
        message: str,
        structured: dict[str, Any] | None = None,
        request_ref: str | None = None,
    ) -> GuardRefusal:
        self._audit(principal, tool, args_hash, outcome, message, request_ref)
        return GuardRefusal(outcome, message, structured)

    async def call(
        self,
        principal: str,
        tool: str,
        arguments: object,
        *,
        listed: Collection[str],
        execute: Callable[[dict[str, Any]], Awaitable[T]],
        also_governed_by: Sequence[str] = (),
        server: str | None = None,
        risks: Mapping[str, Classification] | None = None,
        continuation: Continuation | None = None,
    ) -> T:
        """Judge one call and run ``execute`` if it may run. ``risks`` holds the class of each
        tool of ``server``'s catalog (catalog.py): a risky tool with no exact rule needs
        approval whatever the default says. A ``continuation`` is judged, counted and audited
        like any call, needs an approval of its own where the tool does, and runs once."""
        name_fault = check_tool_name(tool)
        if name_fault is not None:
            raise self._refuse(
                principal, printable_name(tool), "-", "invalid", f"Refused: {name_fault}."
            )
        args_hash = arguments_digest(arguments)
        try:
            policy = self.policy.current()
        except PolicyUnavailable as exc:
            raise self._refuse(
                principal, tool, args_hash, "unavailable", f"Refused: {exc}; no tool can run."
            ) from None
        classes = risks or {}
        decision = policy.decide(tool, server, classes.get(tool))
        if decision.hidden:
            raise self._refuse(
                principal,
                tool,
                args_hash,
                "hidden",
                f"Refused: the tool '{tool}' is hidden by policy and cannot be called.",
            )
        if tool not in listed:
            raise self._refuse(
                principal, tool, args_hash, "unknown", f"Refused: unknown tool '{tool}'."
            )
        if not isinstance(arguments, dict):
            raise self._refuse(
                principal,
                tool,
                args_hash,
                "invalid",
                f"Refused: the arguments of '{tool}' must be a JSON object, "
                f"not {type(arguments).__name__}.",
            )

        decisions = [
            decision,
            *(policy.decide(other, server, classes.get(other)) for other in also_governed_by),
        ]
        for rule in decisions:
            if rule.hidden or rule.action == "deny":
                why = rule.reason or ("hidden by policy" if rule.hidden else "denied by policy")
                via = "" if rule.tool == tool else f" (it would also {rule.tool})"
                raise self._refuse(
                    principal,
                    tool,
                    args_hash,
                    "denied",
                    f"Refused: '{tool}' is not allowed{via}: {why}.",
                )
        if continuation is not None and not self._unspent(continuation):
            # Before the rate limit and the approval: a replay costs nothing and files nothing.
            raise self._refuse(principal, tool, args_hash, "invalid", REPLAYED)
        for rule in decisions:
            if rule.rate_limit is None:
                continue
            try:
                wait = self.hit_rate_limit(
                    principal, rule.tool, rule.rate_limit.max, rule.rate_limit.window, self.clock()
                )
            except RateLimitUnavailable as exc:
                raise self._refuse(
                    principal,
                    tool,
                    args_hash,
                    "unavailable",
                    f"Refused: '{rule.tool}' is rate-limited and the shared rate-limit counter "
                    f"cannot be checked ({exc}); nothing was done.",
                    {"status": "unavailable"},
                ) from None
            if wait is not None:
                raise self._refuse(
                    principal,
                    tool,
                    args_hash,
                    "rate_limited",
                    f"Refused: rate limit for '{rule.tool}' reached ({rule.rate_limit.max} calls "
                    f"per {rule.rate_limit.window:g} s); retry in {wait:.1f} s.",
                    {"status": "rate_limited", "retry_after": round(wait, 3)},
                )

        gating = [rule for rule in decisions if rule.action == "require_approval"]
        if not gating:
            self._spend(principal, tool, args_hash, continuation)
            note = "continuation (answers to an input request)" if continuation else ""
            self._audit(principal, tool, args_hash, "allowed", note)
            return await self._execute(principal, tool, args_hash, arguments, execute, None)
        return await self._through_approval(
            principal, tool, args_hash, arguments, gating, execute, continuation
        )

    def _unspent(self, continuation: Continuation) -> bool:
        now = self.clock()
        return continuation.key not in self._spent and now < continuation.expires_at

    def _spend(
        self, principal: str, tool: str, args_hash: str, continuation: Continuation | None
    ) -> None:
        """Claim a continuation's state for this execution. No await between the test and
        the claim: two replays in flight cannot both pass (one event loop)."""
        if continuation is None:
            return
        if not self._unspent(continuation):
            raise self._refuse(principal, tool, args_hash, "invalid", REPLAYED)
        now = self.clock()
        for key in [key for key, until in self._spent.items() if until <= now]:
            del self._spent[key]
        self._spent[continuation.key] = continuation.expires_at

    async def _execute(
        self,
        principal: str,
        tool: str,
        args_hash: str,
        arguments: dict[str, Any],
        execute: Callable[[dict[str, Any]], Awaitable[T]],
        request: ApprovalRequest | None,
    ) -> T:
        try:
            return await execute(arguments)
        except Exception as exc:
            note = redact_text(str(exc))[:500] or type(exc).__name__
            if request is not None:
                self.store.mark_failed(request.id, note)
            self._audit(
                principal, tool, args_hash, "failed", note, request.ref if request else None
            )
            raise

    async def _through_approval(
        self,
        principal: str,
        tool: str,
        args_hash: str,
        arguments: dict[str, Any],
        gating: list[Decision],
        execute: Callable[[dict[str, Any]], Awaitable[T]],
        continuation: Continuation | None = None,
    ) -> T:
        store = self.store
        now = self.clock()
        request = store.open_request(tool, args_hash, principal, now)
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
            self._spend(principal, tool, args_hash, continuation)
            if store.consume(request.id, event, now, arguments=arguments):
                count_decision(tool, "approved_executed")
                APPROVALS.labels("approved").inc()
                return await self._execute(principal, tool, args_hash, arguments, execute, request)
            if continuation is not None:  # not used after all: the client may retry with it
                self._spent.pop(continuation.key, None)
            # Another call consumed it first: this one needs an approval of its own.
        elif request is not None and request.state == "rejected":
            store.mark_reported(request.id)
            APPROVALS.labels("rejected").inc()
            note = f": {request.decision_note}" if request.decision_note else ""
            raise self._refuse(
                principal,
                tool,
                args_hash,
                "approval_rejected",
                f"Refused: request {request.ref} for '{tool}' was rejected by "
                f"{request.decided_by}{note}. Calling again files a new request.",
                {
                    "status": "rejected",
                    "request": request.ref,
                    "note": request.decision_note or "",
                },
                request.ref,
            )
        elif request is not None and request.state == "expired":
            store.mark_reported(request.id)
            APPROVALS.labels("expired").inc()
            raise self._expired(principal, tool, args_hash, request)

        reason = next((rule.reason for rule in gating if rule.reason), None)
        expires_in = min(rule.expires_in for rule in gating)
        filed, created = store.file_request(tool, arguments, principal, reason, expires_in, now)
        if created:
            APPROVALS.labels("filed").inc()
        why = f" ({reason})" if reason else ""
        raise self._refuse(
            principal,
            tool,
            args_hash,
            "approval_pending",
            f"Approval required: '{tool}' needs an approver's decision{why}. "
            f"Request {filed.ref} is pending; {self.approval_hint.format(ref=filed.ref)}. "
            "Call again with the same arguments once it is approved.",
            {"status": "pending", "request": filed.ref, "id": filed.id, "new": created},
            filed.ref,
        )

    def _expired(
        self, principal: str, tool: str, args_hash: str, request: ApprovalRequest
    ) -> GuardRefusal:
        return self._refuse(
            principal,
            tool,
            args_hash,
            "approval_expired",
            f"Refused: the approval {request.ref} for '{tool}' has expired. "
            "Calling again files a new request.",
            {"status": "expired", "request": request.ref},
            request.ref,
        )
