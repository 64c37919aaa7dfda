"""Detects, at start, a PostgreSQL database restored to an older state, and keeps its change log
from reusing positions that partners may already have passed.

Why: a restored backup ends at some position R, and its position counters come back at R too.
Partners may have pulled entries past R before the failure; new entries numbered R+1, R+2, ...
would take positions those partners passed, and a partner continuing from its cursor would never
receive them. The restored database holds no trace of the lost positions, so the witness lives
outside it: every process keeps a high-water mark of the counters in its data folder (a volume
the database's backup does not touch), refreshed every MARK_INTERVAL_S. A database whose counters
are below the mark went back; the counters are then moved GAP past the restored log (the same
step as deploy/after-restore.sql, which operators run when no data folder survived), so new
entries are numbered after anything handed out before. A backup younger than the last refresh
is not told apart from the live database: its loss is at most MARK_INTERVAL_S of entries, and
docs/operations.md asks operators to run the script after every restore anyway.

SQLite draws positions as max(seq) + 1 and has no counters to move: its "counters" are the
highest positions in the log, and a restore is recorded as a log epoch whose `resumes_at` the
SQLite backend draws above (store/backends/sqlite.py), GAP past the mark. Either way the restore
becomes a new log epoch (store/log_epochs.py), so partners whose cursor lies in the lost range are
told to start again (409 `log_restored`) instead of keeping entries the log no longer has.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from store import log_epochs
from store.db import normalize_url
from store.models import PATHWAYS, ChangeLogEntry

log = logging.getLogger("hashguard.database")

GAP = 1_000_000_000
MARK_INTERVAL_S = 10.0
ROLLBACK_LOCK = 0x4847524B  # "HGRK": one process at a time checks and moves the counters
_COUNTERS = ("SELECT sequencename, coalesce(last_value, 0) FROM pg_sequences "
             "WHERE schemaname = current_schema() AND (sequencename = 'change_log_position' "
             "OR sequencename LIKE 'change\\_log\\_position\\_%')")
GLOBAL_COUNTER = "change_log_position"
PATHWAY_COUNTER = "change_log_position_"


def numbering_of(counter: str) -> str:
    """The log epoch numbering (store/log_epochs.py) a counter draws positions for."""
    return log_epochs.GLOBAL if counter == GLOBAL_COUNTER else counter[len(PATHWAY_COUNTER):]


def mark_path(data_dir: Path, database_url: str) -> Path:
    """One mark per database (the URL without its password), so a data folder reused for
    another database is not mistaken for a rollback of this one."""
    url = make_url(database_url).set(password=None).render_as_string(hide_password=True)
    return Path(data_dir) / f"log-high-water-{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"


def counters(connection: Connection) -> dict[str, int]:
    if connection.dialect.name == "postgresql":
        return {name: int(value) for name, value in connection.execute(text(_COUNTERS))}
    # SQLite: the next position is one past the highest in the log, or past the last restore's
    # floor (the names are PostgreSQL's, so one mark file format serves both).
    found = {GLOBAL_COUNTER: connection.execute(select(func.max(
        func.coalesce(func.max(ChangeLogEntry.seq), 0), log_epochs.floor(log_epochs.GLOBAL))
    )).scalar()}
    for pathway in PATHWAYS:
        found[PATHWAY_COUNTER + pathway] = connection.execute(select(func.max(
            func.coalesce(func.max(ChangeLogEntry.pathway_seq), 0), log_epochs.floor(pathway))
        ).where(ChangeLogEntry.pathway == pathway)).scalar()
    return {name: int(value or 0) for name, value in found.items()}


def restored_heads(connection: Connection) -> dict[str, int]:
    """Per numbering, the last position the (restored) log holds."""
    heads = {log_epochs.GLOBAL: connection.execute(
        select(func.coalesce(func.max(ChangeLogEntry.seq), 0))).scalar()}
    for pathway in PATHWAYS:  # one index lookup each, not a scan of the log
        heads[pathway] = connection.execute(
            select(func.coalesce(func.max(ChangeLogEntry.pathway_seq), 0))
            .where(ChangeLogEntry.pathway == pathway)).scalar()
    return heads


def read_mark(path: Path) -> dict[str, int]:
    try:
        body = json.loads(path.read_text())
        return {str(k): int(v) for k, v in body.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def write_mark(path: Path, seen: dict[str, int]) -> None:
    """Never lowers a counter's mark (several processes may share the data folder)."""
    merged = read_mark(path)
    for name, value in seen.items():
        merged[name] = max(value, merged.get(name, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    scratch.write_text(json.dumps(merged, sort_keys=True))
    os.replace(scratch, path)  # readers never see half a file


def skip_ahead(connection: Connection, mark: dict[str, int] | None = None) -> int:
    """Move every position counter GAP past both its value and the log (after-restore.sql), and
    record the lost ranges as a new log epoch, which it returns. On SQLite, where positions are
    max + 1, the epoch is what moves them: new positions start GAP past the mark."""
    heads = restored_heads(connection)
    if connection.dialect.name != "postgresql":
        lost = {}
        for name, current in counters(connection).items():
            numbering = numbering_of(name)
            head = heads.get(numbering, 0)
            lost[numbering] = (head, max(current, head, (mark or {}).get(name, 0)) + GAP)
        return log_epochs.record(connection, lost)
    connection.execute(text(
        "SELECT setval('change_log_position', greatest((SELECT last_value FROM "
        "change_log_position), (SELECT coalesce(max(seq), 0) FROM change_log)) + :gap)"),
        {"gap": GAP})
    for name, current in counters(connection).items():
        if name == GLOBAL_COUNTER:
            continue
        connection.execute(text(
            "SELECT setval(CAST(:name AS regclass), greatest(:current, (SELECT coalesce("
            "max(pathway_seq), 0) FROM change_log WHERE pathway = :pathway)) + :gap)"),
            {"name": name, "current": current, "pathway": numbering_of(name), "gap": GAP})
    return log_epochs.record(connection, {
        numbering_of(name): (heads.get(numbering_of(name), 0), value)
        for name, value in counters(connection).items()})


def check(engine: Engine, data_dir: Path, database_url: str) -> bool:
    """At start: True when the database went back behind this data folder's mark (and its
    counters were moved past the lost positions). Then records the counters as the new mark."""
    path = mark_path(data_dir, database_url)
    mark = read_mark(path)
    with engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE (store/db.py), one writer
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ROLLBACK_LOCK})
        now = counters(connection)
        behind = {name: (now.get(name, 0), seen) for name, seen in mark.items()
                  if now.get(name, 0) < seen}
        if behind:
            epoch = skip_ahead(connection, mark)
            now = counters(connection)
    if behind:
        log.error("the change log went back: this database's positions are behind what this "
                  "service handed out before (a restore from a backup?); its positions were "
                  "moved %d past the restored log, so no partner misses a new entry, and log "
                  "epoch %d begins: partners whose cursor lies in the lost range are asked to "
                  "resync from an empty cursor (409 log_restored; docs/operations.md "
                  "\"Restoring\")", GAP, epoch,
                  extra={"fields": {"behind": {n: {"database": d, "mark": m}
                                               for n, (d, m) in behind.items()}}})
    write_mark(path, now)
    return bool(behind)


