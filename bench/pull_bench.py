"""Partner pull throughput on PostgreSQL: full sync (paged and NDJSON export) and delta pulls.

Creates a throwaway PostgreSQL database, loads N random PDQ hashes with plain SQL (hashes,
shared_hashes and change_log rows, as if N single-hash submits had been shared under `adult`),
creates a partner entitled to `adult` and a key for it, starts the service under uvicorn in its
own process (`--workers N`) and pulls from a client in a separate process:

  * SQL baseline: the pull's query (store/changelog.read_after) in pages, straight over psycopg,
    no HTTP: what the database alone allows, so the HTTP/JSON overhead shows as a ratio;
  * full sync through `GET /v1/partner/hashes` pages (`limit=--page`), following next_cursor
    until has_more is false; checked: N adds, seqs strictly increasing, no value twice;
  * full sync through `GET /v1/partner/hashes/export`, plain and gzip;
  * delta pulls: for ~--delta-seconds, submit one case (10 PDQ hashes) with `POST /v1/cases`,
    then pull from the last cursor; each delta must hold exactly those 10 hashes.

While each phase runs, the serving processes' RSS is sampled every 50 ms (VmRSS, summed over
the workers) and the CPU of server, client and PostgreSQL processes is accounted.

    python bench/pull_bench.py [--hashes 1000000] [--page 10000] [--workers 1]
        [--delta-seconds 10] [--load direct|trigger] [--py-spy DIR]

`--load direct` (default) disables the change log's commit-time trigger during the bulk load and
draws the seqs from its sequence in id order; `--load trigger` lets the trigger assign them at
COMMIT (one UPDATE of all rows in one transaction; slow at 1M, reported). The server runs with its per-partner and
per-client case-write rate limits lifted (they would throttle the delta loop) and, unless
HASHGUARD_LOG_LEVEL is set, log level WARNING (no per-request log lines).
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import (  # noqa: E402
    BENCH_SECRET,
    ROOT,
    postgres_cpu_seconds,
    running_server,
    throwaway_database,
    wait_for_tree,
)

GOAL_HASHES_PER_S = 200_000
DELTA_HASHES = 10
PATHWAY = "adult"


# --- loading ---------------------------------------------------------------------------------

def load_hashes(url: str, n: int, mode: str) -> dict[str, float]:
    """N PDQ hashes shared under `adult`, each with one `add` change-log entry. Returns timings."""
    import psycopg

    run = secrets.token_hex(8)  # distinct values on every run
    timings: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        t = time.perf_counter()
        # value: 64 hex chars of sha256(run:i); digest: sha256('pdq:' || value) as the app does.
        conn.execute("""
            INSERT INTO hashes (signal_type, value, quality, digest, state)
            SELECT 'pdq', v, 100, sha256(convert_to('pdq:' || v, 'UTF8')), 'ok'
            FROM (SELECT encode(sha256(convert_to(%s || ':' || g, 'UTF8')), 'hex') AS v
                  FROM generate_series(1, %s) AS g) AS s
        """, (run, n))
        timings["hashes"] = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute("INSERT INTO shared_hashes (hash_id, pathway) "
                     "SELECT id, %s FROM hashes ORDER BY id", (PATHWAY,))
        timings["shared_hashes"] = time.perf_counter() - t
        t = time.perf_counter()
        if mode == "direct":
            with conn.transaction():
                conn.execute("ALTER TABLE change_log DISABLE TRIGGER change_log_position_at_commit")
                # The subquery hands the rows over in id order, so nextval() follows id order
                # (checked below).
                conn.execute("""
                    INSERT INTO change_log (seq, pathway_seq, op, hash_id, signal_type, value,
                                            quality, pathway, logged_at, also_shared)
                    SELECT nextval('change_log_position'),
                           nextval(('change_log_position_' || %s)::regclass), 'add', h.id,
                           h.signal_type, h.value, h.quality, %s,
                           (floor(extract(epoch FROM clock_timestamp()) / 3600) * 3600)::bigint,
                           false
                    FROM (SELECT id, signal_type, value, quality FROM hashes ORDER BY id) AS h
                """, (PATHWAY, PATHWAY))
                conn.execute("ALTER TABLE change_log ENABLE TRIGGER change_log_position_at_commit")
            timings["change_log (trigger disabled, seq from sequence)"] = time.perf_counter() - t
        else:
            with conn.transaction():
                conn.execute("""
                    INSERT INTO change_log (op, hash_id, signal_type, value, quality, pathway,
                                            logged_at, also_shared)
                    SELECT 'add', id, signal_type, value, quality, %s,
                           floor(extract(epoch FROM now()))::bigint, false
                    FROM hashes ORDER BY id
                """, (PATHWAY,))
                timings["change_log insert (seq NULL)"] = time.perf_counter() - t
                t = time.perf_counter()
            timings["COMMIT: deferred trigger assigns seq"] = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute("VACUUM ANALYZE hashes")
        conn.execute("VACUUM ANALYZE shared_hashes")
        conn.execute("VACUUM ANALYZE change_log")
        timings["VACUUM ANALYZE"] = time.perf_counter() - t
        rows, nulls, lo, hi, trig = conn.execute("""
            SELECT count(*), count(*) FILTER (WHERE seq IS NULL), min(seq - id), max(seq - id),
                   (SELECT tgenabled FROM pg_trigger WHERE tgname = 'change_log_position_at_commit')
            FROM change_log""").fetchone()
        if rows != n or nulls or lo != hi or trig != "O":
            raise RuntimeError(f"bad load: {rows} rows, {nulls} without seq, seq-id in [{lo}, {hi}], "
                               f"trigger state {trig!r}")
    return timings


def create_partner_key(url: str) -> str:
    sys.path.insert(0, str(ROOT))
    from partners.admin import add_partner, create_key
    from store.db import Database
    from store.secrets import decode_secret

    database = Database(url)
    try:
        with database.transaction() as session:
            partner = add_partner(session, "bench", [PATHWAY])
            return create_key(session, partner, decode_secret(BENCH_SECRET))
    finally:
        database.dispose()


# --- SQL baseline (no HTTP) -------------------------------------------------------------------

# The statement store/changelog.read_after issues (one pathway), with the same limit + 1.
_READ_AFTER = """
    SELECT c.seq, c.op, c.pathway, c.logged_at, c.signal_type, c.value, c.quality
    FROM change_log c
    WHERE c.seq > %s AND c.pathway IN (%s)
    ORDER BY c.seq LIMIT %s
