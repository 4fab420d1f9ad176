"""The add-on's own tests (tours included), run inside a real Odoo 18.0 and a real Odoo 19.0
(see ``odoo_harness``).

A series whose Odoo is not found is reported as SKIPPED with a reason saying "NOT RUN", never
as passed.
"""

from __future__ import annotations

import ast
import os

import pytest
from odoo_harness import (
    MODULE,
    SERIES,
    Series,
    TestRunResult,
    find_odoo,
    fresh_database,
    parse_test_log,
    run_module_tests,
    run_odoo_on,
)

MIN_TESTS = 25


@pytest.mark.parametrize(
    "series",
    [
        pytest.param(
            s,
            id=s.version,
            marks=pytest.mark.skipif(find_odoo(s) is None, reason=s.not_found_reason),
        )
        for s in SERIES
    ],
)
def test_mcp_guard_module_tests_pass_in_odoo(series: Series, tmp_path):
    keep = os.environ.get("MCPG_KEEP_ODOO_LOG_DIR")
    result = run_module_tests(MODULE, log_dir=keep or tmp_path, series=series)
    print(f"Odoo {series.version}: {result.summary()}")
    details = "\n".join(result.error_lines[:30])
    assert result.summary_seen, f"no test summary in the Odoo log {result.log_path}"
    assert result.ran >= MIN_TESTS, f"only {result.ran} Odoo tests ran (need {MIN_TESTS})"
    assert result.failed == 0 and result.errors == 0, f"{result.summary()}\n{details}"
    assert not result.error_lines, f"ERROR/CRITICAL lines in the Odoo log:\n{details}"
    assert not result.skipped, f"skipped Odoo tests (not run): {result.skipped}"
    assert result.returncode == 0, f"odoo exited with {result.returncode}; log {result.log_path}"


@pytest.mark.parametrize(
    "series",
    [
        pytest.param(
            s,
            id=s.version,
            marks=pytest.mark.skipif(find_odoo(s) is None, reason=s.not_found_reason),
        )
        for s in SERIES
    ],
)
def test_mcp_guard_upgrades_and_uninstalls_under_the_module_loader(series: Series):
    """The add-on's schema changes only under the module loader (models/ir_model.py): an upgrade
    and an uninstall (no connection left in use) still reflect, drop and recreate it."""
    with fresh_database(series=series) as db:
        args = ["-u", MODULE, "--stop-after-init", "--log-level=info"]
        upgrade = run_odoo_on(db, args, series=series)
        out = upgrade.stdout + upgrade.stderr
        assert upgrade.returncode == 0, out[-3000:]
        assert " ERROR " not in out and " CRITICAL " not in out, out[-3000:]
        script = (
            "mod = env['ir.module.module'].search([('name', '=', 'mcp_guard')])\n"
            "mod.button_immediate_uninstall()\n"
            "env.cr.commit()\n"
            "env.cr.execute(\"SELECT state FROM ir_module_module WHERE name = 'mcp_guard'\")\n"
            "print('STATE', env.cr.fetchone()[0])\n"
            "env.cr.execute(\"SELECT to_regclass('mcp_connection') IS NULL\")\n"
            "print('TABLE_GONE', env.cr.fetchone()[0])\n"
        )
        uninstall = run_odoo_on(db, ["shell"], stdin=script, series=series)
        out = uninstall.stdout + uninstall.stderr
        assert "STATE uninstalled" in out, out[-3000:]
        assert "TABLE_GONE True" in out, out[-3000:]


def _manifest(series: Series) -> dict:
    return ast.literal_eval((series.addons_dir / MODULE / "__manifest__.py").read_text())


@pytest.mark.unit  # reads files only: no Odoo
def test_series_manifests_differ_only_in_version():
    """The per-series layer stays thin: one manifest per series, the same apart from its
    version, which Odoo requires to start with the series; the add-on's own version after it
    moves in step (a bump in one manifest is a bump in all)."""
    manifests = {s.version: _manifest(s) for s in SERIES}
    for version, manifest in manifests.items():
        assert manifest["version"].startswith(version + "."), (version, manifest["version"])
    own = {m["version"].removeprefix(v + ".") for v, m in manifests.items()}
    assert len(own) == 1, f"the add-on versions differ between series: {manifests}"
    first, *others = manifests.values()
    for other in others:
        assert {**other, "version": None} == {**first, "version": None}


@pytest.mark.unit  # reads files only: no Odoo
def test_log_check_counts_odoo_errors_not_docutils_output(tmp_path):
    """Installing mail on 19.0 makes docutils print "(ERROR/3)" on stderr (mail's manifest
    description): not an Odoo log line, so not an error; Odoo's own ERROR lines still are."""
    log = (
        "<string>:38: (ERROR/3) Unexpected indentation.\n"
        "2026-11-29 03:22:20,908 30606 ERROR db odoo.addons.mcp_guard.tests.test_approval: "
        "FAIL: TestApproval.test_notifications\n"
    )
    result = parse_test_log(log, TestRunResult(db="db", returncode=0, log_path=tmp_path / "x"))
    assert len(result.error_lines) == 1
    assert "FAIL: TestApproval.test_notifications" in result.error_lines[0]
