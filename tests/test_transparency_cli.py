"""`hashguard transparency verify` (partner_tools/cli.py) says truthfully what went wrong: a bad
--public-key, an unreadable state file and a log that fails a check are three different messages
(a corrupt state file used to be reported as a bad --public-key)."""
from __future__ import annotations

import base64
import hashlib
import json

import httpx
import pytest
from typer.testing import CliRunner

from tests.helpers import new_case


def verify(server: str, state_file, *extra: str):
    from hashing.cli import app
    from partner_tools.cli import register

    register(app)  # what the `partner` entry point does in an install with the partner extra
    return CliRunner().invoke(app, ["transparency", "verify", "--server", server,
                                    "--state", str(state_file), *extra])


@pytest.fixture
def verified(app, live_server, make_partner, tmp_path):
    """A log of 3 entries, verified once with a partner key: (server, state file, key)."""
    key = make_partner("auditor", "adult")
    with httpx.Client(base_url=live_server) as http:
        for n in range(3):
            new_case(http, [hashlib.sha256(f"cli {n}".encode()).hexdigest()])
    app.state.transparency.catch_up()
    state_file = tmp_path / "verifier.json"
    result = verify(live_server, state_file, "--key", key)
    assert result.exit_code == 0, result.output
    return live_server, state_file, key


def test_a_corrupt_frontier_in_the_state_file_is_reported_as_such(verified):
    server, state_file, key = verified
    state = json.loads(state_file.read_text())
    tree = state["trees"]["adult"]
    assert tree["entries_size"] == 3 and len(tree["entries_frontier"]) == 2
    tree["entries_frontier"] = tree["entries_frontier"][:1]  # 3 leaves need 2 subtree hashes
    state_file.write_text(json.dumps(state))
    before = state_file.read_text()
    result = verify(server, state_file, "--key", key)
    assert result.exit_code == 1
    assert "state file" in result.output and str(state_file) in result.output.replace("\n", "")
    assert "--public-key" not in result.output and "FAILED" not in result.output
    assert state_file.read_text() == before  # left for the partner to look at, not overwritten


def test_a_truncated_state_file_is_reported_as_such(verified):
    server, state_file, key = verified
    state_file.write_text(state_file.read_text()[:40])
    result = verify(server, state_file, "--key", key)
    assert result.exit_code == 1
    assert "state file" in result.output and "--public-key" not in result.output


@pytest.mark.parametrize("pinned, why", [
    ("not base64!", "not base64"),
    (base64.b64encode(b"\1" * 16).decode(), "16 bytes"),
])
def test_a_bad_public_key_is_reported_as_such(verified, tmp_path, pinned, why):
    server, _, key = verified
    result = verify(server, tmp_path / "fresh.json", "--key", key, "--public-key", pinned)
    assert result.exit_code == 1
    assert "--public-key must be the base64 of a raw 32-byte Ed25519 key" in result.output
    assert why in result.output and "state file" not in result.output


def test_a_log_that_fails_a_check_prints_the_evidence_with_json(verified, app):
    from sqlalchemy import text

    server, state_file, key = verified
    with app.state.database.transaction() as session:  # the operator rewrites history ...
        session.execute(text("DELETE FROM transparency_heads"))
        session.execute(text("DELETE FROM transparency_nodes"))
        session.execute(text("UPDATE transparency_leaves SET leaf_hash = :h "
                             "WHERE leaf_index = 0 AND tree = 1"),
                        {"h": hashlib.sha256(b"rewritten").digest()})
    with httpx.Client(base_url=server) as http:
        new_case(http, [hashlib.sha256(b"cli later").hexdigest()])
    app.state.transparency._frontiers = {}  # ... and its builder re-reads the stored tree
    app.state.transparency.catch_up()
    result = verify(server, state_file, "--json", "--key", key)
    assert result.exit_code == 1
    assert "FAILED" in result.output and "does not extend" in result.output
    answer = json.loads(result.stdout)
    assert answer["ok"] is False
    assert answer["evidence"]["older_head"]["tree_size"] == 3
    assert answer["evidence"]["newer_head"]["tree_size"] == 4
    assert answer["evidence"]["proof"]


def test_a_state_file_of_the_single_tree_asks_to_re_anchor_and_is_left_alone(verified, tmp_path):
    """The state a verifier kept before one tree per pathway (migration 0011) names a head no
    tree has now: a clear message saying to re-anchor, the file untouched, not a crash."""
    server, _, key = verified
    old = tmp_path / "before-0011.json"
    old.write_text(json.dumps({
        "public_key": base64.b64encode(b"\1" * 32).decode(),
        "head": {"tree_size": 3, "timestamp": 1, "root_hash": base64.b64encode(b"\2" * 32).decode(),
                 "signature": base64.b64encode(b"\3" * 64).decode(), "key_id": "00"},
        "entries_size": 0, "entries_frontier": [], "entries_last_seq": 0}))
    before = old.read_text()
    result = verify(server, old, "--key", key)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # not a crash
    message = " ".join(result.output.split())
    assert "former single transparency tree" in message and "Re-anchor once" in message
    assert "FAILED" not in message and old.read_text() == before
    old.unlink()  # the documented step: delete it, verify again
    assert verify(server, old, "--key", key).exit_code == 0


def test_verify_without_a_key_says_a_key_is_needed(verified, tmp_path):
    server, _, _ = verified
    result = verify(server, tmp_path / "nokey.json")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "--key" in result.output
