# pricestream: `make demo` and `make test` are all a new user needs.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# PyTorch's CPU build is served from a local folder here; pip looks there first.
TORCH_WHEELS ?= /opt/wheels
PIP_INSTALL := $(BIN)/pip --disable-pip-version-check install -q $(if $(wildcard $(TORCH_WHEELS)),--find-links $(TORCH_WHEELS))
PACKAGES := contracts services/servicekit services/scraper services/grouping services/substitutions services/bargains services/catalogue deploy simulator testsupport
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test lint typecheck schemas unit contracts integration e2e quality up down status lock clean bench bench-scrape bench-grouping bench-bargains bench-substitutions bench-catalogue browser screenshots bench-web

install: $(STAMP)

$(STAMP): requirements.lock requirements-dev.in $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU build, so nothing pulls the CUDA wheels.
	$(PIP_INSTALL) -c requirements.lock torch 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(PIP_INSTALL) -c requirements.lock -r requirements-dev.in $(foreach p,$(PACKAGES),-e $(p)) \
		2>&1 | { grep -v "is ignored: it is neither" || true; }
	@touch $(STAMP)

demo: install
	$(BIN)/pricestream up
	$(BIN)/pricestream demo
	$(BIN)/pricestream status

up: install
	$(BIN)/pricestream up

down:
	$(BIN)/pricestream down

status:
	$(BIN)/pricestream status

test: install lint typecheck browser
	$(BIN)/python -m contracts check
	$(BIN)/pytest

unit contracts integration e2e quality: install
	$(BIN)/pytest -m $@

# The browser tests drive Debian's Chromium through Playwright, which never downloads a browser.
CHROMIUM ?= /usr/bin/chromium
e2e: browser

browser:
	@test -x $(CHROMIUM) || { \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "installing Debian's Chromium for the browser tests"; \
		$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The web page's screenshots (into docs/screenshots/) and page times, both on the stack `make demo` left up.
screenshots: install browser
	$(BIN)/python -m benchmarks.web_screenshots

bench-web: install
	$(BIN)/python -m benchmarks.web_pages

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy contracts/src services/*/src deploy/src simulator/src simulator/tests testsupport/src tests benchmarks

schemas: install
	$(BIN)/python -m contracts export

bench-scrape: install
	$(BIN)/python -m benchmarks.scrape_throughput

bench-bargains: install
	$(BIN)/python -m benchmarks.bargains_recompute

bench: install
	$(BIN)/pricestream bench

bench-substitutions: install
	$(BIN)/python -m benchmarks.substitutions_match

bench-catalogue: install
	$(BIN)/python -m benchmarks.catalogue_read

bench-grouping: install
	$(BIN)/python -m benchmarks.grouping_algorithm
	$(BIN)/python -m benchmarks.grouping_ingest

# Re-pin every dependency after changing a pyproject.toml or requirements-dev.in.
lock: install
	$(BIN)/pip freeze --exclude-editable | grep -v '^pricestream' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
