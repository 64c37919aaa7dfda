"""Checking hashguard's transparency log on the partner's side: signed-tree-head verification,
consistency from the last verified head, recomputing the leaves of the entries a partner may see,
and the verifier's local state (no network code: the caller hands in a `get(path, params) ->
dict`; partner_tools/cli.py is the command).

What it protects against: a service that quietly alters, reorders or drops entries of the change
log it already published, or shows different partners different logs. Every entry is a leaf of a
Merkle tree (RFC 9162 section 2.1, SHA-256; txlog/); the service signs (Ed25519) the tree's size
and root; a verifier that remembers the last head it checked asks for a consistency proof to the
next one, so the log can only ever have grown by appending. With a partner key it also recomputes
the leaves of the entries it may see, so an entry altered in the service's database no longer
matches the tree that was signed.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from txlog.compact import Frontier
from txlog.entry import entry_leaf_hash
from txlog.errors import InconsistencyError, VerificationError
from txlog.head import (
    CONSISTENCY_PATH,
    ENTRIES_PATH,
    HEAD_PATH,
    KEY_PATH,
    SignedTreeHead,
    b64decode,
    b64encode,
    key_id,
    tree_head_bytes,
)
from txlog.proof import verify_consistency
from txlog.rfc6962 import HASH_SIZE

__all__ = ["InconsistencyError", "Outcome", "PublicKeyError", "StateFileError",
           "VerificationError", "Verifier", "VerifierState", "check_pulled_entries",
           "parse_public_key", "verify_tree_head"]

PUBLIC_KEY_BYTES = 32


class PublicKeyError(ValueError):
    """The key given to pin is not a raw Ed25519 public key (a mistake on the command line, not
    a finding about the log)."""


class StateFileError(Exception):
    """The verifier's own state file cannot be read: corrupt, truncated or edited by hand. Not a
    finding about the log either, and not to be papered over: starting afresh means trusting the
    server's current head again as on a first run."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"the verifier's state file {path} is unreadable ({reason}); it was not "
                         "changed. Restore it from a backup, or move it away to start over "
                         "(the next run then trusts the server's current head as on a first run)")
        self.path, self.reason = path, reason


def parse_public_key(text: str) -> bytes:
    """A pinned key, as `hashguard transparency public-key` prints it (base64 raw Ed25519)."""
    try:
        raw = b64decode(text.strip())
    except ValueError:
        raise PublicKeyError("--public-key must be the base64 of a raw 32-byte Ed25519 key "
                             "(it is not base64)") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise PublicKeyError("--public-key must be the base64 of a raw 32-byte Ed25519 key "
                             f"(it decodes to {len(raw)} bytes)")
    return raw


def verify_tree_head(head: SignedTreeHead, public_key_raw: bytes) -> None:
    if head.key_id != key_id(public_key_raw):
        raise VerificationError("the tree head was signed by another key than the pinned one")
    try:
        Ed25519PublicKey.from_public_bytes(public_key_raw).verify(
            head.signature, tree_head_bytes(head.tree_size, head.timestamp, head.root_hash))
    except (InvalidSignature, ValueError):
        raise VerificationError(
            f"bad signature on the tree head of size {head.tree_size}") from None


# --- The verifier's state file -----------------------------------------------------------------

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
        """Raises StateFileError unless the whole file is well-formed, the frontier included
        (found only later, it would be mistaken for something else: bug fixed in issue 20)."""
        if not path.exists():
            return cls()
        try:
            body = json.loads(path.read_text())
            state = cls(
                public_key=b64decode(body["public_key"]) if body.get("public_key") else None,
                head=SignedTreeHead.from_json(body["head"]) if body.get("head") else None,
                entries_size=int(body.get("entries_size", 0)),
                entries_frontier=[b64decode(h) for h in body.get("entries_frontier", [])],
                entries_last_seq=int(body.get("entries_last_seq", 0)))
            if state.public_key is not None and len(state.public_key) != PUBLIC_KEY_BYTES:
                raise ValueError("the remembered public key is not 32 bytes")
            if any(len(h) != HASH_SIZE for h in state.entries_frontier):
                raise ValueError("a frontier hash is not 32 bytes")
            Frontier(state.entries_size, state.entries_frontier)  # raises if they disagree
        except (OSError, ValueError, KeyError, TypeError, AttributeError,
                VerificationError) as bad:
            raise StateFileError(path, str(bad) or bad.__class__.__name__) from None
        return state

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


# --- One verification run ----------------------------------------------------------------------

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
        if head.timestamp < previous.timestamp and head.tree_size >= previous.tree_size:
            raise VerificationError("the new tree head is older than the last verified one")
        proof: list[bytes] = []
        if 0 < previous.tree_size < head.tree_size:
            body = self.get(CONSISTENCY_PATH, {"first": previous.tree_size,
                                               "second": head.tree_size})
            proof = _hashes(body.get("proof"))
        try:
            verify_consistency(previous.tree_size, head.tree_size, previous.root_hash,
                               head.root_hash, proof)
        except InconsistencyError as failure:
            # Both signed heads: the proof alone shows a mismatch, the signatures show who made it.
            failure.older_head, failure.newer_head = previous.to_json(), head.to_json()
            raise

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
                    raise VerificationError(
                        f"entries out of order: expected index {frontier.size}, got {index}")
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
