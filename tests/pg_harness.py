"""A real PostgreSQL for the store tests: 127.0.0.1:5432 (``MCP_GUARD_TEST_PG_HOST`` /
``_PORT``), as the OS user (``PGUSER`` overrides), trust authentication. Every module gets a
database of its own (``mcpg_store_...``), dropped at the end; without a reachable server the
tests are skipped and say so ("PostgreSQL tests NOT RUN"), never passed."""

from __future__ import annotations

import getpass
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any
from urllib.parse import quote

import psycopg2
import pytest

PG_HOST = os.environ.get("MCP_GUARD_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("MCP_GUARD_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("PGUSER") or getpass.getuser()
PREFIX = "mcpg_store_"


def pg_url(
    database: str,
    *,
    user: str = PG_USER,
    password: str | None = None,
    schema: str | None = None,
    port: int = PG_PORT,
) -> str:
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    url = f"postgresql://{auth}@{PG_HOST}:{port}/{database}"
    if schema:
        url += "?options=" + quote(f"-csearch_path={schema}", safe="")
    return url


def admin(database: str = "postgres") -> Any:
    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database)
    conn.autocommit = True
    return conn


def require_postgres() -> None:
    try:
        admin().close()
    except psycopg2.Error as exc:
        pytest.skip(f"PostgreSQL tests NOT RUN: no PostgreSQL at {PG_HOST}:{PG_PORT}: {exc}")


def sql(database: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """One statement as the admin role; rows if it returns any."""
    conn = admin(database)
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement, params or None)
            return cursor.fetchall() if cursor.description else []
    finally:
        conn.close()


@contextmanager
def _fresh(label: str, create: str, drop: Callable[[str], None]) -> Iterator[str]:
    require_postgres()
    name = f"{PREFIX}{label}_{os.getpid()}_{secrets.token_hex(3)}"
    sql("postgres", create.format(name=name))
    try:
        yield name
    finally:
        drop(name)


def fresh_database(label: str) -> AbstractContextManager[str]:
    """A new database ``mcpg_store_<label>_<random>``, dropped (with its sessions) after."""
    return _fresh(
        label,
        'CREATE DATABASE "{name}"',
        lambda name: sql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'),
    )


def _drop_role(name: str) -> None:
    for (database,) in sql("postgres", "SELECT datname FROM pg_database WHERE datallowconn"):
        if database.startswith(PREFIX):
            with suppress(psycopg2.Error):
                sql(database, f'DROP OWNED BY "{name}"')
    sql("postgres", f'DROP ROLE IF EXISTS "{name}"')


def fresh_role(label: str) -> AbstractContextManager[str]:
    """A login role with no rights of its own, dropped after (with what it was granted)."""
    return _fresh(label, 'CREATE ROLE "{name}" LOGIN', _drop_role)
