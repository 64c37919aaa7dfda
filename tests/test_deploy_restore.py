"""Restore drill (PostgreSQL and SQLite): back up with `hashguard backup` while the service runs,
submit, lose the database, restore the backup, (on PostgreSQL, when the data folder was lost too)
run deploy/after-restore.sql as docs/operations.md says, submit again. No position a partner
passed before the restore is used again; a partner whose cursor lies in the lost range is told
so (409 `log_restored`, on the pull, the long-poll, the export and StopNCII's page token) and
gets exactly the restored service's set by a full sync; a partner at the restored head continues;
the restored tables get statistics at start; the partner's transparency verifier reports that the
log went back.

Without the after-restore step, the entry submitted after the restore takes a position the
partners had already passed, and a partner continuing from its cursor never receives it; without
log epochs, a partner past the restored head silently keeps entries the restored log lost.
"""
from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from api.app import create_app
from api.settings import Settings
from partner_tools.transparency import Verifier, VerifierState
from partners import admin
from txlog.errors import InconsistencyError, VerificationError
from store import log_rollback, migrate
from store.db import libpq_conninfo, make_engine
from tests.helpers import (CapturedDatabaseLog, admin_connection, bearer, cli_app, new_case,
                           pg_url, pull_all, served_url)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients" / "pytx"))
from hashguard_pytx.exchange import (HashguardCheckpoint,  # noqa: E402
                                     HashguardCollabConfig, HashguardSignalExchangeAPI)
from hashguard_pytx.client import HashguardClient  # noqa: E402

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
    """A PostgreSQL database of its own (the drill drops and re-creates it)."""
    name = f"hashguard_restore_{uuid.uuid4().hex[:10]}"
    with admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url_for(backend: str, request, tmp_path: Path) -> str:
    if backend == "postgresql":
        return pg_url(request.getfixturevalue("database"))
    folder = tmp_path / "db"  # beside the hosts' data folders, so a new host can open it
    folder.mkdir()
    return f"sqlite:///{folder / 'hashguard.db'}"


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


def backup(url: str, dest: Path) -> None:
    """`hashguard backup DEST` (docs/operations.md "Backups"), as an operator runs it."""
    result = CliRunner().invoke(cli_app(), ["backup", str(dest), "--database-url", url])
    assert result.exit_code == 0, result.output
    assert f"wrote {dest}" in result.output and "NOT in this backup" in result.output, (
        result.output)


def restore(url: str, dump: Path) -> None:
    """The disaster and the operator's restore: the database is gone, the backup comes back."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        for lost in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            lost.unlink(missing_ok=True)
        shutil.copyfile(dump, path)  # docs/operations.md: with the service stopped
        return
    name = url.rsplit("/", 1)[1]
    with admin_connection() as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "-d",
                    libpq_conninfo(url), str(dump)], check=True, capture_output=True)


def after_restore(url: str) -> None:
    subprocess.run(["psql", libpq_conninfo(url), "-v", "ON_ERROR_STOP=1", "-q",
                    "-f", str(AFTER_RESTORE)], check=True, capture_output=True)


def wait_for_mark(data_dir: Path, url: str, position: int) -> None:
    """Until this process's high-water mark has seen `position` (refreshed in the background)."""
    deadline = time.monotonic() + 20
    while log_rollback.read_mark(log_rollback.mark_path(data_dir, url)).get(
            "change_log_position", 0) < position:
        assert time.monotonic() < deadline, "the high-water mark was not refreshed"
        time.sleep(0.1)


def stopncii_token(client, key: str) -> str:
    """The page token a StopNCII client holds once it has fetched everything."""
    token = ""
    while True:
        response = client.get("/stopncii/v1/FetchHashes", params={"nextPageToken": token},
                              headers=bearer(key))
        assert response.status_code == 200, response.text
        token = response.json()["nextPageToken"]
        if not response.json()["hasMoreRecords"]:
            return token


def refused_as_restored(response) -> bool:
    return response.status_code == 409 and response.json()["error"]["code"] == "log_restored"


@pytest.mark.parametrize("pathways", ["adult,under18_at_capture", "adult"])
@pytest.mark.parametrize("backend,recovery", [
    pytest.param("postgresql", "script", marks=pytest.mark.slow),
    pytest.param("postgresql", "detected", marks=pytest.mark.slow),
    ("sqlite", "detected")])
