"""Shared helper for service benchmarks: a throwaway PostgreSQL database and a uvicorn server
running the real app against it in a separate process (one or several workers).

    with throwaway_database() as url:          # CREATE DATABASE hashguard_bench_<random>, dropped after
        with running_server(url, workers=2) as server:
            ... server.base_url, server.worker_pids() ...

The server is started as `uvicorn --factory _server:app_factory` (this module, with bench/ as
the app dir), so `--workers N` works; the schema is migrated once, before any worker starts.
"""
from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
ADMIN_URL = os.environ.get("HASHGUARD_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
# Fixed, so that every worker process verifies with the same key (never use it for real data).
BENCH_SECRET = base64.urlsafe_b64encode(
    hashlib.sha256(b"hashguard bench secret").digest()).decode().rstrip("=")


def app_factory():
    """uvicorn --factory entry point: the app from the environment, schema already migrated."""
    sys.path.insert(0, str(ROOT))
    from api.app import create_app
    from api.settings import Settings

    return create_app(Settings(), run_migrations=False)


def _pg_url(name: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def throwaway_database():
    """Yields the URL of a new, migrated database; drops it afterwards, also on failure."""
    import psycopg

    sys.path.insert(0, str(ROOT))
    from store import migrate

    name = f"hashguard_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _pg_url(name)
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    base_url: str
    workers: int

    def worker_pids(self) -> list[int]:
        """Pids of the processes that serve requests (the supervisor's children when workers > 1)."""
        if self.workers == 1:
            return [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used so far by the serving processes."""
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in {self.process.pid, *self.worker_pids()}:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        return total


@contextmanager
def running_server(database_url: str, workers: int = 1, port: int | None = None,
                   startup_timeout: float = 30.0, env: dict[str, str] | None = None):
    """`env`: extra environment of the server (e.g. HASHGUARD_TREE_BUILDER=0)."""
    port = port or free_port()
    data_dir = tempfile.mkdtemp(prefix="hashguard_bench_")
    # All load comes from one loopback address, which the per-client limits (meant for one
    # person's device) would throttle after 100 submits; benches measure the service, not them.
    # One load client is one address: the per-address limits (their own tests cover them) would
    # turn the load into 429s (the byte budget after ~25,000 PDQ submits).
    server_env = dict({"HASHGUARD_CASE_WRITES_PER_HOUR_PER_CLIENT": "0",
                       "HASHGUARD_TOKEN_LOOKUPS_PER_MINUTE_PER_CLIENT": "0",
                       "HASHGUARD_VALUE_BYTES_PER_HOUR_PER_CLIENT": "0",
                       "HASHGUARD_PARTNER_KEY_FAILURES_PER_MINUTE_PER_CLIENT": "0"},
                      **os.environ)
    server_env.update(env or {})
    server_env.update(HASHGUARD_DATABASE_URL=database_url, HASHGUARD_DATA_DIR=data_dir,
                      HASHGUARD_SECRET=BENCH_SECRET, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "_server:app_factory",
           "--app-dir", str(BENCH_DIR), "--host", "127.0.0.1", "--port", str(port),
           "--no-access-log", "--log-level", "warning"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    # The service's own log (a JSON line per request at the default level, as an operator runs
    # it) goes to a file, not into the bench's figures; its last lines are shown if it fails.
    log_path = Path(data_dir) / "server.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(cmd, env=server_env, cwd=str(ROOT), stdout=log_file,
                                   stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", workers)
    try:
        try:
            _wait_ready(server, startup_timeout)
        except RuntimeError:
            print(_tail(log_path), file=sys.stderr)
            raise
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        subprocess.run(["rm", "-rf", data_dir], check=False)


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_ready(server: Server, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with code {server.process.returncode}")
        try:
            if httpx.get(server.base_url + "/healthz", timeout=1).status_code == 200:
                if server.workers == 1 or len(server.worker_pids()) >= server.workers:
                    # Let every worker finish starting before load begins.
                    time.sleep(0.5 if server.workers > 1 else 0)
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout} s")


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by every process named postgres (all databases: shared machine)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += _cpu_of(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass
    return total


def wait_for_tree(database_url: str, size: int, timeout: float = 600) -> float:
    """Wait until the server's transparency builder has caught up with `size` entries, over all
    pathways' trees (after populate(), so that its catch-up does not run inside the measured
    phase). Read in the database: tree heads are served only to partners since the trees are
    per pathway."""
    import psycopg

    t = time.perf_counter()
    with psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql"),
                         autocommit=True) as conn:
        while time.perf_counter() - t < timeout:
            if conn.execute("SELECT count(*) FROM transparency_leaves").fetchone()[0] >= size:
                return time.perf_counter() - t
            time.sleep(0.5)
    raise RuntimeError(f"transparency tree did not reach {size} entries in {timeout:.0f} s")
