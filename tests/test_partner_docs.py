"""docs/partners.md's curl quickstart, executed exactly as written (bash, curl, jq, openssl)
against a live server, block by block, with what happens in between done by the test: a case
submitted before the pull, one committed while the long-poll waits (which also sends the
webhook), the delivery saved where the webhook block reads it."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.hashes import BRIDGE, Q0122
from tests.helpers import bearer, new_case

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

DOC = Path(__file__).resolve().parents[1] / "docs" / "partners.md"
BLOCK = re.compile(r"<!-- quickstart: ([a-z-]+) -->\n```sh\n(.*?)```", re.S)
ORDER = ["key", "pull", "long-poll", "webhook", "feedback", "match", "export"]


def quickstart_blocks() -> dict[str, str]:
    return dict(BLOCK.findall(DOC.read_text()))


class Receiver:
    """The partner's webhook endpoint: saves each delivery's body and headers as files."""

    def __init__(self, folder: Path) -> None:
        self.count = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                (folder / "webhook-body.json").write_bytes(body)
                (folder / "webhook-timestamp.txt").write_text(self.headers["Hashguard-Timestamp"])
                (folder / "webhook-signature.txt").write_text(self.headers["Hashguard-Signature"])
                receiver.count += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def run_block(code: str, folder: Path, env: dict) -> str:
    """One block as written, in bash with -e; exported variables carry to the next block."""
    state = folder / "state.sh"
    script = (f"set -euo pipefail\n[ -f {state} ] && source {state}\n{code}\n"
              f"export -p > {state}\n")
    done = subprocess.run(["bash", "-c", script], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=90)
    assert done.returncode == 0, f"block failed:\n{code}\n--- stdout\n{done.stdout}\n" \
                                 f"--- stderr\n{done.stderr}"
    return done.stdout


def test_the_quickstart_runs_as_written(live_server, client, settings, tmp_path):
    blocks = quickstart_blocks()
    assert list(blocks) == ORDER  # every step present, in this order
    receiver = Receiver(tmp_path)
    project = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHGUARD_")}
    env.update(HASHGUARD=live_server, WEBHOOK_URL=receiver.url,
               HASHGUARD_DATABASE_URL=settings.database_url,
               HASHGUARD_DATA_DIR=str(settings.data_dir),
               PATH=f"{Path(sys.executable).parent}:{env['PATH']}",
               PYTHONPATH=project)  # the `hashguard` CLI of this work tree

    run_block(blocks["key"], tmp_path, env)
    case = new_case(client, [BRIDGE])
    pulled = run_block(blocks["pull"], tmp_path, env)
    assert f"add adult pdq {BRIDGE}" in pulled

    def submit_later():
        time.sleep(1.0)
        new_case(client, [Q0122], pathway="under18_at_capture")

    writer = threading.Thread(target=submit_later)
    started = time.monotonic()
    writer.start()
    waited = run_block(blocks["long-poll"], tmp_path, env)
    writer.join()
    assert f"add under18_at_capture pdq {Q0122}" in waited
    assert 0.9 < time.monotonic() - started < 20  # held, then answered when the entry committed

    deadline = time.monotonic() + 15
    while receiver.count == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.count > 0, "no webhook arrived"
    assert "Signature Verified Successfully" in run_block(blocks["webhook"], tmp_path, env)
    (tmp_path / "webhook-body.json").write_bytes(b'{"forged": true}')  # the check can fail
    with pytest.raises(AssertionError, match="block failed"):
        run_block(blocks["webhook"], tmp_path, env)

    assert '"accepted":1' in run_block(blocks["feedback"], tmp_path, env).replace(" ", "")
    status = client.get(f"/v1/cases/{case['case_ref']}", headers=bearer(case["token"])).json()
    assert status["hashes"][0]["reports"]["removed"] == 1

    assert BRIDGE in run_block(blocks["match"], tmp_path, env)
    last = run_block(blocks["export"], tmp_path, env)
    assert '"next_cursor"' in last
    exported = (tmp_path / "export.ndjson").read_text().splitlines()
    assert len(exported) == 3  # two entries, then the cursor line
