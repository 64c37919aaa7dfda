"""Tables of the transparency log (partners/transparency.py): the Merkle tree over the change log.
Built on store/base.py, not on store/models.py, which imports this module to register them.

Written only by the tree builder, append-only: a leaf or node row never changes once written, so
a head signed over them stays provable. Nothing here is about a person: a leaf row holds a change-
log position, the random nonce of its commitment and its hash.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Index, LargeBinary, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, BigId


class TransparencyLeaf(Base):
    """Leaf `leaf_index` of the tree is the change-log entry `seq`. Leaves follow seq order, but
    seqs can have gaps (a commit that fails after drawing its positions), so the index is stored,
    never derived from seq."""

    __tablename__ = "transparency_leaves"

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(16))
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class TransparencyNode(Base):
    """The hash of a complete (perfect) subtree: leaves [index * 2**level, (index + 1) * 2**level),
    level >= store.merkle.MIN_STORED_LEVEL (lower ones are hashed from their leaves on demand;
    a database built before that also holds levels 1-3, unused). Any range's hash, hence any
    proof, is O(log n) of these plus a few leaves."""

    __tablename__ = "transparency_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    node_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class TransparencyHead(Base):
    """A signed tree head (Ed25519 over txlog.head.tree_head_bytes)."""

    __tablename__ = "transparency_heads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    key_id: Mapped[bytes] = mapped_column(LargeBinary(32))  # SHA-256 of the raw public key

    __table_args__ = (Index("ix_transparency_heads_tree_size", "tree_size"),)
