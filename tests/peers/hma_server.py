"""A real HMA (OpenMediaMatch) on loopback: its own throwaway PostgreSQL database, its own
migrations, an OMM_CONFIG that loads the hashguard-pytx extension, and HMA's own CLI for fetch,
index builds and the extension's feedback command."""
from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from tests.peers.peer_env import PeerEnv

# Configuration, not a patch: the extension's types are listed next to pytx's own, and the
# extension's HMA hook adds `flask hashguard-report`. No background tasks: the test runs
# fetches and index builds itself (HMA's CLI), so nothing races with what it checks.
OMM_CONFIG = '''
from OpenMediaMatch.storage.postgres.impl import DefaultOMMStore
from threatexchange.content_type.photo import PhotoContent
from threatexchange.content_type.video import VideoContent
from threatexchange.exchanges.impl.stop_ncii_api import StopNCIISignalExchangeAPI
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.sha256 import VideoSHA256Signal

from hashguard_pytx import HashguardSignalExchangeAPI, VideoTmkPdqfSignal, hma

DATABASE_URI = {database_uri!r}
PRODUCTION = False
ROLE_HASHER = True
ROLE_MATCHER = True
ROLE_CURATOR = True
UI_ENABLED = False
TASK_FETCHER = False
TASK_INDEXER = False
TASK_INDEX_CACHE = False

STORAGE_IFACE_INSTANCE = DefaultOMMStore(
    signal_types=[PdqSignal, VideoMD5Signal, VideoSHA256Signal, VideoTmkPdqfSignal],
    content_types=[PhotoContent, VideoContent],
    exchange_types=[HashguardSignalExchangeAPI, StopNCIISignalExchangeAPI],
)
APP_HOOK = hma.register
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HMA:
    def __init__(self, env: PeerEnv, admin_url: str, workdir: Path) -> None:
        self.env = env
        self.admin_url = admin_url
        self.database = f"hma_{uuid.uuid4().hex[:10]}"
        base, _, _ = admin_url.rpartition("/")
        self.database_url = f"{base}/{self.database}"
        self.config = workdir / "omm_config.py"
        self.log = workdir / "hma.log"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def environ(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
        env.update(OMM_CONFIG=str(self.config), PATH=f"{self.env.venv / 'bin'}:{env['PATH']}")
        return env

    def start(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        uri = self.database_url.replace("postgresql://", "postgresql+psycopg2://", 1)
        self.config.write_text(OMM_CONFIG.format(database_uri=uri))
        # HMA's documented migration command, from its src/
        self.flask("db", "upgrade", "--directory", "OpenMediaMatch/migrations",
                   extra_env={"MIGRATION_COMMAND": "1"})
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.env.bin("flask"), "--app", "OpenMediaMatch.app", "run", "--host",
                 "127.0.0.1", "--port", str(self.port), "--no-reload"],
                cwd=self.env.hma_src, env=self.environ(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/status/live", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("HMA did not start:\n" + self.log_tail())
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def flask(self, *args: str, extra_env: dict | None = None,
              stdin: str | None = None) -> subprocess.CompletedProcess:
        """One of HMA's CLI commands (`flask --app OpenMediaMatch.app ...`); fails loudly."""
        env = self.environ() | (extra_env or {})
        done = subprocess.run([self.env.bin("flask"), "--app", "OpenMediaMatch.app", *args],
                              cwd=self.env.hma_src, env=env, input=stdin, capture_output=True,
                              text=True, timeout=600)
        if done.returncode != 0:
            raise AssertionError(f"flask {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    # ------------------------------------------------------------ what HMA holds

    def bank_signals(self, bank: str) -> list[tuple[str, str]]:
        """(signal type, value) of every signal in HMA's bank, straight from its tables."""
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(
                "SELECT cs.signal_type, cs.signal_val FROM content_signal cs "
                "JOIN bank_content bc ON bc.id = cs.content_id "
                "JOIN bank b ON b.id = bc.bank_id WHERE b.name = %s", (bank,)).fetchall()