def test_restore_drill_no_partner_loses_an_entry(request, tmp_path, pathways, backend, recovery,
                                                 monkeypatch):
    """`script`: the data folder was lost too, the operator runs deploy/after-restore.sql.
    `detected`: the operator runs nothing; the service finds the database behind its data
    folder's high-water mark at start and moves the positions itself (on SQLite, whose
    positions are max + 1, by recording the restore as a log epoch they stay above)."""
    monkeypatch.setattr(log_rollback, "MARK_INTERVAL_S", 0.1)
    rng = random.Random(23)
    url = database_url_for(backend, request, tmp_path)
    migrate.upgrade(url)
    app = serve(url, tmp_path / "host1")
    values = [random_pdq(rng) for _ in range(5)]
    with TestClient(app) as client:
        with app.state.database.transaction() as session:
            keys = {name: admin.create_key(session, admin.add_partner(
                session, name, admin.parse_pathways(pathways)), app.state.server_secret)
                for name in ("prompt", "behind")}
        new_case(client, values[:1])
        dump = tmp_path / "hashguard.backup"
        backup(url, dump)  # taken while the service runs
        _, behind_cursor = pull_all(client, keys["behind"])  # pulled only what the backup holds
        new_case(client, values[1:3])  # lost with the database
        passed, prompt_cursor = pull_all(client, keys["prompt"])
        assert [e["value"] for e in passed] == values[:3]
        prompt_token = stopncii_token(client, keys["prompt"])
        assert client.get("/v1/partner/hashes", params={"cursor": prompt_cursor},
                          headers=bearer(keys["prompt"])).json()["log_epoch"] == 1
        # The partner verifies the adult tree's signed head and remembers it.
        app.state.transparency.catch_up()
        witness = VerifierState()
        (tree,) = Verifier(log_reader(client, keys["prompt"]), witness, pathways=["adult"]).run().trees
        assert tree.head.tree_size == 3
        wait_for_mark(tmp_path / "host1", url, 3)  # three entries logged
    app.state.database.dispose()

    restore(url, dump)
    with CapturedDatabaseLog() as captured:
        if recovery == "script":
            after_restore(url)
            app = serve(url, tmp_path / "host2")  # a new host: no mark survived
        else:
            app = serve(url, tmp_path / "host1")
    assert any("the change log went back" in line for line in captured.lines) == (
        recovery == "detected"), captured.lines
    if backend == "postgresql":
        assert never_analyzed(url) == []  # the restored tables were analyzed at start
    with TestClient(app) as client:
        new_case(client, values[3:4])
        new_case(client, values[4:5])
        last_passed = passed[-1]["seq"]
        # At the restored head: everything it holds is in the restored log; it continues.
        page = client.get("/v1/partner/hashes", params={"cursor": behind_cursor},
                          headers=bearer(keys["behind"])).json()
        assert page["log_epoch"] == 2
        entries, _ = pull_all(client, keys["behind"], behind_cursor)
        assert [e["value"] for e in entries] == values[3:]
        assert all(e["seq"] > last_passed for e in entries), "position reused"
        # Past it: it holds values[1:3], which the restored log does not have. Every way of
        # continuing from its cursor says so, instead of carrying on as if nothing was lost.
        prompt = bearer(keys["prompt"])
        for response in (
                client.get("/v1/partner/hashes", params={"cursor": prompt_cursor}, headers=prompt),
                client.get("/v1/partner/hashes", params={"cursor": prompt_cursor, "wait": 1},
                           headers=prompt),
                client.get("/v1/partner/hashes/export", params={"cursor": prompt_cursor},
                           headers=prompt),
                client.get("/stopncii/v1/FetchHashes", params={"nextPageToken": prompt_token},
                           headers=prompt)):
            assert refused_as_restored(response), (response.request.url, response.text)
        # Starting again from an empty cursor gives exactly what the restored service shares,
        # the same as a partner that never pulled before.
        entries, _ = pull_all(client, keys["prompt"])
        assert [e["value"] for e in entries] == [values[0], *values[3:]]
        fresh_key = make_key(app, pathways)
        export = client.get("/v1/partner/hashes/export", headers=bearer(fresh_key))
        lines = [json.loads(line) for line in export.text.splitlines()]
        assert [e["value"] for e in lines[:-1]] == [values[0], *values[3:]]
        assert lines[-1]["log_epoch"] == 2
        # The partner's verifier reports the rollback: the tree it verified is not a prefix of
        # the one the restored service signs now.
        app.state.transparency.catch_up()
        with pytest.raises(InconsistencyError):
            Verifier(log_reader(client, keys["prompt"]), witness, pathways=["adult"]).run()
    app.state.database.dispose()

    # A plain restart after all this is not another restore: positions go on from where they are.
    with CapturedDatabaseLog() as captured:
        app = serve(url, tmp_path / "host1")
    assert not any("went back" in line for line in captured.lines), captured.lines
    with TestClient(app) as client:
        new_case(client, [random_pdq(rng)])
        entries, _ = pull_all(client, fresh_key, lines[-1]["next_cursor"])
        assert [e["seq"] for e in entries] == [
            lines[-2]["seq"] + 1]
        assert entries[0]["value"] != values[4]
    app.state.database.dispose()


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.slow),
                                     "sqlite"])
