"""Inclusion and consistency proofs (RFC 9162 sections 2.1.3 and 2.1.4): building them from a
`node(level, index)` lookup (the server, store/merkle.py) and verifying them (a partner's
verifier, partner_tools/transparency.py; the tests, against the builders)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from txlog.errors import InclusionError, InconsistencyError
from txlog.rfc6962 import EMPTY_ROOT, node_hash, split_point

# (level, index) -> the hash of leaves [index * 2**level, (index + 1) * 2**level)
NodeLookup = Callable[[int, int], bytes]


# --- Building, over a node lookup -------------------------------------------------------------

def range_hash(lo: int, hi: int, node: NodeLookup) -> bytes:
    """MTH(D[lo:hi]) for a range the RFC's recursions produce (lo a multiple of the split)."""
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and lo % n == 0:
        level = n.bit_length() - 1
        return node(level, lo >> level)
    k = split_point(n)
    return node_hash(range_hash(lo, lo + k, node), range_hash(lo + k, hi, node))


def inclusion_path(index: int, size: int, node: NodeLookup) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(m, D[n]), leaf-to-root order."""
    path: list[bytes] = []
    lo, hi = 0, size
    siblings = []
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index - lo < k:
            siblings.append((lo + k, hi))
            hi = lo + k
        else:
            siblings.append((lo, lo + k))
            lo = lo + k
    for a, b in reversed(siblings):
        path.append(range_hash(a, b, node))
    return path


def consistency_proof(first: int, second: int, node: NodeLookup) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(m, D[n]) for 0 < m < n (empty otherwise)."""
    if not 0 < first < second:
        return []
    parts: list[tuple[int, int]] = []
    m, lo, hi, complete = first, 0, second, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                parts.append((lo, hi))
            break
        k = split_point(n)
        if m <= k:
            parts.append((lo + k, hi))
            hi = lo + k
        else:
            parts.append((lo, lo + k))
            m, lo, complete = m - k, lo + k, False
    return [range_hash(a, b, node) for a, b in reversed(parts)]


def needed_nodes(compute: Callable[[NodeLookup], object]) -> set[tuple[int, int]]:
    """The nodes `compute` reads (its control flow never depends on the hash values), so that a
    server can fetch them all in one query before computing for real."""
    keys: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        keys.add((level, index))
        return EMPTY_ROOT

    compute(record)
    return keys


# --- Verifying --------------------------------------------------------------------------------

def root_from_inclusion_proof(index: int, tree_size: int, leaf: bytes,
                              path: Sequence[bytes]) -> bytes:
    """The root that `path` proves `leaf` (a leaf hash) to be at `index` of; raises
    InclusionError if the path cannot be one for that position."""
    def fail(message: str) -> InclusionError:
        return InclusionError(message, index, tree_size, leaf, path)

    if index >= tree_size:
        raise fail(f"inclusion proof for index {index} in a tree of {tree_size}")
    fn, sn, r = index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            raise fail("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise fail("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(index: int, tree_size: int, leaf: bytes, path: Sequence[bytes],
                     root: bytes) -> None:
    if root_from_inclusion_proof(index, tree_size, leaf, path) != root:
        raise InclusionError(f"leaf {index} is not in the tree of size {tree_size} with this root",
                             index, tree_size, leaf, path, root)


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raises InconsistencyError unless `proof` shows the tree (second, second_root) extends
    (first, first_root)."""
    def fail(message: str) -> InconsistencyError:
        return InconsistencyError(message, first, second, first_root, second_root, proof)

    if first > second:
        raise fail(f"the log shrank from {first} to {second} entries")
    if first == second:
        if proof or first_root != second_root:
            raise fail(f"two different roots for the same tree size {first}: the log forked")
        return
    if first == 0:
        if proof:
            raise fail("a consistency proof from the empty tree must be empty")
        return
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the old root is itself a node of the new tree
        path.insert(0, first_root)
    if not path:
        raise fail("empty consistency proof")
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise fail("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise fail(f"the tree of size {second} does not extend the verified tree of size "
                   f"{first}: entries were changed or removed, or the log forked")
