"""`hashguard serve` starts a real server on the SQLite default that answers /healthz."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_healthz(tmp_path):
    port = _free_port()
    exe = Path(sys.executable).with_name("hashguard")
    env = {**os.environ, "HASHGUARD_DATA_DIR": str(tmp_path)}  # the SQLite default, in tmp
    env.pop("HASHGUARD_DATABASE_URL", None)
    server = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read().decode()
                time.sleep(0.2)
        else:
            raise AssertionError("server did not answer within 30 s")
        assert response.status_code == 200 and response.json()["status"] == "ok"
        assert (tmp_path / "hashguard.db").is_file() and (tmp_path / "server-secret").is_file()
    finally:
        server.terminate()
        server.wait(10)
