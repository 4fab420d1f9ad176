"""Two replicas of the guard on one store, raced: two real ``odoo-mcp-guard serve --transport
http`` processes on one SQLite file, and on one PostgreSQL database, with many MCP clients
calling at once (all sessions opened first, then every call released together)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from pg_harness import fresh_database, pg_url, sql
from support.guard import (
    HttpGuard,
    connect_args,
    connection_row,
    http_client,
    http_guard,
    policy,
    text_of,
    write_policy,
)

pytestmark = pytest.mark.anyio

CLIENTS = 16
ROUNDS = 8  # each round a new alias: a lost race on the old code shows in one of them


class Replicas:
    """Two serving replicas on one store, and how to read a connection's URL from it."""

    def __init__(self, guards: tuple[HttpGuard, HttpGuard], tokens: list[str], url_of: Any):
        self.guards = guards
        self.tokens = tokens  # alice's token on each replica
        self.url_of = url_of


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def replicas(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[Replicas]:
    shared = tmp_path_factory.mktemp(f"race-{request.param}")
    pol = write_policy(shared / "policy.json", policy())
    if request.param == "sqlite":
        # One data directory, so one SQLite file (and one tokens file) for both.
        with http_guard(shared, pol) as one, http_guard(shared, pol) as two:
            token = one.token("alice")

            def url_of(alias: str) -> str | None:
                row = connection_row(shared, alias)
                return row["url"] if row else None

            yield Replicas((one, two), [token, token], url_of)
        return
    with fresh_database("races") as database:
        env = {"MCP_GUARD_DATABASE_URL": pg_url(database)}
        dirs = [tmp_path_factory.mktemp("race-pg-a"), tmp_path_factory.mktemp("race-pg-b")]
        with http_guard(dirs[0], pol, env=env) as one, http_guard(dirs[1], pol, env=env) as two:

            def pg_url_of(alias: str) -> str | None:
                rows = sql(database, "SELECT url FROM connections WHERE alias = %s", alias)
                return rows[0][0] if rows else None

            yield Replicas((one, two), [one.token("alice"), two.token("alice")], pg_url_of)


async def race_connect(replicas: Replicas, alias: str) -> list[tuple[str, Any]]:
    """``CLIENTS`` sessions over both replicas, each with its own URL for ``alias``; every
    session is open before any call is made, then all calls are released at once."""
    results: list[tuple[str, Any]] = []
    ready = 0
    all_ready, go = anyio.Event(), anyio.Event()

    async def one(index: int) -> None:
        nonlocal ready
        guard = replicas.guards[index % 2]
        token = replicas.tokens[index % 2]
        url = f"https://{alias}-{index}.example.com"
        async with http_client(guard.url, token) as client:
            ready += 1
            if ready == CLIENTS:
                all_ready.set()
            await go.wait()
            results.append(
                (url, await client.call_tool("odoo_connect", connect_args(alias, url=url)))
            )

    async with anyio.create_task_group() as tg:
        for index in range(CLIENTS):
            tg.start_soon(one, index)
        await all_ready.wait()
        go.set()
    return results


@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_concurrent_connects_of_one_new_alias_create_once_and_replace_never(
    replicas: Replicas, round_: int
) -> None:
    alias = f"race{round_}"
    results = await race_connect(replicas, alias)
    assert len(results) == CLIENTS
    created = [(url, r) for url, r in results if not r.is_error]
    # Exactly one call created the connection; none replaced it without an approval.
    assert len(created) == 1, [text_of(r) for _, r in created]
    creator_url, answer = created[0]
    assert answer.structured_content["created"] is True
    for _url, refused in (pair for pair in results if pair[1].is_error):
        structured = refused.structured_content or {}
        assert structured.get("status") == "pending" or "now exists" in text_of(refused), text_of(
            refused
        )
    assert replicas.url_of(alias) == creator_url
