"""The signed tree head: the bytes the service signs (Ed25519; signing is the server's,
partners/transparency.py, checking the partner's, partner_tools/transparency.py), its JSON form,
the key id, and the HTTP paths under which the log is served.

There is one tree per pathway (migration 0011): a partner entitled to one pathway must learn
nothing of another's entries, their number or timing included, which one shared tree told it.
So a head names its pathway inside the signed bytes (format v2): a head of one tree can never
be presented as the other's. Format v1 (no pathway) signed the single tree that was retired;
it is still defined here only so that a verifier can recognise it and say so."""
from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

from txlog.errors import VerificationError
from txlog.rfc6962 import HASH_SIZE

TREE_HEAD_CONTEXT = b"hashguard-tree-head-v1\x00"  # the retired single tree
PATHWAY_TREE_HEAD_CONTEXT = b"hashguard-tree-head-v2\x00"  # one tree per pathway
KEY_PATH = "/.well-known/hashguard-transparency-key"
HEAD_PATH = "/v1/transparency/head"
CONSISTENCY_PATH = "/v1/transparency/proof/consistency"
INCLUSION_PATH = "/v1/transparency/proof/inclusion"
ENTRIES_PATH = "/v1/transparency/entries"
TREES_PATH = "/v1/transparency/trees"  # the pathways (trees) the calling partner may verify


def b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def tree_head_bytes(tree_size: int, timestamp_ms: int, root: bytes,
                    pathway: str | None = None) -> bytes:
    """What the service signs: a fixed context string, the pathway whose tree it is
    (length-prefixed UTF-8), the size, the time (ms) and the root. Without a pathway: the
    retired v1 bytes of the single tree (nothing signs those any more)."""
    sizes = struct.pack(">QQ", tree_size, timestamp_ms)
    if pathway is None:
        return TREE_HEAD_CONTEXT + sizes + root
    name = pathway.encode()
    return PATHWAY_TREE_HEAD_CONTEXT + struct.pack(">I", len(name)) + name + sizes + root


def key_id(public_key_raw: bytes) -> str:
    return hashlib.sha256(public_key_raw).hexdigest()


# A key change (issue 23): the retiring key signs its successor, so a verifier that trusts the old
# key can follow the log to the new one without trusting whoever serves the new key.
KEY_CHANGE_CONTEXT = b"hashguard-transparency-key-change-v1\x00"


def key_change_bytes(old_public_key: bytes, new_public_key: bytes, timestamp: int) -> bytes:
    """What the old key signs: a fixed context, both raw public keys, the time (unix seconds)."""
    return KEY_CHANGE_CONTEXT + old_public_key + new_public_key + struct.pack(">Q", timestamp)


@dataclass(frozen=True)
class SignedTreeHead:
    tree_size: int
    timestamp: int  # unix milliseconds
    root_hash: bytes
    signature: bytes
    key_id: str
    pathway: str | None = None  # None: a v1 head of the retired single tree

    @classmethod
    def from_json(cls, body: dict) -> SignedTreeHead:
        try:
            head = cls(int(body["tree_size"]), int(body["timestamp"]), b64decode(body["root_hash"]),
                       b64decode(body["signature"]), str(body["key_id"]),
                       _pathway(body.get("pathway")))
        except (KeyError, TypeError, ValueError) as bad:
            raise VerificationError(f"malformed tree head: {bad}") from None
        if len(head.root_hash) != HASH_SIZE or head.tree_size < 0:
            raise VerificationError("malformed tree head: bad root hash or size")
        return head

    def to_json(self) -> dict:
        body = {"tree_size": self.tree_size, "timestamp": self.timestamp,
                "root_hash": b64encode(self.root_hash), "signature": b64encode(self.signature),
                "key_id": self.key_id}
        if self.pathway is not None:
            body["pathway"] = self.pathway
        return body


def _pathway(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError("pathway is not a string")
