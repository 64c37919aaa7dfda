"""Alembic: an empty database upgrades to head, matches the models, and downgrades back."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from store import migrate
from store.db import make_engine
from store.models import Base


def test_upgrade_matches_models_and_downgrade_empties(database_url):
    # database_url arrives migrated to head (conftest); check, go down, come back up.
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    migrate.downgrade(database_url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(database_url)
    assert set(Base.metadata.tables) <= set(inspect(make_engine(database_url)).get_table_names())
    engine.dispose()


def test_a_database_with_data_at_0005_upgrades_and_keeps_working(database_url, tmp_path):
    """An operator's database from before per-pathway positions, disputes per pathway and the
    event clock: its log gets gap-free positions per pathway, its quarantined hash stays out
    of every pathway with its disputes acting, its times are rounded to the hour, and the
    service writes and reads it afterwards."""
    from sqlalchemy import text

    from hashing.signals import Signal
    from store import cases as store_cases
    from store.db import Database

    migrate.downgrade(database_url, "0005")
    engine = make_engine(database_url)
    digest = lambda n: store_cases.hash_digest("pdq", f"{n:02x}" * 32)  # noqa: E731
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO partners (id, name, pathways, created_at, acknowledged_seq) VALUES "
            "(1, 'a', 'adult', CURRENT_TIMESTAMP, 3), (2, 'b', 'adult', CURRENT_TIMESTAMP, 0)"))
        for n, state in ((1, "ok"), (2, "ok"), (3, "quarantined")):
            conn.execute(text("INSERT INTO hashes (id, signal_type, value, quality, digest, state) "
                              "VALUES (:n, 'pdq', :v, 100, :d, :s)"),
                         {"n": n, "v": f"{n:02x}" * 32, "d": digest(n), "s": state})
        for seq, (hash_id, pathway) in enumerate(
                [(1, "adult"), (2, "under18_at_capture"), (3, "adult")], start=1):
            conn.execute(text(
                "INSERT INTO change_log (id, seq, op, hash_id, signal_type, value, quality, "
                "pathway, logged_at, also_shared) VALUES (:s, :s, 'add', :h, 'pdq', :v, 100, "
                ":p, 1700001234, false)"),
                {"s": seq, "h": hash_id, "v": f"{hash_id:02x}" * 32, "p": pathway})
        conn.execute(text("INSERT INTO shared_hashes (hash_id, pathway) VALUES "
                          "(1, 'adult'), (2, 'under18_at_capture')"))
        for partner in (1, 2):
            conn.execute(text("INSERT INTO feedback (partner_id, hash_id, action, tags, "
                              "reported_at) VALUES (:p, 3, 'not_violating', '', 1700001300)"),
                         {"p": partner})
        if engine.dialect.name == "postgresql":  # the rows above were given their ids
            for table in ("hashes", "change_log", "partners"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 10)"))
            conn.execute(text("SELECT setval('change_log_position', 3)"))
    engine.dispose()
    migrate.upgrade(database_url)

    engine = make_engine(database_url)
    with engine.connect() as conn:
        q = lambda sql: [tuple(r) for r in conn.execute(text(sql))]  # noqa: E731
        assert q("SELECT seq, pathway, pathway_seq FROM change_log ORDER BY seq") == [
            (1, "adult", 1), (2, "under18_at_capture", 1), (3, "adult", 2)]
        assert q("SELECT DISTINCT logged_at FROM change_log") == [(1700001234 // 3600 * 3600,)]
        assert q("SELECT last_global_seq FROM legacy_cursor_limit") == [(3,)]
        assert q("SELECT id, state, held_pathways FROM hashes ORDER BY id") == [
            (1, "ok", None), (2, "ok", None), (3, "ok", "adult,under18_at_capture")]
        assert q("SELECT partner_id, pathway, state FROM disputes ORDER BY partner_id") == [
            (1, "adult", "acting"), (2, "adult", "acting")]
    engine.dispose()
    db = Database(database_url)
    try:
        created = store_cases.submit(db, "adult", [Signal("pdq", "03" * 32, 90),
                                                   Signal("pdq", "04" * 32, 90)], bytes(32))
        with db.read() as session:
            new = [tuple(r) for r in session.execute(text(
                "SELECT value, pathway_seq FROM change_log WHERE seq > 3 ORDER BY seq"))]
            opened = session.scalar(text("SELECT opened_event FROM cases WHERE id = :i"),
                                    {"i": created.id})
        # The held hash stays out; the new one continues the adult numbering at 3.
        assert new == [("04" * 32, 3)]
        assert opened >= 2
    finally:
        db.dispose()
