# Two entry points on a fresh machine (Python 3.11, pip, make): `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STORE ?= demo-store

.PHONY: demo test test-slow test-all lint imports bench lock clean browser postgres

# The venv is rebuilt from the lock file whenever the lock or pyproject changes.
$(BIN)/flushcast: export PIP_CONFIG_FILE = /dev/null
$(BIN)/flushcast: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e . --config-settings editable_mode=lenient
	$(BIN)/python -c "$$CHECKOUT_PTH"
	touch $(BIN)/flushcast

# The editable install maps flushcast.common to common/ and so on (setuptools' finder, the same
# package-dir table the wheel is built from); tests/ and benchmarks/ import from the checkout,
# which this .pth keeps on sys.path (what `editable_mode=compat` gave before the mapping).
define CHECKOUT_PTH
import pathlib, sysconfig
pathlib.Path(sysconfig.get_path("purelib"), "flushcast-checkout.pth").write_text("$(CURDIR)\n")
endef
export CHECKOUT_PTH

demo: $(BIN)/flushcast
	$(BIN)/flushcast demo --store $(STORE)

# The fast tier: unit tests and small in-process fixtures (about two minutes on 2 cores).
test: $(BIN)/flushcast
	$(BIN)/python -m pytest -q -m "not slow"

# The slow tier: real servers, subprocess trainings, notebooks, the browser, fault injection,
# the registry on PostgreSQL.
test-slow: $(BIN)/flushcast browser postgres
	FLUSHCAST_TEST_POSTGRES=$(POSTGRES_URI) $(BIN)/python -m pytest -q -m slow

# Everything, once.
test-all: $(BIN)/flushcast browser postgres
	FLUSHCAST_TEST_POSTGRES=$(POSTGRES_URI) $(BIN)/python -m pytest -q

# The registry tests' PostgreSQL: Debian's server, installed and started when we may (root).
POSTGRES_URI ?= postgresql://flushcast:flushcast@127.0.0.1:5432/flushcast
postgres:
	@.ci/postgres

# The report's browser test needs Debian's chromium; installed here when we may (root).
browser:
	@command -v chromium >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "note: chromium missing and apt-get needs root: the browser test will skip"; fi

lint: $(BIN)/flushcast
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) imports

# The layer contract, checked on the installed layout (flushcast.common, flushcast.models, ...):
# lint-imports walks the root package's folder, so it reads a staged copy of what the wheel holds.
imports: $(BIN)/flushcast
	$(BIN)/python -m flushcast.common.layout build/imports >/dev/null
	cd build/imports && $(CURDIR)/$(BIN)/lint-imports --no-cache $(CURDIR)/pyproject.toml

bench: $(BIN)/flushcast
	$(BIN)/python -m benchmarks

# Regenerate the lock after changing dependencies in pyproject.toml (needs network to PyPI).
lock:
	$(BIN)/pip install --quiet "uv>=0.4"
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) $(STORE) mlruns mlflow.db .pytest_cache build
