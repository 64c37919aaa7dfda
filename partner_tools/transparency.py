"""Checking hashguard's transparency log on the partner's side: signed-tree-head verification,
consistency from the last verified head, recomputing the leaves of the entries, and the
verifier's local state (no network code: the caller hands in a `get(path, params) -> dict`;
partner_tools/cli.py is the command).

What it protects against: a service that quietly alters, reorders or drops entries of the change
log it already published, or shows different partners different logs. There is one log per
pathway, each its own Merkle tree (RFC 9162 section 2.1, SHA-256; txlog/), served only to the
partners entitled to that pathway; the service signs (Ed25519) each tree's pathway, size and
root; a verifier that remembers the last head it checked of each tree asks for a consistency
proof to the next one, so a tree can only ever have grown by appending. It also recomputes the
leaves of the entries, so an entry altered in the service's database no longer matches the tree
that was signed.
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
    TREES_PATH,
    SignedTreeHead,
    b64decode,
    b64encode,
    key_change_bytes,
    key_id,
    tree_head_bytes,
)
from txlog.proof import verify_consistency
from txlog.rfc6962 import HASH_SIZE

__all__ = ["InconsistencyError", "LegacyStateFileError", "Outcome", "PublicKeyError",
           "StateFileError", "TreeOutcome", "TreeState", "VerificationError", "Verifier",
           "VerifierState", "check_pulled_entries", "parse_public_key", "verify_tree_head"]

PUBLIC_KEY_BYTES = 32
STATE_VERSION = 2  # 1 (no "version"): the single tree's state, from before one tree per pathway


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


class LegacyStateFileError(StateFileError):
    """The state file was written for the single tree the service replaced with one tree per
    pathway (hashguard migration 0011): its head can be checked against no tree now."""

    def __init__(self, path: Path):
        Exception.__init__(
            self, f"the verifier's state file {path} was written for hashguard's former single "
            "transparency tree, which the service replaced with one tree per pathway; it was not "
            "changed. Re-anchor once: delete it (or move it away) and run verify again (that run "
            "trusts the server's current heads as on a first run)")
        self.path, self.reason = path, "state of the retired single tree"


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


def verify_tree_head(head: SignedTreeHead, public_key_raw: bytes,
                     pathway: str | None = None) -> None:
    """Check the head's signature as a head of `pathway`'s tree (default: the pathway it names).
    The pathway is inside the signed bytes, so a head of one tree never verifies as another's."""
    pathway = pathway or head.pathway
    if pathway is None:
        raise VerificationError("the tree head names no pathway: a head of the retired single "
                                "tree, which verifies as no pathway's")
    if head.pathway != pathway:
        raise VerificationError(f"asked for the {pathway} tree, the server answered with a head "
                                f"of the {head.pathway} tree")
    if head.key_id != key_id(public_key_raw):
        raise VerificationError("the tree head was signed by another key than the pinned one")
    try:
        Ed25519PublicKey.from_public_bytes(public_key_raw).verify(
            head.signature, tree_head_bytes(head.tree_size, head.timestamp, head.root_hash,
                                            pathway))
    except (InvalidSignature, ValueError):
        raise VerificationError(
            f"bad signature on the {pathway} tree head of size {head.tree_size}") from None


# --- The verifier's state file -----------------------------------------------------------------

@dataclass
class TreeState:
    """What a verifier remembers of one pathway's tree."""

    head: SignedTreeHead | None = None
    # How many leaves were recomputed from entries, and the frontier of that prefix.
    entries_size: int = 0
    entries_frontier: list[bytes] = field(default_factory=list)
    entries_last_position: int = 0  # the pathway_seq of the last recomputed leaf

    @classmethod
    def from_json(cls, body: dict) -> TreeState:
        state = cls(
            head=SignedTreeHead.from_json(body["head"]) if body.get("head") else None,
            entries_size=int(body.get("entries_size", 0)),
            entries_frontier=[b64decode(h) for h in body.get("entries_frontier", [])],
            entries_last_position=int(body.get("entries_last_position", 0)))
        if any(len(h) != HASH_SIZE for h in state.entries_frontier):
            raise ValueError("a frontier hash is not 32 bytes")
        Frontier(state.entries_size, state.entries_frontier)  # raises if they disagree
        return state

    def to_json(self) -> dict:
        return {"head": self.head.to_json() if self.head else None,
                "entries_size": self.entries_size,
                "entries_frontier": [b64encode(h) for h in self.entries_frontier],
                "entries_last_position": self.entries_last_position}


