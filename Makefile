# Two commands for a newcomer on a fresh Debian machine with Python 3.11:
#   make run    set up and start the service (embedded SQLite, no other setup)
#   make test   set up and run the whole test suite
PYTHON ?= python3
VENV := .venv
APT_PACKAGES := swig ffmpeg build-essential cmake pkg-config libavcodec-dev libavformat-dev \
	libavdevice-dev libavutil-dev libswscale-dev libswresample-dev libavfilter-dev
# Only for the tests: the web page tests (tests/web) drive Debian's Chromium (never a downloaded
# browser) and run the page's JS modules under Node; the fonts make Japanese, Chinese, Korean and Nepali screenshots readable.
# libpq-dev: the peer tests build HMA's psycopg2 from source (tests/peers); curl and jq run
# docs/partners.md's quickstart (tests/test_partner_docs.py); caddy is the TLS proxy of deploy/,
# run as shipped in front of two servers (tests/test_deploy_proxy.py); Debian's package enables a
# system-wide caddy on port 80, which test-deps stops again when it installed the package itself.
TEST_APT_PACKAGES := chromium fonts-ipafont-gothic libpq-dev curl jq caddy fonts-wqy-microhei fonts-lohit-deva-nepali
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Wait for another install's package lock (up to 15 min) instead of failing at once.
APT_GET := $(SUDO) apt-get -o DPkg::Lock::Timeout=900
# PostgreSQL for the tests: the server at HASHGUARD_TEST_POSTGRES (default 127.0.0.1:5432), or,
# when nothing answers there, a throwaway cluster started (and installed) for the run.
WITH_POSTGRES := $(VENV)/bin/python tests/throwaway_postgres.py --
# Tests run in two worker processes (this machine has 2 cores; most tests wait on servers,
# browsers and the database): a file stays on one worker so its module fixtures are built once,
# and files run in the order tests/conftest.py gives (the long ones first). PYTEST_PARALLEL=
# (empty) runs them in one process.
PYTEST_PARALLEL ?= -n 2 --dist loadfile --no-loadscope-reorder

.PHONY: run test test-fast test-peers system-deps test-deps web-deps bench checks

# Debian packages: swig builds tmkpy, ffmpeg decodes video for TMK and vPDQ; cmake, pkg-config and
# the libav*-dev headers build the `vpdq` package (the test extra). Installed only when missing.
system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq $$missing; \
	fi

# Test-only Debian packages, installed when missing. Node and npm count as present when the
# commands run (NodeSource's nodejs bundles npm and conflicts with Debian's npm package).
test-deps:
	@missing=$$(for p in $(TEST_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for the tests: $$missing"; \
	  $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq $$missing; \
	  case " $$missing " in *" caddy "*) \
	    if [ -d /run/systemd/system ]; then $(SUDO) systemctl disable --now caddy >/dev/null 2>&1 || true; fi;; \
	  esac; \
	fi

# npm packages, exactly as locked: axe-core for the accessibility check, libheif-js for the page.
node_modules/.installed: package.json package-lock.json | test-deps
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENV)/.installed: pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[server,partner,video,test]'
	touch $@

# The page's HEIC decoder (libheif-js, package.json "dependencies"): hashguard serves the installed
# package's files from node_modules under /vendor/libheif/ (docs/web.md). Without npm the page
# still works and tells people it cannot read HEIC.
web-deps:
	@if command -v npm >/dev/null 2>&1; then \
	  [ node_modules/.installed -nt package-lock.json ] || \
	  { npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; }; \
	else echo "npm not found: the web page will not read HEIC photos (see docs/web.md)"; fi

run: $(VENV)/.installed web-deps
	$(VENV)/bin/hashguard serve

# Two stages: everything in parallel, then the tests that measure the clock (marker `serial`,
# a few microseconds' difference) alone, since the other worker's load would drown them.
test: $(VENV)/.installed test-deps node_modules/.installed
	$(WITH_POSTGRES) sh -c '$(VENV)/bin/python -m pytest $(PYTEST_PARALLEL) -m "not serial" && \
	  $(VENV)/bin/python -m pytest -m serial'

# The quick loop while working (< 5 min here): everything but the browser tests and what is
# marked slow (the load, crash and 11,000-operation transparency runs). `make test` runs all.
test-fast: $(VENV)/.installed
	$(WITH_POSTGRES) $(VENV)/bin/python -m pytest $(PYTEST_PARALLEL) -m "not slow and not browser"

# The real HMA and python-threatexchange (from ../shared/peers, in their own venv cached under
# .peers-cache/) against a live hashguard: docs/partners.md. `make test` runs these too.
test-peers: $(VENV)/.installed test-deps
	$(WITH_POSTGRES) $(VENV)/bin/python -m pytest tests/peers tests/test_partner_docs.py

bench: $(VENV)/.installed
	$(VENV)/bin/python bench/hash_bench.py

checks: $(VENV)/.installed
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH ../shared/checks/run
