"""The Odoo 18 add-on's own tests, run inside a real Odoo (see ``odoo_harness``).

Without Odoo this test is reported as SKIPPED with the reason, never as passed.
"""

from __future__ import annotations

import os

import pytest
from odoo_harness import MODULE, NOT_FOUND_REASON, find_odoo, run_module_tests

MIN_TESTS = 25


@pytest.mark.skipif(find_odoo() is None, reason=NOT_FOUND_REASON)
def test_mcp_guard_module_tests_pass_in_odoo(tmp_path):
    keep = os.environ.get("MCPG_KEEP_ODOO_LOG_DIR")
    result = run_module_tests(MODULE, log_dir=keep or tmp_path)
    print(result.summary())
    details = "\n".join(result.error_lines[:30])
    assert result.summary_seen, f"no test summary in the Odoo log {result.log_path}"
    assert result.ran >= MIN_TESTS, f"only {result.ran} Odoo tests ran (need {MIN_TESTS})"
    assert result.failed == 0 and result.errors == 0, f"{result.summary()}\n{details}"
    assert not result.error_lines, f"ERROR/CRITICAL lines in the Odoo log:\n{details}"
    assert not result.skipped, f"skipped Odoo tests (not run): {result.skipped}"
    assert result.returncode == 0, f"odoo exited with {result.returncode}; log {result.log_path}"
