"""Attack 14, finding 8 (outside testers): a command that only reads, pointed at a PostgreSQL
database with no guard store in it, created the guard's tables there. Reads never create a
store (README, "The command"): on PostgreSQL as on SQLite they say in one line that there is
none yet, and leave the database as they found it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pg_harness import fresh_database, pg_url, sql
from support.guard import guard_command, guard_env

READS = (
    ["approvals", "list"],
    ["audit", "tail"],
    ["connections", "list"],
    ["tools", "list"],
)
ON_ONE_RECORD = (
    ["approvals", "show", "MCPR-00001"],
    ["approvals", "approve", "MCPR-00001", "--as", "bob"],
    ["approvals", "reject", "MCPR-00001", "--as", "bob"],
    ["approvals", "cancel", "MCPR-00001", "--as", "bob"],
    ["tools", "show", "odoo_connect"],
)


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        guard_command(*args), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _tables(database: str) -> list[tuple[str, str]]:
    return sql(
        database,
        "SELECT schemaname, tablename FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    )


@pytest.mark.parametrize("args", [*READS, *ON_ONE_RECORD], ids=" ".join)
def test_a_read_on_an_empty_postgresql_database_creates_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    with fresh_database("readonly") as name:
        url = pg_url(name)
        result = _run("--database-url", url, *args, env=guard_env(tmp_path / "data"))
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert f"no guard store in {url}" in result.stderr, result.stderr
        assert result.returncode == (0 if args in READS else 2), result.stderr
        assert _tables(name) == []
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("args", ON_ONE_RECORD, ids=" ".join)
def test_a_command_on_one_record_in_an_empty_data_directory_creates_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    empty = tmp_path / "nowhere"
    result = _run(*args, "--data-dir", str(empty), env=guard_env())
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.returncode == 2 and f"no guard store in {empty}" in result.stderr
    assert not empty.exists()


def test_a_read_on_an_existing_postgresql_store_reads_it(tmp_path: Path) -> None:
    with fresh_database("readonly_existing") as name:
        url = pg_url(name)
        env = guard_env(tmp_path / "data")
        imported = tmp_path / "connections.json"
        imported.write_text(
            '[{"alias": "prod", "url": "https://prod.example.com", "db": "prod",'
            ' "username": "admin", "password": "pw-ro14"}]'
        )
        imported_now = _run("--database-url", url, "connections", "import", str(imported), env=env)
        assert imported_now.returncode == 0, imported_now.stderr
        listed = _run("--database-url", url, "connections", "list", env=env)
        assert listed.returncode == 0 and "prod" in listed.stdout, listed.stderr
        assert "no guard store" not in listed.stderr
