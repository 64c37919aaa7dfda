"""The partner's verifier (partner_tools/transparency.py) against a fake log server (one pathway's
tree) that misbehaves in each of the ways the log exists to expose: a tampered entry, a reordered
entry, a forked log (two heads of the same size), a bad signature, a withheld entry, a rewritten
history, another pathway's head or entry passed off as this tree's."""
from __future__ import annotations

import base64
import os
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from partner_tools.transparency import (
    TreeOutcome,
    Verifier,
    VerifierState,
    check_pulled_entries,
    verify_tree_head,
)
from txlog.compact import Frontier, root_of_leaf_hashes
from txlog.entry import entry_commitment, entry_leaf_hash
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
    key_id,
    tree_head_bytes,
)
from txlog.proof import consistency_proof, verify_consistency
from txlog.rfc6962 import leaf_hash

B64 = b64encode


class FakeLog:
    """One pathway's tree served in memory: entries, heads signed over them, and the endpoints."""

    def __init__(self, pathways=("adult",), pathway="adult"):
        self.pathway = pathway
        self.key = Ed25519PrivateKey.generate()
        self.raw_key = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                          serialization.PublicFormat.Raw)
        self.entries: list[dict] = []  # full entries: seq, op, signal_type, value, pathway, nonce
        self.leaves: list[bytes] = []  # the tree's leaf hashes, as logged
        self.head: dict | None = None
        self.partner_pathways = list(pathways)
        self.tamper_served = lambda served: served  # hook: alter what /entries answers

    def add(self, count: int, pathway: str = "adult") -> None:
        for _ in range(count):
            seq = (self.entries[-1]["seq"] if self.entries else 0) + 1
            entry = {"seq": seq, "pathway_seq": seq, "op": "add", "signal_type": "pdq", "value": os.urandom(32).hex(),
                     "pathway": pathway, "nonce": B64(os.urandom(16))}
            self.entries.append(entry)
            self.leaves.append(entry_leaf_hash(entry))
        self.sign()

    def sign(self, size: int | None = None, root: bytes | None = None, timestamp: int | None = None,
             pathway: str | None = None):
        size = len(self.leaves) if size is None else size
        root = root_of_leaf_hashes(self.leaves[:size]) if root is None else root
        timestamp = timestamp or int(time.time() * 1000)
        pathway = pathway or self.pathway
        signed = tree_head_bytes(size, timestamp, root, pathway)
        self.head = {"tree_size": size, "timestamp": timestamp, "root_hash": B64(root),
                     "signature": B64(self.key.sign(signed)), "key_id": key_id(self.raw_key),
                     "pathway": pathway}

    def get(self, path: str, params: dict) -> dict:
        if path == KEY_PATH:
            return {"public_key": B64(self.raw_key)}
        if path == TREES_PATH:
            return {"pathways": [self.pathway]}
        assert params["pathway"] == self.pathway, "the verifier asked for another tree"
        if path == HEAD_PATH:
            return dict(self.head)
        if path == CONSISTENCY_PATH:
            tree = _nodes(self.leaves[:params["second"]])
            return {"proof": [B64(h) for h in consistency_proof(
                params["first"], params["second"], lambda lv, i: tree[(lv, i)])]}
        if path == ENTRIES_PATH:
            start, end = params["start"], min(params["end"], params["start"] + 7)  # small pages
            served = []
            for index in range(start, end):
                entry = dict(self.entries[index], index=index, leaf_hash=B64(self.leaves[index]))
                if entry["pathway"] not in self.partner_pathways:
                    entry["commitment"] = B64(entry_commitment(
                        entry.pop("op"), entry.pop("signal_type"), entry.pop("value"),
                        b64decode(entry.pop("nonce"))))
                served.append(entry)
            return {"start": start, "end": end, "pathways": self.partner_pathways,
                    "entries": self.tamper_served(served)}
        raise AssertionError(path)


def _nodes(leaf_hashes):
    frontier, nodes = Frontier(), {}
    for i, h in enumerate(leaf_hashes):
        nodes[(0, i)] = h
        for level, index, node in frontier.append(h):
            nodes[(level, index)] = node
    return nodes


def verify(log: FakeLog, state: VerifierState, **options) -> TreeOutcome:
    outcome = Verifier(log.get, state, check_entries=True, **options).run()
    assert [tree.pathway for tree in outcome.trees] == [log.pathway]
    return outcome.trees[0]


