"""The Merkle tree against RFC 9162's definitions, written out naively here (lists, recursion, no
stored nodes), for every tree size 1..64: tree hashes, inclusion and consistency proofs, as the
server computes them (store/merkle.py, from stored subtrees; txlog/proof.py) and as the verifier
checks them (txlog/proof.py)."""
from __future__ import annotations

import hashlib
import random

import pytest

from store import merkle
from txlog.compact import Frontier, frontier_keys, root_of_leaf_hashes
from txlog.entry import entry_commitment, leaf_bytes
from txlog.errors import VerificationError
from txlog.proof import (
    consistency_proof,
    inclusion_path,
    range_hash,
    verify_consistency,
    verify_inclusion,
)
from txlog.rfc6962 import EMPTY_ROOT, leaf_hash

SIZES = range(1, 65)


# --- RFC 9162 section 2.1, literally -----------------------------------------------------------

def ref_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return ref_hash(b"")
    if n == 1:
        return ref_hash(b"\x00" + d[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return ref_hash(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


def leaves(n: int) -> list[bytes]:
    return [f"leaf {i}".encode() for i in range(n)]


class MemoryTree:
    """The server's stored-subtree representation, filled by Frontier.append like the builder."""

    def __init__(self, data: list[bytes]):
        self.frontier = Frontier()
        self.nodes: dict[tuple[int, int], bytes] = {}
        for i, item in enumerate(data):
            h = leaf_hash(item)
            self.nodes[(0, i)] = h
            for level, index, node in self.frontier.append(h):
                self.nodes[(level, index)] = node

    def node(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]


# --- Tree hashes -------------------------------------------------------------------------------

def test_empty_tree_hash_is_hash_of_nothing():
    assert Frontier().root() == ref_mth([]) == EMPTY_ROOT


@pytest.mark.parametrize("n", SIZES)
def test_tree_hash_equals_the_rfc_definition(n):
    d = leaves(n)
    tree = MemoryTree(d)
    assert tree.frontier.root() == ref_mth(d)
    assert root_of_leaf_hashes([leaf_hash(x) for x in d]) == ref_mth(d)
    for size in range(1, n + 1):  # every earlier size, from the stored subtrees
        assert range_hash(0, size, tree.node) == ref_mth(d[:size])
        assert Frontier(size, [tree.node(*k) for k in frontier_keys(size)]).root() \
            == ref_mth(d[:size])


# --- Inclusion proofs --------------------------------------------------------------------------

@pytest.mark.parametrize("n", SIZES)
def test_inclusion_proofs_equal_the_rfc_definition_and_verify(n):
    d = leaves(n)
    tree = MemoryTree(d)
    for size in range(1, n + 1):
        root = ref_mth(d[:size])
        for m in range(size):
            path = inclusion_path(m, size, tree.node)
            assert path == ref_path(m, d[:size]), (m, size)
            verify_inclusion(m, size, leaf_hash(d[m]), path, root)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 31, 32, 33, 64])
def test_wrong_inclusion_proofs_are_rejected(n):
    d = leaves(n)
    root = ref_mth(d)
    rng = random.Random(n)
    for m in range(n):
        path = ref_path(m, d)
        leaf = leaf_hash(d[m])
        bad = [
            (m, n, leaf_hash(b"other"), path),                  # another leaf
            (m, n, leaf, path + [root]),                             # too long
        ]
        if path:
            bad.append((m, n, leaf, path[:-1]))                      # too short
            flipped = list(path)
            i = rng.randrange(len(flipped))
            flipped[i] = bytes([flipped[i][0] ^ 1]) + flipped[i][1:]
            bad.append((m, n, leaf, flipped))                        # a tampered sibling
        if n > 1:
            bad.append(((m + 1) % n, n, leaf, path))                 # wrong index
        for args in bad:
            with pytest.raises(VerificationError):
                verify_inclusion(*args, root)


# --- Consistency proofs ------------------------------------------------------------------------

@pytest.mark.parametrize("n", SIZES)
def test_consistency_proofs_equal_the_rfc_definition_and_verify(n):
    d = leaves(n)
    tree = MemoryTree(d)
    for second in range(1, n + 1):
        second_root = ref_mth(d[:second])
        for first in range(1, second + 1):
            proof = consistency_proof(first, second, tree.node)
            expected = ref_proof(first, d[:second]) if first < second else []
            assert proof == expected, (first, second)
            verify_consistency(first, second, ref_mth(d[:first]), second_root, proof)


@pytest.mark.parametrize("n", [2, 3, 4, 7, 8, 9, 17, 33, 64])
def test_inconsistent_trees_are_rejected(n):
    d = leaves(n)
    tree = MemoryTree(d)
    for first in range(1, n):
        proof = consistency_proof(first, n, tree.node)
        first_root, second_root = ref_mth(d[:first]), ref_mth(d)
        # A log whose first `first` entries were rewritten: same sizes, other history.
        forged = list(d)
        forged[first - 1] = b"rewritten"
        with pytest.raises(VerificationError):
            verify_consistency(first, n, ref_mth(forged[:first]), second_root, proof)
        with pytest.raises(VerificationError):
            verify_consistency(first, n, first_root, ref_mth(forged), proof)
        if proof:
            with pytest.raises(VerificationError):
                verify_consistency(first, n, first_root, second_root, proof[:-1])
            with pytest.raises(VerificationError):
                verify_consistency(first, n, first_root, second_root, proof + [first_root])
    with pytest.raises(VerificationError):  # two roots for one size: a fork
        verify_consistency(n, n, ref_mth(d), ref_mth(d[::-1]), [])
    with pytest.raises(VerificationError):  # the log shrank
        verify_consistency(n, n - 1, ref_mth(d), ref_mth(d[:-1]), [])


# --- The stored tree, on both databases --------------------------------------------------------

def test_stored_tree_grown_in_uneven_batches_proves_like_the_rfc(database_url):
    """Entries appended by the builder's store functions in random batch sizes, to two trees
    interleaved: the stored leaves and subtrees of each give the RFC's root, paths and proofs for
    every size up to 64, and neither tree's rows enter the other's."""
    from store.db import Database

    db = Database(database_url)
    rng = random.Random(9)
    frontiers = {"adult": Frontier(), "under18_at_capture": Frontier()}
    entries = {p: [(2 * n + k, n, "add", "pdq", f"{2 * n + k:064x}") for n in range(1, 65)]
               for k, p in enumerate(frontiers)}
    positions = dict.fromkeys(frontiers, 0)
    while any(positions[p] < 64 for p in frontiers):
        for pathway, frontier in frontiers.items():
            batch = entries[pathway][positions[pathway]:positions[pathway] + rng.randint(1, 9)]
            with db.transaction() as session:
                merkle.append(session, pathway, frontier, batch)
            positions[pathway] += len(batch)
    with db.read() as session:
        for pathway, frontier in frontiers.items():
            stored = merkle.leaf_hashes(session, pathway, 0, 64)
            assert merkle.tree_size(session, pathway) == 64
            assert merkle.last_logged_position(session, pathway) == 64
            assert stored == [leaf_hash(leaf_bytes(position, pathway, entry_commitment(
                op, kind, value, nonce))) for (_, position, op, kind, value), nonce in zip(
                entries[pathway], _nonces(session, pathway))]
            for size in SIZES:
                assert merkle.root_at(session, pathway, size) == root_of_leaf_hashes(stored[:size])
            for size in (1, 2, 3, 7, 8, 9, 31, 33, 64):
                for m in range(0, size, 3):
                    leaf, path = merkle.prove_inclusion(session, pathway, m, size)
                    assert leaf == stored[m]
                    verify_inclusion(m, size, leaf, path, merkle.root_at(session, pathway, size))
                for first in range(1, size):
                    proof = merkle.prove_consistency(session, pathway, first, size)
                    verify_consistency(first, size, merkle.root_at(session, pathway, first),
                                       merkle.root_at(session, pathway, size), proof)
            assert merkle.stored_frontier(session, pathway, 64).root() == frontier.root()
        assert frontiers["adult"].root() != frontiers["under18_at_capture"].root()
        # Subtrees below MIN_STORED_LEVEL are hashed from their leaves, never stored.
        from sqlalchemy import func, select

        from store.transparency_models import TransparencyNode
        levels = session.execute(select(TransparencyNode.tree, TransparencyNode.level, func.count())
                                 .group_by(TransparencyNode.tree, TransparencyNode.level)).all()
        assert {(t, level): n for t, level, n in levels} == {
            (t, level): n for t in (1, 2) for level, n in ((4, 4), (5, 2), (6, 1))}
    db.dispose()


def _nonces(session, pathway):
    from sqlalchemy import select

    from store.transparency_models import TransparencyLeaf
    return session.scalars(select(TransparencyLeaf.nonce)
                           .where(TransparencyLeaf.tree == merkle.tree_id(pathway))
                           .order_by(TransparencyLeaf.leaf_index)).all()


def test_leaves_grown_from_the_log_equal_the_python_definition(database_url):
    """The builder's path from the change log (computed inside PostgreSQL; in Python on SQLite)
    stores, for every entry, exactly the leaf txlog/entry.py defines, in its pathway's tree in
    pathway_seq order, and a batch stops early after BATCH_VALUE_BYTES of values."""
    from sqlalchemy import select

    from hashing.signals import Signal
    from store import cases as store_cases
    from store.db import Database
    from store.models import ChangeLogEntry
    from store.transparency_models import TransparencyLeaf

    db = Database(database_url)
    rng = random.Random(5)
    long_value = "A" * (merkle.BATCH_VALUE_BYTES // 2 + 1)  # two of these overflow one batch
    for pathway in ("adult", "under18_at_capture", "adult"):
        with db.transaction() as session:
            store_cases.create_case(session, pathway, [
                Signal("pdq", f"{rng.getrandbits(256):064x}", 90) for _ in range(3)], bytes(32))
    postgres = database_url.startswith("postgresql")
    with db.transaction() as session:  # big values go straight into the log (no validation)
        for n in range(3):
            session.add(ChangeLogEntry(op="add", hash_id=1, signal_type="video_tmk_pdqf",
                                       value=long_value + str(n), quality=None, pathway="adult",
                                       logged_at=0, also_shared=False,
                                       seq=None if postgres else 10**6 + n,
                                       pathway_seq=None if postgres else 7 + n))
    batches = {}
    for pathway in ("adult", "under18_at_capture"):
        frontier, after, batches[pathway] = Frontier(), 0, []
        while True:
            with db.transaction() as session:
                count, after = merkle.extend_from_log(session, pathway, frontier, after)
            if not count:
                break
            batches[pathway].append(count)
        with db.read() as session:
            assert merkle.root_at(session, pathway, frontier.size) == frontier.root()
    # adult: 6 PDQ + two long values (the second crosses the cap), then the third
    assert batches == {"adult": [8, 1], "under18_at_capture": [3]}
    with db.read() as session:
        log = {e.seq: e for e in session.scalars(select(ChangeLogEntry))}
        for pathway in ("adult", "under18_at_capture"):
            leaves = session.scalars(select(TransparencyLeaf)
                                     .where(TransparencyLeaf.tree == merkle.tree_id(pathway))
                                     .order_by(TransparencyLeaf.leaf_index)).all()
            assert [leaf.seq for leaf in leaves] == sorted(
                s for s, e in log.items() if e.pathway == pathway)
            assert [leaf.position for leaf in leaves] == list(range(1, len(leaves) + 1))
            for leaf in leaves:
                e = log[leaf.seq]
                assert len(leaf.nonce) == merkle.NONCE_BYTES
                expected = leaf_hash(leaf_bytes(
                    e.pathway_seq, pathway,
                    entry_commitment(e.op, e.signal_type, e.value, leaf.nonce)))
                assert leaf.leaf_hash == expected
            assert merkle.root_at(session, pathway, len(leaves)) == root_of_leaf_hashes(
                [leaf.leaf_hash for leaf in leaves])
        nonces = session.scalars(select(TransparencyLeaf.nonce)).all()
    assert len(set(nonces)) == len(nonces) == 12
    db.dispose()
