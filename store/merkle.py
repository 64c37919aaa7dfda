"""The server side of the transparency log: appending committed change-log entries to the Merkle
tree (RFC 9162) in seq order, and answering inclusion and consistency proofs from the stored
perfect subtrees in O(log n) reads.

Only complete subtrees of 16+ leaves are stored (TransparencyNode, plus the leaves' hashes; smaller
ones are hashed from their leaves when a proof needs them): they never change
once the tree has grown past them, so a row written is never rewritten, and the hash of any range
[lo, hi) the RFC's proof definitions ask for is the combination of at most log2(n) of them. The
proof functions (txlog/proof.py, shared with the partners' verifier) are written against a
`node(level, index)` lookup; run once with a recorder they name every node they need, which are
then read in one query per table.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.orm import Session

from store.models import ChangeLogEntry
from store.transparency_models import TransparencyHead, TransparencyLeaf, TransparencyNode
from txlog.compact import Frontier, frontier_keys
from txlog.entry import COMMITMENT_CONTEXT, NONCE_BYTES, entry_commitment, leaf_bytes
from txlog.proof import NodeLookup, consistency_proof, inclusion_path, needed_nodes, range_hash
from txlog.rfc6962 import leaf_hash, node_hash

# Subtrees below this level are not stored: a proof needing one reads its (at most 8) leaves
# and hashes them, a few microseconds, while storing levels 1-3 wrote 7/8 of all node rows, one
# row per entry, on the builder's path (bench/transparency_bench.py: the builder's cost is
# charged against submit throughput). Levels >= 4 are 1/8 of a row per entry.
MIN_STORED_LEVEL = 4
# One builder transaction reads at most this many entries, and stops early past this many
# bytes of hash values (TMK values are ~350 kB each).
BATCH_ENTRIES = 5000
BATCH_VALUE_BYTES = 16 * 1024 * 1024


# --- Reading the stored tree -------------------------------------------------------------------

def tree_size(session: Session) -> int:
    last = session.scalar(select(func.max(TransparencyLeaf.leaf_index)))
    return 0 if last is None else last + 1


def last_logged_seq(session: Session) -> int:
    return session.scalar(select(func.max(TransparencyLeaf.seq))) or 0


def fetch_nodes(session: Session, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    found: dict[tuple[int, int], bytes] = {}
    derived = {(level, i) for level, i in keys if 0 < level < MIN_STORED_LEVEL}
    leaves = sorted({i for level, i in keys if level == 0}
                    | {leaf for level, i in derived for leaf in range(i << level, (i + 1) << level)})
    leaf_hash_of: dict[int, bytes] = {}
    if leaves:
        leaf_hash_of = dict(session.execute(
            select(TransparencyLeaf.leaf_index, TransparencyLeaf.leaf_hash)
            .where(TransparencyLeaf.leaf_index.in_(leaves))).all())
        for level, index in keys:
            if level == 0 and index in leaf_hash_of:
                found[(0, index)] = leaf_hash_of[index]
    for level, index in derived:
        hashes = [leaf_hash_of.get(leaf) for leaf in range(index << level, (index + 1) << level)]
        if None not in hashes:
            found[(level, index)] = _perfect_subtree_hash(hashes)
    by_level: dict[int, list[int]] = {}
    for level, index in keys:
        if level >= MIN_STORED_LEVEL:
            by_level.setdefault(level, []).append(index)
    if by_level:
        condition = or_(*(and_(TransparencyNode.level == level, TransparencyNode.node_index.in_(ix))
                          for level, ix in by_level.items()))
        for level, index, h in session.execute(
                select(TransparencyNode.level, TransparencyNode.node_index, TransparencyNode.hash)
                .where(condition)):
            found[(level, index)] = h
    missing = keys - found.keys()
    if missing:
        raise LookupError(f"transparency tree is missing nodes {sorted(missing)[:5]}")
    return found


def _perfect_subtree_hash(leaf_hashes: list[bytes]) -> bytes:
    """MTH of a power-of-two run of leaf hashes (a subtree below MIN_STORED_LEVEL)."""
    while len(leaf_hashes) > 1:
        leaf_hashes = [node_hash(leaf_hashes[i], leaf_hashes[i + 1])
                       for i in range(0, len(leaf_hashes), 2)]
    return leaf_hashes[0]


def stored(nodes: list[tuple[int, int, bytes]]) -> list[tuple[int, int, bytes]]:
    """The completed subtrees (Frontier.append's) that are kept: those at MIN_STORED_LEVEL+."""
    return [node for node in nodes if node[0] >= MIN_STORED_LEVEL]


def with_stored_nodes(session: Session, compute: Callable[[NodeLookup], object]):
    """Run `compute` against the stored tree, reading every node it needs in one go."""
    nodes = fetch_nodes(session, needed_nodes(compute))
    return compute(lambda level, index: nodes[(level, index)])


def stored_frontier(session: Session, size: int) -> Frontier:
    keys = frontier_keys(size)
    nodes = fetch_nodes(session, set(keys))
    return Frontier(size, [nodes[k] for k in keys])


def root_at(session: Session, size: int) -> bytes:
    return with_stored_nodes(session, lambda node: range_hash(0, size, node))


def prove_inclusion(session: Session, index: int, size: int) -> tuple[bytes, list[bytes]]:
    """(leaf hash, audit path) of leaf `index` in the tree of `size` leaves."""
    def compute(node):
        return node(0, index), inclusion_path(index, size, node)
    return with_stored_nodes(session, compute)


def prove_consistency(session: Session, first: int, second: int) -> list[bytes]:
    return with_stored_nodes(session, lambda node: consistency_proof(first, second, node))


def latest_head(session: Session) -> TransparencyHead | None:
    return session.scalars(select(TransparencyHead).order_by(TransparencyHead.id.desc())
                           .limit(1)).first()


def leaf_index_of(session: Session, seq: int) -> int | None:
    return session.scalar(select(TransparencyLeaf.leaf_index).where(TransparencyLeaf.seq == seq))


def tree_size_for(session: Session, seq: int) -> int:
    """The size of the tree whose leaves are exactly the change-log entries with position <= seq
    (what a pull page that ends at cursor `seq` reflects). When the builder has not reached seq
    yet, the leaves it will add are counted: they are committed and will be added in seq order."""
    last = session.execute(select(TransparencyLeaf.leaf_index, TransparencyLeaf.seq)
                           .order_by(TransparencyLeaf.leaf_index.desc()).limit(1)).first()
    if last is not None and last.seq >= seq:
        index = session.scalar(select(TransparencyLeaf.leaf_index).where(TransparencyLeaf.seq <= seq)
                               .order_by(TransparencyLeaf.seq.desc()).limit(1))
        return 0 if index is None else index + 1
    built, after = (0, 0) if last is None else (last.leaf_index + 1, last.seq)
    pending = session.scalar(select(func.count()).select_from(ChangeLogEntry)
                             .where(ChangeLogEntry.seq > after, ChangeLogEntry.seq <= seq))
    return built + pending


def entries(session: Session, start: int, end: int):
    """Leaves [start, end) with the change-log entry each one logs, as the change log holds it
    now (the same row the pull serves)."""
    return session.execute(
        select(TransparencyLeaf.leaf_index, TransparencyLeaf.seq, TransparencyLeaf.nonce,
               TransparencyLeaf.leaf_hash, ChangeLogEntry.op, ChangeLogEntry.pathway,
               ChangeLogEntry.signal_type, ChangeLogEntry.value)
        .outerjoin(ChangeLogEntry, ChangeLogEntry.seq == TransparencyLeaf.seq)
        .where(TransparencyLeaf.leaf_index >= start, TransparencyLeaf.leaf_index < end)
        .order_by(TransparencyLeaf.leaf_index)).all()


# --- Growing the tree --------------------------------------------------------------------------

def pending_entries(session: Session, after_seq: int, limit: int = BATCH_ENTRIES):
    """Committed change-log entries after `after_seq`, in seq order, with their hash values
    (cut short after BATCH_VALUE_BYTES of values, but never empty when one is pending)."""
    sizes = session.execute(
        select(ChangeLogEntry.seq, func.length(ChangeLogEntry.value))
        .where(ChangeLogEntry.seq > after_seq)
        .order_by(ChangeLogEntry.seq).limit(limit)).all()
    if not sizes:
        return []
    total, last = 0, sizes[-1][0]
    for seq, size in sizes:
        total += size
        if total > BATCH_VALUE_BYTES:
            last = seq
            break
    return session.execute(
        select(ChangeLogEntry.seq, ChangeLogEntry.op, ChangeLogEntry.signal_type,
               ChangeLogEntry.value, ChangeLogEntry.pathway)
        .where(ChangeLogEntry.seq > after_seq, ChangeLogEntry.seq <= last)
        .order_by(ChangeLogEntry.seq)).all()


# PostgreSQL computes the leaves where the entries are (txlog/entry.py's leaf_bytes and
# entry_commitment, byte for byte, with the built-in sha256): the values never travel to the
# builder, and its per-entry work in Python is one frontier step. Measured per entry at 50 k
# entries: 30 us of builder CPU computing leaves in Python, vs. the figure in bench/
# transparency_bench.py for this path. The nonce is 16 bytes of gen_random_uuid() (a v4 UUID:
# 122 random bits from the server's strong random source), enough to keep a commitment hiding.
# tests/test_transparency_tree.py recomputes every stored leaf in Python.
_EXTEND_FROM_LOG = text("""
    WITH pending AS (
        SELECT seq, op, signal_type, value, pathway,
               sum(octet_length(value)) OVER (ORDER BY seq) AS running
        FROM change_log WHERE seq > :after ORDER BY seq LIMIT :limit),
    chosen AS (
        SELECT p.*, row_number() OVER (ORDER BY seq) - 1 + :size AS leaf_index,
               uuid_send(gen_random_uuid()) AS nonce
        FROM pending p
        WHERE running - octet_length(value) < :max_bytes),
    leaves AS (
        INSERT INTO transparency_leaves (leaf_index, seq, nonce, leaf_hash)
        SELECT leaf_index, seq, nonce, sha256(
            '\\x0001'::bytea || int8send(seq)
            || int4send(octet_length(pathway)) || convert_to(pathway, 'UTF8')
            || '\\x00000020'::bytea
            || sha256(:context || int4send(16) || nonce
                      || int4send(octet_length(op)) || convert_to(op, 'UTF8')
                      || int4send(octet_length(signal_type)) || convert_to(signal_type, 'UTF8')
                      || int4send(octet_length(value)) || convert_to(value, 'UTF8')))
        FROM chosen
        RETURNING leaf_index, seq, leaf_hash)
    SELECT seq, leaf_hash FROM leaves ORDER BY leaf_index
""")


def extend_from_log(session: Session, frontier: Frontier, after_seq: int) -> tuple[int, int]:
    """Append the committed change-log entries after `after_seq` (one batch, in seq order) to the
    stored tree and to `frontier`. Returns (entries appended, last seq appended or after_seq)."""
    if session.get_bind().dialect.name != "postgresql":
        pending = pending_entries(session, after_seq)
        append(session, frontier, pending)
        return len(pending), (pending[-1][0] if pending else after_seq)
    cursor = session.connection().connection.driver_connection.cursor()
    rows = session.execute(_EXTEND_FROM_LOG, {
        "after": after_seq, "limit": BATCH_ENTRIES, "size": frontier.size,
        "max_bytes": BATCH_VALUE_BYTES, "context": COMMITMENT_CONTEXT}).all()
    nodes = []
    for _, h in rows:
        nodes += frontier.append(h)
    _copy_nodes(cursor, stored(nodes))
    return len(rows), (rows[-1][0] if rows else after_seq)


def _copy_nodes(cursor, nodes: list[tuple[int, int, bytes]]) -> None:
    if nodes:
        with cursor.copy("COPY transparency_nodes (level, node_index, hash) FROM STDIN") as copy:
            for row in nodes:
                copy.write_row(row)


def append(session: Session, frontier: Frontier, new_entries) -> None:
    """Append entries (seq, op, signal_type, value, pathway) to the stored tree and `frontier`."""
    leaves, nodes = [], []
    for seq, op, signal_type, value, pathway in new_entries:
        nonce = os.urandom(NONCE_BYTES)
        h = leaf_hash(leaf_bytes(seq, pathway, entry_commitment(op, signal_type, value, nonce)))
        leaves.append((frontier.size, seq, nonce, h))
        nodes += stored(frontier.append(h))
    if not leaves:
        return
    if session.get_bind().dialect.name == "postgresql":
        # COPY: binary rows straight into the tables (bytea arrays as parameters cost more in
        # escaping than the database spends storing them).
        cursor = session.connection().connection.driver_connection.cursor()
        with cursor.copy("COPY transparency_leaves (leaf_index, seq, nonce, leaf_hash) "
                         "FROM STDIN") as copy:
            for row in leaves:
                copy.write_row(row)
        _copy_nodes(cursor, nodes)
        return
    session.execute(TransparencyLeaf.__table__.insert(), [
        {"leaf_index": i, "seq": s, "nonce": n, "leaf_hash": h} for i, s, n, h in leaves])
    if nodes:
        session.execute(TransparencyNode.__table__.insert(), [
            {"level": level, "node_index": i, "hash": h} for level, i, h in nodes])


def add_head(session: Session, size: int, timestamp_ms: int, root: bytes, signature: bytes,
             key_id: bytes) -> TransparencyHead:
    head = TransparencyHead(tree_size=size, timestamp_ms=timestamp_ms, root_hash=root,
                            signature=signature, key_id=key_id)
    session.add(head)
    session.flush()
    return head


def leaf_hashes(session: Session, start: int, end: int) -> Sequence[bytes]:
    return session.scalars(select(TransparencyLeaf.leaf_hash)
                           .where(TransparencyLeaf.leaf_index >= start,
                                  TransparencyLeaf.leaf_index < end)
                           .order_by(TransparencyLeaf.leaf_index)).all()
