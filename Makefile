# ecmahost — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STATE  := var
TOKEN_FILE := $(STATE)/CSV.token

.DEFAULT_GOAL := help
.PHONY: help install run test lint format typecheck all clean bench bench-quick

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create the virtualenv and install ecmahost with its dev tools

run: $(STAMP) ## serve the demo CSV connector (token generated on first run)
	@mkdir -p $(STATE)
	@if [ -z "$$ECMAHOST_CSV_TOKEN" ] && [ ! -s $(TOKEN_FILE) ]; then \
		umask 077; $(BIN)/ecmahost token > $(TOKEN_FILE); \
		echo "Generated a secret token for connector CSV (kept in $(TOKEN_FILE))."; \
	fi
	@token="$${ECMAHOST_CSV_TOKEN:-$$(cat $(TOKEN_FILE))}"; \
	echo "Secret token for Entra: $$token"; \
	echo "Tenant URL for Entra:  $$($(BIN)/ecmahost --config config/ecmahost.toml tenant-url CSV)"; \
	echo "Its certificate:       $(STATE)/tls/cert.pem (trust it where Entra's agent runs)"; \
	ECMAHOST_CSV_TOKEN="$$token" exec $(BIN)/ecmahost --config config/ecmahost.toml serve

# The tests start hundreds of ecmahost processes. An editable install leaves the
# package's own modules uncompiled, and where PYTHONDONTWRITEBYTECODE is set (as in
# many CI images) each process would compile them anew: compile them once first.
test: $(STAMP) ## run the whole test suite
	$(BIN)/python -m compileall -q engine connectors migrations
	$(BIN)/pytest

bench: $(STAMP) ## the benchmarks against their references, side by side (long)
	$(BIN)/python -m bench.scim_load
	$(BIN)/python -m bench.full_import
	$(BIN)/python -m bench.export_drain
	$(BIN)/python -m bench.filter_scale
	$(BIN)/python -m bench.entra_path
	$(BIN)/python -m bench.entra_path_pg
	$(BIN)/python -m bench.cluster_hosts
	$(BIN)/python -m bench.space_writes

bench-quick: $(STAMP) ## the benchmarks on small data (a few minutes)
	$(BIN)/python -m bench.scim_load --quick
	$(BIN)/python -m bench.full_import --quick
	$(BIN)/python -m bench.export_drain --quick
	$(BIN)/python -m bench.filter_scale --quick
	$(BIN)/python -m bench.entra_path --quick
	$(BIN)/python -m bench.entra_path_pg --quick
	$(BIN)/python -m bench.cluster_hosts --quick
	$(BIN)/python -m bench.space_writes --n 500

lint: $(STAMP) ## format check and lint
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP) ## format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# mypy cannot follow the package-dir mapping of an editable install: it checks the
# folders through links that lay them out as the installed ecmahost namespace.
TYPECHECK := build/typecheck
typecheck: $(STAMP) ## mypy, strict
	@mkdir -p $(TYPECHECK)/ecmahost
	@for part in engine connectors migrations; do ln -sfn ../../../$$part $(TYPECHECK)/ecmahost/$$part; done
	cd $(TYPECHECK) && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p ecmahost.engine -p ecmahost.connectors

all: lint typecheck test ## format check, lint, type check and tests

clean: ## remove the virtualenv and the demo state
	rm -rf $(VENV) $(STATE) build .pytest_cache .mypy_cache .ruff_cache