def failure(log: FakeLog, state: VerifierState, **options) -> str:
    with pytest.raises(VerificationError) as raised:
        verify(log, state, **options)
    return str(raised.value)


@pytest.fixture
def log_and_state():
    log = FakeLog()
    log.add(13)
    state = VerifierState()
    outcome = verify(log, state)
    assert (outcome.head.tree_size, outcome.entries_checked, outcome.visible_entries) == (13, 13, 13)
    return log, state


def test_an_honest_growing_log_verifies_run_after_run(log_and_state, tmp_path):
    log, state = log_and_state
    for grow in (1, 6, 17):
        log.add(grow)
        state_file = tmp_path / "state.json"
        state.save(state_file)
        state = VerifierState.load(state_file)
        outcome = verify(log, state)
        assert outcome.entries_checked == grow  # only the new entries are fetched
        assert outcome.previous_size == outcome.head.tree_size - grow
    assert verify(log, state, full=True).entries_checked == len(log.leaves)


def test_a_tampered_entry_is_detected(log_and_state):
    log, state = log_and_state
    log.add(4)
    log.entries[14]["value"] = "0" * 64  # the database row changed after it was logged
    assert "entry 14" in failure(log, state) and "altered" in failure(log, state)
    # Already-verified entries are rechecked with --full.
    log.entries[14]["value"] = log.entries[14]["value"].replace("0", "1")
    log.entries[2]["value"] = "f" * 64
    assert "entry 2 " in failure(log, state, full=True)


def test_a_tampered_entry_served_with_a_matching_leaf_hash_breaks_the_signed_root(log_and_state):
    log, state = log_and_state
    log.add(3)

    def forge(served):
        served[0]["value"] = "0" * 64
        served[0]["leaf_hash"] = B64(entry_leaf_hash(served[0]))
        return served
    log.tamper_served = forge
    assert "do not hash to the signed root" in failure(log, state)


def test_a_reordered_entry_is_detected(log_and_state):
    log, state = log_and_state
    log.add(4)

    def swap(served):
        if len(served) > 1:
            served[0], served[1] = served[1], served[0]
            served[0]["index"], served[1]["index"] = served[1]["index"], served[0]["index"]
        return served
    log.tamper_served = swap
    assert "out of log order" in failure(log, state)


def test_a_history_rewritten_and_re_signed_fails_the_consistency_proof(log_and_state):
    log, state = log_and_state
    log.entries[3], log.entries[4] = log.entries[4], log.entries[3]  # reordered, then re-signed
    log.leaves[3], log.leaves[4] = log.leaves[4], log.leaves[3]
    log.add(2)
    assert "does not extend the verified tree" in failure(log, state)


def test_an_inconsistency_carries_both_signed_heads_and_the_proof_as_evidence(log_and_state):
    log, state = log_and_state
    verified = state.trees["adult"].head
    log.leaves[3] = leaf_hash(b"history rewritten")  # then re-signed, larger
    log.add(2)
    with pytest.raises(InconsistencyError) as raised:
        verify(log, state)
    evidence = raised.value.evidence()
    assert evidence["older_head"] == verified.to_json()
    assert evidence["newer_head"] == log.head  # exactly what the server signed and served
    assert (evidence["first"], evidence["second"]) == (13, 15)
    assert evidence["proof"] == log.get(CONSISTENCY_PATH, {"pathway": "adult", "first": 13,
                                                           "second": 15})["proof"]
    # Anyone can re-check it from the evidence alone: the proof does not join the two heads.
    with pytest.raises(InconsistencyError):
        verify_consistency(13, 15, b64decode(evidence["first_root"]),
                           b64decode(evidence["second_root"]),
                           [b64decode(h) for h in evidence["proof"]])


def test_a_forked_log_two_heads_of_the_same_size_is_detected(log_and_state):
    log, state = log_and_state
    other = list(log.leaves)
    other[-1] = leaf_hash(b"another entry")
    log.sign(root=root_of_leaf_hashes(other))  # a second head for size 13, validly signed
    with pytest.raises(VerificationError, match="forked"):
        Verifier(log.get, state).run()


def test_a_bad_signature_is_detected(log_and_state):
    log, state = log_and_state
    log.add(1)
    signature = bytearray(base64.b64decode(log.head["signature"]))
    signature[5] ^= 0x40
    log.head["signature"] = B64(bytes(signature))
    assert "bad signature" in failure(log, state)


