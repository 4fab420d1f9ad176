"""``Guard`` itself, in process: one gate, one order, one audit record per decision.

A real store (SQLite in tmp_path), a real policy file, and a tiny front-end implementing
``guard.Served`` that notes what the guard asks it, in order. The e2e tests drive the same
gate through ``serve`` and ``proxy``; this module pins the order down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from support.guard import write_policy

from odoo_mcp_guard.catalog import Classification
from odoo_mcp_guard.guard import Continuation, Guard, GuardRefusal, Refusal
from odoo_mcp_guard.policy import PolicySource
from odoo_mcp_guard.store import Store, StoreError

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000.0


class Tiny:
    """A front-end serving a few tools that each need a string ``key``."""

    server_id = "tiny"

    def __init__(self, *tools: str):
        self.tools = set(tools)
        self.risks: dict[str, Classification] = {}
        self.asked: list[str] = []
        self.also: dict[str, tuple[str, ...]] = {}
        self.changed: set[str] = set()
        self.down = False
        self.store_broken = False
        self.binding: str | None = None  # the connection a call is about, as it is now

    def served(self) -> Collection[str]:
        self.asked.append("served")
        return self.tools

    async def definition_problem(self, tool: str) -> Refusal | None:
        self.asked.append("definition")
        if tool in self.changed:
            return Refusal("denied", f"Refused: '{tool}' changed.", {"status": "changed"})
        return None

    def argument_problem(self, tool: str, arguments: dict[str, Any]) -> str | None:
        self.asked.append("arguments")
        if self.store_broken:
            raise StoreError("the store is gone")
        if not isinstance(arguments.get("key"), str):
            return f"Invalid arguments for {tool}: 'key' is required. Nothing was done."
        return None

    async def readiness_problem(self, tool: str) -> Refusal | None:
        self.asked.append("ready")
        return Refusal("unavailable", "Refused: upstream down.") if self.down else None

    def outage(self) -> str | None:
        return None

    @asynccontextmanager
    async def also_governed_by(
        self, tool: str, arguments: dict[str, Any]
    ) -> AsyncIterator[Sequence[str]]:
        self.asked.append("also")
        yield self.also.get(tool, ())

    def at_stake(self, tool: str) -> dict[str, Any] | None:
        return None

    async def connection_binding(self, tool: str, arguments: dict[str, Any]) -> str | None:
        return self.binding


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store.open(tmp_path / "data")
    yield opened  # type: ignore[misc]
    opened.close()


def make_guard(tmp_path: Path, store: Store, rules: dict[str, Any], **doc: Any) -> Guard:
    document = {"version": "1", "default": "deny", "hide": [], "rules": rules, **doc}
    path = write_policy(tmp_path / "policy.json", document)
    return Guard(PolicySource(path), store, clock=Clock())


class Runs:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, arguments: dict[str, Any]) -> str:
        self.calls.append(arguments)
        return "done"


async def refused(guard: Guard, front: Tiny, tool: object, arguments: object, **kw: Any) -> str:
    runs = Runs()
    with pytest.raises(GuardRefusal) as caught:
        await guard.call(front, "alice", tool, arguments, execute=runs, **kw)
    assert runs.calls == []  # nothing ran
    return caught.value.outcome


def outcomes(store: Store) -> list[str]:
    return [event.outcome for event in store.audit_tail(1000)]


async def test_allowed_call_passes_every_step_in_order(tmp_path: Path, store: Store) -> None:
    guard = make_guard(tmp_path, store, {"note": {"action": "allow"}})
    front, runs = Tiny("note"), Runs()
    assert await guard.call(front, "alice", "note", {"key": "a"}, execute=runs) == "done"
    assert front.asked == ["served", "definition", "arguments", "ready", "also"]
    assert runs.calls == [{"key": "a"}]
    assert outcomes(store) == ["allowed"]


async def test_hidden_tool_refused_before_anything_is_looked_at(
    tmp_path: Path, store: Store
) -> None:
    guard = make_guard(tmp_path, store, {"note": {"action": "allow"}}, hide=["note"])
    front = Tiny("note")
    front.changed.add("note")
    front.store_broken = True  # not even asked: the arguments are never looked at
    assert await refused(guard, front, "note", {"nope": 1}) == "hidden"
    assert await refused(guard, front, "note", ["not", "an", "object"]) == "hidden"
    assert front.asked == []
    assert outcomes(store) == ["hidden", "hidden"]


async def test_name_listed_definition_denied_arguments_in_that_order(
    tmp_path: Path, store: Store
) -> None:
    rules = {"note": {"action": "require_approval"}, "gone": {"action": "deny"}}
    guard = make_guard(tmp_path, store, rules)
    front = Tiny("note", "gone")
    assert await refused(guard, front, "bad name!", {"key": "a"}) == "invalid"
    assert front.asked == []
    assert await refused(guard, front, "other", {"key": "a"}) == "unknown"
    assert front.asked == ["served"]
    front.asked.clear()
    assert await refused(guard, front, "note", 42) == "invalid"
    assert front.asked == ["served"]
    front.asked.clear()
    front.changed.add("note")
    assert await refused(guard, front, "note", {}) == "denied"  # changed, arguments unseen
    assert front.asked == ["served", "definition"]
    front.changed.clear()
    front.asked.clear()
    # Bad arguments: refused before an approval could be filed for a call that cannot run.
    assert await refused(guard, front, "note", {}) == "invalid"
    assert front.asked == ["served", "definition", "arguments"]
    assert store.list_requests() == []
    front.asked.clear()
    # Denied: refused as such before its arguments are looked at.
    assert await refused(guard, front, "gone", {}) == "denied"
    assert front.asked == ["served", "definition"]
    assert outcomes(store) == ["invalid", "unknown", "invalid", "denied", "invalid", "denied"]


async def test_rate_limits_all_or_nothing(tmp_path: Path, store: Store) -> None:
    rules = {
        "connect": {"action": "allow", "rate_limit": {"max": 3, "window": 60}},
        "disconnect": {"action": "allow", "rate_limit": {"max": 1, "window": 60}},
    }
    guard = make_guard(tmp_path, store, rules)
    front = Tiny("connect", "disconnect")
    front.also["connect"] = ("disconnect",)  # a replacement: also a removal
    runs = Runs()
    await guard.call(front, "alice", "connect", {"key": "a"}, execute=runs)
    # The second replacement is refused by disconnect's limit ...
    with pytest.raises(GuardRefusal) as caught:
        await guard.call(front, "alice", "connect", {"key": "a"}, execute=runs)
    assert caught.value.outcome == "rate_limited" and "'disconnect'" in caught.value.message
    # ... and did not spend connect's quota: two plain additions are left of three.
    front.also.clear()
    await guard.call(front, "alice", "connect", {"key": "b"}, execute=runs)
    await guard.call(front, "alice", "connect", {"key": "c"}, execute=runs)
    assert await refused(guard, front, "connect", {"key": "d"}) == "rate_limited"
    assert len(runs.calls) == 3
    assert outcomes(store) == ["allowed", "rate_limited", "allowed", "allowed", "rate_limited"]


async def test_not_ready_refused_before_counting_or_filing(tmp_path: Path, store: Store) -> None:
    rules = {"note": {"action": "require_approval", "rate_limit": {"max": 1, "window": 60}}}
    guard = make_guard(tmp_path, store, rules)
    front = Tiny("note")
    front.down = True
    assert await refused(guard, front, "note", {"key": "a"}) == "unavailable"
    assert store.list_requests() == []
    front.down = False
    assert await refused(guard, front, "note", {"key": "a"}) == "approval_pending"  # counted
    assert outcomes(store) == ["unavailable", "approval_pending"]


async def test_backend_error_while_judging_is_unavailable(tmp_path: Path, store: Store) -> None:
    guard = make_guard(tmp_path, store, {"note": {"action": "allow"}})
    front = Tiny("note")
    front.store_broken = True
    with pytest.raises(GuardRefusal) as caught:
        await guard.call(front, "alice", "note", {"key": "a"}, execute=Runs())
    assert caught.value.outcome == "unavailable" and "the store is gone" in caught.value.message
    assert outcomes(store) == ["unavailable"]


async def test_continuation_is_judged_like_a_call(tmp_path: Path, store: Store) -> None:
    rules = {
        "ask": {"action": "allow", "rate_limit": {"max": 2, "window": 60}},
        "risky": {"action": "require_approval"},
    }
    guard = make_guard(tmp_path, store, rules)
    front, runs = Tiny("ask", "risky"), Runs()
    state = Continuation(key="k1", expires_at=T0 + 600)
    # A state that is not this call's: refused, audited, nothing asked or run.
    foreign = Continuation(key="", expires_at=0.0, fault="Refused: not this call's state.")
    assert await refused(guard, front, "ask", {"key": "a"}, continuation=foreign) == "invalid"
    assert front.asked == []
    # Hidden, listed, arguments, policy: all apply to a continuation.
    assert await refused(guard, front, "ask", {}, continuation=state) == "invalid"
    await guard.call(front, "alice", "ask", {"key": "a"}, execute=runs, continuation=state)
    # A replay is refused before the rate limit: it costs nothing.
    assert await refused(guard, front, "ask", {"key": "a"}, continuation=state) == "invalid"
    await guard.call(front, "alice", "ask", {"key": "b"}, execute=runs)
    assert await refused(guard, front, "ask", {"key": "c"}) == "rate_limited"
    # A continuation of a tool that needs approval needs an approval of its own.
    other = Continuation(key="k2", expires_at=T0 + 600)
    assert await refused(guard, front, "risky", {"key": "a"}, continuation=other) == (
        "approval_pending"
    )
    assert runs.calls == [{"key": "a"}, {"key": "b"}]
    assert outcomes(store) == [
        "invalid",
        "invalid",
        "allowed",
        "invalid",
        "allowed",
        "rate_limited",
        "approval_pending",
    ]


async def test_one_audit_record_per_decision_through_approval(tmp_path: Path, store: Store) -> None:
    guard = make_guard(tmp_path, store, {"risky": {"action": "require_approval"}})
    front, runs = Tiny("risky"), Runs()
    assert await refused(guard, front, "risky", {"key": "a"}) == "approval_pending"
    (request,) = store.list_requests()
    store.decide(request.id, approve=True, approver="bob", now=T0)
    assert await guard.call(front, "alice", "risky", {"key": "a"}, execute=runs) == "done"
    assert await refused(guard, front, "risky", {"key": "a"}) == "approval_pending"  # used once

    assert runs.calls == [{"key": "a"}]
    # The approver's action is a row of its own (bob's), between the agent's decisions.
    assert outcomes(store) == [
        "approval_pending",
        "approved",
        "approved_executed",
        "approval_pending",
    ]


async def test_an_approval_is_used_only_for_the_connection_it_was_filed_for(
    tmp_path: Path, store: Store
) -> None:
    """Invariant 14: approved for the connection 'conn-a', the call is not run once the alias
    names 'conn-b': the request is withdrawn unused and one is filed for 'conn-b'."""
    guard = make_guard(tmp_path, store, {"risky": {"action": "require_approval"}})
    front, runs = Tiny("risky"), Runs()
    front.binding = "conn-a"
    assert await refused(guard, front, "risky", {"key": "a", "alias": "prod"}) == "approval_pending"
    (first,) = store.list_requests()
    assert first.connection_binding == "conn-a"
    store.decide(first.id, approve=True, approver="bob", now=T0)
    front.binding = "conn-b"
    with pytest.raises(GuardRefusal) as caught:
        await guard.call(front, "alice", "risky", {"key": "a", "alias": "prod"}, execute=runs)
    assert caught.value.outcome == "approval_pending" and runs.calls == []
    assert f"request {first.ref} was withdrawn" in caught.value.message
    assert "the connection 'prod' changed since it was filed" in caught.value.message
    assert "the approval by bob was not used" in caught.value.message
    second, _ = store.list_requests()
    assert second.connection_binding == "conn-b" and second.state == "pending"
    assert store.get_request(first.id).state == "expired"
    store.decide(second.id, approve=True, approver="bob", now=T0)
    assert await guard.call(front, "alice", "risky", {"key": "a", "alias": "prod"}, execute=runs)
    assert runs.calls == [{"key": "a", "alias": "prod"}]


async def test_failed_execution_recorded_after_its_decision(tmp_path: Path, store: Store) -> None:
    guard = make_guard(tmp_path, store, {"note": {"action": "allow"}})

    async def fails(arguments: dict[str, Any]) -> str:
        raise RuntimeError("the tool broke at https://bob:hunter2@example.com")

    with pytest.raises(RuntimeError):
        await guard.call(Tiny("note"), "alice", "note", {"key": "a"}, execute=fails)
    # The decision is recorded before the tool runs (a crash cannot lose it), its failure
    # after, redacted.
    decision, failure = store.audit_tail(10)
    assert (decision.outcome, failure.outcome) == ("allowed", "failed")
    assert "hunter2" not in failure.detail and "the tool broke" in failure.detail


class _Refusing:
    """The store, refusing audit events while ``down``."""

    def __init__(self, store: Store) -> None:
        self.store, self.down = store, True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def append_audit(self, event: Any) -> None:
        if self.down:
            raise StoreError("database is locked")
        self.store.append_audit(event)


async def test_events_the_store_did_not_take_are_saved_at_exit_in_the_guards_kept_dir(
    tmp_path: Path, store: Store
) -> None:
    """``save_unwritten`` keeps the events in the guard's own ``kept_dir`` (given once), then
    writes them to the store once it takes them."""
    from odoo_mcp_guard.stores.kept import kept_path

    refusing = _Refusing(store)
    path = write_policy(tmp_path / "policy.json", {"version": "1", "default": "deny", "rules": {}})
    kept = tmp_path / "kept"
    kept.mkdir()
    guard = Guard(PolicySource(path), refusing, clock=Clock(), kept_dir=kept)  # type: ignore[arg-type]
    assert await refused(guard, Tiny("note"), "note", {}) == "denied"
    assert kept_path(kept).exists() and outcomes(store) == []
    refusing.down = False
    guard.save_unwritten()
    assert outcomes(store) == ["denied"] and not kept_path(kept).exists()
