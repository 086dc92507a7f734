# The two commands of the README:
#   make run   — create .venv, install, migrate the embedded SQLite database under ./var,
#                load demo data and serve http://127.0.0.1:8000 (docs at /docs), with the
#                worker (outbox, holds, partner orders) and the SIMULATORS of the partners
#                (:8101-:8107; PORT=… and BANK_PORT=… etc. move them) and a merchant's site
#                receiving notifications (:8108; MOBIPAY_NOTIFY_ALLOW_NETWORKS lets notify URLs
#                reach it on loopback, which production refuses) and the handset maker's warranty
#                service (:8109, WARRANTY_PORT=…) and the rural marketplace's carrier (:8120,
#                LOGISTICS_PORT=…; one step a minute); once up, the server prints
#                where to sign in
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
	@# both Alipay libraries write alipay/__init__.py: python-alipay-sdk's (the AliPay class) must be the one kept
	$(BIN)/python -m pip install -q --force-reinstall --no-deps python-alipay-sdk==3.4.0
	touch $(STAMP)

# The SIMULATORS' ports (change them to run beside another checkout's make run).
BANK_PORT ?= 8101
BILLING_PORT ?= 8102
AGGREGATOR_PORT ?= 8103
BILLERS_PORT ?= 8104
PRODUCTS_PORT ?= 8105
INSURER_PORT ?= 8106
LOTTERY_PORT ?= 8107
SITE_PORT ?= 8108
WARRANTY_PORT ?= 8109
SP_BILLING_PORT ?= 8112
TRANSIT_PORT ?= 8113
LOGISTICS_PORT ?= 8120
LOCATION_PORT ?= 8124
# One log format for the server, the worker and the CLI (MOBIPAY_LOG_JSON): text for a
# person at a terminal here; `make run LOG_JSON=true` for JSON lines. Warnings and errors
# only, so the start-up summary and the SMS codes stay in sight: `make run LOG_LEVEL=INFO`
# shows every request too.
LOG_JSON ?= false
LOG_LEVEL ?= WARNING
SIM := http://127.0.0.1

run: export MOBIPAY_LOG_JSON = $(LOG_JSON)
run: export MOBIPAY_LOG_LEVEL = $(LOG_LEVEL)
run: $(STAMP)
	$(BIN)/mobipay db upgrade
	$(BIN)/mobipay demo
	@echo "make run: the partners' SIMULATORS on :$(BANK_PORT)-:$(LOTTERY_PORT), a merchant's site on :$(SITE_PORT), the maker's warranty service on :$(WARRANTY_PORT), the carrier on :$(LOGISTICS_PORT), the worker, then the server on :$(PORT) (Ctrl-C stops them all)"
	@export MOBIPAY_BANK_URL=$(SIM):$(BANK_PORT) \
	  MOBIPAY_OPERATOR_BILLING_URL=$(SIM):$(BILLING_PORT) MOBIPAY_AGGREGATOR_URL=$(SIM):$(AGGREGATOR_PORT) \
	  MOBIPAY_BILLERS_URL=$(SIM):$(BILLERS_PORT) MOBIPAY_PRODUCTS_URL=$(SIM):$(PRODUCTS_PORT) \
	  MOBIPAY_INSURER_URL=$(SIM):$(INSURER_PORT) MOBIPAY_LOTTERY_URL=$(SIM):$(LOTTERY_PORT) \
	  MOBIPAY_WARRANTY_URL=$(SIM):$(WARRANTY_PORT) MOBIPAY_SP_BILLING_URL=$(SIM):$(SP_BILLING_PORT) \
	  MOBIPAY_TOURISM_LOCATION_URL=$(SIM):$(LOCATION_PORT) MOBIPAY_TRANSIT_OPERATOR_URL=$(SIM):$(TRANSIT_PORT) \
	  MOBIPAY_LOGISTICS_URL=$(SIM):$(LOGISTICS_PORT) \
	  MOBIPAY_NOTIFY_ALLOW_NETWORKS=127.0.0.1/32; \
	$(BIN)/python -m mobipay.simulators.bank --port $(BANK_PORT) --auto-open --latency-ms 50 & bank=$$!; \
	$(BIN)/python -m mobipay.simulators.telco --role billing --port $(BILLING_PORT) --latency-ms 80 & billing=$$!; \
	$(BIN)/python -m mobipay.simulators.telco --role aggregator --port $(AGGREGATOR_PORT) --latency-ms 300 \
	  --processing-rate 0.2 & aggregator=$$!; \
	$(BIN)/python -m mobipay.simulators.billers --port $(BILLERS_PORT) --registry-latency & billers=$$!; \
	$(BIN)/python -m mobipay.simulators.providers --role products --port $(PRODUCTS_PORT) & products=$$!; \
	$(BIN)/python -m mobipay.simulators.providers --role insurer --port $(INSURER_PORT) --latency-ms 200 & insurer=$$!; \
	$(BIN)/python -m mobipay.simulators.lottery_centre --port $(LOTTERY_PORT) & lottery=$$!; \
	$(BIN)/python -m mobipay.simulators.maker_warranty --port $(WARRANTY_PORT) & warranty=$$!; \
	$(BIN)/python -m mobipay.simulators.sp_billing --port $(SP_BILLING_PORT) & spbilling=$$!; \
	$(BIN)/python -m mobipay.simulators.location_platform --port $(LOCATION_PORT) & location=$$!; \
	$(BIN)/python -m mobipay.simulators.transit_operator --port $(TRANSIT_PORT) & transit=$$!; \
	$(BIN)/python -m mobipay.simulators.logistics --port $(LOGISTICS_PORT) --step-s 60 & logistics=$$!; \
	$(BIN)/python -m mobipay.simulators.merchant_site --port $(SITE_PORT) & site=$$!; \
	$(BIN)/mobipay worker & worker=$$!; \
	trap 'kill $$bank $$billing $$aggregator $$billers $$products $$insurer $$lottery $$warranty $$spbilling $$location $$transit $$logistics $$site $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/mobipay serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile -q --durations=15

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit tests/fast

bench: $(STAMP)
	$(BIN)/mobipay bench ledger --seconds 10

# Front-end libraries from npm, copied into the package (committed; only needed when
# web-vendor/package.json changes): see web-vendor/vendor.mjs.
vendor:
	cd web-vendor && npm ci --ignore-scripts --no-audit --no-fund && node vendor.mjs

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
