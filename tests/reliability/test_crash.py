"""Crash safety: a real server on PostgreSQL under concurrent submits, withdrawals and a pulling
partner is killed with SIGKILL mid-run, several times, and restarted.

Afterwards nothing acknowledged is lost and nothing is half-written:
- every case whose submit returned 201 is there, and its status (with its token) lists exactly
  the hashes it was submitted with; a withdrawal that returned 200 stuck;
- every case in the database holds exactly the hashes of one submit, or none if withdrawn; a
  submit whose answer was lost left a whole case or nothing, and retrying it with its
  Idempotency-Key yields exactly one case;
- the shared set replayed from the change log equals the shared_hashes table, which equals
  "hashes held by an active case of the pathway";
- the partner's cursor, taken before each crash, resumes after the restart without a gap or a
  repeat: it received every log entry once, in seq order, and its replayed set is the server's.
"""
from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import select

from store import changelog
from store.db import Database
from store.models import CASE_ACTIVE, Case, CaseHash, ChangeLogEntry, Hash, SharedHash
from tests.helpers import replay
from tests.reliability.server import (
    ServerProcess,
    add_partner,
    bearer,
    random_pdq,
    server_env,
    throwaway_postgres,
)

ROUNDS = 5
WRITERS = 8
PATHWAYS = ("adult", "under18_at_capture")


@dataclass
class Attempt:
    values: list[str]
    pathway: str
    idempotency_key: str | None
    outcome: str = "pending"  # ack | lost | refused
    ref: str | None = None
    token: str | None = None
    withdraw: str = "none"  # none | ack | lost
    errors: list[str] = field(default_factory=list)


class Run:
    def __init__(self, base_url: str, key: str, seed: int):
        self.base_url, self.key = base_url, key
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.attempts: list[Attempt] = []
        self.unexpected: list[str] = []  # 5xx or other surprises, with the request
        self.received: list[dict] = []
        self.cursor = ""

    # -- writers -------------------------------------------------------------------------
    def writer(self, index: int, running: threading.Event) -> None:
        rng = random.Random(index)
        mine: list[Attempt] = []
        with httpx.Client(base_url=self.base_url, timeout=15) as http:
            while running.is_set():
                if mine and rng.random() < 0.15:
                    if not self._withdraw(http, rng.choice(mine)):
                        return  # the server is down: this writer's round is over
                    continue
                attempt = Attempt(values=[random_pdq(rng) for _ in range(rng.randint(1, 4))],
                                  pathway=rng.choice(PATHWAYS),
                                  idempotency_key=uuid.uuid4().hex if rng.random() < 0.5 else None)
                with self.lock:
                    self.attempts.append(attempt)
                self._submit(http, attempt)
                if attempt.outcome == "lost":
                    return  # the server is down: this writer's round is over
                if attempt.outcome == "ack":
                    mine.append(attempt)

    def _submit(self, http: httpx.Client, attempt: Attempt) -> None:
        body = {"pathway": attempt.pathway,
                "hashes": [{"signal_type": "pdq", "value": v, "quality": 90} for v in attempt.values]}
        headers = {"Idempotency-Key": attempt.idempotency_key} if attempt.idempotency_key else {}
        try:
            response = http.post("/v1/cases", json=body, headers=headers)
        except httpx.TransportError as cut:
            attempt.outcome = "lost"
            attempt.errors.append(repr(cut))
            return
        if response.status_code == 201:
            data = response.json()
            attempt.outcome, attempt.ref, attempt.token = "ack", data["case_ref"], data["token"]
            if data["hash_count"] != len(attempt.values):
                self.unexpected.append(f"submit hash_count {data['hash_count']} != {len(attempt.values)}")
        else:
            attempt.outcome = "refused"
            self.unexpected.append(f"POST /v1/cases -> {response.status_code} {response.text[:300]}")

    def _withdraw(self, http: httpx.Client, attempt: Attempt) -> bool:
        """False if the connection was cut."""
        if attempt.withdraw == "ack":
            return True
        try:
            response = http.post(f"/v1/cases/{attempt.ref}/withdraw", headers=bearer(attempt.token))
        except httpx.TransportError:
            attempt.withdraw = "lost"
            return False
        if response.status_code == 200 and response.json()["status"] == "withdrawn":
            attempt.withdraw = "ack"
        else:
            self.unexpected.append(f"withdraw -> {response.status_code} {response.text[:300]}")
        return True

    # -- the partner -----------------------------------------------------------------------
    def puller(self, stop: threading.Event) -> None:
        """Pulls small pages without pause, keeping its cursor across crashes (retries on
        connection errors with the same cursor, as a partner's job would)."""
        rng = random.Random(7)
        while not stop.is_set():
            self.pull_once(rng.randint(1, 40))

    def pull_once(self, limit: int) -> bool:
        """One page; False when the server is down (nothing changes then)."""
        try:
            response = httpx.get(f"{self.base_url}/v1/partner/hashes",
                                 params={"cursor": self.cursor, "limit": limit},
                                 headers=bearer(self.key), timeout=15)
        except httpx.TransportError:
            time.sleep(0.05)
            return False
        if response.status_code != 200:
            self.unexpected.append(f"pull -> {response.status_code} {response.text[:300]}")
            time.sleep(0.05)
            return False
        page = response.json()
        self.received += page["entries"]
        self.cursor = page["next_cursor"]
        return page["has_more"]


