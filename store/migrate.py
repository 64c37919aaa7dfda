"""Runs the Alembic revisions in migrations/ (upgrade on start, downgrade for tests/operators),
one process at a time.

Why the lock: two processes started at once on a fresh PostgreSQL database both ran the first
revision, and one died with a ~200-line traceback (UniqueViolation on alembic_version). Under
`startup_lock` the second waits, then finds the schema at head and has nothing to do. The same
lock covers recording the server secret and signing keys at first start (store/secret_check.py),
so two fresh processes cannot record two different keys. PostgreSQL: a session advisory lock on
a connection of its own; SQLite: an exclusive flock on a file beside the database.
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from store.db import libpq_conninfo, normalize_url

# migrations/ sits beside the packages in a source checkout; an installed image points
# HASHGUARD_MIGRATIONS at its copy (see Dockerfile).
MIGRATIONS_DIR = Path(os.environ.get("HASHGUARD_MIGRATIONS",
                                     Path(__file__).resolve().parents[1] / "migrations"))
STARTUP_LOCK = 0x48475354  # "HGST"; the change log's is "HGCL", the tree builder's "HGTR"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalize_url(database_url).replace("%", "%%"))
    return config


@contextmanager
def startup_lock(database_url: str) -> Iterator[None]:
    """Held while one process migrates and records its secrets; not re-entrant."""
    url = normalize_url(database_url)
    if url.startswith("postgresql"):
        import psycopg

        # Its own connection: the lock lives as long as this session, whatever Alembic's
        # connections do, and goes away with it if the process dies.
        with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (STARTUP_LOCK,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (STARTUP_LOCK,))
        return
    database = make_url(url).database
    if not database or database == ":memory:":
        yield  # a private in-memory database: no other process can see it
        return
    lock_path = Path(database).with_name(Path(database).name + ".startup-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade_unlocked(database_url: str, revision: str = "head") -> None:
    """For a caller already holding startup_lock."""
    command.upgrade(alembic_config(database_url), revision)


def upgrade(database_url: str, revision: str = "head") -> None:
    with startup_lock(database_url):
        upgrade_unlocked(database_url, revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    with startup_lock(database_url):
        command.downgrade(alembic_config(database_url), revision)
