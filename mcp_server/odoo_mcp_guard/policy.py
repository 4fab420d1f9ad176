"""The policy document: its schema, loading with precise faults, and the per-tool decision.

The format is the published gateway one (``version``/``default``/``hide``/``rules``),
extended with ``require_approval``, ``rate_limit``, ``reason`` and ``approval``, and with
``risk``: which risk classes (catalog.py) need approval when no exact-name rule names the tool.
"""

from __future__ import annotations

import bisect
import fnmatch
import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from json.decoder import scanstring
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from odoo_mcp_guard.catalog import RISK_RANK, Classification, RiskClass
from odoo_mcp_guard.files import FileReadError, read_regular_file
from odoo_mcp_guard.names import SERVER_NAME_RE, canonical_json

log = logging.getLogger(__name__)

Action = Literal["allow", "deny", "require_approval"]
# A rule key or hide entry: a tool name, or a glob over tool names (``*`` and ``?``).
ToolPattern = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-*?]{1,128}$")]
ToolName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")]
# The name a front-end keeps its tools under (``serve``: odoo-mcp-guard; proxy: the upstream).
ServerName = Annotated[str, StringConstraints(pattern=f"^{SERVER_NAME_RE.pattern}$")]

MAX_POLICY_BYTES = 1 << 20
DEFAULT_EXPIRES_IN = 3600


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RateLimit(_Strict):
    max: int = Field(ge=1, description="calls allowed per principal within the window")
    window: float = Field(gt=0, le=86400 * 31, description="sliding window, in seconds")


class ApprovalSettings(_Strict):
    expires_in: int = Field(ge=1, le=86400 * 31, description="seconds an approval stays valid")


class Rule(_Strict):
    action: Action
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None
    rate_limit: RateLimit | None = None
    approval: ApprovalSettings | None = None


DEFAULT_RISK_APPROVAL: tuple[RiskClass, ...] = ("destructive", "critical")


class RiskServer(_Strict):
    require_approval: list[RiskClass]


class RiskOverride(_Strict):
    model_config = ConfigDict(populate_by_name=True)

    server: ServerName
    tool: ToolName
    risk_class: RiskClass = Field(alias="class")
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class RiskSettings(_Strict):
    require_approval: list[RiskClass] = Field(default_factory=lambda: list(DEFAULT_RISK_APPROVAL))
    servers: dict[ServerName, RiskServer] = Field(default_factory=dict)
    overrides: list[RiskOverride] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_override_per_tool(self) -> RiskSettings:
        seen: set[tuple[str, str]] = set()
        for index, override in enumerate(self.overrides):
            key = (override.server, override.tool)
            if key in seen:
                raise PydanticCustomError(
                    "duplicate_override",
                    "overrides[{index}]: a second override for {tool} of {server}",
                    {"index": index, "tool": override.tool, "server": override.server},
                )
            seen.add(key)
        return self


class PolicyDocument(_Strict):
    version: Literal["1"]
    default: Action = "deny"
    hide: list[ToolPattern] = Field(default_factory=list)
    rules: dict[ToolPattern, Rule] = Field(default_factory=dict)
    risk: RiskSettings | None = None

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
    rate_limit: RateLimit | None
    expires_in: int
    rule: str | None  # the rule key that matched; None means the document's default
    risk: Classification | None = None  # the class the decision was taken with, if any


