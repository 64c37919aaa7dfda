"""hashguard's leaf: the canonical encoding of one change-log entry (the server computes it when
it logs the entry, in Python or in PostgreSQL byte for byte, store/merkle.py; a partner recomputes
it from the entries it is served).

The leaf holds an entry's position and pathway in clear and a commitment to its op, signal type
and value under a 16-byte random nonce: what a partner already receives, never anything about a
case or a person. The nonce makes the commitment hiding: tree heads and proofs are public, and a
plain hash of a value would let anyone holding a file test whether its hash was ever submitted.
Partners get the nonce (and so can recompute the leaf) only for the pathways they receive; for
the others they get the commitment.
"""
from __future__ import annotations

import hashlib
import struct

from txlog.head import b64decode
from txlog.rfc6962 import leaf_hash

LEAF_VERSION = 1
COMMITMENT_CONTEXT = b"hashguard-entry-v1\x00"
NONCE_BYTES = 16


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
