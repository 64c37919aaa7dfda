"""Propagation: how long from a submit's 201 until a partner is woken (long-poll and webhook).

Two uvicorn workers on a throwaway PostgreSQL database; a load process submits cases of 10 PDQ
hashes at a fixed rate (default 200/s); this process holds a long-poll pull open and runs a
webhook receiver. For every case: long-poll latency = arrival of its entries at the puller minus
the submit's 201; webhook latency = first signed delivery announcing a position >= the case's
entries minus the 201. Negative values (woken before the 201 reached the client) count as 0.
Then the load process withdraws some of those cases at --withdraw-rate (default 50/s) for
--withdraw-seconds, and the same two latencies are taken from each withdrawal's 200 to the
arrival of its `remove` entries (long-poll) and to the first delivery announcing them (webhook).
    python bench/propagation_bench.py [--rate 200] [--seconds 20] [--workers 2]
        [--withdraw-rate 50] [--withdraw-seconds 10]
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _server import BENCH_SECRET, running_server, throwaway_database  # noqa: E402


def random_pdq() -> str:
    while True:
        value = secrets.randbits(256)
        if 16 <= value.bit_count() <= 240:
            return f"{value:064x}"


async def _paced(rate: float, count: int, make) -> list:
    """Start make(n) for n < count at a fixed rate (open loop); wait for all."""
    tasks, start = [], time.monotonic()
    for n in range(count):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(make(n)))
    return await asyncio.gather(*tasks)


def load(base_url: str, rate: float, seconds: float, withdraw_rate: float,
         withdraw_seconds: float, results) -> None:
    """Child process: submit at a fixed rate, then withdraw some of those cases at another;
    report (hash values, answer time, status) per submit and per withdrawal."""
    async def run() -> tuple[list, list]:
        async with httpx.AsyncClient(base_url=base_url, timeout=30,
                                     limits=httpx.Limits(max_connections=64)) as client:
            async def submit(_n):
                values = [random_pdq() for _ in range(10)]
                response = await client.post("/v1/cases", json={"pathway": "adult", "hashes": [
                    {"signal_type": "pdq", "value": v, "quality": 100} for v in values]})
                answer = response.json() if response.status_code == 201 else {}
                return values, time.time(), response.status_code, answer

            submitted = await _paced(rate, int(rate * seconds), submit)
            created = [c for c in submitted if c[2] == 201]
            await asyncio.sleep(1)  # the submits' entries have reached the puller

            async def withdraw(n):
                values, _, _, answer = created[n]
                response = await client.post(
                    f"/v1/cases/{answer['case_ref']}/withdraw",
                    headers={"Authorization": f"Bearer {answer['token']}"})
                return values, time.time(), response.status_code

            count = min(len(created), int(withdraw_rate * withdraw_seconds))
            withdrawn = await _paced(withdraw_rate, count, withdraw) if count else []
        return [c[:3] for c in submitted], withdrawn

    results.put(asyncio.run(run()))


def latencies(cases, ok_status: int, op: str, arrivals: dict, deliveries: list):
    """Long-poll and webhook latencies (s) of the cases whose answer had `ok_status`, and how
    many of them never reached the puller."""
    long_poll, webhook, missing = [], [], 0
    for values, answered, status in cases:
        if status != ok_status:
            continue
        got = [arrivals.get((op, v)) for v in values]
        if None in got:
            missing += 1
            continue
        long_poll.append(max(0.0, max(t for t, _ in got) - answered))
        last_seq = max(seq for _, seq in got)
        woken = next((t for t, seq in deliveries if seq >= last_seq), None)
        if woken is not None:
            webhook.append(max(0.0, woken - answered))
    return long_poll, webhook, missing


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--withdraw-rate", type=float, default=50)
    parser.add_argument("--withdraw-seconds", type=float, default=10)
    args = parser.parse_args()
    os.environ.update(HASHGUARD_CASE_WRITES_PER_HOUR_PER_CLIENT="0", HASHGUARD_LOG_LEVEL="WARNING",
                      HASHGUARD_PARTNER_REQUESTS_PER_SECOND="100000", HASHGUARD_SECRET=BENCH_SECRET)
    print(f"machine: {os.cpu_count()} cpus, {platform.machine()}, Python {platform.python_version()}")
    with throwaway_database() as url:
        from partners import admin, webhooks
        from store.db import Database
        from store.secrets import decode_secret

        db = Database(url)
        webhook_times: list[tuple[float, int]] = []

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                seq = int(body.split(b'"latest_seq":')[1].split(b",")[0])
                webhook_times.append((time.time(), seq))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        with db.transaction() as s:
            partner = admin.add_partner(s, "bench", ["adult"])
            key = admin.create_key(s, partner, decode_secret(BENCH_SECRET))
            webhooks.set_webhook(s, partner.id, f"http://127.0.0.1:{receiver.server_port}/hook")
        db.dispose()
        with running_server(url, workers=args.workers) as server:
            print(f"server: uvicorn, {args.workers} workers, PostgreSQL; load: {args.rate:.0f} "
                  f"cases/s x {args.seconds:.0f} s from a separate process, 10 PDQ hashes per case")
            arrivals: dict[str, tuple[float, int]] = {}
            stop = threading.Event()

            def puller():
                cursor = ""
                with httpx.Client(base_url=server.base_url, timeout=60,
                                  headers={"Authorization": f"Bearer {key}"}) as client:
                    while not stop.is_set():
                        page = client.get("/v1/partner/hashes", params={
                            "cursor": cursor, "wait": 5, "limit": 10000}).json()
                        now = time.time()
                        for entry in page["entries"]:
                            arrivals[(entry["op"], entry["value"])] = (now, entry["seq"])
                        cursor = page["next_cursor"]

            thread = threading.Thread(target=puller, daemon=True)
            thread.start()
            results = multiprocessing.Queue()
            loader = multiprocessing.Process(target=load, args=(
                server.base_url, args.rate, args.seconds, args.withdraw_rate,
                args.withdraw_seconds, results))
            loader.start()
            done, withdrawn = results.get()
            loader.join()
            time.sleep(2)
            stop.set()
        deliveries = sorted(webhook_times)
        long_poll, webhook, missing = latencies(done, 201, "add", arrivals, deliveries)
        print(f"cases submitted: {len(done)} ({len(done) / args.seconds:.0f}/s), errors "
              f"{sum(c[2] != 201 for c in done)}, never pulled {missing}")
        report(long_poll, webhook)
        w_long_poll, w_webhook, w_missing = latencies(withdrawn, 200, "remove", arrivals,
                                                      deliveries)
        print(f"cases withdrawn: {len(withdrawn)} ({args.withdraw_rate:.0f}/s), errors "
              f"{sum(c[2] != 200 for c in withdrawn)}, removals never pulled {w_missing}")
        report(w_long_poll, w_webhook)
        print(f"webhook deliveries: {len(deliveries)} (coalesced: one per wake, not per case)")
        ok = all(samples and percentile(samples, .99) < 1
                 for samples in (long_poll, webhook, w_long_poll, w_webhook))
        print("goal: p99 < 1 s from submit (and withdrawal) response to partner wake-up: "
              f"{'PASS' if ok else 'MISS'}")


def report(long_poll: list, webhook: list) -> None:
    for name, samples in (("long-poll", long_poll), ("webhook", webhook)):
        print(f"{name:>11}: n={len(samples)} p50 {1000 * percentile(samples, .5):.1f} ms  "
              f"p99 {1000 * percentile(samples, .99):.1f} ms  "
              f"max {1000 * max(samples, default=0):.1f} ms")


if __name__ == "__main__":
    main()
