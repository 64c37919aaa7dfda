"""Log epochs: what a restore took away, kept so that partners who saw it are told (issue 23).

A restore from an older backup ends the log at some position R (the restored head); positions
after R that partners may already have received are gone, and the position counters are moved
GAP past them (store/log_rollback.py, deploy/after-restore.sql), so new entries start at some
position S + 1. A partner whose cursor lies in (R, S] has seen entries the restored log no longer
has: it cannot continue from its cursor (it would keep values the service no longer shares, and
lose nothing it could detect), so the pull refuses that cursor with 409 `log_restored`, and the
partner starts again from an empty cursor. A cursor at or before R continues: everything up to R
is the same log. Each restore begins a new epoch (1 before the first); pulls report the current
one (`log_epoch`).

One row per epoch and numbering: "global" for global positions (`seq`), a pathway's name for
that pathway's own positions (`pathway_seq`), since a partner entitled to one pathway holds a
cursor in that numbering (store/changelog.position_column).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import BigInteger, Integer, String, func, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base

GLOBAL = "global"
FIRST_EPOCH = 1


class LogEpoch(Base):
    """A restore: in `numbering`, positions in (restored_head, resumes_at] were lost."""

    __tablename__ = "log_epochs"

    epoch: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    numbering: Mapped[str] = mapped_column(String(32), primary_key=True)
    restored_head: Mapped[int] = mapped_column(BigInteger)
    resumes_at: Mapped[int] = mapped_column(BigInteger)
    restored_at: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class Epochs:
    current: int
    lost: tuple[tuple[str, int, int], ...]  # (numbering, restored_head, resumes_at)

    def was_lost(self, numbering: str, position: int) -> bool:
        return any(name == numbering and head < position <= resumes
                   for name, head, resumes in self.lost)


def read(connection) -> Epochs:
    """Every epoch in one read (a handful of rows: one per restore and numbering)."""
    rows = connection.execute(select(LogEpoch.epoch, LogEpoch.numbering, LogEpoch.restored_head,
                                     LogEpoch.resumes_at)).all()
    return Epochs(max((r.epoch for r in rows), default=FIRST_EPOCH),
                  tuple((r.numbering, r.restored_head, r.resumes_at) for r in rows))


def floor(numbering: str):
    """SQL for the first position new entries must stay above in `numbering` (SQLite, which
    draws positions as max + 1, has no counter to move: store/backends/sqlite.py)."""
    return (select(func.coalesce(func.max(LogEpoch.resumes_at), 0))
            .where(LogEpoch.numbering == numbering).scalar_subquery())


def record(connection, lost: dict[str, tuple[int, int]]) -> int:
    """A new epoch: `lost` maps each numbering to (restored_head, resumes_at). Returns it."""
    epoch = (connection.execute(select(func.max(LogEpoch.epoch))).scalar() or FIRST_EPOCH) + 1
    now = int(time.time())
    connection.execute(insert(LogEpoch), [
        {"epoch": epoch, "numbering": name, "restored_head": head, "resumes_at": resumes,
         "restored_at": now} for name, (head, resumes) in sorted(lost.items())])
    return epoch
