"""The server side of the transparency log: appending committed change-log entries to their
pathway's Merkle tree (RFC 9162) in pathway_seq order, and answering inclusion and consistency
proofs from the stored perfect subtrees in O(log n) reads. Every function works on one tree, named
by its pathway (store/transparency_models.py says why there is one per pathway).

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

from store.models import PATHWAYS, ChangeLogEntry
from store.transparency_models import (
    TREE_IDS,
    TransparencyHead,
    TransparencyLeaf,
    TransparencyNode,
)
from txlog.compact import Frontier, frontier_keys
from txlog.entry import COMMITMENT_CONTEXT, NONCE_BYTES, entry_commitment, leaf_bytes
from txlog.proof import (
    NodeLookup,
    consistency_proof,
    inclusion_path,
    needed_nodes,
    range_hash,
)
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


assert set(TREE_IDS) == set(PATHWAYS), "every pathway needs a tree id (transparency_models)"


def tree_id(pathway: str) -> int:
    return TREE_IDS[pathway]


# --- Reading the stored tree -------------------------------------------------------------------

def tree_size(session: Session, pathway: str) -> int:
    last = session.scalar(select(func.max(TransparencyLeaf.leaf_index))
                          .where(TransparencyLeaf.tree == tree_id(pathway)))
    return 0 if last is None else last + 1


def last_logged_position(session: Session, pathway: str) -> int:
    """The pathway_seq of the tree's last leaf (0 for an empty tree)."""
    return session.scalar(select(TransparencyLeaf.position)
                          .where(TransparencyLeaf.tree == tree_id(pathway))
                          .order_by(TransparencyLeaf.leaf_index.desc()).limit(1)) or 0


def fetch_nodes(session: Session, pathway: str,
                keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    tree = tree_id(pathway)
    found: dict[tuple[int, int], bytes] = {}
    derived = {(level, i) for level, i in keys if 0 < level < MIN_STORED_LEVEL}
    leaves = sorted({i for level, i in keys if level == 0}
                    | {leaf for level, i in derived for leaf in range(i << level, (i + 1) << level)})
    leaf_hash_of: dict[int, bytes] = {}
    if leaves:
        leaf_hash_of = dict(session.execute(
            select(TransparencyLeaf.leaf_index, TransparencyLeaf.leaf_hash)
            .where(TransparencyLeaf.tree == tree, TransparencyLeaf.leaf_index.in_(leaves))).all())
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
                .where(TransparencyNode.tree == tree, condition)):
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


def with_stored_nodes(session: Session, pathway: str, compute: Callable[[NodeLookup], object]):
    """Run `compute` against the stored tree, reading every node it needs in one go."""
    nodes = fetch_nodes(session, pathway, needed_nodes(compute))
    return compute(lambda level, index: nodes[(level, index)])


def stored_frontier(session: Session, pathway: str, size: int) -> Frontier:
    keys = frontier_keys(size)
    nodes = fetch_nodes(session, pathway, set(keys))
    return Frontier(size, [nodes[k] for k in keys])


def root_at(session: Session, pathway: str, size: int) -> bytes:
    return with_stored_nodes(session, pathway, lambda node: range_hash(0, size, node))


def prove_inclusion(session: Session, pathway: str, index: int,
                    size: int) -> tuple[bytes, list[bytes]]:
    """(leaf hash, audit path) of leaf `index` in the pathway's tree of `size` leaves."""
    def compute(node):
        return node(0, index), inclusion_path(index, size, node)
    return with_stored_nodes(session, pathway, compute)


def prove_consistency(session: Session, pathway: str, first: int, second: int) -> list[bytes]:
    return with_stored_nodes(session, pathway,
                             lambda node: consistency_proof(first, second, node))


def latest_head(session: Session, pathway: str) -> TransparencyHead | None:
    return session.scalars(select(TransparencyHead)
                           .where(TransparencyHead.tree == tree_id(pathway))
                           .order_by(TransparencyHead.id.desc()).limit(1)).first()


