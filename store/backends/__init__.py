"""The write rules of the shared set, and the one interface each storage backend implements.

The rules, stated once (each backend implements each rule exactly once):
1. A hash value is stored once (keyed by the digest of "signal_type:value"); its quality is the
   best any submitter reported (a missing quality never replaces a known one).
2. Only a hash in state `ok` enters the shared set, and only under pathways that disputes do
   not hold it back from (`held_pathways`). A rejected hash stays out whoever submits it; a
   held one stays out of that pathway until an operator decides (partners/review.py).
3. The shared set holds (hash, pathway) pairs. Every pair that enters it logs one `add`, every
   pair that leaves it logs one `remove`, in the order the changes commit (store/changelog.py).
4. Each entry records `also_shared`: whether, at that point of the log, the hash is also shared
   under the other pathway (a partner entitled to both pathways skips such entries, so it sees
   one add and one remove per value).
5. Decisions about a hash are made under its row lock, taken in digest order (no deadlock), and
   with the row as the lock read it; the change-log append is a transaction's last write.
6. A submit links each hash to its case and shares it under the case's pathway; within one
   batch, pathways are shared in name order and entries logged in (pathway, hash id) order.
7. An entry's time (`logged_at`) is to the hour, like a case's: to the second it would date the
   submission behind an `add`, which a database dump could line up with request logs.
What is not a write rule of the shared set (which cases still hold a hash on withdrawal, which
pathways a restored hash returns to) is portable SQLAlchemy in store/cases.py and
partners/review.py, written once for both databases.

Backends: store/backends/sqlite.py (SQLAlchemy Core; the embedded default) and
store/backends/postgres.py (calls the SQL functions in store/backends/pg_functions/, so a
submit is one statement). tests/test_store_backends_agree.py runs random sequences of writes on
both and compares every row and log entry. The backend is chosen once per database dialect, here;
nothing else in the store asks which database it runs on.
"""
from __future__ import annotations

from typing import NamedTuple, Protocol

from sqlalchemy.orm import Session


class HashRow(NamedTuple):
    """A stored hash as the writer read it under its row lock."""
    id: int
    state: str
    signal_type: str
    value: str
    quality: int | None
    held_pathways: str | None  # comma-separated; None: held back from none

    def may_share(self, pathway: str) -> bool:
        """Rule 2 (the PostgreSQL functions state it in SQL)."""
        return self.state == "ok" and pathway not in (self.held_pathways or "").split(",")


LOG_TIME_STEP = 3600  # rule 7, in seconds (the PostgreSQL functions say 3600 too)
NewHash = tuple[str, str, "int | None", bytes]  # signal_type, value, quality, digest
NewCase = tuple[dict, list[NewHash]]  # the case's column values, its hashes in digest order


class WriteBackend(Protocol):
    insert: object  # the dialect's INSERT ... ON CONFLICT construct (sqlite.insert, ...)

    def next_event(self, session: Session) -> int:
        """A tick of the event clock that orders case openings, reports and acknowledgements."""

    def event_clock_now(self, session: Session) -> int:
        """The last tick drawn (by anyone)."""

    def lock_hashes(self, session: Session, hash_ids: list[int]) -> list[HashRow]:
        """Row-lock the hashes in digest order and return them as locked (rule 5)."""

    def share(self, session: Session, rows: list[HashRow], pathway: str) -> list[int]:
        """Rules 2-4: share the `ok` rows under `pathway`; returns the ids newly shared."""

    def unshare(self, session: Session, rows: list[HashRow], pathway: str) -> list[int]:
        """Rules 3-4: take the rows out of `pathway`; returns the ids that were shared."""

    def link_and_share(self, session: Session, case_id: int, pathway: str,
                       hashes: list[NewHash]) -> int:
        """Rules 1-6 for hashes added to an existing case; returns how many links are new."""

    def create_cases(self, connection, cases: list[NewCase], now: int,
                     autocommit: bool = False) -> list[int]:
        """Rules 1-6 for new cases, in the caller's transaction; returns their ids in order."""


def for_session(session: Session) -> WriteBackend:
    return for_dialect(session.get_bind().dialect.name)


def for_dialect(name: str) -> WriteBackend:
    # Imported here: the postgres backend needs psycopg, which an SQLite-only install may lack.
    if name == "postgresql":
        from store.backends import postgres
        return postgres.BACKEND
    from store.backends import sqlite
    return sqlite.BACKEND
