"""Bounded load over loopback: a real server on PostgreSQL takes a mix of submits, status
lookups, partner pulls and partner feedback for ~60 s with no 5xx, no error of any kind, and a
resident memory that stays flat after a warm-up (growth < 10 %)."""
from __future__ import annotations

import random
import threading
import time
from collections import Counter

import httpx
import pytest

from tests.reliability.server import (
    ServerProcess,
    add_partner,
    bearer,
    random_pdq,
    server_env,
    throwaway_postgres,
)

DURATION_S = 60.0
WARM_UP_S = 15.0
CLIENTS = 6
# op -> weight: people submit and check, partners pull and report.
MIX = {"submit": 35, "status": 30, "pull": 20, "feedback": 15}
MAX_RSS_GROWTH = 0.10


class Load:
    def __init__(self, base_url: str, keys: list[str]):
        self.base_url, self.keys = base_url, keys
        self.lock = threading.Lock()
        self.cases: list[tuple[str, str]] = []  # (ref, token)
        self.shared: dict[str, list[str]] = {"adult": [], "under18_at_capture": []}
        self.latencies: dict[str, list[float]] = {op: [] for op in MIX}
        self.errors: list[str] = []
        self.cursors = {key: "" for key in keys}

    def client(self, index: int, deadline: float) -> None:
        rng = random.Random(index)
        ops, weights = list(MIX), list(MIX.values())
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            while time.monotonic() < deadline:
                op = rng.choices(ops, weights)[0]
                if op in ("status", "feedback") and not self.shared["adult"]:
                    op = "submit"
                started = time.perf_counter()
                try:
                    response, ok = getattr(self, op)(http, rng)
                except httpx.HTTPError as failed:
                    self.errors.append(f"{op}: {failed!r}")
                    continue
                elapsed = time.perf_counter() - started
                self.latencies[op].append(elapsed)
                if not ok:
                    self.errors.append(f"{op} -> {response.status_code} {response.text[:200]}")

    def submit(self, http, rng):
        values = [random_pdq(rng) for _ in range(rng.randint(1, 5))]
        pathway = rng.choice(list(self.shared))
        response = http.post("/v1/cases", json={
            "pathway": pathway,
            "hashes": [{"signal_type": "pdq", "value": v, "quality": 80} for v in values]})
        if response.status_code == 201:
            data = response.json()
            with self.lock:
                self.cases.append((data["case_ref"], data["token"]))
                self.shared[pathway] += values
        return response, response.status_code == 201

    def status(self, http, rng):
        ref, token = rng.choice(self.cases)
        response = http.get(f"/v1/cases/{ref}", headers=bearer(token))
        return response, response.status_code == 200 and response.json()["case_ref"] == ref

    def pull(self, http, rng):
        key = rng.choice(self.keys)
        response = http.get("/v1/partner/hashes", params={
            "cursor": self.cursors[key], "limit": rng.choice([10, 100, 1000])}, headers=bearer(key))
        if response.status_code == 200:
            self.cursors[key] = response.json()["next_cursor"]  # racy between clients: harmless
        return response, response.status_code == 200

    def feedback(self, http, rng):
        key = rng.choice(self.keys)
        visible = self.shared["adult"] + (self.shared["under18_at_capture"] if key == self.keys[0]
                                          else [])
        values = rng.sample(visible, min(len(visible), rng.randint(1, 20)))  # any order
        action = rng.choice(["pulled", "matched", "removed", "blocked"])
        response = http.post("/v1/partner/feedback", headers=bearer(key), json={
            "feedback": [{"signal_type": "pdq", "value": v, "action": action} for v in values]})
        ok = response.status_code == 200 and response.json()["rejected"] == []
        return response, ok


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sixty_seconds_of_mixed_load(tmp_path):
    with throwaway_postgres("load") as url:
        # Everything comes from one loopback address and a handful of cases and partners, so the
        # abuse limits (tested on their own in tests/test_abuse_limits.py) are opened up here.
        env = server_env(tmp_path, HASHGUARD_PARTNER_REQUESTS_PER_SECOND="100000",
                         HASHGUARD_TOKEN_LOOKUPS_PER_SECOND_OVERALL="100000",
                         HASHGUARD_TOKEN_LOOKUPS_PER_MINUTE_PER_CASE="100000")
        keys = [add_partner(url, env, "loadone"),
                add_partner(url, env, "loadtwo", pathways="adult")]
        server = ServerProcess(url, env)
        server.start()
        try:
            load = Load(server.base_url, keys)
            started = time.monotonic()
            deadline = started + DURATION_S
            clients = [threading.Thread(target=load.client, args=(i, deadline), daemon=True)
                       for i in range(CLIENTS)]
            for thread in clients:
                thread.start()
            samples: list[tuple[float, int]] = []
            while time.monotonic() < deadline:
                samples.append((time.monotonic() - started, server.rss_kib()))
                time.sleep(1.0)
            for thread in clients:
                thread.join(60)
                assert not thread.is_alive()
            elapsed = time.monotonic() - started
            samples.append((elapsed, server.rss_kib()))
            errors_in_log = server.server_errors()
        finally:
            server.stop()

    total = sum(len(v) for v in load.latencies.values())
    everything = [x for v in load.latencies.values() for x in v]
    after = [rss for t, rss in samples if t >= WARM_UP_S]
    baseline, final, peak = after[0], after[-1], max(after)
    growth = (final - baseline) / baseline
    per_op = ", ".join(f"{op} {len(v)} (p99 {_percentile(v, 0.99) * 1000:.0f} ms)"
                       for op, v in load.latencies.items() if v)
    print(f"\n[load] {elapsed:.0f} s, {CLIENTS} clients, {total} requests, "
          f"{total / elapsed:.0f} req/s, p50 {_percentile(everything, 0.5) * 1000:.1f} ms, "
          f"p99 {_percentile(everything, 0.99) * 1000:.1f} ms; {per_op}; "
          f"RSS after warm-up {baseline / 1024:.1f} MiB -> {final / 1024:.1f} MiB "
          f"(peak {peak / 1024:.1f}), growth {growth * 100:+.1f} %; errors {len(load.errors)}")
    kinds = Counter(e.split(" -> ")[0] + (" " + e.split(" -> ")[1][:3] if " -> " in e else
                                          " " + e.split(": ", 1)[1][:40]) for e in load.errors)
    assert not load.errors, (dict(kinds), load.errors[:5])
    assert not errors_in_log, errors_in_log[:5]
    assert elapsed >= DURATION_S
    assert growth < MAX_RSS_GROWTH and (peak - baseline) / baseline < MAX_RSS_GROWTH, samples
    assert total / elapsed > 20, "even a loaded CI machine sustains more than 20 req/s"