"""


def sql_baseline(url: str, page: int) -> dict:
    import psycopg

    with psycopg.connect(url) as conn:
        cursor, rows_read, pages = 0, 0, 0
        t = time.perf_counter()
        while True:
            rows = conn.execute(_READ_AFTER, (cursor, PATHWAY, page + 1)).fetchall()
            has_more = len(rows) > page
            rows = rows[:page]
            pages += 1
            rows_read += len(rows)
            if rows:
                cursor = rows[-1][0]
            if not has_more:
                break
        elapsed = time.perf_counter() - t
        conn.rollback()
        plan = [r[0] for r in conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) " + _READ_AFTER,
            (cursor // 2, PATHWAY, page + 1)).fetchall()]
    return {"rows": rows_read, "pages": pages, "seconds": elapsed, "plan": plan}


# --- client (runs in its own process) ---------------------------------------------------------

class Client:
    """http.client on one keep-alive connection: cheap on CPU, no transparent decompression."""

    def __init__(self, base_url: str, key: str):
        url = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
        self.auth = {"Authorization": f"Bearer {key}"}

    def get(self, path: str) -> http.client.HTTPResponse:
        self.conn.request("GET", path, headers=self.auth)
        return self.conn.getresponse()

    def get_json(self, path: str) -> tuple[int, bytes]:
        response = self.get(path)
        return response.status, response.read()

    def post_json(self, path: str, body: dict) -> tuple[int, bytes]:
        self.conn.request("POST", path, body=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json"})
        response = self.conn.getresponse()
        return response.status, response.read()


def _check_status(status: int, body: bytes, expected: int = 200) -> None:
    if status != expected:
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")


def paged_sync(client: Client, page: int) -> dict:
    cursor, pages, adds, removes, last_seq, wire = "", 0, 0, 0, 0, 0
    values: set[str] = set()
    problems: list[str] = []
    latencies = []
    while True:
        t = time.perf_counter()
        status, body = client.get_json(f"/v1/partner/hashes?cursor={cursor}&limit={page}")
        latencies.append(time.perf_counter() - t)
        _check_status(status, body)
        wire += len(body)
        result = json.loads(body)
        pages += 1
        for entry in result["entries"]:
            if entry["seq"] <= last_seq and len(problems) < 5:
                problems.append(f"seq {entry['seq']} after {last_seq}")
            last_seq = entry["seq"]
            if entry["op"] == "add":
                adds += 1
                if entry["value"] in values and len(problems) < 5:
                    problems.append(f"value {entry['value']} twice")
                values.add(entry["value"])
            else:
                removes += 1
        cursor = result["next_cursor"]
        if not result["has_more"]:
            break
    return {"pages": pages, "adds": adds, "removes": removes, "distinct": len(values),
            "bytes": wire, "problems": problems, "cursor": cursor, "latencies": latencies}


def export_sync(client: Client, gzip_body: bool) -> dict:
    response = client.get(f"/v1/partner/hashes/export?gzip={'true' if gzip_body else 'false'}")
    if response.status != 200:
        _check_status(response.status, response.read())
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip_body else None
    wire, plain, adds, removes, last_seq = 0, 0, 0, 0, 0
    problems: list[str] = []
    final_cursor = None
    first_byte = None
    t = time.perf_counter()
    buffer = b""
    while True:
        chunk = response.read1(1 << 20) if hasattr(response, "read1") else response.read(1 << 20)
        if not chunk:
            break
        if first_byte is None:
            first_byte = time.perf_counter() - t
        wire += len(chunk)
        if inflate is not None:
            chunk = inflate.decompress(chunk)
        plain += len(chunk)
        lines = (buffer + chunk).split(b"\n")
        buffer = lines.pop()
        for line in lines:
            # Fast path for `{"seq":N,"op":"add",...}`; anything else is parsed in full.
            is_add = b'"op":"add"' in line
            if line.startswith(b'{"seq":') and (is_add or b'"op":"remove"' in line):
                seq = int(line[7:line.index(b",", 7)])
            else:
                obj = json.loads(line)
                if "next_cursor" in obj:
                    final_cursor = obj["next_cursor"]
                    continue
                seq, is_add = obj["seq"], obj["op"] == "add"
            if seq <= last_seq and len(problems) < 5:
                problems.append(f"seq {seq} after {last_seq}")
            last_seq = seq
            if is_add:
                adds += 1
            else:
                removes += 1
    if inflate is not None:
        tail = inflate.flush()
        plain += len(tail)
        buffer += tail
    if buffer.strip():
        problems.append(f"unterminated last line {buffer[:80]!r}")
    if final_cursor is None:
        problems.append("no final next_cursor line")
    elif final_cursor != str(last_seq):
        problems.append(f"final next_cursor {final_cursor} != last seq {last_seq}")
    return {"adds": adds, "removes": removes, "bytes": wire, "plain_bytes": plain,
            "problems": problems, "cursor": final_cursor, "first_byte": first_byte}


def random_pdq() -> str:
    while True:
        bits = secrets.randbits(256)
        if 16 <= bits.bit_count() <= 240:
            return f"{bits:064x}"


def delta_loop(client: Client, cursor: str, seconds: float, page: int) -> dict:
    pulls, submit_latencies, problems = [], [], []
    deadline = time.perf_counter() + seconds
    rounds = 0
    while time.perf_counter() < deadline:
        hashes = [random_pdq() for _ in range(DELTA_HASHES)]
        t = time.perf_counter()
        status, body = client.post_json("/v1/cases", {
            "pathway": PATHWAY,
            "hashes": [{"signal_type": "pdq", "value": v, "quality": 100} for v in hashes]})
        submit_latencies.append(time.perf_counter() - t)
        _check_status(status, body, 201)
        t = time.perf_counter()
        status, body = client.get_json(f"/v1/partner/hashes?cursor={cursor}&limit={page}")
        result = json.loads(body) if status == 200 else None
        pulls.append(time.perf_counter() - t)
        _check_status(status, body)
        rounds += 1
        got = [e["value"] for e in result["entries"] if e["op"] == "add"]
        if (sorted(got) != sorted(hashes) or len(result["entries"]) != DELTA_HASHES
                or result["has_more"]) and len(problems) < 5:
            problems.append(f"round {rounds}: {len(result['entries'])} entries, "
                            f"{len(set(got) & set(hashes))} of the {DELTA_HASHES} new hashes, "
                            f"has_more {result['has_more']}")
        cursor = result["next_cursor"]
    return {"rounds": rounds, "latencies": pulls, "submit_latencies": submit_latencies,
            "problems": problems, "cursor": cursor}


def _client_process(kind: str, base_url: str, key: str, options: dict, go, results) -> None:
    try:
        client = Client(base_url, key)
        status, body = client.get_json("/v1/partner/hashes?cursor=999999999999&limit=1")  # connect
        _check_status(status, body)
        results.put(("ready", None))
        go.wait()
        cpu0, t0 = time.process_time(), time.perf_counter()
        if kind == "paged":
            outcome = paged_sync(client, options["page"])
        elif kind in ("export", "export-gzip"):
            outcome = export_sync(client, kind == "export-gzip")
        else:
            outcome = delta_loop(client, options["cursor"], options["seconds"], options["page"])
        outcome["seconds"] = time.perf_counter() - t0
        outcome["client_cpu"] = time.process_time() - cpu0
        results.put(("done", outcome))
    except BaseException as failed:  # reported to the parent, which fails the run
        results.put(("error", repr(failed)))


# --- measurement in the parent ----------------------------------------------------------------



def _machine_busy() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def rss_kib(pids) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


class RssSampler(threading.Thread):
    """Peak of the serving processes' summed VmRSS, sampled every 50 ms."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.stop_event = server, threading.Event()
        self.peak = 0

    def pids(self) -> set[int]:
        return {self.server.process.pid, *self.server.worker_pids()}

    def run(self) -> None:
        while not self.stop_event.wait(0.05):
            self.peak = max(self.peak, rss_kib(self.pids()))


