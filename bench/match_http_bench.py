"""Hosted match over HTTP (issue 22): single-hash and batched `POST /v1/partner/match` beside
`GET /healthz` on the same server, with the same client.

Creates a throwaway PostgreSQL database, loads --hashes random PDQ hashes shared under `adult`
(plain SQL, as bench/pull_bench.py does), creates a partner key, starts the service under uvicorn
(`--workers N`) and waits until `/readyz` says its match index is built (the time is printed).
Then, for each connection count (--connections, default 1 and 8) and each of --runs runs, a
client in a separate process (a minimal keep-alive HTTP/1.1 client on asyncio, the one
bench/submit_bench.py uses: it leaves the CPU to the server) drives, closed loop, each phase
after an unmeasured warm-up:
  * GET /healthz: what HTTP + the framework alone allow with this client;
  * POST /v1/partner/match with 1 hash per request (a platform matching each upload);
  * POST /v1/partner/match with --batch hashes per request.
Queries are stored values with 0-16 random bits flipped (all within PDQ's distance 31), so
every query has a known answer: recall is the share of queries whose stored value is in the
answer. Printed per phase: requests/s, lookups/s, p50/p99, recall, errors, server CPU per
request, and the load average beside it (the machine may be shared).

Fails fast: if the load process dies or the server exits, the bench stops at once and exits
non-zero with the child's error (the propagation bench once waited ~8 minutes for a dead one).

    python bench/match_http_bench.py [--hashes 100000] [--seconds 8] [--warmup 2]
        [--connections 1,8] [--batch 100] [--runs 2] [--workers 1] [--py-spy DIR]

The server runs with the per-partner request limit lifted (HASHGUARD_PARTNER_REQUESTS_PER_SECOND;
at its default of 50/s it, not the server, would be measured) and otherwise as an operator runs
it (a JSON log line per request, to a file).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import subprocess
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import ROOT, running_server, throwaway_database  # noqa: E402
from pull_bench import create_partner_key, load_hashes  # noqa: E402

GOAL_RATIO = 0.5  # single-hash match requests/s >= half of /healthz requests/s (issue 22)
QUERIES = 5_000   # distinct query values sent round-robin


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- load generator (runs in its own process) ------------------------------------------------

class Connection:
    """One keep-alive HTTP/1.1 connection (asyncio streams), with the partner's key."""

    def __init__(self, host: str, port: int, key: str):
        self.host, self.port = host, port
        self.auth = f"authorization: Bearer {key}\r\n"
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (f"{method} {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
                + (self.auth + f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
                   if method == "POST" else "") + "\r\n").encode("ascii")
        self.writer.write(head + body)
        raw_head = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


def _bodies(kind: str, queries: list[tuple[str, str]], batch: int) -> list[tuple[bytes, list[str]]]:
    """Request bodies made before the clock starts, each with the stored values it must find."""
    if kind == "healthz":
        return [(b"", [])]
    per = 1 if kind == "single" else batch
    out = []
    for start in range(0, len(queries) - per + 1, per):
        chunk = queries[start:start + per]
        body = json.dumps({"hashes": [{"signal_type": "pdq", "value": q} for q, _ in chunk]})
        out.append((body.encode(), [stored for _, stored in chunk]))
    return out


async def _drive(base_url: str, key: str, kind: str, connections: int, warmup: float,
                 seconds: float, queries: list[tuple[str, str]], batch: int) -> dict:
    from urllib.parse import urlsplit

    url = urlsplit(base_url)
    bodies = _bodies(kind, queries, batch)
    latencies: list[float] = []
    found = expected = errors = 0
    first_error = ""
    counter = iter(range(10**12))

    async def user() -> None:
        nonlocal found, expected, errors, first_error
        conn = Connection(url.hostname, url.port, key)
        while True:
            now = time.perf_counter()
            if now >= measure_to:
                return
            body, stored = bodies[next(counter) % len(bodies)]
            try:
                if kind == "healthz":
                    status, payload = await conn.request("GET", "/healthz")
                else:
                    status, payload = await conn.request("POST", "/v1/partner/match", body)
            except (OSError, asyncio.IncompleteReadError, ValueError) as failed:
                errors += 1
                first_error = first_error or repr(failed)
                conn = Connection(url.hostname, url.port, key)
                continue
            done = time.perf_counter()
            if now < measure_from:
                continue
            if status != 200:
                errors += 1
                first_error = first_error or f"HTTP {status}: {payload[:200]!r}"
                continue
            latencies.append(done - now)
            if stored:
                results = json.loads(payload)["results"]
                expected += len(stored)
                found += sum(value in {m["value"] for m in result["matches"]}
                             for value, result in zip(stored, results))

    measure_from = time.perf_counter() + warmup
    measure_to = measure_from + seconds
    await asyncio.gather(*(user() for _ in range(connections)))
    return {"latencies": sorted(latencies), "found": found, "expected": expected,
            "errors": errors, "first_error": first_error, "seconds": seconds}


