"""The service keeps its database healthy, not by luck (store/db_health.py): on a PostgreSQL with
autovacuum off (as this machine's runs) it warns at start with the fix and exposes a metric, and
it analyzes its tables after migrations (and so after a restore, whose tables have no statistics).
"""
from __future__ import annotations

import uuid

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.settings import Settings
from store import db_health, migrate
from store.db import make_engine
from tests.helpers import ADMIN_URL, CapturedDatabaseLog, admin_connection, pg_url

TOKEN = "t" * 40


@pytest.fixture
def fresh_postgres():
    """An empty database on the tests' server (not from the template: no statistics yet)."""
    name = f"hashguard_health_{uuid.uuid4().hex[:10]}"
    with admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_url(name)
    with admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_autovacuum_is_off() -> bool:
    with psycopg.connect(ADMIN_URL) as conn:
        return conn.execute("SHOW autovacuum").fetchone()[0] == "off"


def never_analyzed(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(
                "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
                "AND last_analyze IS NULL AND last_autoanalyze IS NULL")).scalars())
    finally:
        engine.dispose()


def test_start_warns_and_the_metric_says_when_autovacuum_is_off(fresh_postgres, tmp_path):
    if not server_autovacuum_is_off():
        pytest.skip("this PostgreSQL runs autovacuum; the table-level test covers the check")
    with CapturedDatabaseLog() as captured:
        app = create_app(Settings(database_url=fresh_postgres, data_dir=tmp_path,
                                  metrics_token=TOKEN))
    warnings = captured.lines
    assert any("autovacuum = off" in w and "ALTER SYSTEM SET autovacuum = on" in w
               for w in warnings), warnings
    with TestClient(app) as client:
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert metrics.status_code == 200
    assert "hashguard_database_autovacuum_off 1.0" in metrics.text


def test_a_table_with_autovacuum_disabled_is_named(fresh_postgres):
    migrate.upgrade(fresh_postgres)
    engine = make_engine(fresh_postgres)
    try:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE hashes SET (autovacuum_enabled = false)"))
        with engine.connect() as connection:
            reasons = db_health.autovacuum_problems(connection)
    finally:
        engine.dispose()
    assert "autovacuum_enabled = false on tables: hashes" in reasons


def test_tables_are_analyzed_after_migrations(fresh_postgres, tmp_path):
    migrate.upgrade(fresh_postgres)
    assert never_analyzed(fresh_postgres), "a fresh database should start without statistics"
    app = create_app(Settings(database_url=fresh_postgres, data_dir=tmp_path))
    app.state.database.dispose()
    assert never_analyzed(fresh_postgres) == []


def test_statistics_gone_stale_are_refreshed(fresh_postgres):
    migrate.upgrade(fresh_postgres)
    db_health.check(fresh_postgres)
    engine = make_engine(fresh_postgres)
    try:
        with engine.begin() as connection:
            # Far more changed rows than autovacuum's analyze threshold (50 + 10 %).
            connection.execute(text(
                "INSERT INTO event_clock (id, value) SELECT g, g FROM generate_series(1000, 1500) g"))
    finally:
        engine.dispose()
    assert "event_clock" in db_health.check(fresh_postgres).analyzed


def test_sqlite_start_is_not_warned(tmp_path):
    with CapturedDatabaseLog() as captured:
        app = create_app(Settings(data_dir=tmp_path, metrics_token=TOKEN))
    assert captured.lines == []
    with TestClient(app) as client:
        assert "hashguard_database_autovacuum_off 0.0" in client.get(
            "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text


def test_metrics_need_the_token_when_one_is_set(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, metrics_token=TOKEN))
    with TestClient(app) as client:
        anonymous = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer " + "u" * 40})
        right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert anonymous.json()["error"]["code"] == "metrics_token_required"
    assert right.status_code == 200 and "hashguard_http_requests_total" in right.text
