"""Restore drill (PostgreSQL): back up, submit, lose the database, restore the backup, run
deploy/after-restore.sql as docs/operations.md says, submit again. No partner loses an entry
and no position a partner passed before the restore is used again; the restored tables get
statistics at start; the partner's transparency verifier reports that the log went back.

Without the after-restore step, the entry submitted after the restore takes a position the
partners had already passed, and a partner continuing from its cursor never receives it.
"""
from __future__ import annotations

import random
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.settings import Settings
from partner_tools.transparency import Verifier, VerifierState
from partners import admin
from txlog.errors import InconsistencyError, VerificationError
from store import log_rollback, migrate
from store.db import libpq_conninfo, make_engine
from tests.helpers import (CapturedDatabaseLog, admin_connection, bearer, new_case, pg_url,
                           pull_all)

AFTER_RESTORE = Path(__file__).resolve().parents[1] / "deploy" / "after-restore.sql"
SECRET = "s" * 43
TRANSPARENCY_KEY = "k" * 43  # the same signing key on every host (env, not a data-folder file)


def random_pdq(rng: random.Random) -> str:
    while True:
        value = rng.getrandbits(256)
        if 16 <= value.bit_count() <= 240:
            return f"{value:064x}"


@pytest.fixture
def database(tmp_path):
    name = f"hashguard_restore_{uuid.uuid4().hex[:10]}"
    with admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def serve(url: str, data_dir: Path):
    settings = Settings(database_url=url, data_dir=data_dir, secret=SECRET,
                        transparency_key=TRANSPARENCY_KEY,
                        case_writes_per_hour_per_client=0, token_lookups_per_minute_per_client=0,
                        partner_key_failures_per_minute_per_client=0)
    return create_app(settings)


def log_reader(client, key: str):
    """The partner verifier's `get` over a test client, with the partner's key."""
    def get(path: str, params: dict) -> dict:
        response = client.get(path, params=params, headers=bearer(key))
        if not response.is_success:
            raise VerificationError(f"{path}: HTTP {response.status_code}")
        return response.json()

    return get


def never_analyzed(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(
                "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
                "AND last_analyze IS NULL AND last_autoanalyze IS NULL")).scalars())
    finally:
        engine.dispose()


def restore(name: str, dump: Path) -> None:
    """The disaster and the operator's restore: the database is gone, the backup comes back."""
    with admin_connection() as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "-d",
                    libpq_conninfo(pg_url(name)), str(dump)], check=True, capture_output=True)


def after_restore(name: str) -> None:
    subprocess.run(["psql", libpq_conninfo(pg_url(name)), "-v", "ON_ERROR_STOP=1", "-q",
                    "-f", str(AFTER_RESTORE)], check=True, capture_output=True)


def wait_for_mark(data_dir: Path, url: str, position: int) -> None:
    """Until this process's high-water mark has seen `position` (refreshed in the background)."""
    deadline = time.monotonic() + 20
    while log_rollback.read_mark(log_rollback.mark_path(data_dir, url)).get(
            "change_log_position", 0) < position:
        assert time.monotonic() < deadline, "the high-water mark was not refreshed"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("pathways", ["adult,under18_at_capture", "adult"])
