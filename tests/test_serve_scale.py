"""`hashguard serve` as real processes (issue 23): any number start at once on an empty
PostgreSQL database; a wrong secret refuses to start with one line; `--workers N` keeps the
logging guarantees; a client that stalls in its headers or body is cut off."""
from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.helpers import admin_connection, pg_url

ROUNDS = 10
START_TIMEOUT_S = 120  # spawning, importing numba and building the index, on a loaded 2-core box


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def _serve(data_dir, port: int, *args: str, **env_extra: str) -> subprocess.Popen:
    env = {**os.environ, "HASHGUARD_DATA_DIR": str(data_dir),
           "HASHGUARD_TUNE_GARBAGE_COLLECTOR": "0", **env_extra}
    if "HASHGUARD_DATABASE_URL" not in env_extra:
        env.pop("HASHGUARD_DATABASE_URL", None)
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "serve.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-c", "from hashing.cli import main; main()", "serve",
         "--host", "127.0.0.1", "--port", str(port), *args],
        env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_healthy(server: subprocess.Popen, port: int, log_path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server.poll() is None, f"exited {server.returncode}:\n{log_path.read_text()}"
        time.sleep(0.3)
    raise AssertionError(f"no answer in {START_TIMEOUT_S} s:\n{log_path.read_text()}")


def _stop(*servers: subprocess.Popen) -> None:
    for server in servers:
        if server.poll() is None:
            server.terminate()
    for server in servers:
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def _empty_database() -> tuple[str, str]:
    name = f"hashguard_start_{uuid.uuid4().hex[:10]}"
    with admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, pg_url(name)


def _drop(name: str) -> None:
    with admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
@pytest.mark.timeout(ROUNDS * 2 * START_TIMEOUT_S)
def test_two_processes_started_at_once_on_an_empty_database_both_start(tmp_path):
    for round_ in range(ROUNDS):
        name, url = _empty_database()
        secret = _seed()
        ports = [_free_port(), _free_port()]
        dirs = [tmp_path / f"r{round_}-{i}" for i in range(2)]
        servers = [_serve(d, p, HASHGUARD_DATABASE_URL=url, HASHGUARD_SECRET=secret)
                   for d, p in zip(dirs, ports)]
        try:
            for server, port, d in zip(servers, ports, dirs):
                _wait_healthy(server, port, d / "serve.log")
            for d in dirs:
                assert "Traceback" not in (d / "serve.log").read_text(), f"round {round_}"
        finally:
            _stop(*servers)
            _drop(name)


@pytest.mark.slow  # two process starts, ~15 s
def test_serve_with_a_wrong_secret_exits_with_one_line(tmp_path):
    name, url = _empty_database()
    try:
        port = _free_port()
        first = _serve(tmp_path / "a", port, HASHGUARD_DATABASE_URL=url, HASHGUARD_SECRET=_seed())
        try:
            _wait_healthy(first, port, tmp_path / "a" / "serve.log")
        finally:
            _stop(first)
        # The same database, another host whose secret is not the recorded one.
        wrong = _serve(tmp_path / "b", _free_port(), HASHGUARD_DATABASE_URL=url,
                       HASHGUARD_SECRET=_seed())
        assert wrong.wait(START_TIMEOUT_S) == 1
        output = (tmp_path / "b" / "serve.log").read_text()
        assert "Traceback" not in output, output
        last = output.strip().splitlines()[-1]
        assert last.startswith("error: ") and "server secret" in last, output
        # An empty data folder (no secret at all) is refused the same way, before anything
        # new is made there.
        lost = _serve(tmp_path / "c", _free_port(), HASHGUARD_DATABASE_URL=url)
        assert lost.wait(START_TIMEOUT_S) == 1
        assert "Traceback" not in (tmp_path / "c" / "serve.log").read_text()
        assert not (tmp_path / "c" / "server-secret").exists()
    finally:
        _drop(name)


def _closed_within(port: int, payload: bytes, seconds: float) -> float:
    """Send `payload` and stall; how long until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(payload)
        started = time.monotonic()
        conn.settimeout(seconds)
        try:
            while conn.recv(4096):
                pass
        except TimeoutError:
            raise AssertionError(f"still open after {seconds} s: {payload[:40]!r}") from None
        return time.monotonic() - started


@pytest.mark.slow
def test_workers_log_no_client_and_stalled_requests_are_closed(tmp_path):
    port = _free_port()
    server = _serve(tmp_path, port, "--workers", "2", "--header-timeout", "1",
                    "--body-timeout", "2", HASHGUARD_DATABASE_URL=f"sqlite:///{tmp_path}/hg.db")
    log_path = tmp_path / "serve.log"
    try:
        _wait_healthy(server, port, log_path)
        marker = uuid.uuid4().hex
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(6):  # on fresh connections: likely to reach both workers
                http.get(f"/v1/cases/HG-ABCD-EFGH?probe={marker}",
                         headers={"Authorization": f"Bearer {marker}", "Connection": "close"})
        # A slow-loris: nothing at all, half a header, headers and then no body.
        assert _closed_within(port, b"", 8) < 6
        assert _closed_within(port, b"POST /v1/cases HTTP/1.1\r\nHost: x\r\n", 8) < 6
        assert _closed_within(port, b"POST /v1/cases HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                    b"application/json\r\nContent-Length: 100\r\n\r\n{", 8) < 7
        # The server still answers after them.
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    finally:
        _stop(server)
    output = log_path.read_text()
    assert output.count("Started server process") == 2, output
    assert marker not in output and "HG-ABCD-EFGH" not in output
    assert "127.0.0.1:" not in output.replace(f"127.0.0.1:{port}", "")  # no client address:port
    assert "Traceback" not in output
