"""Secrets that cannot be swapped silently (issue 23): the database records a check value of the
server secret and the signing keys; a process whose secret or keys do not match refuses to start;
the signing keys are shared by every host; the server secret rotates without invalidating the
tokens and partner keys issued before."""
from __future__ import annotations

import base64
import os

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from api.app import create_app
from api.settings import Settings
from tests.helpers import bearer, cli_app, new_case
from tests.hashes import BRIDGE, C_PNG

QUIET = dict(case_writes_per_hour_per_client=0, token_lookups_per_minute_per_client=0,
             partner_key_failures_per_minute_per_client=0)


def _settings(database_url, data_dir, **extra) -> Settings:
    return Settings(database_url=database_url, data_dir=data_dir, **QUIET, **extra)


def _started(settings):
    app = create_app(settings, run_migrations=False)
    return app


def _refusal(settings) -> str:
    with pytest.raises(SystemExit) as refused:
        app = create_app(settings, run_migrations=False)
        app.state.database.dispose()
    message = str(refused.value)
    assert message.startswith("hashguard refuses to start: ") and "\n" not in message, message
    return message


def _seed() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def test_an_empty_data_folder_on_a_used_database_refuses_to_start(database_url, tmp_path):
    first = _started(_settings(database_url, tmp_path / "host-a"))
    first.state.database.dispose()
    empty = tmp_path / "host-b"
    message = _refusal(_settings(database_url, empty))
    assert "server-secret" in message and "restore" in message
    # Refusing, it made no secret of its own that a careless retry would then start with.
    assert not (empty / "server-secret").exists()


def test_a_wrong_secret_refuses_and_the_right_one_starts(database_url, tmp_path):
    right, wrong = _seed(), _seed()
    _started(_settings(database_url, tmp_path / "a", secret=right)).state.database.dispose()
    message = _refusal(_settings(database_url, tmp_path / "b", secret=wrong))
    assert "HASHGUARD_SECRET" in message and wrong not in message and right not in message
    _started(_settings(database_url, tmp_path / "c", secret=right)).state.database.dispose()


def test_a_transparency_key_other_than_the_recorded_one_refuses(database_url, tmp_path):
    secret, key = _seed(), _seed()
    _started(_settings(database_url, tmp_path / "a", secret=secret,
                       transparency_key=key)).state.database.dispose()
    message = _refusal(_settings(database_url, tmp_path / "b", secret=secret,
                                 transparency_key=_seed()))
    assert "HASHGUARD_TRANSPARENCY_KEY" in message and "key id" in message
    # Recorded from the environment: a process without it has no key to sign with.
    assert "HASHGUARD_TRANSPARENCY_KEY" in _refusal(
        _settings(database_url, tmp_path / "c", secret=secret))


def test_hosts_sharing_a_database_sign_with_the_same_keys(database_url, tmp_path):
    """Two hosts with the same HASHGUARD_SECRET and their own (empty) data folders: one webhook
    key and one transparency key, where each host's folder used to make its own."""
    from store.secret_check import seed_of
    from store.secrets import decode_secret
    from tests.helpers import database_dump

    secret = _seed()
    published = []
    for host in ("a", "b"):
        app = _started(_settings(database_url, tmp_path / host, secret=secret))
        seeds = [seed_of(key) for key in app.state.signing_keys.values()]
        with TestClient(app) as client:
            webhook = client.get("/.well-known/hashguard-webhook-key")
            log_key = client.get("/.well-known/hashguard-transparency-key")
        app.state.database.dispose()
        dump = database_dump(database_url)  # what a leaked backup shows
        for private in (decode_secret(secret), *seeds):
            assert private.hex() not in dump
        assert webhook.status_code == 200 and log_key.status_code == 200
        published.append((webhook.json(), log_key.json()))
    assert published[0] == published[1]
    # Sealed under the secret: the database alone does not give the keys away.
    from store.db import make_engine

    engine = make_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT purpose, sealed_seed FROM signing_keys")).all()
    engine.dispose()
    assert sorted(r.purpose for r in rows) == ["transparency", "webhook"]
    assert all(r.sealed_seed is not None and len(r.sealed_seed) > 32 for r in rows)


def test_a_used_database_from_before_the_check_refuses_a_process_without_its_secret(
        database_url, tmp_path):
    """A database upgraded from before check values were recorded, holding cases, and a process
    whose data folder was lost: it must not make a new secret (every token would fail)."""
    app = _started(_settings(database_url, tmp_path / "a"))
    with TestClient(app) as client:
        new_case(client, [BRIDGE])
    app.state.database.dispose()
    from store.db import make_engine

    engine = make_engine(database_url)
    with engine.begin() as conn:  # as it was before migration 0013 recorded anything
        conn.execute(text("DELETE FROM signing_keys"))
        conn.execute(text("DELETE FROM secret_versions"))
    engine.dispose()
    assert "holds cases" in _refusal(_settings(database_url, tmp_path / "lost"))