class MarkKeeper(threading.Thread):
    """Refreshes the mark every MARK_INTERVAL_S until stop() (the app's shutdown), which writes
    a last one: a clean stop leaves the freshest witness. A daemon, so a process that never
    shuts its app down still exits. Gives up quietly after repeated failures (a database gone
    for good); a restarted process starts a new one."""

    def __init__(self, data_dir: Path, database_url: str):
        super().__init__(name="hashguard-log-mark", daemon=True)
        # Its own connection once per refresh, outside the service's pool.
        url = make_url(normalize_url(database_url))
        if url.get_backend_name() == "sqlite":
            # Read-only: never creates a file where the database was removed.
            source = f"file:{Path(url.database).resolve()}?mode=ro"
            self.engine = create_engine("sqlite://", poolclass=NullPool, hide_parameters=True,
                                        creator=lambda: sqlite3.connect(source, uri=True))
        else:
            self.engine = create_engine(url, poolclass=NullPool, hide_parameters=True)
        self.path = mark_path(data_dir, database_url)
        self.stopped = threading.Event()

    def refresh(self) -> None:
        with self.engine.connect() as connection:
            seen = counters(connection)
        write_mark(self.path, seen)

    def stop(self) -> None:
        self.stopped.set()
        self.join(5)
        try:
            self.refresh()
        except Exception as failed:  # noqa: BLE001 - best effort, as in run()
            log.debug("last high-water mark not written: %s", type(failed).__name__)
        self.engine.dispose()

    def run(self) -> None:
        failures = 0
        while not self.stopped.wait(MARK_INTERVAL_S) and failures < 30:
            try:
                self.refresh()
                failures = 0
            except Exception as failed:  # noqa: BLE001 - a mark is advice; the next try may work
                failures += 1
                log.debug("high-water mark not refreshed: %s", type(failed).__name__)
