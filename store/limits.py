"""Failure budgets shared by every process that serves one database (issue 23).

Why in the database: limits kept in each process's memory multiplied with the processes (two
processes gave an attacker 20 wrong-token guesses a minute on a reference instead of 10). The
database is where the processes already meet, so a budget is a row there, and a check is one
statement on one row by its primary key. SQLite (one serving process) keeps the same table: one
code path tested on both databases, and a budget survives a restart, so crashing or restarting
the process does not hand a guesser a fresh one. Only failures are written, so the happy path
(a correct token, a good key) writes nothing.

What a row holds: `key`, the first 16 bytes of an HMAC of the budget's name and its subject (a
client address, a case reference) under a key derived from the server secret. Every process
derives the same key (they share the secret, docs/operations.md), and neither an address nor a
reference is ever written in clear, here or in a log. `due` is the budget's theoretical arrival
time (GCRA, the cell-rate algorithm, in seconds since the epoch on the database's clock, so that
hosts with skewed clocks still agree): each failure moves it `step` = period / count seconds
later, and the budget is spent while it is more than a whole `period` ahead of now. A row whose
`due` has passed carries no information (it reads as a full budget) and is deleted by the sweep
that every few hundred charges runs (`SWEEP_EVERY`); no row outlives its period by much, so the
table holds only the budgets under way. `refused` is whether the last charge found the budget
spent: an UPSERT can return only the row it wrote, so it writes that answer into the row.

Charging a spent budget still counts (the guess is "spent"), but `due` never runs more than one
period ahead: a client that stops is whole again one period later, however long it went on.
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
from dataclasses import dataclass

from sqlalchemy import Boolean, Double, Index, LargeBinary, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from store.base import Base
from store.secrets import digest

KEY_BYTES = 16  # 128 bits: no two subjects' budgets collide in practice
SWEEP_EVERY = 256  # charges per process between deletions of expired rows
SWEEP_BATCH = 5000  # rows at most per sweep: a sweep is a bounded statement too


class LimitCounter(Base):
    """One failure budget under way (see the module header)."""

    __tablename__ = "limit_counters"

    key: Mapped[bytes] = mapped_column(LargeBinary(KEY_BYTES), primary_key=True)
    due: Mapped[float] = mapped_column(Double)
    refused: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (Index("ix_limit_counters_due", "due"),)


@dataclass(frozen=True)
class Budget:
    """`count` failures per `period` seconds, refilled steadily; `name` keeps budgets apart."""
    name: str
    count: int
    period: float

    @property
    def step(self) -> float:
        return self.period / self.count


def budget(name: str, count: int, period: float) -> Budget | None:
    """The budget, or None when `count` is 0 (the operator turned it off)."""
    return Budget(name, count, period) if count > 0 else None


# The database's clock, in epoch seconds, fixed for the statement.
_NOW = {"postgresql": "CAST(EXTRACT(EPOCH FROM statement_timestamp()) AS DOUBLE PRECISION)",
        "sqlite": "((julianday('now') - 2440587.5) * 86400.0)"}

# `due - now > period - step`: one more failure would take it past a whole period ahead. The
# SET clauses all read the row as it was before this statement (both databases).
_CHARGE = """
INSERT INTO limit_counters (key, due, refused) VALUES (:key, {now} + :step, false)
ON CONFLICT (key) DO UPDATE SET
    refused = limit_counters.due - {now} > :period - :step,
    due = MIN_OR_LEAST(MAX_OR_GREATEST(limit_counters.due, {now}) + :step, {now} + :period)
RETURNING refused
"""
_NO_SYNC = text("SET LOCAL synchronous_commit = off")
_LEVEL = "SELECT due - {now} FROM limit_counters WHERE key = :key"
_SWEEP = ("DELETE FROM limit_counters WHERE key IN "
          "(SELECT key FROM limit_counters WHERE due < {now} LIMIT :batch)")


def _dialect_sql(template: str, dialect: str):
    sql = template.format(now=_NOW[dialect])
    if dialect == "postgresql":
        sql = sql.replace("MIN_OR_LEAST", "LEAST").replace("MAX_OR_GREATEST", "GREATEST")
    else:  # SQLite's two-argument min() and max() are its LEAST and GREATEST
        sql = sql.replace("MIN_OR_LEAST", "min").replace("MAX_OR_GREATEST", "max")
    return text(sql)


class SharedLimits:
    """Failure budgets in the `limit_counters` table of `database`, keyed under `server_secret`."""

    def __init__(self, database, server_secret: bytes):
        self.database = database
        # A key of its own, derived from the secret, so that a row key is no verifier of anything.
        self._key = digest(server_secret, "limit-counter-key", b"")
        dialect = database.engine.dialect.name
        self._charge = _dialect_sql(_CHARGE, dialect)
        self._level = _dialect_sql(_LEVEL, dialect)
        self._sweep = _dialect_sql(_SWEEP, dialect)
        self._charges = itertools.count(1)
        self._postgres = dialect == "postgresql"

    def key(self, spent: Budget, subject: str) -> bytes:
        message = f"{spent.name}\x00{subject}".encode("utf-8", "surrogatepass")  # any path text
        return hmac.new(self._key, message, hashlib.sha256).digest()[:KEY_BYTES]

    def exhausted(self, session: Session, spent: Budget, subject: str) -> bool:
        """Whether one more failure would be refused (a read, in the caller's transaction)."""
        ahead = session.execute(self._level, {"key": self.key(spent, subject)}).scalar()
        return ahead is not None and ahead > spent.period - spent.step

    def charge(self, charges: list[tuple[Budget, str]]) -> bool:
        """Count one failure against each (budget, subject), in one transaction of its own (it
        must commit even though the request it belongs to fails); True if any was spent."""
        refused = False
        with self.database.transaction() as session:
            if self._postgres:
                # Losing the last few failures in a crash costs nothing; waiting for the WAL
                # flush cost every wrong token a disk sync (milliseconds on a busy disk, and
                # noise in its answer time).
                session.execute(_NO_SYNC)
            for spent, subject in charges:
                refused |= bool(session.execute(self._charge, {
                    "key": self.key(spent, subject), "step": spent.step,
                    "period": spent.period}).scalar_one())
        if next(self._charges) % SWEEP_EVERY == 0:
            self.sweep()
        return refused

    def sweep(self) -> int:
        """Delete rows whose budget is whole again; returns how many."""
        with self.database.transaction() as session:
            return session.execute(self._sweep, {"batch": SWEEP_BATCH}).rowcount