def run_phase(server, key: str, kind: str, options: dict, py_spy_dir: Path | None = None) -> dict:
    ctx = multiprocessing.get_context("spawn")
    results, go = ctx.Queue(), ctx.Event()
    process = ctx.Process(target=_client_process,
                          args=(kind, server.base_url, key, options, go, results))
    process.start()
    sampler = RssSampler(server)
    spies = []
    try:
        tag, payload = results.get(timeout=120)
        if tag != "ready":
            raise RuntimeError(f"client failed before {kind}: {payload}")
        rss_before = rss_kib(sampler.pids())
        sampler.peak = rss_before
        sampler.start()
        if py_spy_dir:
            spies = _start_py_spy(server, py_spy_dir, kind)
        server0, pg0, busy0 = server.cpu_seconds(), postgres_cpu_seconds(), _machine_busy()
        go.set()
        tag, outcome = results.get(timeout=3600)
        server1, pg1, busy1 = server.cpu_seconds(), postgres_cpu_seconds(), _machine_busy()
        if tag != "done":
            raise RuntimeError(f"client failed in {kind}: {outcome}")
        outcome["server_cpu"] = server1 - server0
        outcome["pg_cpu"] = pg1 - pg0
        outcome["machine_busy_pct"] = 100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
        outcome["rss_before_mib"] = rss_before / 1024
        outcome["rss_peak_mib"] = sampler.peak / 1024
        outcome["rss_after_mib"] = rss_kib(sampler.pids()) / 1024
        return outcome
    finally:
        sampler.stop_event.set()
        for spy in spies:
            spy.send_signal(2)  # SIGINT: py-spy writes what it has
        for spy in spies:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join()