@dataclass
class VerifierState:
    """What one verifier remembers between runs (a small JSON file, nothing secret): the key it
    trusts and, per pathway, the last verified head of that pathway's tree."""

    public_key: bytes | None = None
    trees: dict[str, TreeState] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> VerifierState:
        """Raises StateFileError unless the whole file is well-formed, the frontiers included
        (found only later, it would be mistaken for something else: bug fixed in issue 20), and
        LegacyStateFileError for a file of the retired single tree."""
        if not path.exists():
            return cls()
        try:
            body = json.loads(path.read_text())
            if not isinstance(body, dict):
                raise TypeError("not a JSON object")
            if "version" not in body and "head" in body:
                raise LegacyStateFileError(path)
            if body.get("version") != STATE_VERSION:
                raise ValueError(f"state format {body.get('version')!r}, this verifier reads "
                                 f"{STATE_VERSION}")
            state = cls(
                public_key=b64decode(body["public_key"]) if body.get("public_key") else None,
                trees={str(p): TreeState.from_json(t) for p, t in body["trees"].items()})
            if state.public_key is not None and len(state.public_key) != PUBLIC_KEY_BYTES:
                raise ValueError("the remembered public key is not 32 bytes")
        except StateFileError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError,
                VerificationError) as bad:
            raise StateFileError(path, str(bad) or bad.__class__.__name__) from None
        return state

    def save(self, path: Path) -> None:
        body = {"version": STATE_VERSION,
                "public_key": b64encode(self.public_key) if self.public_key else None,
                "trees": {p: t.to_json() for p, t in sorted(self.trees.items())}}
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text(json.dumps(body, indent=1) + "\n")
        os.replace(scratch, path)  # never a half-written state: that would pass a forked log


# --- One verification run ----------------------------------------------------------------------

@dataclass
class TreeOutcome:
    pathway: str
    head: SignedTreeHead
    previous_size: int | None
    entries_checked: int
    visible_entries: int


@dataclass
class KeyChangeSeen:
    """The server's key changed since the trusted one, and the old key signed the change."""
    old_key_id: str
    new_key_id: str
    timestamp: int  # unix seconds


@dataclass
class Outcome:
    trees: list[TreeOutcome]
    key_changes: list[KeyChangeSeen] = field(default_factory=list)

    @property
    def entries_checked(self) -> int:
        return sum(t.entries_checked for t in self.trees)

    @property
    def visible_entries(self) -> int:
        return sum(t.visible_entries for t in self.trees)


Get = Callable[[str, dict], dict]


