# The two commands of the README:
#   make run   — create .venv, install, migrate the embedded SQLite database under ./var,
#                load demo data and serve http://127.0.0.1:8000 (docs at /docs), with the
#                worker (outbox, holds, bank orders) and the bank SIMULATOR (:8101) beside it
#   make test  — lint (ruff), types (mypy --strict), architecture (import-linter), every test
# PostgreSQL tests run when MOBIPAY_TEST_POSTGRES is set (CI sets it and requires them).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint unit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

BANK_PORT ?= 8101

run: $(STAMP)
	$(BIN)/mobipay db upgrade
	$(BIN)/mobipay demo
	export MOBIPAY_BANK_URL=http://127.0.0.1:$(BANK_PORT); \
	$(BIN)/python -m mobipay.simulators.bank --port $(BANK_PORT) --auto-open --latency-ms 50 & sim=$$!; \
	$(BIN)/mobipay worker & worker=$$!; \
	trap 'kill $$sim $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/mobipay serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

bench: $(STAMP)
	$(BIN)/mobipay bench ledger --seconds 10

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
