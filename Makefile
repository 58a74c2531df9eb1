# The two entry points of the README: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint install chromium

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/ioc demo

test: $(VENV)/.installed chromium
	$(BIN)/ruff check .
	$(BIN)/pytest

# Headless Chromium renders the morning briefing in its tests (Debian's package; only when missing and root).
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update && apt-get install -y --no-install-recommends chromium; \
	else echo "chromium is missing: install Debian's chromium package (the briefing's browser tests skip without it)"; fi

lint: $(VENV)/.installed
	$(BIN)/ruff check .
