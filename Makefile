# Two entry points: `make run` (the guard on its embedded default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
GUARD := $(abspath $(BIN))/odoo-mcp-guard
PORT ?= 8765

.PHONY: install run run-stdio test test-fast lint bench clean sync-core

$(BIN)/odoo-mcp-guard: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/odoo-mcp-guard

# Streamable HTTP on 127.0.0.1:$(PORT). The store is in the data directory every command finds by
# itself ($$MCP_GUARD_DATA_DIR, else ~/.local/share/odoo-mcp-guard): no --data-dir here, so the
# CLI, in any shell, reads what this guard writes. The first run prints a bearer token.
run: install
	@$(GUARD) tokens list | grep -qx local || { echo "bearer token for principal 'local' (shown once):"; \
		$(GUARD) tokens add local; }
	@echo "the command line: $(GUARD) (or run '. $(VENV)/bin/activate' to call it odoo-mcp-guard)"
	$(GUARD) serve --transport http --port $(PORT)

run-stdio: install
	@$(GUARD) serve

# pylint-odoo on the add-on (18.0) and on its 19.0 layer under the 19.0 manifest; pylint does not
# enter symlinked folders, so the layer's are named
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pylint --rcfile=odoo_addon/.pylintrc odoo_addon/mcp_guard
	$(BIN)/pylint --rcfile=odoo_addon/.pylintrc odoo_addon/series/19.0/mcp_guard odoo_addon/series/19.0/mcp_guard/*/

# -v names each test as it ends (the Odoo tests take minutes each); the slowest are listed last.
# Two workers, a test file each at a time (its module fixtures, a live Odoo, stay in one
# process), the longest files first (tests/conftest.py): most tests wait on subprocesses, and
# one worker left a core idle.
test: lint
	$(BIN)/pytest -v --durations=10 -n 2 --dist loadfile --no-loadscope-reorder

# The unit tier only (in-process, no service; markers in tests/conftest.py): seconds, not minutes.
# Other tiers: pytest -m e2e, -m "not odoo", -m postgres, -m redis, -m docker.
test-fast: install
	$(BIN)/pytest -m unit -q

# The add-on vendors the front-end's shared core and its golden corpus byte for byte
# (tests/test_policy_core.py checks): Odoo's test runner reads the corpus from the module.
sync-core:
	cp mcp_server/odoo_mcp_guard/policy_core.py odoo_addon/mcp_guard/models/policy_core.py
	cp mcp_server/odoo_mcp_guard/identity.py odoo_addon/mcp_guard/models/identity.py
	mkdir -p odoo_addon/mcp_guard/tests/data
	cp tests/data/policy_golden.json odoo_addon/mcp_guard/tests/data/policy_golden.json

bench: install
	$(BIN)/python bench/bench_guard.py --calls 2000

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
