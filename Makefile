# The two entry points of the README: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint install system-tools

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/ioc demo

test: $(VENV)/.installed system-tools
	$(BIN)/ruff check .
	$(BIN)/pytest

# Debian packages some tests run for real (installed only when missing, and only as root with apt):
# headless Chromium renders the morning briefing; Prometheus scrapes a worker for the dashboard's worker panels.
SYSTEM_TOOLS := chromium prometheus
system-tools:
	@missing=""; for t in $(SYSTEM_TOOLS); do [ -x /usr/bin/$$t ] || missing="$$missing $$t"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	else echo "missing:$$missing: install Debian's packages (the tests that need them skip without them)"; fi

lint: $(VENV)/.installed
	$(BIN)/ruff check .