def test_a_plain_restart_is_not_mistaken_for_a_restore(request, tmp_path, backend, monkeypatch):
    monkeypatch.setattr(log_rollback, "MARK_INTERVAL_S", 0.1)
    url = database_url_for(backend, request, tmp_path)
    migrate.upgrade(url)
    rng = random.Random(5)
    for _ in range(2):  # start, submit, stop; twice, on one data folder
        with CapturedDatabaseLog() as captured:
            app = serve(url, tmp_path)
        assert not any("went back" in line for line in captured.lines), captured.lines
        with TestClient(app) as client:
            new_case(client, [random_pdq(rng)])
            key = make_key(app)
            entries, _ = pull_all(client, key)
            assert client.get("/v1/partner/hashes", headers=bearer(key)).json()["log_epoch"] == 1
        wait_for_mark(tmp_path, url, len(entries))
        app.state.database.dispose()
    assert [int(e["seq"]) for e in entries] == [1, 2]  # positions were not moved


def make_key(app, pathways: str = "adult,under18_at_capture") -> str:
    with app.state.database.transaction() as session:
        name = f"p{uuid.uuid4().hex[:8]}"
        return admin.create_key(session, admin.add_partner(
            session, name, admin.parse_pathways(pathways)), app.state.server_secret)


def test_pytx_exchange_resyncs_when_the_log_was_restored(tmp_path, monkeypatch):
    """HMA / python-threatexchange with the hashguard extension: a checkpoint past a restored
    log's head comes back stale, so pytx's fetcher drops what it holds (the lost values too)
    and fetches everything again; with the fresh fetch the bank equals the restored set."""
    monkeypatch.setattr(log_rollback, "MARK_INTERVAL_S", 0.1)
    rng = random.Random(7)
    url = f"sqlite:///{tmp_path / 'hashguard.db'}"
    migrate.upgrade(url)
    values = [random_pdq(rng) for _ in range(3)]
    app = serve(url, tmp_path / "data")
    with TestClient(app) as client:
        key = make_key(app, "adult")
        new_case(client, values[:1])
        backup(url, tmp_path / "backup.db")
        new_case(client, values[1:2])  # lost with the database
    wait_for_mark(tmp_path / "data", url, 2)
    app.state.database.dispose()
    with served_url(serve(url, tmp_path / "data")) as base_url:
        exchange = HashguardSignalExchangeAPI(HashguardCollabConfig(base_url, "hashguard"),
                                              HashguardClient(base_url, key))
        (delta,) = list(exchange.fetch_iter([], None))
        assert {r.value for r in delta.updates.values()} == set(values[:2])
        held = delta.checkpoint
        assert not held.is_stale()
    app.state.database.dispose()

    restore(url, tmp_path / "backup.db")
    app = serve(url, tmp_path / "data")
    with TestClient(app) as client:
        new_case(client, values[2:])
    with served_url(app) as base_url:
        exchange = HashguardSignalExchangeAPI(HashguardCollabConfig(base_url, "hashguard"),
                                              HashguardClient(base_url, key))
        deltas = list(exchange.fetch_iter([], held))
        assert [d.updates for d in deltas] == [{}]  # nothing applied from the old cursor
        assert deltas[0].checkpoint.is_stale()  # pytx: clear the bank, fetch from scratch
        (delta,) = list(exchange.fetch_iter([], None))
        assert {r.value for r in delta.updates.values()} == {values[0], values[2]}
    app.state.database.dispose()


def test_backup_refuses_clearly(tmp_path, monkeypatch):
    """No pg_dump on the PATH, or a file already there: one line saying so, nothing written."""
    runner = CliRunner()
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump here
    result = runner.invoke(cli_app(), ["backup", str(tmp_path / "out.dump"), "--database-url",
                                       pg_url("anything")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: pg_dump not found: install PostgreSQL's client programs (Debian: apt-get "
        "install postgresql-client, the server's major version or newer)"]
    assert not (tmp_path / "out.dump").exists()
    (tmp_path / "taken.db").write_text("x")
    result = runner.invoke(cli_app(), ["backup", str(tmp_path / "taken.db"), "--database-url",
                                       f"sqlite:///{tmp_path / 'hashguard.db'}"])
    assert result.exit_code == 1 and "exists already" in result.output
    assert (tmp_path / "taken.db").read_text() == "x"


def test_after_restore_script_on_a_backup_older_than_log_epochs(database):
    """A backup taken before migration 0014: the script makes the epochs table, records the
    restore in it, and the first process's migration then keeps it."""
    url = pg_url(database)
    migrate.upgrade(url, "0013")
    after_restore(url)
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT epoch, numbering, restored_head, resumes_at FROM log_epochs "
                "ORDER BY numbering")).all()
    finally:
        engine.dispose()
    # (An unused PostgreSQL sequence reads last_value 1, the pathways' counters 0.)
    assert [tuple(r) for r in rows] == [(2, "adult", 0, log_rollback.GAP),
                                        (2, "global", 0, 1 + log_rollback.GAP),
                                        (2, "under18_at_capture", 0, log_rollback.GAP)]