def _is_glob(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


class Policy:
    """A loaded, compiled policy document. ``decide`` is pure and cached."""

    _CACHE_LIMIT = 4096

    def __init__(self, document: PolicyDocument, source: str = "<built-in>"):
        self.document = document
        self.source = source
        self.etag = hashlib.sha256(canonical_json(document.to_json_dict())).hexdigest()[:16]
        rules = document.rules
        self._exact = {key: rule for key, rule in rules.items() if not _is_glob(key)}
        # The longest glob is the most specific; ties are broken by name to stay deterministic.
        self._globs = sorted(
            ((key, rule) for key, rule in rules.items() if _is_glob(key)),
            key=lambda item: (-len(item[0]), item[0]),
        )
        self._hide_exact = {name for name in document.hide if not _is_glob(name)}
        self._hide_globs = [name for name in document.hide if _is_glob(name)]
        risk = document.risk or RiskSettings()
        self._risk_approval = frozenset(risk.require_approval)
        self._risk_servers = {
            name: frozenset(settings.require_approval) for name, settings in risk.servers.items()
        }
        self._risk_overrides = {(o.server, o.tool): o for o in risk.overrides}
        self._cache: dict[tuple[str, str | None, Classification | None], Decision] = {}

    def is_hidden(self, tool: str) -> bool:
        return tool in self._hide_exact or any(
            fnmatch.fnmatchcase(tool, pattern) for pattern in self._hide_globs
        )

    def rule_for(self, tool: str) -> tuple[str | None, Rule | None]:
        rule = self._exact.get(tool)
        if rule is not None:
            return tool, rule
        for key, glob_rule in self._globs:
            if fnmatch.fnmatchcase(tool, key):
                return key, glob_rule
        return None, None

    def risk_of(
        self, tool: str, server: str | None, classified: Classification | None
    ) -> Classification | None:
        """The class a tool is judged by: a Manager's override, else the front-end's own."""
        override = self._risk_overrides.get((server, tool)) if server is not None else None
        if override is None:
            return classified
        why = f": {override.reason}" if override.reason else ""
        return Classification(risk_class=override.risk_class, reason=f"set by a Manager{why}")

    def approval_classes(self, server: str | None) -> frozenset[str]:
        """The risk classes that need approval on ``server`` when no exact rule names a tool."""
        if server is None:
            return self._risk_approval
        return self._risk_servers.get(server, self._risk_approval)

    def decide(
        self, tool: str, server: str | None = None, risk: Classification | None = None
    ) -> Decision:
        """The decision for ``tool``; ``risk`` is its class in the catalog of ``server``."""
        key = (tool, server, risk)
        decision = self._cache.get(key)
        if decision is not None:
            return decision
        rule_key, rule = self.rule_for(tool)
        if rule is None:
            action, reason, rate_limit, expires_in = self.document.default, None, None, None
        else:
            action, reason, rate_limit = rule.action, rule.reason, rule.rate_limit
            expires_in = rule.approval.expires_in if rule.approval else None
        judged = self.risk_of(tool, server, risk)
        # A glob or the default never lets a risky tool run unapproved: only an exact rule
        # can (the stricter of the two wins: deny > require_approval > allow).
        if (
            judged is not None
            and action == "allow"
            and tool not in self._exact
            and judged.risk_class in self.approval_classes(server)
        ):
            action = "require_approval"
            reason = (
                f"classified {judged.risk_class} ({judged.reason}); such tools need approval "
                "unless a rule names them"
            )
        decision = Decision(
            tool,
            action,
            self.is_hidden(tool),
            reason,
            rate_limit,
            expires_in or DEFAULT_EXPIRES_IN,
            rule_key,
            judged,
        )
        if len(self._cache) >= self._CACHE_LIMIT:
            self._cache.clear()  # bounded: names sent by a client must not grow memory
        self._cache[key] = decision
        return decision

    def warnings(self, known_tools: Iterable[str] = ()) -> list[str]:
        """Rules that can never apply, one line each (``policy check``). ``known_tools``:
        names a front-end serves for certain, to find globs that only exact rules meet."""
        found: list[str] = []
        # A hide glob "prefix*" covers every rule glob that starts with that prefix.
        hide_prefixes = [
            p[:-1] for p in self._hide_globs if p.endswith("*") and not _is_glob(p[:-1])
        ]
        for key in self.document.rules:
            if not _is_glob(key):
                if self.is_hidden(key):
                    found.append(
                        f"rule {key!r} never applies: {key} is hidden (hide), and a hidden "
                        "tool is refused whatever its rule says"
                    )
                continue
            literal = re.split(r"[*?]", key, maxsplit=1)[0]
            if key in self._hide_globs or any(literal.startswith(p) for p in hide_prefixes):
                found.append(f"rule {key!r} never applies: every tool it matches is hidden (hide)")
                continue
            matched = [name for name in known_tools if fnmatch.fnmatchcase(name, key)]
            if matched and all(name in self._exact for name in matched):
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
        for key in [*sorted(self._exact), *(key for key, _ in self._globs)]:
            rule = doc.rules[key]
            parts = [f"rule {key}: {rule.action}"]
            if rule.rate_limit:
                parts.append(f"rate limit {rule.rate_limit.max}/{rule.rate_limit.window:g}s")
            if rule.action == "require_approval":
                expires = rule.approval.expires_in if rule.approval else DEFAULT_EXPIRES_IN
                parts.append(f"approval valid {expires}s")
            if rule.reason:
                parts.append(f"reason: {rule.reason}")
            lines.append(", ".join(parts))
        lines.append(
            "risky tools without an exact rule need approval: "
            + (", ".join(sorted(self._risk_approval, key=RISK_RANK.__getitem__)) or "(none)")
        )
        for server, classes in sorted(self._risk_servers.items()):
            listed = ", ".join(sorted(classes, key=RISK_RANK.__getitem__)) or "(none)"
            lines.append(f"  on server {server}: {listed}")
        for (server, tool), override in sorted(self._risk_overrides.items()):
            why = f" ({override.reason})" if override.reason else ""
            lines.append(f"class of {tool} on {server}: {override.risk_class}{why}")
        return lines


# --- loading, with the line of every fault ---------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _json_path(loc: tuple[Any, ...]) -> str:
    out = "$"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _IDENT.fullmatch(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part, ensure_ascii=True)}]"
    return out


