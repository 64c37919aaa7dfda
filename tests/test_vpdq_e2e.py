"""vPDQ end to end on PostgreSQL and SQLite: `hashguard submit` hashes a real video on the
person's side and sends only hashes; a partner pulls the vPDQ value unchanged; POST
/v1/partner/match finds the shared video from a re-encoded copy and not from an unrelated clip.
(The page's side: tests/web/test_page_vpdq.py.)"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hashing.signals import vpdq
from tests.helpers import bearer, withdraw
from tests.video_clips import make_clips

EXE = Path(sys.executable).with_name("hashguard")

pytestmark = pytest.mark.slow  # makes video clips with ffmpeg (~15 s)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_clips(tmp_path_factory.mktemp("vpdq-e2e"))


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode("ascii")).hexdigest()


def match(base: str, key: str, values: list[str]) -> list[dict]:
    answer = httpx.post(f"{base}/v1/partner/match", headers=bearer(key), timeout=60,
                        json={"hashes": [{"signal_type": "vpdq", "value": v} for v in values]})
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def test_cli_submit_partner_pull_and_match(live_server, make_partner, clips):
    submitted = subprocess.run(
        [str(EXE), "submit", "--server", live_server, "--pathway", "adult", "--json",
         str(clips["original.mp4"])],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "HASHGUARD_SERVER"})
    assert submitted.returncode == 0, submitted.stderr
    assert "1 vpdq" in submitted.stderr  # what is sent, said before it is sent
    [original] = vpdq.hash_file(clips["original.mp4"])

    key = make_partner("platform", "adult")
    response = httpx.get(f"{live_server}/v1/partner/hashes", headers=bearer(key), timeout=60)
    pulled = response.json()
    [entry] = [e for e in pulled["entries"] if e["signal_type"] == "vpdq"]
    assert entry["op"] == "add" and entry["value"] == original.value  # unchanged, pytx's form
    # The full export too (its value is JSON text inside a JSON line: escaped, not pasted).
    export = httpx.get(f"{live_server}/v1/partner/hashes/export", headers=bearer(key), timeout=60)
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert original.value in [line.get("value") for line in lines]

    copies = [vpdq.hash_file(clips[name])[0].value
              for name in ("reencode_low_bitrate.mp4", "reencode_small.mp4", "trimmed.mp4")]
    [unrelated] = vpdq.hash_file(clips["other_testsrc2.mp4"])
    results = match(live_server, key, [*copies, unrelated.value])
    for result, copy in zip(results, copies):
        # Long values are named by their SHA-256, never echoed (a vPDQ value is ~80 B a second).
        assert result["query"] == {"signal_type": "vpdq", "value_sha256": sha256(copy)}
        assert result["matches"] == [{"signal_type": "vpdq", "value_sha256": sha256(original.value),
                                      "distance": 0.0, "pathways": ["adult"]}]
    assert results[-1]["matches"] == []

    minor_key = make_partner("minor-only", "under18_at_capture")
    assert all(r["matches"] == [] for r in match(live_server, minor_key, copies))


def test_withdrawn_video_no_longer_matches(client, make_partner, clips):
    [original] = vpdq.hash_file(clips["original.mp4"])
    [copy] = vpdq.hash_file(clips["reencode_small.mp4"])
    created = client.post("/v1/cases", json={"pathway": "adult", "hashes": [
        {"signal_type": "vpdq", "value": original.value}]})
    assert created.status_code == 201, created.text
    key = make_partner("p", "adult")
    query = {"hashes": [{"signal_type": "vpdq", "value": copy.value}]}
    [result] = client.post("/v1/partner/match", headers=bearer(key), json=query).json()["results"]
    assert result["matches"][0]["distance"] == 0.0
    withdraw(client, created.json())
    [result] = client.post("/v1/partner/match", headers=bearer(key), json=query).json()["results"]
    assert result["matches"] == []


def test_submit_refuses_bad_vpdq_values(client):
    bad = json.dumps([f"{'ab' * 32},49,0.0"])
    answer = client.post("/v1/cases", json={"pathway": "adult", "hashes": [
        {"signal_type": "vpdq", "value": bad}]})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "vpdq_low_quality"


def test_a_match_request_answers_at_most_eight_vpdq_queries(client, make_partner, clips):
    [copy] = vpdq.hash_file(clips["trimmed.mp4"])
    key = make_partner("p", "adult")
    query = {"hashes": [{"signal_type": "vpdq", "value": copy.value}] * 9}
    results = client.post("/v1/partner/match", headers=bearer(key), json=query).json()["results"]
    assert [r.get("error", {}).get("code") for r in results] == [None] * 8 + ["match_query_limit"]


def test_vpdq_values_count_against_the_case_byte_budget(app, client, clips):
    """Large values are charged by their size like TMK's: a case over the limit is refused."""
    [value] = vpdq.hash_file(clips["original.mp4"])
    app.state.settings.max_value_bytes_per_case = len(value.value) + 10
    [other] = vpdq.hash_file(clips["other_life.mp4"])
    answer = client.post("/v1/cases", json={"pathway": "adult", "hashes": [
        {"signal_type": "vpdq", "value": value.value}, {"signal_type": "vpdq", "value": other.value}]})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "case_bytes_limit"
