"""bench/match_http_bench.py stops at once, with the child's error, when its load process or the
server dies (issue 22: the propagation bench once waited ~8 minutes for a dead load process)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
import match_http_bench as bench  # noqa: E402
from _server import Server  # noqa: E402

PHASE = {"kind": "single", "connections": 1, "warmup": 0.2, "seconds": 60, "batch": 1}


def _server(process: subprocess.Popen) -> Server:
    # A real process standing in for uvicorn: what the bench watches is whether it is alive.
    return Server(process, "http://127.0.0.1:9", 1)


def test_a_load_process_that_fails_stops_the_bench_with_its_error():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        started = time.monotonic()
        with pytest.raises(bench.BenchFailed) as failed:
            bench.run_phase(_server(process), "key", PHASE, None, None)  # None: the child fails
        assert time.monotonic() - started < 30  # not the phase's 60 s, nor a hang
        assert "TypeError" in str(failed.value)  # the child's own traceback
    finally:
        process.kill()
        process.wait()


def test_a_server_that_exits_stops_the_bench():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    try:
        started = time.monotonic()
        with pytest.raises(bench.BenchFailed, match="server exited"):
            bench.run_phase(_server(process), "key", PHASE, [("00" * 32, "00" * 32)], None)
        assert time.monotonic() - started < 30
    finally:
        process.kill()
        process.wait()
