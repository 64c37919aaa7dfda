"""Fixtures of the peer tests: the real HMA and python-threatexchange against a live hashguard.

Marked `peers` and `slow` (tests/conftest.py marks this folder): `make test-peers` runs them
alone, `make test` with everything, `make test-fast` leaves them out."""
from __future__ import annotations

import json
import time

import pytest

from tests.helpers import ADMIN_URL
from tests.peers.hma_server import HMA
from tests.peers.peer_env import PROJECT_ROOT, PeerEnv, peer_env

SUMMARY = PROJECT_ROOT / "test-artifacts" / "peers-summary.json"
_summary: dict = {}


def note(key: str, value) -> None:
    """Record a count or timing for the run's summary (printed at the end, saved as JSON)."""
    _summary[key] = value


@pytest.fixture(scope="session")
def peers() -> PeerEnv:
    env = peer_env()
    note("venv", {"rebuilt": env.rebuilt or "reused", "seconds": round(env.build_seconds, 1)})
    return env


@pytest.fixture(scope="module")
def hma(peers, tmp_path_factory):
    server = HMA(peers, ADMIN_URL, tmp_path_factory.mktemp("hma"))
    started = time.monotonic()
    server.start()
    note("hma_start_seconds", round(time.monotonic() - started, 1))
    yield server
    server.stop()


def pytest_terminal_summary(terminalreporter):
    if not _summary:
        return
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(json.dumps(_summary, indent=2, sort_keys=True) + "\n")
    terminalreporter.write_sep("-", f"peer tests (also in {SUMMARY.relative_to(PROJECT_ROOT)})")
    for key, value in sorted(_summary.items()):
        terminalreporter.write_line(f"{key}: {value}")