def _load_process(conn, base_url: str, key: str, phase: dict, queries) -> None:
    """The child: run one phase and send its outcome (or the error) back."""
    try:
        try:
            import uvloop
            uvloop.install()
        except ImportError:
            pass
        outcome = asyncio.run(_drive(base_url, key, phase["kind"], phase["connections"],
                                     phase["warmup"], phase["seconds"], queries, phase["batch"]))
        conn.send(("ok", outcome))
    except BaseException:  # noqa: BLE001 - reported to the parent, which exits non-zero
        conn.send(("error", traceback.format_exc()))
        raise


class BenchFailed(RuntimeError):
    pass


def run_phase(server, key: str, phase: dict, queries, py_spy_dir: Path | None) -> dict:
    """One phase in a child process. Raises BenchFailed at once if the child or the server dies."""
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe(duplex=False)
    child = context.Process(target=_load_process,
                            args=(child_end, server.base_url, key, phase, queries))
    cpu_before = server.cpu_seconds()
    child.start()
    child_end.close()
    spies = []
    if py_spy_dir is not None:
        py_spy_dir.mkdir(parents=True, exist_ok=True)
        spy = str(Path(sys.executable).with_name("py-spy"))
        name = f"{phase['kind']}-c{phase['connections']}"
        spies = [subprocess.Popen([spy, "record", "--pid", str(pid), "--duration",
                                   str(int(phase["warmup"] + phase["seconds"])), "--rate", "200",
                                   "--format", "raw", "--threads", "--output",
                                   str(py_spy_dir / f"{name}-worker{pid}.txt")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for pid in server.worker_pids()]
    allowed = phase["warmup"] + phase["seconds"] + 120
    deadline = time.monotonic() + allowed
    try:
        while not parent_end.poll(0.2):
            if server.process.poll() is not None:
                raise BenchFailed(f"the server exited with code {server.process.returncode} "
                                  f"during {phase['kind']}")
            if not child.is_alive():
                raise BenchFailed(f"the load process died (exit code {child.exitcode}) during "
                                  f"{phase['kind']} without a result")
            if time.monotonic() > deadline:
                raise BenchFailed(f"the load process gave no result within {allowed:.0f} s")
        try:
            status, outcome = parent_end.recv()
        except EOFError:
            raise BenchFailed(f"the load process died (exit code {child.exitcode}) during "
                              f"{phase['kind']}") from None
        if status != "ok":
            raise BenchFailed(f"the load process failed during {phase['kind']}:\n{outcome}")
    finally:
        if child.is_alive():
            child.kill()
        child.join(10)
        for spy in spies:
            spy.wait()
    outcome["server_cpu"] = server.cpu_seconds() - cpu_before  # includes the warm-up
    outcome["load_average"] = load_average()
    return outcome


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def describe(label: str, outcome: dict, per_request: int, warmup: float) -> float:
    lat = outcome["latencies"]
    rate = len(lat) / outcome["seconds"]
    cpu_ms = 1e3 * outcome["server_cpu"] / max(1, rate * (outcome["seconds"] + warmup))
    recall = (f"recall {100 * outcome['found'] / outcome['expected']:.2f}% "
              f"({outcome['found']}/{outcome['expected']}); " if outcome["expected"] else "")
    print(f"  {label}: {rate:,.0f} req/s = {rate * per_request:,.0f} lookups/s; "
          f"p50 {1e3 * percentile(lat, 50):.1f} ms, p99 {1e3 * percentile(lat, 99):.1f} ms; "
          f"{recall}errors {outcome['errors']}; server CPU ~{cpu_ms:.2f} ms/req; "
          f"load average {outcome['load_average']}"
          + (f"\n    first error: {outcome['first_error']}" if outcome["first_error"] else ""))
    return rate


def make_queries(url: str, count: int, seed: int = 22) -> list[tuple[str, str]]:
    """(query, stored value) pairs: a stored value with 0-16 random bits flipped."""
    import psycopg

    rng = random.Random(seed)
    with psycopg.connect(url) as conn:
        stored = [v for (v,) in conn.execute(
            "SELECT value FROM hashes TABLESAMPLE SYSTEM (5) LIMIT %s", (count,))]
        if len(stored) < count:
            stored = [v for (v,) in conn.execute(
                "SELECT value FROM hashes ORDER BY random() LIMIT %s", (count,))]
    queries = []
    for value in stored:
        bits = int(value, 16)
        for bit in rng.sample(range(256), rng.randrange(0, 17)):
            bits ^= 1 << bit
        queries.append((f"{bits:064x}", value))
    rng.shuffle(queries)
    return queries


def wait_ready(server, timeout: float) -> float:
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if server.process.poll() is not None:
            raise BenchFailed(f"the server exited with code {server.process.returncode}")
        try:
            if httpx.get(server.base_url + "/readyz", timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise BenchFailed(f"/readyz not ready after {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hashes", type=int, default=100_000, help="PDQ hashes in the index")
    parser.add_argument("--seconds", type=float, default=8, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds per phase")
    parser.add_argument("--connections", default="1,8", help="comma-separated connection counts")
    parser.add_argument("--batch", type=int, default=100, help="hashes per batched request")
    parser.add_argument("--runs", type=int, default=2, help="runs of every phase")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--py-spy", type=Path, default=None, metavar="DIR",
                        help="record py-spy raw profiles of each worker during each phase")
    args = parser.parse_args()
    connection_counts = [int(c) for c in args.connections.split(",")]

    described = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                               capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cpus, {platform.machine()}, Python "
          f"{platform.python_version()}; code: {described or 'unknown'}; "
          f"load average {load_average()}")
    os.environ["HASHGUARD_PARTNER_REQUESTS_PER_SECOND"] = "1000000"
    ratios: list[float] = []
    recall_ok = True
    try:
        with throwaway_database() as url:
            t = time.perf_counter()
            load_hashes(url, args.hashes, "direct")
            print(f"loaded {args.hashes:,} PDQ hashes (shared under adult, logged) in "
                  f"{time.perf_counter() - t:.0f} s")
            key = create_partner_key(url)
            queries = make_queries(url, min(QUERIES, args.hashes))
            with running_server(url, workers=args.workers, startup_timeout=300) as server:
                took = wait_ready(server, 600)
                print(f"server: uvicorn, {args.workers} worker(s); /readyz ready (index built) "
                      f"{took:.1f} s after /healthz answered")
                for run in range(1, args.runs + 1):
                    for connections in connection_counts:
                        print(f"run {run}, {connections} connection(s), closed loop, "
                              f"{args.seconds:.0f} s each after {args.warmup:.0f} s warm-up:")
                        rates = {}
                        for kind, per in (("healthz", 1), ("single", 1), ("batch", args.batch)):
                            phase = {"kind": kind, "connections": connections,
                                     "warmup": args.warmup, "seconds": args.seconds,
                                     "batch": args.batch}
                            outcome = run_phase(server, key, phase, queries, args.py_spy)
                            label = {"healthz": "GET /healthz",
                                     "single": "match, 1 hash/request",
                                     "batch": f"match, {args.batch} hashes/request"}[kind]
                            rates[kind] = describe(label, outcome, per, args.warmup)
                            if outcome["expected"] and outcome["found"] != outcome["expected"]:
                                recall_ok = False
                        ratio = rates["single"] / rates["healthz"] if rates["healthz"] else 0.0
                        ratios.append(ratio)
                        print(f"  single-hash match / healthz requests/s: {ratio:.2f} "
                              f"(goal >= {GOAL_RATIO})")
    except BenchFailed as failed:
        print(f"FAILED: {failed}", file=sys.stderr)
        return 1
    ok = recall_ok and ratios and min(ratios) >= GOAL_RATIO
    print(f"goal: single-hash match >= {GOAL_RATIO} x /healthz requests/s, recall 100%: "
          f"{'PASS' if ok else 'MISS'} (ratios {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"recall {'100%' if recall_ok else 'below 100%'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
