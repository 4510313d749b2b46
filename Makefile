# Quanyu 全域 — the two commands: `make demo` and `make test`. Each sets itself up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/quanyu demo --reset --data-dir .quanyu-demo $(DEMO_ARGS)

# The web tracker's browser tests drive Debian's chromium (as root, e.g. CI, it is installed here;
# elsewhere install it yourself or those tests skip with a reason).
test: $(STAMP)
	@test -x /usr/bin/chromium || [ "$$(id -u)" != 0 ] || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/process.py
	$(BIN)/python bench/stitch.py
	$(BIN)/python bench/dedupe.py
	$(BIN)/python bench/profiles.py
	$(BIN)/python bench/identity_accuracy.py
	$(BIN)/python bench/journeys.py
	$(BIN)/python bench/imports.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .quanyu-demo .pytest_cache .mypy_cache .ruff_cache
