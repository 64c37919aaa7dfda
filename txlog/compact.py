"""The frontier of a tree (a "compact range" from 0): the roots of its perfect subtrees. The
server's tree builder appends to one and stores the subtrees it completes; a partner's verifier
keeps one between runs so that it only fetches the entries that are new."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from txlog.rfc6962 import EMPTY_ROOT, node_hash


class Frontier:
    """The right edge of a tree of `size` leaves: the roots of its perfect subtrees, largest
    first (one per set bit of `size`). Enough to append leaves and to compute the root, in
    O(log n) memory."""

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()):
        self.size = size
        self.hashes = list(hashes)
        if size < 0 or len(self.hashes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} holds {size.bit_count()} subtree "
                             f"hashes (one per set bit of its size), not {len(self.hashes)}")

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; returns the perfect subtrees this completes, as (level, index, hash)
        with level >= 1 (the server stores them to answer proofs)."""
        completed = []
        h, level, index = leaf, 0, self.size
        self.hashes.append(h)
        while index & 1:  # the subtree to the left has the same size: merge
            right = self.hashes.pop()
            h = node_hash(self.hashes.pop(), right)
            level, index = level + 1, index >> 1
            self.hashes.append(h)
            completed.append((level, index, h))
        self.size += 1
        return completed

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        h = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            h = node_hash(left, h)
        return h


def root_of_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (what a verifier recomputes from fetched entries)."""
    frontier = Frontier()
    for h in hashes:
        frontier.append(h)
    return frontier.root()


def frontier_keys(size: int) -> list[tuple[int, int]]:
    """(level, index) of the perfect subtrees that make up a tree of `size` leaves, left first."""
    keys, offset = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, offset >> level))
            offset += 1 << level
    return keys
