"""Engines and transactions for SQLite (embedded default) and PostgreSQL (production)."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from store.submit_batcher import SubmitBatcher


def normalize_url(url: str) -> str:
    """Accept the usual postgres:// and postgresql:// spellings; we drive PostgreSQL with psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def libpq_conninfo(url: str) -> str:
    """The plain postgresql:// URL psycopg itself takes (for LISTEN connections)."""
    return make_url(normalize_url(url)).set(drivername="postgresql").render_as_string(
        hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    # Sized for the thread pool that runs sync routes (40); connections are recycled hourly
    # instead of pinged before each use (a round trip per request).
    # hide_parameters: an error's message (logged, or in a traceback) names the statement but
    # never its parameters, which are submitted hash values, verifiers, cursors (docs/privacy.md).
    engine = create_engine(url, pool_size=20, max_overflow=30, pool_recycle=3600,
                           hide_parameters=True)

    @event.listens_for(engine, "handle_error")
    def read_only_is_a_disconnect(context):
        # A session opened while the database was read-only stays read-only after it is made
        # writable again: treat the error as a lost connection, so the pool replaces its
        # connections and the service recovers by itself.
        if getattr(context.original_exception, "sqlstate", None) == READ_ONLY_SQLSTATE:
            context.is_disconnect = True

    return engine


READ_ONLY_SQLSTATE = "25006"


# SQLSTATE classes and codes meaning "the database cannot take this now" rather than "this
# request is wrong": connection exceptions (08), insufficient resources (53), operator
# intervention (57: shut down, terminated, cannot connect now), a read-only transaction (25006:
# default_transaction_read_only, a standby), an unknown database (3D000: dropped or renamed).
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")
_UNAVAILABLE_CODES = {READ_ONLY_SQLSTATE, "3D000"}


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached or written now (a 503 to retry,
    never a 500). Looks through SQLAlchemy's wrapper at the driver's error."""
    import psycopg
    from sqlalchemy import exc

    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated or isinstance(error, exc.OperationalError):
            return True
        error = error.orig
    elif isinstance(error, exc.TimeoutError):  # the pool had no connection to give in time
        return True
    if isinstance(error, psycopg.OperationalError):
        return True
    if isinstance(error, psycopg.Error):
        state = error.sqlstate or ""
        return state in _UNAVAILABLE_CODES or state[:2] in _UNAVAILABLE_CLASSES
    import sqlite3

    # SQLite: a read-only file or folder, a full disk, an unopenable file, a lock held too long.
    return isinstance(error, sqlite3.OperationalError)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        # BEGIN IMMEDIATE takes the write lock up front: two deferred transactions that both
        # read and then write would otherwise deadlock into SQLITE_BUSY. It also makes
        # change-log order equal commit order on SQLite (one writer at a time). Read-only work
        # (Database.read) begins deferred, so readers never wait for a writer (WAL).
        if connection.get_execution_options().get("hashguard_read_only"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One engine and its session factory; `transaction()` is the unit of work."""

    def __init__(self, url: str):
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Per-process memo of facts about this database (e.g. partners' acknowledged cursors).
        self.memo: dict = {}
        self._read_sessions = sessionmaker(
            self.engine.execution_options(hashguard_read_only=True), expire_on_commit=False)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._submit_batcher = None
        self._batcher_lock = threading.Lock()

    @property
    def submit_batcher(self):
        """This process's group commit for case submits (PostgreSQL; store/submit_batcher.py)."""
        with self._batcher_lock:
            if self._submit_batcher is None:
                self._submit_batcher = SubmitBatcher(self)
            return self._submit_batcher

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A transaction that only reads (on SQLite it does not take the writer lock)."""
        with self._read_sessions() as session, session.begin():
            yield session

    def connect_autocommit(self):
        """A psycopg connection of its own, outside the pool, each statement its own transaction
        (PostgreSQL; the submit batcher's writer keeps one)."""
        import psycopg

        url = self.engine.url.render_as_string(hide_password=False)
        return psycopg.connect(libpq_conninfo(url), autocommit=True)

    def dispose(self) -> None:
        if self._submit_batcher is not None:
            self._submit_batcher.close()
        self.engine.dispose()
