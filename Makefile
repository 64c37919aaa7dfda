# Two commands for a newcomer on a fresh Debian machine with Python 3.11:
#   make run    set up and start the service (embedded SQLite, no other setup)
#   make test   set up and run the whole test suite
PYTHON ?= python3
VENV := .venv
APT_PACKAGES := swig ffmpeg build-essential
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test system-deps bench checks

# Debian packages: swig builds tmkpy, ffmpeg decodes video for TMK. Installed only when missing.
system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[server,video,test]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/hashguard serve

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest

bench: $(VENV)/.installed
	$(VENV)/bin/python bench/hash_bench.py

checks: $(VENV)/.installed
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH ../shared/checks/run