def _start_py_spy(server, out_dir: Path, kind: str) -> list[subprocess.Popen]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out_dir.mkdir(parents=True, exist_ok=True)
    pids = server.worker_pids() if server.workers > 1 else [server.process.pid]
    return [subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
                              "--output", str(out_dir / f"{kind}-worker{pid}.txt"), "--nonblocking"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for pid in pids]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _cpu_line(o: dict) -> str:
    return (f"  cpu s: server {o['server_cpu']:.2f} ({100 * o['server_cpu'] / o['seconds']:.0f}% of a "
            f"core), client {o['client_cpu']:.2f}, postgres {o['pg_cpu']:.2f}; machine busy "
            f"{o['machine_busy_pct']:.0f}% of {os.cpu_count()} cores; server RSS MiB "
            f"{o['rss_before_mib']:.0f} -> peak {o['rss_peak_mib']:.0f} (after {o['rss_after_mib']:.0f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=10_000, help="limit of each paged pull")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--delta-seconds", type=float, default=10)
    parser.add_argument("--load", choices=("direct", "trigger"), default="direct",
                        help="direct: trigger disabled, seq from the sequence; trigger: at COMMIT")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--py-spy", type=Path, default=None, metavar="DIR",
                        help="record py-spy raw profiles of the server during each phase")
    args = parser.parse_args()
    n = args.hashes

    print(f"machine: {os.cpu_count()} cpus ({platform.processor() or platform.machine()}), "
          f"Python {platform.python_version()} ({platform.python_implementation()}), "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # Read by the server's Settings: the per-partner (50/s) and per-client case-write limits
    # would throttle the delta loop (0 turns the latter off); per-request log lines off unless
    # asked for.
    os.environ["HASHGUARD_PARTNER_REQUESTS_PER_SECOND"] = "1000000"
    os.environ["HASHGUARD_CASE_WRITES_PER_HOUR_PER_CLIENT"] = "0"
    os.environ.setdefault("HASHGUARD_LOG_LEVEL", "WARNING")
    failures: list[str] = []
    figures: dict = {}
    with throwaway_database() as url:
        import psycopg
        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            settings = {k: conn.execute(f"SHOW {k}").fetchone()[0]
                        for k in ("shared_buffers", "work_mem", "synchronous_commit")}
        print(f"database: PostgreSQL {version} at {url.rsplit('@', 1)[-1]}, throwaway; "
              + ", ".join(f"{k}={v}" for k, v in settings.items()))

        t = time.perf_counter()
        timings = load_hashes(url, n, args.load)
        load_total = time.perf_counter() - t
        print(f"load: {n} hashes in {load_total:.1f} s ({n / load_total:,.0f} rows/s) -- "
              + "; ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        with psycopg.connect(url) as conn:
            sizes = conn.execute("""SELECT pg_size_pretty(pg_total_relation_size('hashes')),
                                           pg_size_pretty(pg_total_relation_size('change_log'))
                                 """).fetchone()
        print(f"  sizes with indexes: hashes {sizes[0]}, change_log {sizes[1]}")
        key = create_partner_key(url)

        # The first pass also sets hint bits after the bulk load; the second is the baseline.
        cold = sql_baseline(url, args.page)
        warm = sql_baseline(url, args.page)
        figures["sql"] = warm["rows"] / warm["seconds"]
        print(f"SQL baseline (psycopg, same query, pages of {args.page}, no HTTP): "
              f"{warm['rows']} rows in {warm['seconds']:.2f} s = {figures['sql']:,.0f} rows/s "
              f"({warm['pages']} pages; first pass {cold['seconds']:.2f} s)")
        print("  plan of one page: " + " | ".join(line.strip() for line in warm["plan"]
                                                   if "->" in line or "Limit" in line
                                                   or "Execution" in line))
        if warm["rows"] != n:
            failures.append(f"SQL baseline read {warm['rows']} rows, not {n}")

        with running_server(url, workers=args.workers) as server:
            print(f"server: uvicorn, {args.workers} worker(s), access log off; client: http.client "
                  f"keep-alive in a separate process; partner and case-write rate limits off; "
                  f"log level {os.environ['HASHGUARD_LOG_LEVEL']}")
            if os.environ.get("HASHGUARD_TREE_BUILDER") != "0":
                # A service in use has its transparency tree built; a first build of N entries
                # inside the measured phases would be timed as pull cost.
                took = wait_for_tree(url, n)
                print(f"transparency tree built over the loaded log in {took:.0f} s (not measured)")

            o = run_phase(server, key, "paged", {"page": args.page}, args.py_spy)
            rate = o["adds"] / o["seconds"]
            figures["paged"] = rate
            lat = o["latencies"]
            print(f"full sync, paged (limit={args.page}): {o['adds']} adds in {o['seconds']:.2f} s = "
                  f"{rate:,.0f} hashes/s; {o['pages']} pages, page ms p50 "
                  f"{1e3 * percentile(lat, 50):.0f} max {1e3 * max(lat):.0f}; "
                  f"{o['bytes'] / 2**20:.0f} MiB JSON ({o['bytes'] / max(1, o['adds']):.0f} B/entry)")
            print(_cpu_line(o))
            ok = (o["adds"] == n and o["removes"] == 0 and o["distinct"] == n and not o["problems"])
            print(f"  correctness: adds {o['adds']} (want {n}), removes {o['removes']}, distinct "
                  f"values {o['distinct']}, seqs strictly increasing: {not o['problems']} -> "
                  f"{'OK' if ok else 'FAIL ' + '; '.join(o['problems'])}")
            if not ok:
                failures.append("paged full sync incorrect")
            sync_cursor = o["cursor"]
            if figures["sql"]:
                print(f"  HTTP/JSON paged vs SQL baseline: {rate / figures['sql']:.2f}x of the "
                      f"database-only rate ({figures['sql'] / max(rate, 1):.1f}x slower)")

            if not args.skip_export:
                for kind in ("export", "export-gzip"):
                    o = run_phase(server, key, kind, {}, args.py_spy)
                    rate = o["adds"] / o["seconds"]
                    figures[kind] = rate
                    print(f"full sync, {kind}: {o['adds']} adds in {o['seconds']:.2f} s = "
                          f"{rate:,.0f} hashes/s; {o['bytes'] / 2**20:.1f} MiB on the wire "
                          f"({o['plain_bytes'] / 2**20:.1f} MiB NDJSON, "
                          f"{o['bytes'] / max(1, o['adds']):.0f} B/entry); first byte after "
                          f"{1e3 * (o['first_byte'] or 0):.0f} ms")
                    print(_cpu_line(o))
                    ok = o["adds"] == n and not o["problems"]
                    print(f"  correctness: adds {o['adds']} (want {n}), seqs strictly increasing, "
                          f"final cursor -> {'OK' if ok else 'FAIL ' + '; '.join(o['problems'])}")
                    if not ok:
                        failures.append(f"{kind} incorrect")

            o = run_phase(server, key, "delta",
                          {"cursor": sync_cursor, "seconds": args.delta_seconds, "page": args.page},
                          args.py_spy)
            lat, sub = o["latencies"], o["submit_latencies"]
            figures["delta_p99_ms"] = 1e3 * percentile(lat, 99)
            print(f"delta pulls (after a POST /v1/cases of {DELTA_HASHES} hashes each): "
                  f"{o['rounds']} rounds in {o['seconds']:.1f} s; pull ms p50 "
                  f"{1e3 * percentile(lat, 50):.1f} p90 {1e3 * percentile(lat, 90):.1f} p99 "
                  f"{1e3 * percentile(lat, 99):.1f} max {1e3 * max(lat):.1f}; submit ms p50 "
                  f"{1e3 * percentile(sub, 50):.1f} p99 {1e3 * percentile(sub, 99):.1f}")
            print(_cpu_line(o))
            ok = not o["problems"] and o["rounds"] > 0
            print(f"  correctness: every delta held exactly its {DELTA_HASHES} new hashes -> "
                  f"{'OK' if ok else 'FAIL ' + '; '.join(o['problems'])}")
            if not ok:
                failures.append("delta pulls incorrect")
        if args.py_spy:
            print(f"py-spy raw profiles in {args.py_spy}")

    paged = figures.get("paged", 0.0)
    best = max(v for k, v in figures.items() if k in ("paged", "export", "export-gzip"))
    print(f"goal: >= {GOAL_HASHES_PER_S:,} hashes/s full sync (paged pull): "
          f"{'PASS' if paged >= GOAL_HASHES_PER_S and not failures else 'MISS'}; "
          f"any method: {'PASS' if best >= GOAL_HASHES_PER_S and not failures else 'MISS'} "
          f"(paged {paged:,.0f}/s"
          + (f", export {figures['export']:,.0f}/s, export gzip {figures['export-gzip']:,.0f}/s"
             if "export" in figures else "") + ")")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