class _Locator:
    """Walks JSON text that ``json.loads`` accepted, noting the line of every value and
    refusing duplicate keys (a second ``"odoo_disconnect"`` must not silently win)."""

    def __init__(self, text: str):
        self.text = text
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        self.lines: dict[tuple[Any, ...], int] = {}
        self.duplicates: list[tuple[tuple[Any, ...], int]] = []
        self._value(0, ())

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def _ws(self, pos: int) -> int:
        return _WS.match(self.text, pos).end()

    def _value(self, pos: int, path: tuple[Any, ...]) -> int:
        text = self.text
        pos = self._ws(pos)
        self.lines.setdefault(path, self.line(pos))
        char = text[pos]
        if char == "{":
            seen: set[str] = set()
            pos = self._ws(pos + 1)
            if text[pos] == "}":
                return pos + 1
            while True:
                pos = self._ws(pos)
                key_pos = pos
                key, pos = scanstring(text, pos + 1)
                if key in seen:
                    self.duplicates.append(((*path, key), self.line(key_pos)))
                seen.add(key)
                pos = self._ws(pos) + 1  # the colon
                pos = self._ws(self._value(pos, (*path, key)))
                if text[pos] == ",":
                    pos += 1
                    continue
                return pos + 1
        if char == "[":
            index = 0
            pos = self._ws(pos + 1)
            if text[pos] == "]":
                return pos + 1
            while True:
                pos = self._ws(self._value(pos, (*path, index)))
                index += 1
                if text[pos] == ",":
                    pos += 1
                    continue
                return pos + 1
        if char == '"':
            return scanstring(text, pos + 1)[1]
        for literal in ("true", "false", "null", "NaN", "Infinity", "-Infinity"):
            if text.startswith(literal, pos):
                return pos + len(literal)
        return _NUMBER.match(text, pos).end()  # type: ignore[union-attr]

    def line_of(self, loc: tuple[Any, ...]) -> int:
        # A missing field has no line of its own: report the object that lacks it.
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return self.lines.get(loc, 1)


MAX_NUMBER_DIGITS = 30  # no setting needs more; Python refuses ints past 4300 digits anyway


@dataclass(frozen=True, slots=True)
class _BadNumber:
    """A number JSON allows but a policy cannot hold; reported with its line and path."""

    why: str

    @staticmethod
    def constant(name: str) -> _BadNumber:
        return _BadNumber(f"{name} is not a number a policy can hold (JSON has no {name})")

    @staticmethod
    def integer(digits: str) -> int | _BadNumber:
        if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
            return _BadNumber(f"a number of {len(digits.lstrip('-'))} digits is too long")
        return int(digits)

    @staticmethod
    def real(digits: str) -> float | _BadNumber:
        value = float(digits)
        if len(digits) > MAX_NUMBER_DIGITS * 3 or not math.isfinite(value):
            return _BadNumber(f"{digits[:20]}{'…' if len(digits) > 20 else ''} is out of range")
        return value


def _bad_numbers(data: Any) -> Iterator[tuple[tuple[Any, ...], _BadNumber]]:
    """Every ``_BadNumber`` in the parsed document, with its path (iteratively: no depth limit)."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, _BadNumber):
            yield path, value
        elif isinstance(value, dict):
            stack.extend(((*path, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in reversed(list(enumerate(value))))


def load_policy_text(text: str, source: str = "<policy>") -> Policy:
    """Parse and validate a policy document; raise PolicyError naming each fault's line and path."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        raise PolicyError(
            source, [f"line 1: $: the policy is larger than {MAX_POLICY_BYTES} bytes"]
        )
    try:
        data = json.loads(
            text,
            parse_constant=_BadNumber.constant,
            parse_int=_BadNumber.integer,
            parse_float=_BadNumber.real,
        )
        locator = _Locator(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(
            source, [f"line {exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})"]
        ) from None
    except RecursionError:
        raise PolicyError(source, ["line 1: $: the document is nested too deeply"]) from None
    faults = [f"line {line}: {_json_path(loc)}: duplicate key" for loc, line in locator.duplicates]
    bad_numbers = list(_bad_numbers(data))
    if bad_numbers:
        faults += [
            f"line {locator.line_of(loc)}: {_json_path(loc)}: {bad.why}" for loc, bad in bad_numbers
        ]
        raise PolicyError(source, faults)
    if not isinstance(data, dict):
        faults.append(f"line 1: $: the policy must be a JSON object, not {type(data).__name__}")
        raise PolicyError(source, faults)
    try:
        document = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(part for part in error["loc"] if part != "[key]")
            # Pydantic names the failing union member or type in the location; keep the JSON path.
            loc = tuple(p for p in loc if not (isinstance(p, str) and p in _TYPE_TAGS))
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            elif "[key]" in error["loc"]:
                message = "invalid tool name or glob (allowed: A-Z a-z 0-9 _ . - * ?, 1 to 128)"
            faults.append(f"line {locator.line_of(loc)}: {_json_path(loc)}: {message}")
    if faults:
        raise PolicyError(source, faults)
    return Policy(document, source)


_TYPE_TAGS = frozenset(
    {
        "RateLimit",
        "ApprovalSettings",
        "Rule",
        "RiskSettings",
        "RiskServer",
        "RiskOverride",
        "str",
        "int",
        "float",
    }
)


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
