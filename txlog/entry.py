"""hashguard's leaf: the canonical encoding of one change-log entry (the server computes it when
it logs the entry, in Python or in PostgreSQL byte for byte, store/merkle.py; a partner recomputes
it from the entries it is served).

The leaf holds an entry's position within its pathway (`pathway_seq`) and its pathway in clear,
and a commitment to its op, signal type and value under a 16-byte random nonce: what a partner
of that pathway already receives, never anything about a case or a person, nor the entry's
global position (its gaps would count the other pathway's entries). Each pathway has a tree of
its own, served only to partners entitled to it (partners/transparency.py). The nonce keeps the
commitment hiding all the same: proofs are hashes over commitments, and a plain hash of a value
would let whoever sees them test whether a file's hash was ever submitted.

Leaf version 1 (the global seq in place of pathway_seq) was the retired single tree's.
"""
from __future__ import annotations

import hashlib
import struct

from txlog.head import b64decode
from txlog.rfc6962 import leaf_hash

LEAF_VERSION = 2
COMMITMENT_CONTEXT = b"hashguard-entry-v1\x00"
NONCE_BYTES = 16


def _field(item: bytes) -> bytes:
    return struct.pack(">I", len(item)) + item


def entry_commitment(op: str, signal_type: str, value: str, nonce: bytes) -> bytes:
    """A hiding commitment to what the entry says: without the nonce, nobody can test a guess."""
    return hashlib.sha256(COMMITMENT_CONTEXT + _field(nonce) + _field(op.encode())
                          + _field(signal_type.encode()) + _field(value.encode())).digest()


def leaf_bytes(pathway_seq: int, pathway: str, commitment: bytes) -> bytes:
    """Canonical, unambiguous bytes of one change-log entry: its position within its pathway and
    the pathway in clear (what a partner of that pathway pulls), and the commitment to op, signal
    type and value."""
    return (struct.pack(">BQ", LEAF_VERSION, pathway_seq) + _field(pathway.encode())
            + _field(commitment))


def entry_leaf_hash(entry: dict) -> bytes:
    """The leaf hash of an entry as the entries endpoint serves it: in full (op, signal_type,
    value, nonce), or as its commitment (a form the server no longer serves, since a partner
    sees only the trees of its own pathways; accepted for a test's fake log)."""
    if "value" in entry:
        commitment = entry_commitment(entry["op"], entry["signal_type"], entry["value"],
                                      b64decode(entry["nonce"]))
    else:
        commitment = b64decode(entry["commitment"])
    return leaf_hash(leaf_bytes(int(entry["pathway_seq"]), entry["pathway"], commitment))
