"""Cost of TMK against a real server on PostgreSQL (issue 21, finding 5): one match request
against N stored TMK+PDQF values (default 1,000), beside a PDQ match in the same run, and the
bytes the worst anonymous request makes the database store.

The stored values are the attack's, the worst case for matching: N copies of one clip's
features, each with a different header frame count, so every one passes level 1 against the
query and is a level-2 candidate. Figures:
  * the first match after the values arrive (the index's catch-up decodes each value once);
  * one TMK match request (1 query) and one with the per-request maximum of TMK queries:
    wall time (median of --repeats), answer size, and the server's peak RSS during them above
    its RSS before (VmHWM after resetting it through /proc/<pid>/clear_refs);
  * one PDQ match request, the baseline;
  * the worst anonymous request: the most TMK values one request may carry, submitted as new
    values, then withdrawn; the growth of pg_total_relation_size over every table for each.

    flock /tmp/hashguard-bench.lock nice -n 10 python bench/tmk_match_bench.py [--stored 1000]
        [--repeats 5] [--root /path/to/another/checkout]

--root runs the server (and the populating client's expectations) from another checkout, e.g.
the code before this bound, to compare; use a small --stored there (every candidate is scored).
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import struct
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _server

TMK_FILE = _server.ROOT.parent / "shared" / "testdata" / "tmk" / "chair-19-sd-bar.tmk"
PDQ_QUERY = "d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22"  # the bridge photo


def tmk_variant(i: int) -> str:
    data = bytearray(TMK_FILE.read_bytes())
    struct.pack_into("<i", data, 28, 1000 + i)  # the header's informational frame count
    return base64.b64encode(bytes(data)).decode("ascii")


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def relation_bytes(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                            "JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE c.relkind = 'r' AND n.nspname = 'public'").fetchone()[0])


def make_partner(url: str) -> str:
    sys.path.insert(0, str(_server.ROOT))
    from partners import admin
    from store.db import Database
    from store.secrets import decode_secret

    database = Database(url)
    with database.transaction() as session:
        partner = admin.add_partner(session, "bench", admin.parse_pathways("adult"))
        key = admin.create_key(session, partner, decode_secret(_server.BENCH_SECRET))
    database.dispose()
    return key


def timed_match(client: httpx.Client, key: str, hashes: list[dict], repeats: int, pid: int):
    times, peaks = [], []
    size = 0
    client.post("/v1/partner/match", json={"hashes": hashes},  # warm-up, not measured
                headers={"Authorization": f"Bearer {key}"}).raise_for_status()
    for _ in range(repeats):
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = rss_kb(pid, "VmRSS")
        started = time.perf_counter()
        response = client.post("/v1/partner/match", json={"hashes": hashes},
                               headers={"Authorization": f"Bearer {key}"})
        times.append(time.perf_counter() - started)
        response.raise_for_status()
        size = len(response.content)
        peaks.append(rss_kb(pid, "VmHWM") - before)
    return statistics.median(times), max(peaks), size, response.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stored", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--per-request", type=int, default=8,
                        help="TMK values per submit (8 fit the default byte limit)")
    parser.add_argument("--queries", type=int, default=8,
                        help="TMK queries in the many-query match request")
    parser.add_argument("--root", type=Path, help="serve another checkout's code")
    args = parser.parse_args()
    if args.root:
        _server.ROOT, _server.BENCH_DIR = args.root.resolve(), args.root.resolve() / "bench"
    print(f"load average before: {os.getloadavg()}")
    env = {"HASHGUARD_VALUE_BYTES_PER_HOUR_PER_CLIENT": "0",  # all from one loopback address
           "HASHGUARD_TREE_BUILDER": "0"}
    with _server.throwaway_database() as url, _server.running_server(url, env=env) as server, \
            httpx.Client(base_url=server.base_url, timeout=600) as client:
        pid = server.process.pid
        key = make_partner(url)

        started = time.perf_counter()
        for first in range(0, args.stored, args.per_request):
            count = min(args.per_request, args.stored - first)
            client.post("/v1/cases", json={"pathway": "adult", "hashes": [
                {"signal_type": "video_tmk_pdqf", "value": tmk_variant(i)}
                for i in range(first, first + count)]}).raise_for_status()
        client.post("/v1/cases", json={"pathway": "adult", "hashes": [
            {"signal_type": "pdq", "value": PDQ_QUERY, "quality": 100}]}).raise_for_status()
        print(f"stored {args.stored} TMK values (+1 PDQ) in {time.perf_counter() - started:.1f} s;"
              f" database {relation_bytes(url) / 1e6:.0f} MB")

        query = [{"signal_type": "video_tmk_pdqf", "value": tmk_variant(10**6)}]
        started = time.perf_counter()
        client.post("/v1/partner/match", json={"hashes": query},
                    headers={"Authorization": f"Bearer {key}"}).raise_for_status()
        print(f"first match (index catch-up of {args.stored} values): "
              f"{time.perf_counter() - started:.2f} s; server RSS {rss_kb(pid, 'VmRSS') / 1024:.0f} MB")

        rows = [("PDQ match, 1 query (baseline)", [{"signal_type": "pdq", "value": PDQ_QUERY}]),
                ("TMK match, 1 query", query),
                (f"TMK match, {args.queries} queries", [
                    {"signal_type": "video_tmk_pdqf", "value": tmk_variant(10**6 + q)}
                    for q in range(args.queries)])]
        for label, hashes in rows:
            seconds, peak_kb, size, body = timed_match(client, key, hashes, args.repeats, pid)
            matches = sum(len(r["matches"]) for r in body["results"])
            errors = sum("error" in r for r in body["results"])
            print(f"{label:34s} median {seconds * 1000:8.1f} ms  peak RSS +{peak_kb / 1024:6.1f} MB"
                  f"  answer {size / 1e3:9.1f} kB  matches {matches}  refused queries {errors}")
        print(f"server RSS after: {rss_kb(pid, 'VmRSS') / 1024:.0f} MB")

        worst = [{"signal_type": "video_tmk_pdqf", "value": tmk_variant(2 * 10**6 + i)}
                 for i in range(args.per_request)]
        body = json.dumps({"pathway": "adult", "hashes": worst})
        before = relation_bytes(url)
        response = client.post("/v1/cases", content=body,
                               headers={"Content-Type": "application/json"})
        response.raise_for_status()
        after_submit = relation_bytes(url)
        case = response.json()
        client.post(f"/v1/cases/{case['case_ref']}/withdraw",
                    headers={"Authorization": f"Bearer {case['token']}"}).raise_for_status()
        after_withdraw = relation_bytes(url)
        print(f"worst anonymous request: {len(body) / 1e6:.2f} MB body ({args.per_request} new "
              f"TMK values) stored {(after_submit - before) / 1e6:.2f} MB; its withdrawal "
              f"{(after_withdraw - after_submit) / 1e6:.2f} MB more")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