def test_sigkill_under_load_loses_no_acknowledged_case(tmp_path):
    started = time.monotonic()
    with throwaway_postgres("crash") as url:
        env = server_env(tmp_path, HASHGUARD_PARTNER_REQUESTS_PER_SECOND="100000",
                         HASHGUARD_TOKEN_LOOKUPS_PER_SECOND_OVERALL="100000")
        key = add_partner(url, env, "crashtest")
        server = ServerProcess(url, env)
        run = Run(server.base_url, key, seed=20240608)
        server.start()
        stop_puller = threading.Event()
        puller = threading.Thread(target=run.puller, args=(stop_puller,), daemon=True)
        puller.start()
        cursors_at_kill = []
        try:
            for round_ in range(ROUNDS):
                running = threading.Event()
                running.set()
                writers = [threading.Thread(target=run.writer, args=(i + 100 * round_, running),
                                            daemon=True) for i in range(WRITERS)]
                for thread in writers:
                    thread.start()
                time.sleep(run.rng.uniform(1.0, 2.0))  # mid-run: writers and puller are busy
                cursors_at_kill.append(run.cursor)
                server.kill()
                running.clear()
                for thread in writers:
                    thread.join(30)
                    assert not thread.is_alive()
                server.start()
            recovered = _retry_lost_keyed_submits(run)
            # Let the partner catch up, then stop it and drain what is left.
            time.sleep(0.5)
            stop_puller.set()
            puller.join(30)
            while run.pull_once(1000):
                pass
            _check(run, url, server, recovered, cursors_at_kill, started)
        finally:
            stop_puller.set()
            server.stop()


def _retry_lost_keyed_submits(run: Run) -> int:
    """A submit whose answer was lost is retried with its Idempotency-Key: it must now succeed
    and, if the first try had committed, give back that same case (checked below: one case)."""
    recovered = 0
    with httpx.Client(base_url=run.base_url, timeout=15) as http:
        for attempt in run.attempts:
            if attempt.outcome == "lost" and attempt.idempotency_key:
                run._submit(http, attempt)
                assert attempt.outcome == "ack", attempt.errors
                recovered += 1
    return recovered