def test_a_head_signed_by_another_key_is_refused(log_and_state):
    log, state = log_and_state
    log.key = Ed25519PrivateKey.generate()  # signs with a new key, still advertises the old one
    log.add(1)
    assert "bad signature" in failure(log, state)
    log.raw_key = log.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                    serialization.PublicFormat.Raw)
    log.sign()
    assert "not the one this verifier trusts" in failure(log, state)


def test_a_shrunk_log_is_detected(log_and_state):
    log, state = log_and_state
    log.sign(size=10)
    assert "shrank" in failure(log, state)


def test_an_entry_of_the_partners_pathway_cannot_be_withheld(log_and_state):
    log, state = log_and_state
    log.add(2)
    log.partner_pathways = []  # the server serves commitments only, for the partner's own tree
    message = failure(log, state, pathways={"adult"})
    assert "withheld" in message


def test_another_pathways_entry_in_the_tree_is_detected(log_and_state):
    """An under-18 entry logged into the adult tree (its leaf honestly computed, the head signed
    over it) is reported: the tree is the adult pathway's alone."""
    log, state = log_and_state
    log.partner_pathways = ["adult", "under18_at_capture"]
    log.add(1, pathway="under18_at_capture")
    assert "another pathway's entry" in failure(log, state)


def test_a_head_of_one_pathway_never_verifies_as_the_others(log_and_state):
    """The signature covers the pathway: relabelled, an adult head fails as an under-18 head;
    signed for under-18 but served for adult, it is refused; a v1 head (no pathway) is refused."""
    log, state = log_and_state
    head = SignedTreeHead.from_json(log.head)
    verify_tree_head(head, log.raw_key, "adult")
    relabelled = SignedTreeHead.from_json(dict(log.head, pathway="under18_at_capture"))
    with pytest.raises(VerificationError, match="bad signature"):
        verify_tree_head(relabelled, log.raw_key)
    with pytest.raises(VerificationError, match="answered with a head of the adult tree"):
        verify_tree_head(head, log.raw_key, "under18_at_capture")
    log.add(1)
    log.sign(pathway="under18_at_capture")  # a valid head, of the other tree
    assert "answered with a head of the under18_at_capture tree" in failure(log, state)
    v1 = dict(log.head)
    del v1["pathway"]
    v1["signature"] = B64(log.key.sign(tree_head_bytes(
        v1["tree_size"], v1["timestamp"], b64decode(v1["root_hash"]))))
    with pytest.raises(VerificationError, match="names no pathway"):
        verify_tree_head(SignedTreeHead.from_json(v1), log.raw_key)


def test_a_state_file_of_the_single_tree_asks_to_re_anchor(tmp_path):
    from partner_tools.transparency import LegacyStateFileError, StateFileError

    old = tmp_path / "old.json"
    old.write_text('{"public_key": null, "head": null, "entries_size": 0, '
                   '"entries_frontier": [], "entries_last_seq": 0}')
    with pytest.raises(LegacyStateFileError, match="Re-anchor once: delete it"):
        VerifierState.load(old)
    assert issubclass(LegacyStateFileError, StateFileError)


def test_a_deleted_entry_is_detected(log_and_state):
    log, state = log_and_state
    log.add(2)

    def delete(served):
        for name in ("pathway", "op", "signal_type", "value", "nonce"):
            served[-1].pop(name, None)
        return served
    log.tamper_served = delete
    assert "deleted" in failure(log, state)


def test_state_is_kept_only_after_success(log_and_state):
    log, state = log_and_state
    before = state.trees["adult"].head
    log.add(1)
    log.head["signature"] = B64(b"\0" * 64)
    failure(log, state)
    assert state.trees["adult"].head == before


def test_pulled_entries_are_checked_against_the_verified_entries():
    leaves = {7: {"seq": 7, "op": "add", "signal_type": "pdq", "value": "ab" * 32,
                  "pathway": "adult"}}
    check_pulled_entries([dict(leaves[7])], leaves)
    with pytest.raises(VerificationError, match="value"):
        check_pulled_entries([dict(leaves[7], value="cd" * 32)], leaves)
    with pytest.raises(VerificationError, match="not in the verified log"):
        check_pulled_entries([dict(leaves[7], seq=8)], leaves)
