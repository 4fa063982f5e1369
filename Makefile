# pricestream: `make demo` and `make test` are all a new user needs.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The locks pin PyTorch's CPU build (torch==...+cpu), which PyPI does not serve: uv (and pip-compile) take it from a
# local folder of wheels where there is one, else from PyTorch's CPU index. The lock's hash checks it
# either way, and the installer passes over any file, from either index, whose hash the lock does not hold.
TORCH_WHEELS ?= /opt/wheels
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_SOURCE := $(if $(wildcard $(TORCH_WHEELS)),--find-links $(TORCH_WHEELS),--extra-index-url $(TORCH_INDEX))
PIP_INSTALL := $(BIN)/pip --disable-pip-version-check install -q
UV_INSTALL := $(BIN)/uv pip install -q --python $(BIN)/python
# A local index of this machine's pip config warns about every package it lacks.
QUIET_PIP := { grep -v "is ignored: it is neither" || true; }
PACKAGES := contracts services/servicekit services/scraper services/grouping services/substitutions services/bargains services/catalogue deploy simulator testsupport
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test lint typecheck schemas unit contracts integration e2e quality up down status lock clean bench bench-scrape bench-grouping bench-bargains bench-substitutions bench-catalogue browser screenshots bench-web

install: $(STAMP)

$(STAMP): requirements/bootstrap.lock requirements/dev.lock $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# uv, hashed, installs the rest: about 10 s where pip took a minute, a sixth of a fresh `make test`'s setup.
	$(PIP_INSTALL) --require-hashes -r requirements/bootstrap.lock 2>&1 | $(QUIET_PIP)
	# Every third-party package at the version and with a hash of the lock: torch the CPU build. uv
	# reads no pip config and stops at the first index holding a package unless told to weigh them all.
	$(UV_INSTALL) --require-hashes $(TORCH_SOURCE) --index-strategy unsafe-best-match -r requirements/dev.lock
	# The project's own packages, editable; the lock holds their dependencies, pip check proves it.
	$(UV_INSTALL) --no-deps --no-build-isolation $(foreach p,$(PACKAGES),-e $(p))
	@$(BIN)/pip check >/dev/null || { $(BIN)/pip check; echo "a dependency is missing from requirements/dev.lock: run make lock" >&2; exit 1; }
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
	# Two workers, each running stack's tests on one of them (the scopes: tests/conftest.py).
	$(BIN)/pytest -n 2 --dist loadscope

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
	$(BIN)/python -m benchmarks.grouping_members

# Re-pin every dependency, with hashes, after changing a pyproject.toml or requirements/*.in: the full
# image's set (ml.lock) first, then the slim image's (runtime.lock) and the venv's (dev.lock) at its
# versions. A pin stays until its package's requirements change; delete a lock to re-pin from scratch.
# pip-compile runs from a venv of its own: the project's never depends on it.
LOCK_VENV := $(VENV)/lock-tools
PIP_TOOLS := pip-tools==7.6.2
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile -q --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(TORCH_SOURCE)
# The project's packages install from their folders: drop them, and pip-compile's warning that they have no hash.
DROP_LOCAL := awk '/^\# (WARNING: pip install will require|Consider using a hashable URL)/ {next} \
	/^-e / {skip = 1; next} skip && /^    \#/ {next} {skip = 0; print}'

lock:
	@test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q $(PIP_TOOLS); }
	for set in ml runtime dev; do \
		constraint=$$([ $$set = ml ] || echo "-c requirements/ml.lock"); \
		$(PIP_COMPILE) $$constraint requirements/$$set.in -o requirements/$$set.lock 2>&1 | $(QUIET_PIP); \
		$(DROP_LOCAL) requirements/$$set.lock > requirements/$$set.lock.tmp; \
		mv requirements/$$set.lock.tmp requirements/$$set.lock; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
