"""SQLAlchemy models: what hashguard stores, and (by omission) what it never stores.

No table has a column for an IP address, user agent, e-mail, name or free text. Case times are
coarsened to the hour so that a database dump cannot line a case up with web-server logs.

Importing this module registers every table on Base.metadata (Alembic's env and the tests read it
from here), the transparency log's tables (store/transparency_models.py) included.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, BigId

# Registers the transparency tables on Base.metadata (an arrow one way: they import store.base).
from store.transparency_models import (  # noqa: F401
    TransparencyHead,
    TransparencyLeaf,
    TransparencyNode,
)
# And the shared failure budgets' table (store/limits.py, issue 23).
from store.limits import LimitCounter  # noqa: F401
from store.secret_models import SecretVersion, SigningKey  # noqa: F401 - registers them
from store.log_epochs import LogEpoch  # noqa: F401 - restores' lost ranges (issue 23)

PATHWAYS = ("adult", "under18_at_capture")
CASE_ACTIVE, CASE_WITHDRAWN = "active", "withdrawn"
OP_ADD, OP_REMOVE = "add", "remove"
# A hash disputed by enough partners is quarantined (out of the shared set) until an operator
# reviews it: restored to `ok`, or `rejected` for good (never shared again, whoever submits it).
HASH_OK, HASH_QUARANTINED, HASH_REJECTED = "ok", "quarantined", "rejected"


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    pathway: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=CASE_ACTIVE)
    # HMAC-SHA256 of the secret token under the server secret (store/secrets.py); never the token.
    token_verifier: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # to the hour
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # to the hour
    # Idempotent submit: a keyed digest of the client's Idempotency-Key and of its request body,
    # and the token sealed under a key only that Idempotency-Key unlocks, so that a retry gets the
    # same case and token. Cleared after the replay window (api/idempotency_sweeper.py; the
    # window's start is sealed with the token, not stored in the clear) and on withdrawal.
    idempotency_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    idempotency_request: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    idempotency_sealed_token: Mapped[bytes | None] = mapped_column(LargeBinary(128))
    # When the case was opened, on the event clock (EventClock): its status counts only pulls
    # and reports that came later, so it tells nothing about earlier cases of the same values.
    opened_event: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Hash(Base):
    """One distinct hash value; shared by every case that submitted it."""

    __tablename__ = "hashes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    signal_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    quality: Mapped[int | None] = mapped_column(SmallInteger)
    # SHA-256 of "signal_type:value": a fixed-size unique key (TMK values are 350 kB of base64,
    # too big for a B-tree index).
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    state: Mapped[str] = mapped_column(String(16), default=HASH_OK, server_default=HASH_OK)
    # Pathways that disputes keep this hash out of until an operator decides (comma-separated,
    # NULL for none): a dispute only ever affects the disputing partners' pathways.
    held_pathways: Mapped[str | None] = mapped_column(String(64))


class CaseHash(Base):
    """Which case holds which hash. Deleted on withdrawal: no link survives it."""

    __tablename__ = "case_hashes"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"),
                                         primary_key=True)
    hash_id: Mapped[int] = mapped_column(ForeignKey("hashes.id"), primary_key=True, index=True)
    # The quality this case reported (the hash row keeps the best anyone reported, for partners;
    # showing that in this case's status would tell of an earlier, better copy).
    quality: Mapped[int | None] = mapped_column(SmallInteger)


class SharedHash(Base):
    """The shared set: (hash, pathway) pairs partners should currently hold. A row exists exactly
    while the change log's last entry for the pair is an `add`."""

    __tablename__ = "shared_hashes"

    hash_id: Mapped[int] = mapped_column(ForeignKey("hashes.id"), primary_key=True)
    pathway: Mapped[str] = mapped_column(String(32), primary_key=True)