@pytest.mark.parametrize("recovery", ["script", "detected"])
def test_restore_drill_no_partner_loses_an_entry(database, tmp_path, pathways, recovery,
                                                 monkeypatch):
    """`script`: the data folder was lost too, the operator runs deploy/after-restore.sql.
    `detected`: the operator runs nothing; the service finds the database behind its data
    folder's high-water mark at start and moves the positions itself."""
    monkeypatch.setattr(log_rollback, "MARK_INTERVAL_S", 0.1)
    rng = random.Random(23)
    url = pg_url(database)
    migrate.upgrade(url)
    app = serve(url, tmp_path / "host1")
    values = [random_pdq(rng) for _ in range(5)]
    with TestClient(app) as client:
        with app.state.database.transaction() as session:
            keys = {name: admin.create_key(session, admin.add_partner(
                session, name, admin.parse_pathways(pathways)), app.state.server_secret)
                for name in ("prompt", "behind")}
        new_case(client, values[:1])
        dump = tmp_path / "hashguard.dump"
        # The backup (docs/operations.md "Backups"), taken while the service runs.
        subprocess.run(["pg_dump", "-Fc", "-f", str(dump), libpq_conninfo(url)], check=True)
        _, behind_cursor = pull_all(client, keys["behind"])  # pulled only what the backup holds
        new_case(client, values[1:3])  # lost with the database
        passed, prompt_cursor = pull_all(client, keys["prompt"])
        assert [e["value"] for e in passed] == values[:3]
        # The partner verifies the adult tree's signed head and remembers it.
        app.state.transparency.catch_up()
        witness = VerifierState()
        (tree,) = Verifier(log_reader(client, keys["prompt"]), witness, pathways=["adult"]).run().trees
        assert tree.head.tree_size == 3
        wait_for_mark(tmp_path / "host1", url, 3)  # three entries logged
    app.state.database.dispose()

    restore(database, dump)
    with CapturedDatabaseLog() as captured:
        if recovery == "script":
            after_restore(database)
            app = serve(url, tmp_path / "host2")  # a new host: no mark survived
        else:
            app = serve(url, tmp_path / "host1")
    assert any("the change log went back" in line for line in captured.lines) == (
        recovery == "detected"), captured.lines
    assert never_analyzed(url) == []  # the restored tables were analyzed at start
    with TestClient(app) as client:
        new_case(client, values[3:4])
        new_case(client, values[4:5])
        last_passed = int(passed[-1]["seq"])
        for name, cursor in (("prompt", prompt_cursor), ("behind", behind_cursor)):
            entries, _ = pull_all(client, keys[name], cursor)
            assert [e["value"] for e in entries] == values[3:], name
            assert all(int(e["seq"]) > last_passed for e in entries), "a position was reused"
        # A partner starting afresh gets exactly what the restored service shares.
        fresh_key = None
        with app.state.database.transaction() as session:
            fresh_key = admin.create_key(session, admin.add_partner(
                session, "fresh", admin.parse_pathways(pathways)), app.state.server_secret)
        entries, _ = pull_all(client, fresh_key)
        assert [e["value"] for e in entries] == [values[0], *values[3:]]
        # The partner's verifier reports the rollback: the tree it verified is not a prefix of
        # the one the restored service signs now.
        app.state.transparency.catch_up()
        with pytest.raises(InconsistencyError):
            Verifier(log_reader(client, keys["prompt"]), witness, pathways=["adult"]).run()
    app.state.database.dispose()


@pytest.mark.slow
def test_a_plain_restart_is_not_mistaken_for_a_restore(database, tmp_path, monkeypatch):
    monkeypatch.setattr(log_rollback, "MARK_INTERVAL_S", 0.1)
    url = pg_url(database)
    migrate.upgrade(url)
    rng = random.Random(5)
    for _ in range(2):  # start, submit, stop; twice, on one data folder
        with CapturedDatabaseLog() as captured:
            app = serve(url, tmp_path)
        assert not any("went back" in line for line in captured.lines), captured.lines
        with TestClient(app) as client:
            new_case(client, [random_pdq(rng)])
            entries, _ = pull_all(client, make_key(app))
        wait_for_mark(tmp_path, url, len(entries))
        app.state.database.dispose()
    assert [int(e["seq"]) for e in entries] == [1, 2]  # positions were not moved


def make_key(app) -> str:
    with app.state.database.transaction() as session:
        name = f"p{uuid.uuid4().hex[:8]}"
        return admin.create_key(session, admin.add_partner(
            session, name, admin.parse_pathways("adult,under18_at_capture")),
            app.state.server_secret)