def tree_size_for(session: Session, pathway: str, seq: int) -> int:
    """The size of the pathway's tree whose leaves are exactly its change-log entries with global
    position <= seq (what a pull page that ends at global position `seq` reflects). When the
    builder has not reached seq yet, the leaves it will add are counted: they are committed and
    will be added in order."""
    tree = tree_id(pathway)
    last = session.execute(select(TransparencyLeaf.leaf_index, TransparencyLeaf.seq)
                           .where(TransparencyLeaf.tree == tree)
                           .order_by(TransparencyLeaf.leaf_index.desc()).limit(1)).first()
    if last is not None and last.seq >= seq:
        index = session.scalar(select(TransparencyLeaf.leaf_index)
                               .where(TransparencyLeaf.tree == tree, TransparencyLeaf.seq <= seq)
                               .order_by(TransparencyLeaf.seq.desc()).limit(1))
        return 0 if index is None else index + 1
    built, after = (0, 0) if last is None else (last.leaf_index + 1, last.seq)
    pending = session.scalar(select(func.count()).select_from(ChangeLogEntry)
                             .where(ChangeLogEntry.seq > after, ChangeLogEntry.seq <= seq,
                                    ChangeLogEntry.pathway == pathway))
    return built + pending


def entries(session: Session, pathway: str, start: int, end: int):
    """Leaves [start, end) of the pathway's tree with the change-log entry each one logs, as the
    change log holds it now (the same row the pull serves)."""
    return session.execute(
        select(TransparencyLeaf.leaf_index, TransparencyLeaf.seq, TransparencyLeaf.position,
               TransparencyLeaf.nonce, TransparencyLeaf.leaf_hash, ChangeLogEntry.op, ChangeLogEntry.pathway,
               ChangeLogEntry.signal_type, ChangeLogEntry.value,
               ChangeLogEntry.pathway_seq, ChangeLogEntry.seq.label("log_seq"))
        .outerjoin(ChangeLogEntry, ChangeLogEntry.seq == TransparencyLeaf.seq)
        .where(TransparencyLeaf.tree == tree_id(pathway), TransparencyLeaf.leaf_index >= start,
               TransparencyLeaf.leaf_index < end)
        .order_by(TransparencyLeaf.leaf_index)).all()


# --- Growing the tree --------------------------------------------------------------------------

def _of_pathway(pathway: str, after_position: int):
    return (ChangeLogEntry.pathway == pathway) & (ChangeLogEntry.pathway_seq > after_position)


def pending_entries(session: Session, pathway: str, after_position: int,
                    limit: int = BATCH_ENTRIES):
    """Committed change-log entries of `pathway` after its position `after_position`, in
    pathway_seq order, with their hash values (cut short after BATCH_VALUE_BYTES of values, but
    never empty when one is pending): rows (seq, pathway_seq, op, signal_type, value)."""
    sizes = session.execute(
        select(ChangeLogEntry.pathway_seq, func.length(ChangeLogEntry.value))
        .where(_of_pathway(pathway, after_position))
        .order_by(ChangeLogEntry.pathway_seq).limit(limit)).all()
    if not sizes:
        return []
    total, last = 0, sizes[-1][0]
    for position, size in sizes:
        total += size
        if total > BATCH_VALUE_BYTES:
            last = position
            break
    return session.execute(
        select(ChangeLogEntry.seq, ChangeLogEntry.pathway_seq, ChangeLogEntry.op,
               ChangeLogEntry.signal_type, ChangeLogEntry.value)
        .where(_of_pathway(pathway, after_position), ChangeLogEntry.pathway_seq <= last)
        .order_by(ChangeLogEntry.pathway_seq)).all()


# PostgreSQL computes the leaves where the entries are (txlog/entry.py's leaf_bytes and
# entry_commitment, byte for byte, with the built-in sha256): the values never travel to the
# builder, and its per-entry work in Python is one frontier step. Measured per entry at 50 k
# entries: 30 us of builder CPU computing leaves in Python, vs. the figure in bench/
# transparency_bench.py for this path. The nonce is 16 bytes of gen_random_uuid() (a v4 UUID:
# 122 random bits from the server's strong random source), enough to keep a commitment hiding.
# tests/test_transparency_tree.py recomputes every stored leaf in Python.
_EXTEND_FROM_LOG = text("""
    WITH pending AS (
        SELECT seq, pathway_seq, op, signal_type, value, pathway,
               sum(octet_length(value)) OVER (ORDER BY pathway_seq) AS running
        FROM change_log WHERE pathway = :pathway AND pathway_seq > :after
        ORDER BY pathway_seq LIMIT :limit),
    chosen AS (
        SELECT p.*, row_number() OVER (ORDER BY pathway_seq) - 1 + :size AS leaf_index,
               uuid_send(gen_random_uuid()) AS nonce
        FROM pending p
        WHERE running - octet_length(value) < :max_bytes),
    leaves AS (
        INSERT INTO transparency_leaves (tree, leaf_index, seq, position, nonce, leaf_hash)
        SELECT :tree, leaf_index, seq, pathway_seq, nonce, sha256(
            '\\x0002'::bytea || int8send(pathway_seq)
            || int4send(octet_length(pathway)) || convert_to(pathway, 'UTF8')
            || '\\x00000020'::bytea
            || sha256(:context || int4send(16) || nonce
                      || int4send(octet_length(op)) || convert_to(op, 'UTF8')
                      || int4send(octet_length(signal_type)) || convert_to(signal_type, 'UTF8')
                      || int4send(octet_length(value)) || convert_to(value, 'UTF8')))
        FROM chosen
        RETURNING leaf_index, position, leaf_hash)
    SELECT position, leaf_hash FROM leaves ORDER BY leaf_index
""")


