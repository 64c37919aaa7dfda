"""A real `hashguard serve` process on a throwaway PostgreSQL database, for the crash and load
tests: create/migrate/drop the database, register a partner through the operator CLI, start,
SIGKILL and restart the server, read its resident memory."""
from __future__ import annotations

import base64
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

from store import migrate
from tests.helpers import ADMIN_URL, pg_url

HASHGUARD = Path(sys.executable).with_name("hashguard")
# Fixed so that restarts verify the tokens and keys made before them (never use for real data).
SECRET = base64.urlsafe_b64encode(hashlib.sha256(b"hashguard reliability").digest()).decode().rstrip("=")
assert len(SECRET) == 43


def random_pdq(rng: random.Random) -> str:
    """A PDQ value the service accepts (not degenerate)."""
    while True:
        value = rng.getrandbits(256)
        if 16 <= value.bit_count() <= 240:
            return f"{value:064x}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def throwaway_postgres(prefix: str):
    """A new, migrated PostgreSQL database (its URL); dropped afterwards, also on failure."""
    name = f"hashguard_{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = pg_url(name)
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(data_dir: Path, **overrides: str) -> dict:
    env = {**os.environ, "HASHGUARD_DATA_DIR": str(data_dir), "HASHGUARD_SECRET": SECRET,
           # One client address (loopback) drives everything: per-client limits off.
           "HASHGUARD_CASE_WRITES_PER_HOUR_PER_CLIENT": "0",
           "HASHGUARD_TOKEN_LOOKUPS_PER_MINUTE_PER_CLIENT": "0",
           "HASHGUARD_LOG_LEVEL": "WARNING"}
    env.pop("HASHGUARD_DATABASE_URL", None)
    env.update(overrides)
    return env


def add_partner(database_url: str, env: dict, name: str,
                pathways: str = "adult,under18_at_capture") -> str:
    """`hashguard partners add` + `keys create` (the operator's way); returns the key."""
    def run(*argv: str) -> str:
        done = subprocess.run([str(HASHGUARD), *argv, "--database-url", database_url], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("partners", "add", name, "--pathways", pathways)
    return run("partners", "keys", "create", name).strip().splitlines()[-1]


class ServerProcess:
    """`hashguard serve` on a fixed port; start() / kill() (SIGKILL) / stop() as often as wanted."""

    def __init__(self, database_url: str, env: dict, port: int | None = None):
        self.database_url = database_url
        self.env = env
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log = Path(env["HASHGUARD_DATA_DIR"]) / "server.log"

    def start(self, timeout: float = 60.0) -> None:
        assert self.process is None or self.process.poll() is not None
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(HASHGUARD), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--database-url", self.database_url],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"server exited:\n{self.tail()}"
            try:
                if httpx.get(self.base_url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no connection-pool cleanup, in-flight requests cut."""
        assert self.process is not None and self.process.poll() is None, "server died by itself"
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def server_errors(self) -> list[str]:
        """Error lines in the server's log (unhandled exceptions are logged at level error)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines()
                if '"level": "error"' in line or '"level": "critical"' in line
                or line.startswith("Traceback")]


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}
