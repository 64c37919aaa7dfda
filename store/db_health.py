"""Keeps the database's maintenance visible and its planner statistics current.

Why: PostgreSQL can run with autovacuum off (a managed database's setting, a restored cluster, an
operator's mistake). Nothing then removes the dead rows that every withdraw, acknowledgement and
replay-record sweep leaves behind, and nothing refreshes the statistics the planner uses; the
service slows down over weeks with no error anywhere. So the service checks at start, warns with
the fix, exposes a metric (api/operations.py), and analyzes its own tables when their statistics
are missing or stale — after migrations, and so also after a restore, whose tables start with no
statistics at all.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from store import log_rollback
from store.db import make_engine

log = logging.getLogger("hashguard.database")

# One process at a time analyzes (several start together); the others skip: the statistics are
# per database, not per process. "HGAN".
ANALYZE_LOCK = 0x4847414E
# A table is analyzed when it has no statistics, or when more rows changed since its last
# analysis than autovacuum's own defaults would wait for (autovacuum_analyze_threshold 50 +
# autovacuum_analyze_scale_factor 0.1 x rows).
STALE_ROWS = 50
STALE_SHARE = 0.1

FIX = ("set autovacuum = on and track_counts = on in postgresql.conf (or ALTER SYSTEM SET "
       "autovacuum = on; SELECT pg_reload_conf();) and remove autovacuum_enabled = false from "
       "the tables named; see docs/operations.md \"Database settings\"")


@dataclass
class Health:
    """What the start-up check found. `autovacuum_off` is the metric's value."""

    autovacuum_off: bool = False
    rolled_back: bool = False  # the change log went back behind the data folder's mark
    # Keeps the mark fresh while the service runs; the app stops it at shutdown.
    keeper: "log_rollback.MarkKeeper | None" = field(default=None, repr=False)
    reasons: list[str] = field(default_factory=list)
    analyzed: list[str] = field(default_factory=list)


def autovacuum_problems(connection: Connection) -> list[str]:
    """Why autovacuum does not run on this database's tables (empty: it does). PostgreSQL only."""
    reasons = []
    if connection.execute(text("SHOW autovacuum")).scalar() != "on":
        reasons.append("autovacuum = off")
    if connection.execute(text("SHOW track_counts")).scalar() != "on":
        reasons.append("track_counts = off (autovacuum cannot see which tables need it)")
    off = connection.execute(text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
        "AND c.reloptions @> ARRAY['autovacuum_enabled=false'] ORDER BY c.relname")).scalars().all()
    if off:
        reasons.append("autovacuum_enabled = false on tables: " + ", ".join(off))
    return reasons


def stale_tables(connection: Connection) -> list[str]:
    """This schema's tables with no statistics, or more changed rows than autovacuum allows."""
    return list(connection.execute(text(
        "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() AND ("
        " (last_analyze IS NULL AND last_autoanalyze IS NULL)"
        " OR n_mod_since_analyze > :rows + :share * n_live_tup) ORDER BY relname"),
        {"rows": STALE_ROWS, "share": STALE_SHARE}).scalars())


def analyze_stale(connection: Connection) -> list[str]:
    """ANALYZE the stale tables, unless another process is doing it now. Returns their names."""
    if not connection.execute(text("SELECT pg_try_advisory_lock(:k)"),
                              {"k": ANALYZE_LOCK}).scalar():
        return []
    try:
        tables = stale_tables(connection)
        for table in tables:
            # Names come from the catalogue, quoted as identifiers: never from input.
            connection.execute(text(f"ANALYZE {connection.dialect.identifier_preparer.quote(table)}"))
        return tables
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ANALYZE_LOCK})


def check(database_url: str, analyze: bool = True, data_dir: Path | None = None) -> Health:
    """The start-up check: warn (with the fix) when autovacuum is off, and analyze stale tables.
    With `data_dir` (PostgreSQL and SQLite): detect a database restored behind what this service
    handed out, move its positions past the lost ones, and keep the mark fresh
    (store/log_rollback.py).
    Never stops the service from starting: a database that cannot answer is reported by
    /readyz, and the metric tells the operator about autovacuum."""
    engine = make_engine(database_url)
    health = Health()
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            if data_dir is not None:
                health.rolled_back, health.keeper = _guard_positions(engine, Path(data_dir),
                                                                     database_url)
            if engine.dialect.name != "postgresql":
                # SQLite: refresh the statistics the query planner keeps (cheap, and a no-op
                # when nothing changed); there is no autovacuum to check.
                if analyze:
                    connection.execute(text("PRAGMA optimize"))
                return health
            health.reasons = autovacuum_problems(connection)
            health.autovacuum_off = bool(health.reasons)
            if health.autovacuum_off:
                log.warning("database maintenance is off: %s. Dead rows and stale statistics "
                            "will slow the service down. Fix: %s", "; ".join(health.reasons), FIX)
            if analyze:
                health.analyzed = analyze_stale(connection)
                if health.analyzed:
                    log.info("analyzed %d tables with missing or stale statistics",
                             len(health.analyzed), extra={"fields": {"tables": health.analyzed}})
    except Exception as failed:  # noqa: BLE001 - maintenance is advice, never a reason not to start
        log.warning("database maintenance check failed: %s", type(failed).__name__)
    finally:
        engine.dispose()
    return health


def _guard_positions(engine, data_dir: Path, database_url: str):
    try:
        rolled_back = log_rollback.check(engine, data_dir, database_url)
    except OSError as failed:  # the data folder cannot be written: say so, start anyway
        log.warning("cannot keep the change log's high-water mark in %s: %s; after a restore "
                    "run deploy/after-restore.sql", data_dir, type(failed).__name__)
        return False, None
    keeper = log_rollback.MarkKeeper(data_dir, database_url)
    keeper.start()
    return rolled_back, keeper


def autovacuum_off(connection: Connection) -> bool:
    """The metric's live value (PostgreSQL; False on SQLite)."""
    if connection.dialect.name != "postgresql":
        return False
    return bool(autovacuum_problems(connection))
