"""Attack 16 (outside testers), through the real CLI.

Finding 4: a note (or name) that is not valid UTF-8 ended in a UnicodeEncodeError traceback
from the store; it is a one-line error naming the option, and nothing changes.
Finding 6: a data directory whose guard.sqlite3 holds none of the guard's tables (0 bytes, or
another program's database) got the guard's tables created by a read; it is "no store yet",
and the file stays as it was."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from support.guard import db_path, run_cli

from odoo_mcp_guard.store import Store

NOT_UTF8 = os.fsdecode(b"ok \xff")  # how Python hands a non-UTF-8 argv byte to the CLI


def _no_traceback(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def pending(tmp_path: Path) -> tuple[Path, str]:
    store = Store.open(tmp_path)
    request, created = store.file_request(
        "odoo_disconnect", {"alias": "prod"}, "stdio:alice", "Removing a connection", 3600
    )
    assert created
    store.close()
    return tmp_path, request.ref


@pytest.mark.parametrize("verb", ["approve", "reject", "cancel"])
@pytest.mark.parametrize(
    ("option", "extra"),
    [("--note", ["--as", "bob", "--note", NOT_UTF8]), ("--as", ["--as", NOT_UTF8])],
)
def test_text_that_is_not_utf8_is_a_one_line_error(
    pending: tuple[Path, str], verb: str, option: str, extra: list[str]
) -> None:
    data_dir, ref = pending
    before = db_path(data_dir).read_bytes()
    result = _no_traceback(run_cli(data_dir, "approvals", verb, ref, *extra, check=False))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"odoo-mcp-guard: error: {option} is not valid UTF-8 text"
    ]
    shown = json.loads(run_cli(data_dir, "approvals", "show", ref, "--json").stdout)
    assert shown["state"] == "pending"
    assert db_path(data_dir).read_bytes() == before


def _foreign_database(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (body TEXT)")
    db.execute("INSERT INTO notes VALUES ('mine')")
    db.execute("PRAGMA user_version = 7")
    db.commit()
    db.close()


READS = (
    ["approvals", "list"],
    ["audit", "tail"],
    ["connections", "list"],
    ["tools", "list"],
)


@pytest.mark.parametrize("args", READS, ids=" ".join)
@pytest.mark.parametrize("kind", ["empty file", "foreign database"])
def test_a_read_leaves_a_sqlite_file_without_guard_tables_alone(
    tmp_path: Path, args: list[str], kind: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    path = db_path(data_dir)
    if kind == "empty file":
        path.touch()
    else:
        _foreign_database(path)
    before = (path.read_bytes(), path.stat().st_mtime_ns, sorted(os.listdir(data_dir)))
    result = _no_traceback(run_cli(data_dir, *args, check=False))
    assert result.returncode == 0, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"no guard store in {data_dir}" in result.stderr
    assert (path.read_bytes(), path.stat().st_mtime_ns, sorted(os.listdir(data_dir))) == before