class Verifier:
    """One verification run against a server reached through `get(path, params) -> dict` (which
    sends the partner key: every tree is a partner's to read).

    Verifies the trees of `pathways` (default: every pathway the server says the key may read).
    `state` is updated only when every check passes; `check_entries` recomputes each tree's
    leaves from its entries.
    """

    def __init__(self, get: Get, state: VerifierState, pinned_key: bytes | None = None,
                 check_entries: bool = False, full: bool = False,
                 pathways: Iterable[str] | None = None):
        self.get, self.state, self.pinned_key = get, state, pinned_key
        self.check_entries, self.full = check_entries, full
        self.pathways = None if pathways is None else list(pathways)

    def run(self) -> Outcome:
        key, changes = self._public_key()
        pathways = self.pathways if self.pathways is not None else self._entitled_pathways()
        checked = [(p, self._verify_tree(p, key)) for p in pathways]
        # All checks passed: remember these heads as the new trusted points.
        self.state.public_key = key
        for pathway, (outcome, tree_state) in checked:
            self.state.trees[pathway] = tree_state
        return Outcome([outcome for _, (outcome, _) in checked], changes)

    def _entitled_pathways(self) -> list[str]:
        body = self.get(TREES_PATH, {})
        pathways = body.get("pathways")
        if not isinstance(pathways, list) or not all(isinstance(p, str) for p in pathways):
            raise VerificationError("malformed answer listing the trees to verify")
        if not pathways:
            raise VerificationError("the server lists no tree this key may verify")
        return pathways

    def _verify_tree(self, pathway: str, key: bytes) -> tuple[TreeOutcome, TreeState]:
        remembered = self.state.trees.get(pathway, TreeState())
        head = SignedTreeHead.from_json(self.get(HEAD_PATH, {"pathway": pathway}))
        verify_tree_head(head, key, pathway)
        previous = remembered.head
        if previous is not None:
            self._check_extends(pathway, previous, head)
        after = TreeState(head, remembered.entries_size, remembered.entries_frontier,
                          remembered.entries_last_position)
        checked = visible = 0
        if self.check_entries:
            frontier, checked, visible, last = self._recompute_entries(pathway, head, remembered)
            after.entries_size, after.entries_frontier = frontier.size, frontier.hashes
            after.entries_last_position = last
        outcome = TreeOutcome(pathway, head, previous.tree_size if previous else None, checked,
                              visible)
        return outcome, after

    def _public_key(self) -> tuple[bytes, list[KeyChangeSeen]]:
        body = self.get(KEY_PATH, {})
        try:
            key = b64decode(body["public_key"])
        except (KeyError, TypeError, ValueError):
            raise VerificationError("malformed public key answer") from None
        trusted = self.pinned_key or self.state.public_key
        if trusted is None or key == trusted:
            return key, []
        changes = follow_key_changes(trusted, key, body.get("key_changes"))
        if changes is None:
            raise VerificationError(
                "the server's transparency key is not the one this verifier trusts "
                f"(server: {key_id(key)[:16]}, trusted: {key_id(trusted)[:16]}), and no key "
                "change signed by the trusted key leads to it")
        return key, changes

    def _check_entry(self, pathway: str, index: int, entry: dict, served: bytes) -> None:
        if "value" not in entry and entry.get("pathway") == pathway:
            raise VerificationError(f"entry {index} of the {pathway} tree (seq {entry['seq']}) "
                                    "came without its content: it was withheld")
        try:
            recomputed = entry_leaf_hash(entry)
        except (KeyError, TypeError, ValueError):
            raise VerificationError(f"entry {index} of the {pathway} tree (seq "
                                    f"{entry.get('seq')}) is missing from the log's data: it was "
                                    "deleted after it was logged") from None
        if recomputed != served:
            raise VerificationError(
                f"entry {index} of the {pathway} tree (seq {entry.get('seq')}) does not match "
                "the leaf that was logged: it was altered after it was logged")
        if entry["pathway"] != pathway:
            raise VerificationError(f"entry {index} of the {pathway} tree is of pathway "
                                    f"{entry['pathway']}: another pathway's entry in this tree")

    def _check_extends(self, pathway: str, previous: SignedTreeHead,
                       head: SignedTreeHead) -> None:
        if head.timestamp < previous.timestamp and head.tree_size >= previous.tree_size:
            raise VerificationError(f"the new {pathway} tree head is older than the last "
                                    "verified one")
        proof: list[bytes] = []
        if 0 < previous.tree_size < head.tree_size:
            body = self.get(CONSISTENCY_PATH, {"pathway": pathway, "first": previous.tree_size,
                                               "second": head.tree_size})
            proof = _hashes(body.get("proof"))
        try:
            verify_consistency(previous.tree_size, head.tree_size, previous.root_hash,
                               head.root_hash, proof)
        except InconsistencyError as failure:
            # Both signed heads: the proof alone shows a mismatch, the signatures show who made it.
            failure.older_head, failure.newer_head = previous.to_json(), head.to_json()
            raise

    def _recompute_entries(self, pathway: str, head: SignedTreeHead,
                           remembered: TreeState) -> tuple[Frontier, int, int, int]:
        if self.full or remembered.entries_size > head.tree_size:
            frontier = Frontier()
        else:
            frontier = Frontier(remembered.entries_size, remembered.entries_frontier)
        checked = visible = 0
        last = remembered.entries_last_position if frontier.size else 0
        while frontier.size < head.tree_size:
            body = self.get(ENTRIES_PATH, {"pathway": pathway, "start": frontier.size,
                                           "end": head.tree_size})
            entries = body.get("entries") or []
            if not entries:
                raise VerificationError(f"the server returned no entries of the {pathway} tree "
                                        f"from {frontier.size}")
            for entry in entries:
                index = entry.get("index")
                if index != frontier.size:
                    raise VerificationError(
                        f"entries of the {pathway} tree out of order: expected index "
                        f"{frontier.size}, got {index}")
                try:
                    served = b64decode(entry["leaf_hash"])
                except (KeyError, TypeError, ValueError):
                    raise VerificationError(f"entry {index} has no valid leaf hash") from None
                self._check_entry(pathway, index, entry, served)
                position = int(entry["pathway_seq"])
                if position <= last:
                    raise VerificationError(f"entry {index} of the {pathway} tree is out of log "
                                            f"order (pathway_seq {position} after {last})")
                last = position
                visible += "value" in entry
                frontier.append(served)
                checked += 1
                if frontier.size >= head.tree_size:
                    break
        if frontier.root() != head.root_hash:
            raise VerificationError(
                f"the entries do not hash to the signed root of the {pathway} tree of size "
                f"{head.tree_size}: an entry was altered, reordered, inserted or removed")
        return frontier, checked, visible, last


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


def follow_key_changes(trusted: bytes, target: bytes, changes) -> list[KeyChangeSeen] | None:
    """The chain of key changes from `trusted` to `target`, each signed by the key it retired
    (txlog.head.key_change_bytes); None when there is none. A change signed by any other key,
    or malformed, is ignored: whoever serves the log cannot make a verifier trust a key the
    trusted one did not sign over."""
    if not isinstance(changes, list):
        return None
    seen, key = [], trusted
    for _ in range(len(changes)):
        step = next((c for c in _well_formed(changes) if c[0] == key), None)
        if step is None:
            return None
        old, new, timestamp, signature = step
        try:
            Ed25519PublicKey.from_public_bytes(old).verify(
                signature, key_change_bytes(old, new, timestamp))
        except (InvalidSignature, ValueError):
            return None
        seen.append(KeyChangeSeen(key_id(old), key_id(new), timestamp))
        key = new
        if key == target:
            return seen
    return None


def _well_formed(changes: list) -> Iterable[tuple[bytes, bytes, int, bytes]]:
    for change in changes:
        try:
            old, new = b64decode(change["old_public_key"]), b64decode(change["new_public_key"])
            timestamp, signature = int(change["timestamp"]), b64decode(change["signature"])
        except (KeyError, TypeError, ValueError):
            continue
        if len(old) == PUBLIC_KEY_BYTES and len(new) == PUBLIC_KEY_BYTES and timestamp >= 0:
            yield old, new, timestamp, signature
