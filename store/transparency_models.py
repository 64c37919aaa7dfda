"""Tables of the transparency log (partners/transparency.py): one Merkle tree per pathway over the
change log. Built on store/base.py, not on store/models.py, which imports this module to register
them.

Written only by the tree builder, append-only: a leaf or node row never changes once written, so
a head signed over them stays provable. Nothing here is about a person: a leaf row holds a change-
log position, the random nonce of its commitment and its hash.

Every row names its tree (`tree`, TREE_IDS: a small integer rather than the pathway's name, as it
is in every key of the two largest tables). One tree per pathway (migration 0011) because a tree
is served only to partners entitled to its pathway: a shared tree told an adult-only partner
where the under-18 entries were and when they came (a red team's finding, issue 21).
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Index, LargeBinary, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, BigId

# Stable forever: the ids are stored. A new pathway gets a new id (store/merkle.py checks that
# every pathway of store.models.PATHWAYS has one).
TREE_IDS = {"adult": 1, "under18_at_capture": 2}


class TransparencyLeaf(Base):
    """Leaf `leaf_index` of tree `tree` is the change-log entry `seq` (the global position, kept
    for joins and never served to a single-pathway partner), `position` its pathway_seq. Leaves
    follow position order, but positions could have gaps (a commit that fails after drawing
    them), so the index is stored, never derived from the position."""

    __tablename__ = "transparency_leaves"

    tree: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(BigInteger)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(16))
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))

    # The tree size covering a pull cursor: the last leaf of a tree at or before a global seq.
    __table_args__ = (Index("ix_transparency_leaves_tree_seq", "tree", "seq", unique=True),)


class TransparencyNode(Base):
    """The hash of a complete (perfect) subtree of tree `tree`: leaves [index * 2**level,
    (index + 1) * 2**level), level >= store.merkle.MIN_STORED_LEVEL (lower ones are hashed from
    their leaves on demand). Any range's hash, hence any proof, is O(log n) of these plus a few
    leaves."""

    __tablename__ = "transparency_nodes"

    tree: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    node_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class TransparencyHead(Base):
    """A signed head of tree `tree` (Ed25519 over txlog.head.tree_head_bytes with its pathway)."""

    __tablename__ = "transparency_heads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tree: Mapped[int] = mapped_column(SmallInteger)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    key_id: Mapped[bytes] = mapped_column(LargeBinary(32))  # SHA-256 of the raw public key

    __table_args__ = (Index("ix_transparency_heads_tree_id", "tree", "id"),)
