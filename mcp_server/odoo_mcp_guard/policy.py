"""The policy document at the front-end's boundary: typed models, loading with precise faults,
the per-tool decision, and the policy in force (a file re-read when it changes).

The format is the published gateway one (``version``/``default``/``hide``/``rules``),
extended with ``require_approval``, ``rate_limit``, ``reason`` and ``approval``, and with
``risk``: which risk classes (catalog.py) need approval when no exact-name rule names the tool.

The rules themselves (bounds, validation, matching, the decision) are policy_core.py's, the
module the Odoo add-on vendors: the models below are a typed view of a document the core has
already accepted, so that both halves accept and decide exactly the same documents.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from odoo_mcp_guard import policy_core as core
from odoo_mcp_guard.catalog import RISK_RANK, Classification, RiskClass
from odoo_mcp_guard.files import FileReadError, read_regular_file
from odoo_mcp_guard.names import canonical_json

log = logging.getLogger(__name__)

Action = core.Action
ToolPattern = Annotated[str, StringConstraints(pattern=f"^{core.TOOL_PATTERN_RE.pattern}$")]
ToolName = Annotated[str, StringConstraints(pattern=f"^{core.TOOL_NAME_RE.pattern}$")]
Reason = Annotated[str, StringConstraints(max_length=core.MAX_REASON)]

MAX_POLICY_BYTES = core.MAX_POLICY_BYTES
DEFAULT_EXPIRES_IN = core.DEFAULT_EXPIRES_IN
RateLimit = core.RateLimit  # what a Decision carries: (max, window)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RateLimitSettings(_Strict):
    max: int = Field(ge=1, le=core.MAX_CALLS, description="calls allowed per principal")
    window: float = Field(gt=0, le=core.MAX_SECONDS, description="sliding window, in seconds")


ApproverGroup = Annotated[str, StringConstraints(pattern=f"^{core.APPROVER_GROUP_RE.pattern}$")]


class ApprovalSettings(_Strict):
    expires_in: int = Field(
        default=DEFAULT_EXPIRES_IN,
        ge=1,
        le=core.MAX_SECONDS,
        description="seconds an approval stays valid",
    )
    approver_group: ApproverGroup | None = Field(
        default=None, description="who decides (default: the MCP Guard Approver group)"
    )
    quorum: int | None = Field(
        default=None, ge=1, le=core.MAX_QUORUM, description="distinct approvers needed"
    )


class Rule(_Strict):
    action: Action
    reason: Reason | None = None
    rate_limit: RateLimitSettings | None = None
    approval: ApprovalSettings | None = None


DEFAULT_RISK_APPROVAL: tuple[RiskClass, ...] = core.DEFAULT_RISK_APPROVAL


class RiskServer(_Strict):
    require_approval: list[RiskClass]


class RiskOverride(_Strict):
    model_config = ConfigDict(populate_by_name=True)

    server: str
    tool: ToolName
    risk_class: RiskClass = Field(alias="class")
    reason: Reason | None = None


class RiskSettings(_Strict):
    require_approval: list[RiskClass] = Field(default_factory=lambda: list(DEFAULT_RISK_APPROVAL))
    servers: dict[str, RiskServer] = Field(default_factory=dict)
    overrides: list[RiskOverride] = Field(default_factory=list)


class PolicyDocument(_Strict):
    """A typed view of a document ``policy_core.check_policy`` accepted (``document_of``)."""

    version: Literal["1"]
    default: Action = "deny"
    hide: list[ToolPattern] = Field(default_factory=list)
    rules: dict[ToolPattern, Rule] = Field(default_factory=dict)
    risk: RiskSettings | None = None
    # The embedded store's approver groups: {group: [names]} (Odoo: members of its groups).
    approvers: dict[ApproverGroup, list[str]] | None = None
    # The embedded store's persons: {person: [principals acting for them]} (Odoo: a user's
    # MCP principals).
    people: dict[str, list[str]] | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


def _approval(reason: str) -> Rule:
    return Rule(
        action="require_approval",
        reason=reason,
        approval=ApprovalSettings(expires_in=DEFAULT_EXPIRES_IN),
    )


# The shipped default, the same as the Odoo add-on's default rules: connection listing and
# new connections allowed, removals held for approval; data reads allowed, changes held.
BUILTIN_POLICY = PolicyDocument(
    version="1",
    default="deny",
    hide=[],
    rules={
        "odoo_connections": Rule(action="allow"),
        "odoo_connect": Rule(action="allow"),
        "odoo_disconnect": _approval("Removing a connection cannot be undone"),
        "odoo_search_read": Rule(action="allow"),
        "odoo_read": Rule(action="allow"),
        "odoo_fields_get": Rule(action="allow"),
        "odoo_create": _approval("Creating records needs an approver"),
        "odoo_write": _approval("Changing records needs an approver"),
        "odoo_unlink": _approval("Deleting records cannot be undone"),
    },
    risk=RiskSettings(),
)


class PolicyError(ValueError):
    """A policy that cannot be used; ``faults`` holds one line per fault."""

    def __init__(self, source: str, faults: list[str]):
        self.source = source
        self.faults = faults
        super().__init__(f"{source}: invalid policy: " + "; ".join(faults))


class PolicyUnavailable(RuntimeError):
    """No good policy is loaded: every call is refused."""


@dataclass(frozen=True, slots=True)
class Decision:
    tool: str
    action: Action
    hidden: bool
    reason: str | None
    rate_limit: RateLimit | None  # (max, window)
    expires_in: int
    rule: str | None  # the rule key that matched; None means the document's default
    risk: Classification | None = None  # the class the decision was taken with, if any
    # Who decides an approval under the rule, how many of them, and the hash it is bound to.
    approver_group: str = core.DEFAULT_APPROVER_GROUP
    quorum: int = 1
    binding: str = ""


class Policy:
    """A loaded, compiled policy document. ``decide`` (policy_core's) is pure and cached."""

    _CACHE_LIMIT = 4096

    def __init__(self, document: PolicyDocument, source: str = "<built-in>"):
        self.document = document
        self.source = source
        plain = document.to_json_dict()
        self.etag = hashlib.sha256(canonical_json(plain)).hexdigest()[:16]
        self._core = core.CompiledPolicy(plain)
        self._cache: dict[tuple[str, str | None, Classification | None], Decision] = {}

    def is_hidden(self, tool: str) -> bool:
        return self._core.is_hidden(tool)

    def rule_for(self, tool: str) -> tuple[str | None, Rule | None]:
        key, _rule = self._core.rule_for(tool)
        return key, (self.document.rules[key] if key is not None else None)

    def risk_of(
        self, tool: str, server: str | None, classified: Classification | None
    ) -> Classification | None:
        """The class a tool is judged by: a Manager's override, else the front-end's own."""
        risk_class, reason = self._core.risk_of(
            tool, server, *(classified if classified else (None, None))
        )
        if risk_class is None:
            return None
        return Classification(risk_class=risk_class, reason=reason or "")

    def approval_classes(self, server: str | None) -> frozenset[str]:
        """The risk classes that need approval on ``server`` when no exact rule names a tool."""
        return self._core.approval_classes(server)

    def approvers_of(self, group: str) -> list[str] | None:
        """The names ``approvers`` lists for ``group`` (the embedded store); None: not listed,
        which for the default group means any approver name (``--as``), for another group
        that nobody can approve."""
        return self._core.approvers.get(group)

    def electorate(self, group: str) -> dict[str, Any]:
        """Who may decide a request routed to ``group``, to freeze on it when it is filed
        (policy_core.CompiledPolicy.electorate)."""
        return self._core.electorate(group)

    def electorate_of(self, groups: Sequence[str]) -> dict[str, Any]:
        """Who may decide a request each of ``groups`` decides (policy_core)."""
        return self._core.electorate_of(groups)

    @property
    def people(self) -> dict[str, list[str]] | None:
        """``people`` ({person: [principals]}, the embedded store); None: not declared, and
        four-eyes compares the names as given (identity.same_person)."""
        return self._core.people

    def bindings(self, tools: Sequence[str]) -> list[str]:
        """The binding (policy_core.approval_terms) of the rule deciding each of ``tools``, in
        order: what a request for a call passing all of them is bound to."""
        return [self._core.terms(tool).binding for tool in tools]

    def decide(
        self, tool: str, server: str | None = None, risk: Classification | None = None
    ) -> Decision:
        """The decision for ``tool``; ``risk`` is its class in the catalog of ``server``."""
        key = (tool, server, risk)
        decision = self._cache.get(key)
        if decision is not None:
            return decision
        verdict = self._core.decide(tool, server, *(risk if risk else (None, None)))
        judged = (
            Classification(verdict.risk_class, verdict.risk_reason or "")
            if verdict.risk_class is not None
            else None
        )
        decision = Decision(
            tool,
            verdict.action,
            verdict.hidden,
            verdict.reason,
            verdict.rate_limit,
            verdict.expires_in,
            verdict.rule,
            judged,
            verdict.approver_group,
            verdict.quorum,
            verdict.binding,
        )
        if len(self._cache) >= self._CACHE_LIMIT:
            self._cache.clear()  # bounded: names sent by a client must not grow memory
        self._cache[key] = decision
        return decision

    def warnings(self, known_tools: Iterable[str] = ()) -> list[str]:
        """Rules that can never apply, one line each (``policy check``). ``known_tools``:
        names a front-end serves for certain, to find globs that only exact rules meet."""
        found: list[str] = []
        for key, rule in self.document.rules.items():
            group = rule.approval.approver_group if rule.approval else None
            if (
                rule.action == "require_approval"
                and group not in (None, core.DEFAULT_APPROVER_GROUP)
                and self.approvers_of(group) is None
            ):
                found.append(
                    f"rule {key!r} names the approver group {group!r}, which approvers does not "
                    "list: on the embedded store nobody can approve its requests (in Odoo it "
                    "must be the external id of a group)"
                )
        # A hide glob "prefix*" covers every rule glob that starts with that prefix.
        hide_prefixes = [
            p[:-1] for p in self._core.hide_globs if p.endswith("*") and not core.is_glob(p[:-1])
        ]
        for key in self.document.rules:
            if not core.is_glob(key):
                if self.is_hidden(key):
                    found.append(
                        f"rule {key!r} never applies: {key} is hidden (hide), and a hidden "
                        "tool is refused whatever its rule says"
                    )
                continue
            literal = re.split(r"[*?]", key, maxsplit=1)[0]
            if key in self._core.hide_globs or any(literal.startswith(p) for p in hide_prefixes):
                found.append(f"rule {key!r} never applies: every tool it matches is hidden (hide)")
                continue
            matched = [name for name in known_tools if fnmatch.fnmatchcase(name, key)]
            if matched and all(name in self._core.exact for name in matched):
                found.append(
                    f"rule {key!r} never applies to the guard's own tools: an exact rule wins "
                    f"for each one it matches ({', '.join(matched)})"
                )
        return found

    def describe(self) -> list[str]:
        """The effective rules, one line each, for ``policy check`` and ``policy show``."""
        doc = self.document
        lines = [f"policy {self.source} (etag {self.etag})", f"default: {doc.default}"]
        lines.append("hidden: " + (", ".join(doc.hide) if doc.hide else "(none)"))
        for key in [*sorted(self._core.exact), *(key for key, _ in self._core.globs)]:
            rule = doc.rules[key]
            parts = [f"rule {key}: {rule.action}"]
            if rule.rate_limit:
                parts.append(f"rate limit {rule.rate_limit.max}/{rule.rate_limit.window:g}s")
            if rule.action == "require_approval":
                expires = rule.approval.expires_in if rule.approval else DEFAULT_EXPIRES_IN
                parts.append(f"approval valid {expires}s")
                terms = self._core.terms(key)
                if terms.approver_group != core.DEFAULT_APPROVER_GROUP or terms.quorum > 1:
                    parts.append(f"by {terms.quorum} of {terms.approver_group}")
            if rule.reason:
                parts.append(f"reason: {rule.reason}")
            lines.append(", ".join(parts))
        lines.append(
            "risky tools without an exact rule need approval: "
            + (", ".join(sorted(self._core.risk_approval, key=RISK_RANK.__getitem__)) or "(none)")
        )
        for server, classes in sorted(self._core.risk_servers.items()):
            listed = ", ".join(sorted(classes, key=RISK_RANK.__getitem__)) or "(none)"
            lines.append(f"  on server {server}: {listed}")
        for (server, tool), override in sorted(self._core.overrides.items()):
            why = f" ({override['reason']})" if override.get("reason") else ""
            lines.append(f"class of {tool} on {server}: {override['class']}{why}")
        for group, names in sorted(self._core.approvers.items()):
            lines.append(f"approvers {group}: {', '.join(names)}")
        for person, principals in sorted((self._core.people or {}).items()):
            lines.append(f"person {person}: {', '.join(principals)}")
        return lines


# --- loading, with the line of every fault (policy_core's rules) ----------------------------


def document_of(data: dict[str, Any], source: str = "<policy>") -> PolicyDocument:
    """The typed view of a document the core accepted (a fault here is a bug: reported, too)."""
    try:
        return PolicyDocument.model_validate(data)
    except ValidationError as exc:
        faults = [
            f"{core.json_path(tuple(p for p in e['loc'] if p != '[key]'))}: {e['msg']}"
            for e in exc.errors()
        ]
        raise PolicyError(source, faults) from None


def load_policy_text(text: str, source: str = "<policy>") -> Policy:
    """Parse and validate a policy document; raise PolicyError naming each fault's line and path."""
    try:
        data = core.load_policy_text(text)
    except core.PolicyFault as exc:
        raise PolicyError(source, exc.faults) from None
    return Policy(document_of(data, source), source)


def load_policy_file(path: Path) -> Policy:
    """Load a policy file: a regular file of at most MAX_POLICY_BYTES, never waited on."""
    try:
        raw = read_regular_file(path, MAX_POLICY_BYTES)
    except FileReadError as exc:
        raise PolicyError(str(path), [str(exc)]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(str(path), [f"not UTF-8 at byte {exc.start}"]) from None
    return load_policy_text(text, str(path))


class PolicySource:
    """The policy in force: the built-in default, or a file re-read when it changes.

    A file that fails to load never replaces a good policy; with no good one at all,
    ``current()`` raises PolicyUnavailable and every call is refused.

    Once ``start()``ed (a server), a background thread re-reads the file and ``current()``
    never touches it: a slow disk or a large policy cannot hold up the event loop. Without
    it (the CLI, a test), ``current()`` re-reads a changed file itself.
    """

    def __init__(self, path: Path | None = None, *, check_interval: float = 0.5):
        self.path = path
        self.check_interval = check_interval
        self.last_error: str | None = None
        self._policy: Policy | None = None if path else Policy(BUILTIN_POLICY)
        self._stamp: tuple[int, int, int] | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if path is not None:
            self.refresh()

    def start(self) -> None:
        if self.path is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._poll, name="policy-file", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _poll(self) -> None:
        while not self._stop.wait(self.check_interval):
            try:
                self.refresh()
            except Exception:  # never let the poller die: the last good policy stays
                log.exception("cannot re-read the policy file %s", self.path)

    @property
    def version(self) -> str:
        return self._policy.etag if self._policy else ""

    @property
    def catalog_epoch(self) -> str:
        """Changes when the catalog may need reporting again (here: with the policy)."""
        return self.version

    def current(self) -> Policy:
        if (
            self.path is not None
            and self._thread is None
            and time.monotonic() - self._checked_at >= self.check_interval
        ):
            self.refresh()
        if self._policy is None:
            raise PolicyUnavailable(f"no valid policy is loaded ({self.last_error})")
        return self._policy

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when the policy in force changed."""
        if self.path is None:
            return False
        with self._lock:
            self._checked_at = time.monotonic()
            try:
                stat = os.stat(self.path)
            except OSError as exc:
                stamp = None
                error = f"{self.path}: cannot read the file: {exc.strerror or exc}"
            else:
                stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
                error = None
            if stamp is not None and stamp == self._stamp:
                return False
            self._stamp = stamp
            if error is None:
                try:
                    policy = load_policy_file(self.path)
                except PolicyError as exc:
                    error = str(exc)
                else:
                    before = self.version
                    self._policy = policy
                    if self.last_error is not None:
                        log.warning("%s: valid again; this policy is now in force", self.path)
                    self.last_error = None
                    return policy.etag != before
            if error != self.last_error:
                kept = "keeping the last good policy" if self._policy else "refusing every call"
                log.error("%s; %s", error, kept)
            self.last_error = error
            return False