class ChangeLogEntry(Base):
    """The ordered spine partners read: every add to and remove from the shared set.

    `seq` order equals commit order (store/changelog.py explains how), so a cursor that remembers
    the last seq it served can never skip an entry. `id` is only the row's identity: on
    PostgreSQL `seq` is assigned at COMMIT by a deferred trigger (migrations/), so an uncommitted
    row has none.
    """

    __tablename__ = "change_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    # The entry's position within its pathway (1, 2, 3, ... per pathway), drawn with `seq`: what a
    # partner entitled to one pathway reads, so it sees no gap where another pathway's entry was.
    pathway_seq: Mapped[int | None] = mapped_column(BigInteger)
    op: Mapped[str] = mapped_column(String(8))
    hash_id: Mapped[int] = mapped_column(ForeignKey("hashes.id"))
    # Copied from the hash when the entry is made: a full sync reads millions of entries, and
    # joining each to `hashes` was most of the database's share of a page (bench/pull_bench.py).
    signal_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    quality: Mapped[int | None] = mapped_column(SmallInteger)
    pathway: Mapped[str] = mapped_column(String(32))
    logged_at: Mapped[int] = mapped_column(BigInteger)  # unix seconds; about the hash, not a person
    # True when, at this point of the log, the hash is also shared under the other pathway: a
    # partner entitled to both pathways skips such entries, so it sees one add when the hash
    # first becomes visible to it and one remove when it stops being visible.
    also_shared: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_change_log_pathway_position", "pathway", "pathway_seq", unique=True),
                      Index("ix_change_log_hash_id", "hash_id"),
                      Index("ix_change_log_logged_at", "logged_at"))


class Partner(Base):
    """A participating platform, entitled to the hashes of some pathways."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    pathways: Mapped[str] = mapped_column(String(128))  # comma-separated PATHWAYS
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The highest change-log position the partner has confirmed receiving (a pull with cursor c
    # proves receipt of everything up to c): "pulled by N partners" without a write per entry.
    acknowledged_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # When that acknowledgement was last written, on the event clock (store/reports.py).
    acknowledged_event: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    def pathway_list(self) -> list[str]:
        return [p for p in self.pathways.split(",") if p]


class PartnerKey(Base):
    __tablename__ = "partner_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    # Keys are "<key id>.<secret>": the id finds the row, the HMAC verifier checks the secret.
    verifier: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Feedback(Base):
    """What a partner did with a hash; one row per (partner, hash, action), so reports are idempotent."""

    __tablename__ = "feedback"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    hash_id: Mapped[int] = mapped_column(ForeignKey("hashes.id"), primary_key=True, index=True)
    action: Mapped[str] = mapped_column(String(16), primary_key=True)
    tags: Mapped[str] = mapped_column(String(512), default="")
    reported_at: Mapped[int] = mapped_column(BigInteger)
    # When, on the event clock: a case's status counts only reports made after it was opened.
    reported_event: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")



# A dispute's life (partners/disputes.py): `acting` counts toward holding the hash back from the
# pathway; `queued` is past its partner's budget and waits for the operator; `overruled` (the
# operator restored the hash, or rejected the dispute) never counts again, even if the partner
# disputes again; `upheld` means the operator agreed and the hash stays out of the pathway.
DISPUTE_ACTING, DISPUTE_QUEUED = "acting", "queued"
DISPUTE_OVERRULED, DISPUTE_UPHELD = "overruled", "upheld"


class Dispute(Base):
    """A partner's `not_violating` report on a hash, one row per pathway it can affect."""

    __tablename__ = "disputes"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    hash_id: Mapped[int] = mapped_column(ForeignKey("hashes.id"), primary_key=True, index=True)
    pathway: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    disputed_at: Mapped[int] = mapped_column(BigInteger)  # unix seconds: the budget's window
    decided_at: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_disputes_partner_state_time", "partner_id", "state", "disputed_at"),)


class LegacyCursorLimit(Base):
    """One row: the last global position when per-pathway positions began (migration 0008). A
    partner entitled to one pathway may still continue from a numeric cursor it was handed before
    (a global position) up to this one; past it a numeric cursor would let it probe global
    positions, and with them the other pathway's entries, so it is refused."""

    __tablename__ = "legacy_cursor_limit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_global_seq: Mapped[int] = mapped_column(BigInteger)


class EventClock(Base):
    """The event clock on SQLite: one row, one counter. It orders case openings, partner reports
    and pull acknowledgements against each other (store/reports.py), and nothing else: it is
    not a time. PostgreSQL draws from the sequence `hashguard_events` instead (no row lock on
    the submit path); this table exists there too, unused, so both schemas are the models'."""

    __tablename__ = "event_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class PartnerWebhook(Base):
    """Where to wake a partner up. Set by the operator (`hashguard partners webhook`), never by
    the partner API: a partner-chosen URL would let anyone make the server call internal hosts."""

    __tablename__ = "partner_webhooks"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    # The highest change-log position a delivery has told the partner about.
    delivered_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookDelivery(Base):
    """Delivery log: one row per attempt (status or short error; never a body or a secret)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    latest_seq: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    attempted_at: Mapped[int] = mapped_column(BigInteger)  # unix seconds
