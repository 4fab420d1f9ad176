"""A request is bound to the connection it was filed for, not to its alias (invariant 14).

Outside tester, round 11 (findings 15 and 16): carol approves removing ``prod`` while
``approvals show`` says "removes: prod db=v1"; before it is used, prod is replaced by v2 under a
replacement approved on its own. The first approval must not then remove v2, which no approver
was asked to remove: the call is filed anew for the connection as it is now (as the Odoo
backend does: a changed connection makes a new request).

The real ``serve --transport http`` with the SDK client, the real CLI for approvals, on the
SQLite file and on PostgreSQL (the replicas' store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_harness import fresh_database, pg_url, sql
from support.guard import (
    HttpGuard,
    connect_args,
    http_client,
    http_guard,
    policy,
    query,
    run_cli,
    text_of,
    write_policy,
)

pytestmark = pytest.mark.anyio

V1 = connect_args("prod", url="http://127.0.0.1:8069", db="v1", username="u", password="pw")
V2 = connect_args("prod", url="http://10.6.6.6:8069", db="v2", username="u", password="pw")


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with fresh_database("binding") as name:
        yield name


class Served:
    """One guard (serve over HTTP) on one engine, with the CLI beside it."""

    def __init__(
        self, guard: HttpGuard, database_url: str | None, database: str | None, schema: str
    ):
        self.guard = guard
        self.database_url = database_url
        self.database = database
        self.schema = schema

    def cli(self, *args: str, check: bool = True) -> Any:
        where = ("--database-url", self.database_url) if self.database_url else ()
        return run_cli(self.guard.data_dir, *where, *args, check=check)

    def rows(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.database is None:
            return query(self.guard.data_dir, statement, *params)
        in_schema = f"SET search_path TO {self.schema}; " + statement.replace("?", "%s")
        return sql(self.database, in_schema, *params)

    def connections(self) -> list[tuple[str, str]]:
        return [
            (row[0], row[1]) for row in self.rows("SELECT alias, db FROM connections ORDER BY 1")
        ]

    def state(self, ref: str) -> tuple[str, str | None]:
        return self.rows("SELECT state, result_note FROM approval_requests WHERE ref = ?", ref)[0]


_schemas = iter(range(1, 1_000_000))


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    pol = write_policy(tmp_path / "policy.json", policy())
    database = url = None
    schema = f"b{next(_schemas)}"
    env: dict[str, str] = {}
    if request.param == "postgresql":
        database = request.getfixturevalue("pg_database")
        sql(database, f"CREATE SCHEMA {schema}")
        url = pg_url(database, schema=schema)
        env["MCP_GUARD_DATABASE_URL"] = url
    with http_guard(tmp_path / "data", pol, env=env) as guard:
        yield Served(guard, url, database, schema)


def removes_line(served: Served, ref: str) -> str:
    shown = served.cli("approvals", "show", ref).stdout
    return next(line for line in shown.splitlines() if line.startswith("removes:"))


async def pending(client: Any, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert result.is_error and result.structured_content["status"] == "pending", text_of(result)
    return {**result.structured_content, "text": text_of(result)}


async def test_an_approval_to_remove_a_connection_does_not_remove_its_replacement(
    served: Served,
) -> None:
    async with http_client(served.guard.url, served.guard.token("agent")) as client:
        assert not (await client.call_tool("odoo_connect", V1)).is_error
        first = (await pending(client, "odoo_disconnect", {"alias": "prod"}))["request"]
        assert "db=v1" in removes_line(served, first)
        served.cli("approvals", "approve", first, "--as", "carol")
        # prod is replaced by v2 under an approval of its own (a replacement is a removal)
        swap = (await pending(client, "odoo_connect", V2))["request"]
        served.cli("approvals", "approve", swap, "--as", "dave")
        replaced = await client.call_tool("odoo_connect", V2)
        assert not replaced.is_error, text_of(replaced)
        assert served.connections() == [("prod", "v2")]

        # carol's approval was for v1: it does not remove v2; the call is filed anew for v2
        again = await pending(client, "odoo_disconnect", {"alias": "prod"})
        assert served.connections() == [("prod", "v2")]
        assert again["request"] not in (first, swap) and again["new"] is True
        assert f"request {first} was withdrawn" in again["text"]
        assert "the connection 'prod' changed since it was filed" in again["text"]
        assert "the approval by carol was not used" in again["text"]
        state, note = served.state(first)
        assert state == "expired" and "changed since it was filed" in (note or "")
        assert "db=v2" in removes_line(served, again["request"])
        assert "NOT the connection" not in removes_line(served, again["request"])

        # asked about v2 and approved, it removes v2
        served.cli("approvals", "approve", again["request"], "--as", "carol")
        done = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert not done.is_error and done.structured_content["removed"] is True, text_of(done)
    assert served.connections() == []
    assert served.state(again["request"])[0] == "done"
    assert served.state(first)[0] == "expired"
    executed = served.rows(
        "SELECT request_ref FROM audit WHERE outcome = 'approved_executed' ORDER BY id"
    )
    assert [row[0] for row in executed] == [swap, again["request"]]


async def test_a_pending_request_shows_and_answers_only_for_its_connection(
    served: Served,
) -> None:
    async with http_client(served.guard.url, served.guard.token("agent")) as client:
        assert not (await client.call_tool("odoo_connect", V1)).is_error
        first = (await pending(client, "odoo_disconnect", {"alias": "prod"}))["request"]
        # the same call again is the same request while prod is the same connection
        assert (await pending(client, "odoo_disconnect", {"alias": "prod"}))["request"] == first
        swap = (await pending(client, "odoo_connect", V2))["request"]
        served.cli("approvals", "approve", swap, "--as", "dave")
        assert not (await client.call_tool("odoo_connect", V2)).is_error
        # an approver looking at the first request is told prod is no longer what it was for
        line = removes_line(served, first)
        assert "db=v2" in line and "NOT the connection this request was filed for" in line
        # approved anyway, it is still not used for v2
        served.cli("approvals", "approve", first, "--as", "carol")
        again = await pending(client, "odoo_disconnect", {"alias": "prod"})
        assert again["request"] != first and f"request {first} was withdrawn" in again["text"]
    assert served.connections() == [("prod", "v2")]
    assert served.state(first)[0] == "expired"
    refused = served.rows("SELECT count(*) FROM audit WHERE outcome = 'approved_executed'")
    assert refused[0][0] == 1  # the replacement only


async def test_an_approved_replacement_is_for_the_connection_it_replaces(served: Served) -> None:
    """An odoo_connect replacing v1, approved, does not replace v3 which took prod since."""
    v3 = connect_args("prod", url="http://10.7.7.7:8069", db="v3", username="u", password="pw")
    async with http_client(served.guard.url, served.guard.token("agent")) as client:
        assert not (await client.call_tool("odoo_connect", V1)).is_error
        to_v2 = (await pending(client, "odoo_connect", V2))["request"]
        served.cli("approvals", "approve", to_v2, "--as", "carol")
        to_v3 = (await pending(client, "odoo_connect", v3))["request"]
        served.cli("approvals", "approve", to_v3, "--as", "dave")
        assert not (await client.call_tool("odoo_connect", v3)).is_error
        assert served.connections() == [("prod", "v3")]
        again = await pending(client, "odoo_connect", V2)
        assert again["request"] != to_v2 and f"request {to_v2} was withdrawn" in again["text"]
    assert served.connections() == [("prod", "v3")]
