"""Verification failures as typed values. A failed proof is evidence against the log's operator:
an inconsistency carries both tree heads and the proof that does not join them, so a partner can
hand exactly what it was shown to others (a signed head cannot be disowned)."""
from __future__ import annotations

import base64
from collections.abc import Sequence


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")


class VerificationError(Exception):
    """The log failed a check; the message says which, in words an operator can act on."""

    def evidence(self) -> dict | None:
        """What was checked, in JSON-ready form; None when the message is all there is."""
        return None


class InclusionError(VerificationError):
    """A leaf's audit path does not lead to the root it was said to be in (RFC 9162 2.1.3.2)."""

    def __init__(self, message: str, index: int, tree_size: int, leaf: bytes,
                 path: Sequence[bytes], root: bytes | None = None):
        super().__init__(message)
        self.index, self.tree_size, self.leaf = index, tree_size, leaf
        self.path, self.root = list(path), root

    def evidence(self) -> dict:
        return {"index": self.index, "tree_size": self.tree_size, "leaf_hash": _b64(self.leaf),
                "audit_path": [_b64(h) for h in self.path], "root_hash": _b64(self.root)}


class InconsistencyError(VerificationError):
    """The newer tree does not extend the older one (RFC 9162 2.1.4.2): the log shrank, forked,
    or entries were changed or removed. `older_head` / `newer_head` are the signed heads (their
    JSON) when the caller had them; sizes, roots and the proof are always here."""

    def __init__(self, message: str, first: int, second: int, first_root: bytes,
                 second_root: bytes, proof: Sequence[bytes]):
        super().__init__(message)
        self.first, self.second = first, second
        self.first_root, self.second_root = first_root, second_root
        self.proof = list(proof)
        self.older_head: dict | None = None
        self.newer_head: dict | None = None

    def evidence(self) -> dict:
        return {"first": self.first, "first_root": _b64(self.first_root),
                "second": self.second, "second_root": _b64(self.second_root),
                "proof": [_b64(h) for h in self.proof],
                "older_head": self.older_head, "newer_head": self.newer_head}
