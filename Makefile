# coincast: two commands on a fresh machine.
#   make up    creates .venv, installs coincast, runs `coincast up` (embedded: simulator or Binance, DuckDB, dashboard)
#   make test  installs the test tools (and Chromium/Java from apt when root), runs the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=
# the full recorded market data (benchmarks); tests fall back to the slice in tests/data
SHARED_DATA ?= $(or $(COINCAST_SHARED_DATA),$(abspath ../shared/data))
EXTRAS := batch,ml,ingest,postgres,kafka,redis,assistant
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: up test install system-deps bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[$(EXTRAS),dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

up: install
	$(BIN)/coincast up $(ARGS)

# Chromium (dashboard tests) and a Java runtime (Spark engine) come from apt; tests that need
# them skip with the reason when they are missing and we are not root.
system-deps:
	@if [ ! -x /usr/bin/chromium ] || ! command -v java >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium default-jre-headless >/dev/null; \
	  else echo "note: install chromium and a Java runtime (default-jre-headless) for the browser and Spark tests"; fi; \
	fi

test: install system-deps
	$(BIN)/pytest -q $(ARGS)

bench:
	$(if $(and $(wildcard $(SHARED_DATA)/trades_btcusdt.parquet),$(wildcard $(SHARED_DATA)/klines_1h.parquet)),,$(error \
	  benchmarks need the full recorded data: put klines_1h.parquet and trades_btcusdt.parquet in $(SHARED_DATA) \
	  or set COINCAST_SHARED_DATA=/path/to/data (provenance: tests/data/README.md)))
	@$(MAKE) --no-print-directory install
	COINCAST_SHARED_DATA="$(SHARED_DATA)" $(BIN)/python benchmarks/bench_candles.py

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