def _check(run: Run, url: str, server: ServerProcess, recovered: int, cursors_at_kill,
           started: float) -> None:
    assert not run.unexpected, run.unexpected[:10]
    acked = [a for a in run.attempts if a.outcome == "ack"]
    lost = [a for a in run.attempts if a.outcome == "lost"]
    assert len(acked) > 50 and len(lost) + recovered > 0, "the kills should land mid-request"

    # 1. Every acknowledged case answers its token with exactly its hashes.
    def problem(http: httpx.Client, attempt: Attempt):
        response = http.get(f"/v1/cases/{attempt.ref}", headers=bearer(attempt.token))
        if response.status_code != 200:
            return attempt.ref, response.status_code
        status = response.json()
        values = sorted(h["value"] for h in status["hashes"])
        if attempt.withdraw == "ack":
            ok = status["status"] == "withdrawn" and values == []
        else:
            whole = status["status"] == CASE_ACTIVE and values == sorted(attempt.values)
            ok = whole or (attempt.withdraw == "lost" and status["status"] == "withdrawn"
                           and values == [])
        return None if ok else (attempt.ref, status["status"], len(values), len(attempt.values))

    with httpx.Client(base_url=run.base_url, timeout=30,
                      limits=httpx.Limits(max_connections=8)) as http, ThreadPoolExecutor(8) as pool:
        missing = [p for p in pool.map(lambda a: problem(http, a), acked) if p is not None]
    assert not missing, f"lost or half-written acknowledged cases: {missing[:10]}"

    # 2. In the database, every case is one whole submit (or withdrawn and empty), and no
    #    submit made two cases.
    owner = {v: i for i, a in enumerate(run.attempts) for v in a.values}
    db = Database(url)
    try:
        with db.read() as s:
            links = defaultdict(set)
            for case_id, value in s.execute(select(CaseHash.case_id, Hash.value)
                                            .join(Hash, Hash.id == CaseHash.hash_id)):
                links[case_id].add(value)
            cases = s.execute(select(Case.id, Case.ref, Case.status, Case.pathway)).all()
            unpositioned = s.scalar(select(ChangeLogEntry.id).where(ChangeLogEntry.seq.is_(None))
                                    .limit(1))
            log = s.execute(select(ChangeLogEntry.seq, ChangeLogEntry.op, ChangeLogEntry.hash_id,
                                   ChangeLogEntry.pathway).order_by(ChangeLogEntry.seq)).all()
            shared = set(s.execute(select(SharedHash.hash_id, SharedHash.pathway)))
            held = set(s.execute(select(CaseHash.hash_id, Case.pathway)
                                 .join(Case, Case.id == CaseHash.case_id)
                                 .where(Case.status == CASE_ACTIVE)))
            partner_log = [(r.seq, r.op, r.value)
                           for r in changelog.read_after(s, 0, list(PATHWAYS), 10**9)]
            partner_set = {("pdq", v) for (v,) in s.execute(
                select(Hash.value).join(SharedHash, SharedHash.hash_id == Hash.id).distinct())}
    finally:
        db.dispose()
    half_written, cases_per_attempt = [], defaultdict(list)
    for case_id, ref, status, pathway in cases:
        values = links.get(case_id, set())
        if status != CASE_ACTIVE:
            if values:
                half_written.append((ref, status, "withdrawn case still linked"))
            continue
        attempts = {owner.get(v) for v in values}
        if len(attempts) != 1 or None in attempts:
            half_written.append((ref, "hashes of several or unknown submits", len(values)))
            continue
        index = attempts.pop()
        cases_per_attempt[index].append(ref)
        attempt = run.attempts[index]
        if values != set(attempt.values) or pathway != attempt.pathway:
            half_written.append((ref, f"{len(values)} of {len(attempt.values)} hashes"))
    assert not half_written, half_written[:10]
    duplicates = {i: refs for i, refs in cases_per_attempt.items() if len(refs) > 1}
    assert not duplicates, f"one submit made several cases: {duplicates}"
    for attempt in acked:
        if attempt.withdraw == "none":
            assert cases_per_attempt[run.attempts.index(attempt)] == [attempt.ref]
    assert unpositioned is None, "a committed change-log entry has no position"

    # 3. The change log, replayed, is the shared set; the shared set is what active cases hold.
    replayed: set = set()
    for _seq, op, hash_id, pathway in log:
        if op == "add":
            assert (hash_id, pathway) not in replayed, f"second add of {hash_id} {pathway}"
            replayed.add((hash_id, pathway))
        else:
            assert (hash_id, pathway) in replayed, f"remove before add: {hash_id} {pathway}"
            replayed.discard((hash_id, pathway))
    assert replayed == shared
    assert shared == held

    # 4. The partner, through five crashes, got every entry once and in order.
    seqs = [e["seq"] for e in run.received]
    assert all(a < b for a, b in zip(seqs, seqs[1:])), "seq went backwards or repeated"
    assert [(e["seq"], e["op"], e["value"]) for e in run.received] == partner_log
    assert replay(run.received) == partner_set
    assert len(set(cursors_at_kill)) > 1, "the partner should have been pulling across the crashes"

    lost_existing = sum(1 for a in lost if cases_per_attempt.get(run.attempts.index(a)))
    print(f"\n[crash] rounds survived: {ROUNDS}, acknowledged cases: {len(acked)} "
          f"(of which {recovered} acknowledged on an Idempotency-Key retry after the crash), "
          f"lost: 0, answers cut by SIGKILL: {len(lost)} ({lost_existing} of them committed), "
          f"withdrawals acknowledged: {sum(a.withdraw == 'ack' for a in run.attempts)}, "
          f"change-log entries: {len(log)}, partner entries received: {len(run.received)}, "
          f"{time.monotonic() - started:.1f} s")
    assert not server.server_errors(), server.server_errors()[:5]


pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
