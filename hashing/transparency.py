"""Checking hashguard's transparency log on the partner's side: RFC 9162 tree hashing, proof and
signed-tree-head verification, and the verifier's local state (no server code, no network code:
the caller hands in a `get(path, params) -> dict`).

What it protects against: a service that quietly alters, reorders or drops entries of the change
log it already published, or shows different partners different logs. Every entry is a leaf of a
Merkle tree (RFC 9162 section 2.1, SHA-256); the service signs (Ed25519) the tree's size and root;
a verifier that remembers the last head it checked asks for a consistency proof to the next one,
so the log can only ever have grown by appending. With a partner key it also recomputes the leaves
of the entries it may see, so an entry altered in the service's database no longer matches the
tree that was signed.

The leaf is the canonical encoding of an entry's position and pathway and of a commitment to
its op, signal type and value under a 16-byte random nonce: what a partner already receives,
never anything about a case or a person. The nonce makes the commitment hiding: tree heads and
proofs are public, and a plain hash of a value would let anyone holding a file test whether its
hash was ever submitted. Partners get the nonce (and so can recompute the leaf) only for the
pathways they receive; for the others they get the commitment.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 9162: MTH({}) = HASH()
LEAF_VERSION = 1
TREE_HEAD_CONTEXT = b"hashguard-tree-head-v1\x00"
COMMITMENT_CONTEXT = b"hashguard-entry-v1\x00"
KEY_PATH = "/.well-known/hashguard-transparency-key"
HEAD_PATH = "/v1/transparency/head"
CONSISTENCY_PATH = "/v1/transparency/proof/consistency"
INCLUSION_PATH = "/v1/transparency/proof/inclusion"
ENTRIES_PATH = "/v1/transparency/entries"


class VerificationError(Exception):
    """The log failed a check; the message says which, in words an operator can act on."""


# --- RFC 9162 section 2.1.1: tree hashing -----------------------------------------------------

def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """k: the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (what a verifier recomputes from fetched entries)."""
    frontier = Frontier()
    for h in hashes:
        frontier.append(h)
    return frontier.root()


class Frontier:
    """The right edge of a tree of `size` leaves: the roots of its perfect subtrees, largest
    first (one per set bit of `size`). Enough to append leaves and to compute the root, in
    O(log n) memory; the verifier keeps it between runs so it only fetches new entries."""

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()):
        self.size = size
        self.hashes = list(hashes)
        if len(self.hashes) != size.bit_count():
            raise ValueError("a frontier holds one subtree hash per set bit of its size")

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


# --- The leaf ----------------------------------------------------------------------------------

def _field(item: bytes) -> bytes:
    return struct.pack(">I", len(item)) + item


def entry_commitment(op: str, signal_type: str, value: str, nonce: bytes) -> bytes:
    """A hiding commitment to what the entry says: without the nonce, nobody can test a guess."""
    return hashlib.sha256(COMMITMENT_CONTEXT + _field(nonce) + _field(op.encode())
                          + _field(signal_type.encode()) + _field(value.encode())).digest()


def leaf_bytes(seq: int, pathway: str, commitment: bytes) -> bytes:
    """Canonical, unambiguous bytes of one change-log entry: its position and pathway in clear
    (a partner can already tell which positions of the log belong to a pathway it does not
    receive, from the gaps in its own feed), and the commitment to op, signal type and value."""
    return struct.pack(">BQ", LEAF_VERSION, seq) + _field(pathway.encode()) + _field(commitment)


def entry_leaf_hash(entry: dict) -> bytes:
    """The leaf hash of an entry as the entries endpoint serves it: in full (op, signal_type,
    value, nonce) for the pathways the partner receives, as its commitment otherwise."""
    if "value" in entry:
        commitment = entry_commitment(entry["op"], entry["signal_type"], entry["value"],
                                      b64decode(entry["nonce"]))
    else:
        commitment = b64decode(entry["commitment"])
    return leaf_hash(leaf_bytes(int(entry["seq"]), entry["pathway"], commitment))


# --- RFC 9162 sections 2.1.3.2 and 2.1.4.2: proof verification --------------------------------

def root_from_inclusion_proof(index: int, tree_size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The root that `path` proves `leaf` (a leaf hash) to be at `index` of; raises if malformed."""
    if index >= tree_size:
        raise VerificationError(f"inclusion proof for index {index} in a tree of {tree_size}")
    fn, sn, r = index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            raise VerificationError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(index: int, tree_size: int, leaf: bytes, path: Sequence[bytes],
                     root: bytes) -> None:
    if root_from_inclusion_proof(index, tree_size, leaf, path) != root:
        raise VerificationError(f"leaf {index} is not in the tree of size {tree_size} with this root")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raises unless `proof` shows the tree (second, second_root) extends (first, first_root)."""
    if first > second:
        raise VerificationError(f"the log shrank from {first} to {second} entries")
    if first == second:
        if proof or first_root != second_root:
            raise VerificationError(
                f"two different roots for the same tree size {first}: the log forked")
        return
    if first == 0:
        if proof:
            raise VerificationError("a consistency proof from the empty tree must be empty")
        return
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the old root is itself a node of the new tree
        path.insert(0, first_root)
    if not path:
        raise VerificationError("empty consistency proof")
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise VerificationError(
            f"the tree of size {second} does not extend the verified tree of size {first}: "
            "entries were changed or removed, or the log forked")


# --- Signed tree heads -------------------------------------------------------------------------

def tree_head_bytes(tree_size: int, timestamp_ms: int, root: bytes) -> bytes:
    """What the service signs: a fixed context string, the size, the time (ms) and the root."""
    return TREE_HEAD_CONTEXT + struct.pack(">QQ", tree_size, timestamp_ms) + root


def key_id(public_key_raw: bytes) -> str:
    return hashlib.sha256(public_key_raw).hexdigest()


@dataclass(frozen=True)
class SignedTreeHead:
    tree_size: int
    timestamp: int  # unix milliseconds
    root_hash: bytes
    signature: bytes
    key_id: str

    @classmethod
    def from_json(cls, body: dict) -> "SignedTreeHead":
        try:
            head = cls(int(body["tree_size"]), int(body["timestamp"]), b64decode(body["root_hash"]),
                       b64decode(body["signature"]), str(body["key_id"]))
        except (KeyError, TypeError, ValueError) as bad:
            raise VerificationError(f"malformed tree head: {bad}") from None
        if len(head.root_hash) != HASH_SIZE or head.tree_size < 0:
            raise VerificationError("malformed tree head: bad root hash or size")
        return head

    def to_json(self) -> dict:
        return {"tree_size": self.tree_size, "timestamp": self.timestamp,
                "root_hash": b64encode(self.root_hash), "signature": b64encode(self.signature),
                "key_id": self.key_id}


def verify_tree_head(head: SignedTreeHead, public_key_raw: bytes) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if head.key_id != key_id(public_key_raw):
        raise VerificationError("the tree head was signed by another key than the pinned one")
    try:
        Ed25519PublicKey.from_public_bytes(public_key_raw).verify(
            head.signature, tree_head_bytes(head.tree_size, head.timestamp, head.root_hash))
    except (InvalidSignature, ValueError):
        raise VerificationError(
            f"bad signature on the tree head of size {head.tree_size}") from None


def b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# --- The verifier and its state file -----------------------------------------------------------

@dataclass
class VerifierState:
    """What one verifier remembers between runs (a small JSON file, nothing secret)."""

    public_key: bytes | None = None
    head: SignedTreeHead | None = None
    # How many leaves were recomputed from entries, and the frontier of that prefix.
    entries_size: int = 0
    entries_frontier: list[bytes] = field(default_factory=list)
    entries_last_seq: int = 0

    @classmethod
    def load(cls, path: Path) -> "VerifierState":
        if not path.exists():
            return cls()
        try:
            body = json.loads(path.read_text())
            return cls(
                public_key=b64decode(body["public_key"]) if body.get("public_key") else None,
                head=SignedTreeHead.from_json(body["head"]) if body.get("head") else None,
                entries_size=int(body.get("entries_size", 0)),
                entries_frontier=[b64decode(h) for h in body.get("entries_frontier", [])],
                entries_last_seq=int(body.get("entries_last_seq", 0)))
        except (ValueError, KeyError, TypeError, VerificationError) as bad:
            raise VerificationError(f"cannot read the state file {path}: {bad}") from None

    def save(self, path: Path) -> None:
        body = {"public_key": b64encode(self.public_key) if self.public_key else None,
                "head": self.head.to_json() if self.head else None,
                "entries_size": self.entries_size,
                "entries_frontier": [b64encode(h) for h in self.entries_frontier],
                "entries_last_seq": self.entries_last_seq}
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text(json.dumps(body, indent=1) + "\n")
        os.replace(scratch, path)  # never a half-written state: that would pass a forked log


@dataclass
class Outcome:
    head: SignedTreeHead
    previous_size: int | None
    entries_checked: int
    visible_entries: int


Get = Callable[[str, dict], dict]


class Verifier:
    """One verification run against a server reached through `get(path, params) -> dict`.

    `state` is updated only when every check passes; `check_entries` needs the partner key
    (the caller's `get` sends it) and recomputes the leaves of the entries the partner may see.
    """

    def __init__(self, get: Get, state: VerifierState, pinned_key: bytes | None = None,
                 check_entries: bool = False, full: bool = False,
                 pathways: set[str] | None = None):
        self.get, self.state, self.pinned_key = get, state, pinned_key
        self.check_entries, self.full = check_entries, full
        # The pathways whose entries must come in full; default: those the server says we have.
        self.pathways = pathways

    def run(self) -> Outcome:
        key = self._public_key()
        head = SignedTreeHead.from_json(self.get(HEAD_PATH, {}))
        verify_tree_head(head, key)
        previous = self.state.head
        if previous is not None:
            self._check_extends(previous, head)
        checked = visible = 0
        frontier = None
        if self.check_entries:
            frontier, checked, visible = self._recompute_entries(head)
        # All checks passed: remember this head as the new trusted point.
        self.state.public_key, self.state.head = key, head
        if frontier is not None:
            self.state.entries_size, self.state.entries_frontier = frontier.size, frontier.hashes
            self.state.entries_last_seq = self._last_seq
        return Outcome(head, previous.tree_size if previous else None, checked, visible)

    def _public_key(self) -> bytes:
        body = self.get(KEY_PATH, {})
        try:
            key = b64decode(body["public_key"])
        except (KeyError, TypeError, ValueError):
            raise VerificationError("malformed public key answer") from None
        trusted = self.pinned_key or self.state.public_key
        if trusted is not None and key != trusted:
            raise VerificationError(
                "the server's transparency key is not the one this verifier trusts "
                f"(server: {key_id(key)[:16]}, trusted: {key_id(trusted)[:16]})")
        return key

    def _check_entry(self, index: int, entry: dict, served: bytes) -> None:
        try:
            recomputed = entry_leaf_hash(entry)
        except (KeyError, TypeError, ValueError):
            raise VerificationError(f"entry {index} (seq {entry.get('seq')}) is missing from the "
                                    "log's data: it was deleted after it was logged") from None
        if recomputed != served:
            raise VerificationError(
                f"entry {index} (seq {entry.get('seq')}) does not match the leaf that was "
                "logged: it was altered after it was logged")
        if "value" not in entry and entry["pathway"] in self.pathways:
            raise VerificationError(f"entry {index} (seq {entry['seq']}) is of pathway "
                                    f"{entry['pathway']} but its content was withheld")

    def _check_extends(self, previous: SignedTreeHead, head: SignedTreeHead) -> None:
        if head.tree_size < previous.tree_size:
            raise VerificationError(f"the log shrank from {previous.tree_size} to "
                                    f"{head.tree_size} entries")
        if head.timestamp < previous.timestamp:
            raise VerificationError("the new tree head is older than the last verified one")
        proof: list[bytes] = []
        if 0 < previous.tree_size < head.tree_size:
            body = self.get(CONSISTENCY_PATH, {"first": previous.tree_size,
                                               "second": head.tree_size})
            proof = _hashes(body.get("proof"))
        verify_consistency(previous.tree_size, head.tree_size, previous.root_hash,
                           head.root_hash, proof)

    def _recompute_entries(self, head: SignedTreeHead) -> tuple[Frontier, int, int]:
        if self.full or self.state.entries_size > head.tree_size:
            frontier = Frontier()
        else:
            frontier = Frontier(self.state.entries_size, self.state.entries_frontier)
        checked = visible = 0
        last_seq = self.state.entries_last_seq if frontier.size else 0
        while frontier.size < head.tree_size:
            body = self.get(ENTRIES_PATH, {"start": frontier.size, "end": head.tree_size})
            entries = body.get("entries") or []
            if self.pathways is None:
                self.pathways = set(body.get("pathways") or [])
            if not entries:
                raise VerificationError(f"the server returned no entries from {frontier.size}")
            for entry in entries:
                index = entry.get("index")
                if index != frontier.size:
                    raise VerificationError(f"entries out of order: expected index {frontier.size}, "
                                            f"got {index}")
                try:
                    served = b64decode(entry["leaf_hash"])
                except (KeyError, TypeError, ValueError):
                    raise VerificationError(f"entry {index} has no valid leaf hash") from None
                self._check_entry(index, entry, served)
                if int(entry["seq"]) <= last_seq:
                    raise VerificationError(f"entry {index} is out of log order (seq "
                                            f"{entry['seq']} after {last_seq})")
                last_seq = int(entry["seq"])
                visible += "value" in entry
                frontier.append(served)
                checked += 1
                if frontier.size >= head.tree_size:
                    break
        if frontier.root() != head.root_hash:
            raise VerificationError(
                f"the entries do not hash to the signed root of the tree of size "
                f"{head.tree_size}: an entry was altered, reordered, inserted or removed")
        self._last_seq = last_seq
        return frontier, checked, visible


def _hashes(items) -> list[bytes]:
    try:
        out = [b64decode(h) for h in items or []]
    except (TypeError, ValueError):
        raise VerificationError("malformed proof") from None
    if any(len(h) != HASH_SIZE for h in out):
        raise VerificationError("malformed proof: a hash is not 32 bytes")
    return out


def check_pulled_entries(pulled: Iterable[dict], leaves_by_seq: dict[int, dict]) -> None:
    """Each entry a partner pulled (seq, op, signal_type, value, pathway) must be the logged one.

    `leaves_by_seq`: entries from the entries endpoint, already checked against a signed head.
    """
    for entry in pulled:
        leaf = leaves_by_seq.get(int(entry["seq"]))
        if leaf is None:
            raise VerificationError(f"pulled entry seq {entry['seq']} is not in the verified log")
        for name in ("op", "signal_type", "value", "pathway"):
            if entry[name] != leaf.get(name):
                raise VerificationError(f"pulled entry seq {entry['seq']} differs from the "
                                        f"logged one in its {name}")
