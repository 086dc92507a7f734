# The two commands of the README:
#   make run   — create .venv, install, migrate the embedded SQLite database under ./var,
#                load demo data and serve http://127.0.0.1:8000 (docs at /docs), with the
#                worker (outbox, holds, partner orders) and the SIMULATORS of the bank (:8101),
#                the operator's billing system (:8102), the top-up aggregator (:8103) ... and a
#                merchant's site receiving notifications (:8108; MOBIPAY_NOTIFY_ALLOW_NETWORKS
#                lets notify URLs reach it on loopback, which production refuses)
#   make test  — lint (ruff), types (mypy --strict), architecture (import-linter), every test
# PostgreSQL tests run when MOBIPAY_TEST_POSTGRES is set (CI sets it and requires them).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint unit bench vendor clean

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
	export MOBIPAY_NOTIFY_ALLOW_NETWORKS=127.0.0.1/32; \
	$(BIN)/python -m mobipay.simulators.bank --port $(BANK_PORT) --auto-open --latency-ms 50 & bank=$$!; \
	$(BIN)/python -m mobipay.simulators.telco --role billing --port 8102 --latency-ms 80 & billing=$$!; \
	$(BIN)/python -m mobipay.simulators.telco --role aggregator --port 8103 --latency-ms 300 \
	  --processing-rate 0.2 & aggregator=$$!; \
	$(BIN)/python -m mobipay.simulators.billers --port 8104 --registry-latency & billers=$$!; \
	$(BIN)/python -m mobipay.simulators.providers --role products --port 8105 & products=$$!; \
	$(BIN)/python -m mobipay.simulators.providers --role insurer --port 8106 --latency-ms 200 & insurer=$$!; \
	$(BIN)/python -m mobipay.simulators.lottery_centre --port 8107 & lottery=$$!; \
	$(BIN)/python -m mobipay.simulators.merchant_site --port 8108 & site=$$!; \
	$(BIN)/mobipay worker & worker=$$!; \
	trap 'kill $$bank $$billing $$aggregator $$billers $$products $$insurer $$lottery $$site $$worker 2>/dev/null' EXIT INT TERM; \
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

# Front-end libraries from npm, copied into the package (committed; only needed when
# web-vendor/package.json changes): see web-vendor/vendor.mjs.
vendor:
	cd web-vendor && npm ci --ignore-scripts --no-audit --no-fund && node vendor.mjs

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
