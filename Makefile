# Two entry points: `make run` (the guard on its embedded default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= .data
PORT ?= 8765

.PHONY: install run run-stdio test lint bench clean

$(BIN)/odoo-mcp-guard: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/odoo-mcp-guard

# Streamable HTTP on 127.0.0.1:$(PORT), SQLite store in $(DATA)/; the first run prints a bearer token.
run: install
	@test -f $(DATA)/tokens.json || { echo "bearer token for principal 'local' (shown once):"; \
		$(BIN)/odoo-mcp-guard --data-dir $(DATA) tokens add local; }
	$(BIN)/odoo-mcp-guard serve --transport http --port $(PORT) --data-dir $(DATA)

run-stdio: install
	$(BIN)/odoo-mcp-guard serve --data-dir $(DATA)

# pylint-odoo on the add-on (18.0) and on its 19.0 layer under the 19.0 manifest; pylint does not
# enter symlinked folders, so the layer's are named
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pylint --rcfile=odoo_addon/.pylintrc odoo_addon/mcp_guard
	$(BIN)/pylint --rcfile=odoo_addon/.pylintrc odoo_addon/series/19.0/mcp_guard odoo_addon/series/19.0/mcp_guard/*/

test: lint
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/bench_guard.py --calls 2000

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