def extend_from_log(session: Session, pathway: str, frontier: Frontier,
                    after_position: int) -> tuple[int, int]:
    """Append the pathway's committed change-log entries after its position `after_position`
    (one batch, in pathway_seq order) to its stored tree and to `frontier`. Returns (entries
    appended, last position appended or after_position)."""
    if session.get_bind().dialect.name != "postgresql":
        pending = pending_entries(session, pathway, after_position)
        append(session, pathway, frontier, pending)
        return len(pending), (pending[-1][1] if pending else after_position)
    cursor = session.connection().connection.driver_connection.cursor()
    rows = session.execute(_EXTEND_FROM_LOG, {
        "pathway": pathway, "tree": tree_id(pathway), "after": after_position,
        "limit": BATCH_ENTRIES, "size": frontier.size, "max_bytes": BATCH_VALUE_BYTES,
        "context": COMMITMENT_CONTEXT}).all()
    nodes = []
    for _, h in rows:
        nodes += frontier.append(h)
    _copy_nodes(cursor, tree_id(pathway), stored(nodes))
    return len(rows), (rows[-1][0] if rows else after_position)


def _copy_nodes(cursor, tree: int, nodes: list[tuple[int, int, bytes]]) -> None:
    if nodes:
        with cursor.copy("COPY transparency_nodes (tree, level, node_index, hash) "
                         "FROM STDIN") as copy:
            for row in nodes:
                copy.write_row((tree, *row))


def append(session: Session, pathway: str, frontier: Frontier, new_entries) -> None:
    """Append entries (seq, pathway_seq, op, signal_type, value) of `pathway` to its stored tree
    and to `frontier`."""
    tree = tree_id(pathway)
    leaves, nodes = [], []
    for seq, position, op, signal_type, value in new_entries:
        nonce = os.urandom(NONCE_BYTES)
        h = leaf_hash(leaf_bytes(position, pathway,
                                 entry_commitment(op, signal_type, value, nonce)))
        leaves.append((tree, frontier.size, seq, position, nonce, h))
        nodes += stored(frontier.append(h))
    if not leaves:
        return
    if session.get_bind().dialect.name == "postgresql":
        # COPY: binary rows straight into the tables (bytea arrays as parameters cost more in
        # escaping than the database spends storing them).
        cursor = session.connection().connection.driver_connection.cursor()
        with cursor.copy("COPY transparency_leaves (tree, leaf_index, seq, position, nonce, "
                         "leaf_hash) FROM STDIN") as copy:
            for row in leaves:
                copy.write_row(row)
        _copy_nodes(cursor, tree, nodes)
        return
    session.execute(TransparencyLeaf.__table__.insert(), [
        {"tree": t, "leaf_index": i, "seq": s, "position": p, "nonce": n, "leaf_hash": h}
        for t, i, s, p, n, h in leaves])
    if nodes:
        session.execute(TransparencyNode.__table__.insert(), [
            {"tree": tree, "level": level, "node_index": i, "hash": h} for level, i, h in nodes])


def add_head(session: Session, pathway: str, size: int, timestamp_ms: int, root: bytes,
             signature: bytes, key_id: bytes) -> TransparencyHead:
    head = TransparencyHead(tree=tree_id(pathway), tree_size=size, timestamp_ms=timestamp_ms,
                            root_hash=root, signature=signature, key_id=key_id)
    session.add(head)
    session.flush()
    return head


def leaf_hashes(session: Session, pathway: str, start: int, end: int) -> Sequence[bytes]:
    return session.scalars(select(TransparencyLeaf.leaf_hash)
                           .where(TransparencyLeaf.tree == tree_id(pathway),
                                  TransparencyLeaf.leaf_index >= start,
                                  TransparencyLeaf.leaf_index < end)
                           .order_by(TransparencyLeaf.leaf_index)).all()
