"""Helpers shared by the tests: one module, so no test module imports another (each test
module only holds tests and what only it uses)."""
from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import re
import select as select_module
import socket
import struct
import subprocess
import termios
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import select
from typer.testing import CliRunner

from partners.match_index import MatchIndex
from store import changelog
from store.db import Database
from store.models import Case, ChangeLogEntry, Hash, SharedHash
from tests.hashes import BRIDGE, pdq
from tests.testdata import TMK_DIR, require_testdata

ADULT = "adult"
# The PostgreSQL server the tests use (tests/conftest.py makes a database per test from it).
ADMIN_URL = os.environ.get("HASHGUARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def admin_connection():
    return psycopg.connect(ADMIN_URL, autocommit=True)


def pg_url(name: str) -> str:
    """The URL of database `name` on the tests' PostgreSQL server."""
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def new_case(client, values, pathway="adult", quality=100):
    hashes = [{"signal_type": "pdq", "value": v, "quality": quality} for v in values]
    response = client.post("/v1/cases", json={"pathway": pathway, "hashes": hashes})
    assert response.status_code == 201, response.text
    return response.json()


def withdraw(client, case):
    response = client.post(f"/v1/cases/{case['case_ref']}/withdraw",
                           headers=bearer(case["token"]))
    assert response.status_code == 200, response.text


def pull_all(client, key, cursor="", limit=1000):
    """Every entry after `cursor`, following next_cursor; returns (entries, final cursor)."""
    entries = []
    while True:
        response = client.get("/v1/partner/hashes", params={"cursor": cursor, "limit": limit},
                              headers=bearer(key))
        assert response.status_code == 200, response.text
        page = response.json()
        entries += page["entries"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return entries, cursor


def replay(entries) -> set[tuple[str, str]]:
    """The set a partner holds after applying entries in order; fails on a redundant entry."""
    held: set[tuple[str, str]] = set()
    for entry in entries:
        key = (entry["signal_type"], entry["value"])
        if entry["op"] == "add":
            assert key not in held, f"second add without a remove: {entry}"
            held.add(key)
        else:
            assert key in held, f"remove of a hash never added: {entry}"
            held.discard(key)
    return held


BAD_BODIES = {
    "not hex": ({"pathway": "adult", "hashes": [pdq("zz")]}, "pdq_bad_format"),
    "all zeros": ({"pathway": "adult", "hashes": [pdq("0" * 64)]}, "pdq_degenerate"),
    "all ones": ({"pathway": "adult", "hashes": [pdq("f" * 64)]}, "pdq_degenerate"),
    "low quality": ({"pathway": "adult", "hashes": [pdq(BRIDGE, 10)]}, "pdq_low_quality"),
    "no quality": ({"pathway": "adult", "hashes": [{"signal_type": "pdq", "value": BRIDGE}]},
                   "pdq_quality_missing"),
    "unknown type": ({"pathway": "adult", "hashes": [{"signal_type": "sha1", "value": "ab"}]},
                     "unknown_signal_type"),
    "bad md5": ({"pathway": "adult", "hashes": [{"signal_type": "video_md5", "value": "x"}]},
                "video_md5_bad_format"),
    "bad tmk": ({"pathway": "adult", "hashes": [{"signal_type": "video_tmk_pdqf", "value": "AAAA"}]},
                None),
    "unknown pathway": ({"pathway": "martian", "hashes": [pdq(BRIDGE)]}, "invalid_request"),
    "no hashes": ({"pathway": "adult", "hashes": []}, "invalid_request"),
    "missing hashes": ({"pathway": "adult"}, "invalid_request"),
    "a list": ([], "invalid_request"),
    "extra field": ({"pathway": "adult", "hashes": [pdq(BRIDGE)], "email": "a@b.c"},
                    "invalid_request"),
    "quality out of range": ({"pathway": "adult", "hashes": [pdq(BRIDGE, 101)]}, "invalid_request"),
    "too many": ({"pathway": "adult", "hashes": [pdq(BRIDGE)] * 501}, "too_many_hashes"),
}


def database_dump(database_url) -> str:
    """Every row of every table, as text (what a leaked backup would show)."""
    db = Database(database_url)
    text = []
    with db.transaction() as s:
        for table in Case.metadata.sorted_tables:
            for row in s.execute(select(table)).all():
                text.append(" ".join(v.hex() if isinstance(v, bytes) else str(v) for v in row))
    db.dispose()
    return "\n".join(text)


def change_log(database_url) -> list[tuple[str, str]]:
    db = Database(database_url)
    with db.transaction() as s:
        rows = s.execute(select(ChangeLogEntry.op, Hash.value)
                         .join(Hash, Hash.id == ChangeLogEntry.hash_id)
                         .order_by(ChangeLogEntry.seq)).all()
    db.dispose()
    return [tuple(r) for r in rows]


def shared_set(database_url) -> set[tuple[str, str, str]]:
    db = Database(database_url)
    with db.transaction() as s:
        rows = s.execute(select(Hash.signal_type, Hash.value, SharedHash.pathway)
                         .join(SharedHash, SharedHash.hash_id == Hash.id)).all()
    db.dispose()
    return {tuple(r) for r in rows}


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def submit(client, hashes, pathway="adult", **headers):
    return client.post("/v1/cases", json={"pathway": pathway, "hashes": hashes}, headers=headers)


def cli_app():
    from hashing.cli import _load_plugins, app

    _load_plugins()
    return app


def register_webhook(settings, name, url):
    from hashing.cli import _load_plugins, app

    _load_plugins()
    result = CliRunner().invoke(app, ["partners", "webhook", name, url, "--database-url",
                                      settings.database_url],
                                env={"HASHGUARD_DATA_DIR": str(settings.data_dir)})
    assert result.exit_code == 0, result.output


class Receiver:
    """A partner's webhook endpoint on loopback that records deliveries."""

    def __init__(self, answers=(200,), delay=0.0):
        self.deliveries, self.answers, self.delay = [], list(answers), delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.deliveries.append((time.monotonic(), dict(self.headers), body))
                time.sleep(receiver.delay)
                status = receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.deliveries


def catch_up(db: Database, index: MatchIndex) -> None:
    with db.read() as session:
        index.catch_up(session)


def unshare(db: Database, ids: list[int], pathway: str = ADULT) -> None:
    with db.transaction() as session:
        changelog.unshare_many(session, ids, pathway)


def share(db: Database, hashes: list[tuple[str, str]], pathway: str = ADULT) -> list[int]:
    """Store the (signal_type, value) hashes and share them under `pathway`, as a submit does:
    the change log gets one `add` per hash."""
    with db.transaction() as session:
        rows = [Hash(signal_type=t, value=v,
                     digest=hashlib.sha256(f"{t}:{v}".encode()).digest()) for t, v in hashes]
        session.add_all(rows)
        session.flush()
        ids = [row.id for row in rows]
        changelog.share_many(session, ids, pathway)
    return ids


def wire(name: str) -> str:
    """A TMK reference sample's value as the API carries it: base64 of its .tmk file."""
    require_testdata()
    return base64.b64encode((TMK_DIR / f"{name}.tmk").read_bytes()).decode("ascii")


# The person's CLI (tests/test_cli_*.py) ----------------------------------------------------------

FAKE_REF = "HG-TEST-0001"
FAKE_TOKEN = "fake-token-Zq3xK9"


class RecordingServer:
    """A stand-in for the service that captures every request (method, path, headers, raw body)
    and answers from `responder`: to see exactly which bytes the CLI sends."""

    def __init__(self):
        self.requests: list[dict] = []
        self.responder = self.default_responder
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = {"method": self.command, "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                recorder.requests.append(request)
                status, answer = recorder.responder(request)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def default_responder(request: dict) -> tuple[int, dict]:
        method, path = request["method"], request["path"]
        if method == "POST" and path == "/v1/cases":
            return 201, {"case_ref": FAKE_REF, "token": FAKE_TOKEN, "status": "active"}
        if method == "POST" and path.endswith("/hashes"):
            added = len(json.loads(request["body"])["hashes"])
            return 200, {"case_ref": FAKE_REF, "added": added, "hash_count": added + 1}
        return 404, {"error": {"code": "not_found", "message": "no such case"}}

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def hashguard_serve(exe: Path, folder: Path, wait_seconds: float = 120,
                    database_url: str | None = None, **settings):
    """`hashguard serve` on a free loopback port, as a person would run it, with SQLite in
    `folder` (or `database_url`); yields its URL. `settings` become HASHGUARD_<NAME> environment
    variables (e.g. max_hashes_per_request=100). The server's output goes to folder/server.log,
    never to a pipe nobody reads (a full pipe would block the server mid-request). The wait is
    long: on a loaded shared machine start-up took 18-25 s."""
    port = free_port()
    env = {**os.environ, "HASHGUARD_DATA_DIR": str(folder)}
    env.pop("HASHGUARD_DATABASE_URL", None)
    env.update({f"HASHGUARD_{name.upper()}": str(value) for name, value in settings.items()})
    log_path = folder / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--database-url", database_url or f"sqlite:///{folder}/db.sqlite"],
            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"hashguard serve did not answer /healthz (exit "
                                     f"{process.poll()}, waited up to {wait_seconds} s):\n"
                                     + log_path.read_text(errors="replace"))
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_in_terminal(argv: list[str], columns: int, answers: dict[str, str] | None = None,
                    env: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, str]:
    """Run `argv` in a real pseudo-terminal `columns` wide (stdin, stdout and stderr all the
    terminal, as for a person); type answers[prompt] when `prompt` appears. Returns the exit
    code and everything the terminal showed, ANSI escapes removed."""
    answers = dict(answers or {})
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    child_env = {k: v for k, v in (env or os.environ).items() if k not in ("COLUMNS", "LINES")}
    child_env["TERM"] = "xterm-256color"
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=child_env,
                               start_new_session=True)
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select_module.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    data = b""
                if not data:
                    break
                shown += data
                text = shown.decode(errors="replace")
                for prompt in [p for p in answers if p in text]:
                    os.write(master, answers.pop(prompt).encode())
            elif process.poll() is not None:
                break
        else:
            raise AssertionError(f"{argv[1:3]} did not finish in {timeout} s:\n{shown!r}")
        code = process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    text = shown.decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    return code, ANSI_ESCAPE.sub("", text)


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


class CapturedDatabaseLog(logging.Handler):
    """`with CapturedDatabaseLog() as captured:` the "hashguard.database" logger's lines in
    `captured.lines` (the service's logging does not propagate to pytest's caplog)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def __enter__(self):
        logging.getLogger("hashguard.database").addHandler(self)
        return self

    def __exit__(self, *_):
        logging.getLogger("hashguard.database").removeHandler(self)


@contextmanager
def served_url(app, wait_seconds: float = 20):
    """The app under a real uvicorn on a free loopback port, in a thread; yields its URL (for
    clients that need real HTTP: the pytx client, the transparency verifier)."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + wait_seconds
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
