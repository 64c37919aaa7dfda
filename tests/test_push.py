"""Push: a long-polling partner is answered the moment an entry commits, also across processes."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.hashes import BRIDGE, C_PNG
from tests.helpers import bearer, new_case, pull_all


def test_long_poll_returns_when_a_submit_commits(client, make_partner):
    key = make_partner("waiter", "adult")
    _, cursor = pull_all(client, key)
    answer = {}

    def poll():
        started = time.monotonic()
        response = client.get("/v1/partner/hashes", params={"cursor": cursor, "wait": 20},
                              headers=bearer(key))
        answer.update(seconds=time.monotonic() - started, body=response.json())

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.5)
    new_case(client, [BRIDGE])
    thread.join(25)
    assert [e["value"] for e in answer["body"]["entries"]] == [BRIDGE]
    assert 0.4 < answer["seconds"] < 5


def test_long_poll_times_out_empty(client, make_partner):
    key = make_partner("waiter", "adult")
    started = time.monotonic()
    body = client.get("/v1/partner/hashes", params={"wait": 1}, headers=bearer(key)).json()
    assert body["entries"] == [] and 0.9 < time.monotonic() - started < 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two server processes, ~12 s
def test_wake_ups_cross_server_processes(database_url, tmp_path):
    """Two `hashguard serve` processes on one PostgreSQL: a partner long-polls process B while a
    case is submitted to process A; B answers within a second (LISTEN/NOTIFY)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("cross-process wake-ups need PostgreSQL (SQLite is one process)")
    env = {**os.environ, "HASHGUARD_DATA_DIR": str(tmp_path), "HASHGUARD_DATABASE_URL": database_url,
           "HASHGUARD_SECRET": "A" * 43, "HASHGUARD_LOG_LEVEL": "WARNING",
           # No periodic re-reads: only a NOTIFY from the other process can answer in time.
           "HASHGUARD_LONG_POLL_RECHECK_SECONDS": "60"}
    exe = str(Path(sys.executable).with_name("hashguard"))
    subprocess.run([exe, "partners", "add", "p", "--pathways", "adult"], env=env, check=True,
                   capture_output=True)
    key = subprocess.run([exe, "partners", "keys", "create", "p"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    ports = [_free_port(), _free_port()]
    servers = [subprocess.Popen([exe, "serve", "--port", str(p)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in ports]
    a, b = (f"http://127.0.0.1:{p}" for p in ports)
    try:
        for url in (a, b):
            for _ in range(150):
                try:
                    if httpx.get(url + "/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
        for value in (BRIDGE, C_PNG):
            cursor = httpx.get(b + "/v1/partner/hashes", headers=bearer(key)).json()["next_cursor"]
            answer = {}

            def poll():
                response = httpx.get(b + "/v1/partner/hashes", headers=bearer(key), timeout=30,
                                     params={"cursor": cursor, "wait": 20})
                answer.update(body=response.json(), at=time.monotonic())

            thread = threading.Thread(target=poll)
            thread.start()
            time.sleep(0.5)
            httpx.post(a + "/v1/cases", json={"pathway": "adult", "hashes": [
                {"signal_type": "pdq", "value": value, "quality": 100}]})
            submitted = time.monotonic()
            thread.join(25)
            assert [e["value"] for e in answer["body"]["entries"]] == [value]
            assert answer["at"] - submitted < 1.0
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