def _rotate(settings) -> str:
    env = {"HASHGUARD_DATABASE_URL": settings.database_url,
           "HASHGUARD_DATA_DIR": str(settings.data_dir)}
    if settings.secret:
        env["HASHGUARD_SECRET"] = settings.secret
    result = CliRunner().invoke(cli_app(), ["rotate-secret", "--yes"], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


@pytest.mark.parametrize("secret_in", ["environment", "data_dir"])
def test_tokens_and_partner_keys_issued_before_a_rotation_keep_working(
        database_url, tmp_path, secret_in):
    from partners import admin

    old_secret = _seed() if secret_in == "environment" else None
    before = _settings(database_url, tmp_path / "a", secret=old_secret)
    app = _started(before)
    with TestClient(app) as client:
        case = new_case(client, [C_PNG])
        with app.state.database.transaction() as session:
            partner = admin.add_partner(session, "p", ["adult"])
            key = admin.create_key(session, partner, app.state.server_secret)
        log_key = client.get("/.well-known/hashguard-transparency-key").json()
        webhook_key = client.get("/.well-known/hashguard-webhook-key").json()
    app.state.database.dispose()

    printed = _rotate(before)
    if secret_in == "environment":
        new_secret = printed.splitlines()[-1]
        assert new_secret and new_secret != old_secret
        after = _settings(database_url, tmp_path / "b", secret=new_secret)
        stale = before
    else:
        assert printed == ""  # the file was replaced; nothing secret on stdout
        after = before
        stale = None
    verifiers = _verifiers(database_url)
    app = _started(after)
    with TestClient(app) as client:
        status = client.get(f"/v1/cases/{case['case_ref']}", headers=bearer(case["token"]))
        assert status.status_code == 200, status.text
        pulled = client.get("/v1/partner/hashes", headers=bearer(key))
        assert pulled.status_code == 200, pulled.text
        # The signing keys survived the rotation (re-sealed under the new secret).
        assert client.get("/.well-known/hashguard-transparency-key").json() == log_key
        assert client.get("/.well-known/hashguard-webhook-key").json() == webhook_key
        # Re-keyed as they were used: the stored verifiers are now the new secret's ...
        assert set(_verifiers(database_url)).isdisjoint(verifiers)
        # ... and still open with the same token and key.
        assert client.get(f"/v1/cases/{case['case_ref']}",
                          headers=bearer(case["token"])).status_code == 200
        assert client.get("/v1/partner/hashes", headers=bearer(key)).status_code == 200
        # A wrong token is still refused, under every version.
        assert client.get(f"/v1/cases/{case['case_ref']}",
                          headers=bearer(case["token"][:-2] + "xx")).status_code == 404
    app.state.database.dispose()
    if stale is not None:  # a process still holding the old secret is told, not let through
        assert "rotate-secret" in _refusal(_settings(database_url, tmp_path / "c",
                                                     secret=old_secret))


def _verifiers(database_url) -> list[bytes]:
    from store.db import make_engine

    engine = make_engine(database_url)
    with engine.connect() as conn:
        rows = [bytes(r[0]) for r in conn.execute(text(
            "SELECT token_verifier FROM cases UNION ALL SELECT verifier FROM partner_keys"))]
    engine.dispose()
    return rows


def _start_on(url: str, data_dir: str, secret: str, barrier, results) -> None:
    import traceback

    try:
        barrier.wait(timeout=60)
        app = create_app(Settings(database_url=url, data_dir=data_dir, secret=secret,
                                  tree_builder=False, **QUIET))
        results.put(("ok", app.state.signing_keys["transparency"].public_key().public_bytes_raw()))
        app.state.database.dispose()
    except BaseException:  # noqa: BLE001 - what a starting process would die of is the finding
        results.put(("crash", traceback.format_exc(limit=3)))


@pytest.mark.timeout(300)
def test_processes_starting_at_once_on_an_empty_sqlite_file_all_start(tmp_path):
    """SQLite's start-up lock (a file lock): every process migrates or waits, one secret check
    and one transparency key are recorded, and every process uses that key."""
    import multiprocessing

    context = multiprocessing.get_context("fork")  # the race itself, without import time
    for round_ in range(3):
        url = f"sqlite:///{tmp_path / f'r{round_}.db'}"
        secret, workers = _seed(), 4
        barrier, results = context.Barrier(workers), context.Queue()
        processes = [context.Process(target=_start_on, args=(
            url, str(tmp_path / f"r{round_}-{i}"), secret, barrier, results))
            for i in range(workers)]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=240) for _ in processes]
        for process in processes:
            process.join(30)
        crashes = [detail for outcome, detail in outcomes if outcome != "ok"]
        assert not crashes, crashes[0]
        assert len({detail for _, detail in outcomes}) == 1, "processes sign with different keys"
