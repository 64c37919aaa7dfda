"""Transparency log benchmarks on PostgreSQL.

    python bench/transparency_bench.py tree [--entries 1000000]
        Builds the trees (one per pathway: 6/7 of the entries adult, 1/7 under-18) over N
        change-log entries (bulk-loaded), then times extending them at that size in small steps
        (what the background builder does), and serving inclusion and consistency proofs of the
        adult tree at its size (store functions, and over HTTP through the app, as a partner).
    python bench/transparency_bench.py submit [--seconds 20] [--concurrency 32] [--rounds 2]
        Submit throughput with and without tree maintenance, side by side: the same app in
        alternating rounds (fresh database each), the builder on (HASHGUARD_TREE_BUILDER=1,
        a head every second) or off; uses bench/submit_bench.py's load generator.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(ROOT))
from _server import BENCH_SECRET, app_factory, running_server, throwaway_database  # noqa: E402

# --- tree: extend and prove at 1 M entries -----------------------------------------------------

def bulk_load(url: str, first: int, count: int) -> None:
    """Hashes and change-log entries first..first+count-1, seq = id, every 7th under-18, and
    pathway_seq numbered within each pathway (the commit-time trigger is disabled for the load:
    this throwaway database has no concurrent writers)."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute("ALTER TABLE change_log DISABLE TRIGGER change_log_position_at_commit")
        conn.execute("""
            INSERT INTO hashes (id, signal_type, value, quality, digest, state)
            SELECT i, 'pdq', encode(sha256(('v' || i)::bytea), 'hex'), 100,
                   sha256(('d' || i)::bytea), 'ok'
            FROM generate_series(%(a)s::bigint, %(b)s::bigint) i""", {"a": first, "b": first + count - 1})
        conn.execute("""
            INSERT INTO change_log (id, seq, pathway_seq, op, hash_id, signal_type, value,
                                    quality, pathway, logged_at, also_shared)
            SELECT i, i, CASE WHEN i %% 7 = 0 THEN i / 7 ELSE i - i / 7 END, 'add', i, 'pdq',
                   encode(sha256(('v' || i)::bytea), 'hex'), 100,
                   CASE WHEN i %% 7 = 0 THEN 'under18_at_capture' ELSE 'adult' END, 0, false
            FROM generate_series(%(a)s::bigint, %(b)s::bigint) i""", {"a": first, "b": first + count - 1})
        conn.execute("ALTER TABLE change_log ENABLE TRIGGER change_log_position_at_commit")
        if count > 1000:  # as autovacuum would after a load this size: plans need statistics
            conn.execute("ANALYZE hashes")
            conn.execute("ANALYZE change_log")


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return sorted(out)


def ms(values: list[float], p: float) -> str:
    return f"{1e3 * values[min(len(values) - 1, int(p / 100 * len(values)))]:.2f}"


def tree_bench(entries: int) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from fastapi.testclient import TestClient

    from partners.transparency import TreeBuilder
    from store import merkle
    from store.db import Database

    with throwaway_database() as url:
        t0 = time.perf_counter()
        bulk_load(url, 1, entries)
        print(f"bulk-loaded {entries:,} change-log entries in {time.perf_counter() - t0:.1f} s")
        db = Database(url)
        builder = TreeBuilder(db, Ed25519PrivateKey.generate())
        t0 = time.perf_counter()
        sizes = builder.catch_up()
        took = time.perf_counter() - t0
        size = sum(sizes.values())
        print(f"initial build: {size:,} leaves ({sizes}) in {took:.1f} s = "
              f"{1e6 * took / size:.1f} µs/entry (batches of {merkle.BATCH_ENTRIES})")

        # Extending at 1 M: 100 steps of 100 new entries, each step one transaction + a signed head.
        step_entries, steps = 100, 100
        durations = []
        for n in range(steps):
            bulk_load(url, entries + 1 + n * step_entries, step_entries)
            t0 = time.perf_counter()
            builder.step(force=True)
            durations.append(time.perf_counter() - t0)
        durations.sort()
        per_entry = 1e6 * statistics.mean(durations) / step_entries
        print(f"extend at {size:,}: step of {step_entries} entries + signed head: p50 "
              f"{ms(durations, 50)} ms, p99 {ms(durations, 99)} ms = {per_entry:.1f} µs/entry")
        one = []
        for n in range(50):
            bulk_load(url, entries + steps * step_entries + 1 + n, 1)
            t0 = time.perf_counter()
            builder.step(force=True)
            one.append(time.perf_counter() - t0)
        one.sort()
        print(f"extend at {size:,}: step of 1 entry + signed head: p50 {ms(one, 50)} ms, "
              f"p99 {ms(one, 99)} ms")

        size = builder.catch_up()["adult"]  # proofs of the larger tree
        rng = random.Random(1)
        with db.read() as session:
            incl = timed(lambda: merkle.prove_inclusion(
                session, "adult", rng.randrange(size), size), 500)
            cons = timed(lambda: merkle.prove_consistency(
                session, "adult", rng.randrange(1, size), size), 500)
        print(f"proofs at {size:,} (store functions, one read each): inclusion p50 {ms(incl, 50)} "
              f"ms p99 {ms(incl, 99)} ms; consistency p50 {ms(cons, 50)} ms p99 {ms(cons, 99)} ms")

        # The trees are read with a partner key: its rate limit off, as the other benches do.
        os.environ.update(HASHGUARD_DATABASE_URL=url, HASHGUARD_SECRET=BENCH_SECRET,
                          HASHGUARD_PARTNER_REQUESTS_PER_SECOND="1000000",
                          HASHGUARD_DATA_DIR=tempfile.mkdtemp(prefix="hashguard_bench_"))
        app = app_factory()
        client = TestClient(app)  # no lifespan: no builder thread, only the routes
        from partners import admin
        with app.state.database.transaction() as session:  # the trees are partners' to read
            partner = admin.add_partner(session, "bench", ["adult"])
            client.headers["Authorization"] = "Bearer " + admin.create_key(
                session, partner, app.state.server_secret)

        def get(path, params):
            response = client.get(path, params=params)
            assert response.status_code == 200, response.text
        incl = timed(lambda: get("/v1/transparency/proof/inclusion",
                                 {"index": rng.randrange(size), "tree_size": size}), 500)
        cons = timed(lambda: get("/v1/transparency/proof/consistency",
                                 {"first": rng.randrange(1, size), "second": size}), 500)
        head = timed(lambda: get("/v1/transparency/head", {}), 500)
        print(f"proofs at {size:,} over HTTP (in-process client): inclusion p50 {ms(incl, 50)} ms "
              f"p99 {ms(incl, 99)} ms; consistency p50 {ms(cons, 50)} ms p99 {ms(cons, 99)} ms; "
              f"head p50 {ms(head, 50)} ms")
        with db.read() as session:
            from sqlalchemy import text
            sizes = session.execute(text(
                "SELECT pg_total_relation_size('transparency_leaves'), "
                "pg_total_relation_size('transparency_nodes')")).one()
        print(f"storage: leaves {sizes[0] / 2**20:.0f} MiB, nodes {sizes[1] / 2**20:.0f} MiB")
        app.state.database.dispose()
        db.dispose()


# --- submit: throughput with and without tree maintenance --------------------------------------

def submit_bench(seconds: float, concurrency: int, rounds: int, warmup: float, workers: int,
                 existing_cases: int) -> None:
    import psycopg
    from _server import wait_for_tree
    from submit_bench import HASHES_PER_CASE, describe, populate, run_phase

    print(f"each round: a fresh database with {existing_cases:,} cases already in it (VACUUM "
          f"ANALYZE), uvicorn with {workers} worker(s), concurrency {concurrency}")
    rates = {True: [], False: []}
    cpu_ms = {True: [], False: []}  # server + PostgreSQL CPU per submit
    for round_ in range(rounds):
        for builder_on in ((False, True) if round_ % 2 == 0 else (True, False)):
            with throwaway_database() as url:
                populate(url, existing_cases)
                with running_server(url, workers=workers, env={
                        "HASHGUARD_TREE_BUILDER": "1" if builder_on else "0"}) as server:
                    if builder_on:  # the tree over the populated log, built before measuring
                        wait_for_tree(url, existing_cases * HASHES_PER_CASE)
                    outcome = run_phase(server, "submit", concurrency, warmup, seconds, "raw")
                    label = f"round {round_ + 1}, tree maintenance {'ON ' if builder_on else 'OFF'}"
                    rate = describe(label, outcome, "cases")
                    rates[builder_on].append(rate)
                    cpu_ms[builder_on].append(
                        10 * (outcome["server_cpu_pct"] + outcome["postgres_cpu_pct"]) / rate)
                    if builder_on:
                        time.sleep(2)  # let the builder finish, then check it kept up
                        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as c:
                            logged, leaves, heads = c.execute(
                                "SELECT (SELECT count(*) FROM change_log), "
                                "(SELECT count(*) FROM transparency_leaves), "
                                "(SELECT count(*) FROM transparency_heads)").fetchone()
                        print(f"  change log {logged:,} entries, tree {leaves:,} leaves, "
                              f"{heads} signed heads")
    off, on = statistics.mean(rates[False]), statistics.mean(rates[True])
    print(f"mean submit rate: OFF {off:.0f} cases/s, ON {on:.0f} cases/s "
          f"({100 * (on - off) / off:+.1f} %)")
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"median submit rate: OFF {off:.0f} cases/s, ON {on:.0f} cases/s "
          f"({100 * (on - off) / off:+.1f} %)")
    # On a CPU-bound machine the throughput lost is the CPU added per submit; this figure moves
    # far less between rounds than the rates do.
    off, on = statistics.mean(cpu_ms[False]), statistics.mean(cpu_ms[True])
    print(f"mean CPU per submit (server + PostgreSQL): OFF {off:.2f} ms, ON {on:.2f} ms "
          f"({100 * (on - off) / off:+.1f} %)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    tree = sub.add_parser("tree")
    tree.add_argument("--entries", type=int, default=1_000_000)
    submit = sub.add_parser("submit")
    submit.add_argument("--seconds", type=float, default=20)
    submit.add_argument("--concurrency", type=int, default=32)
    submit.add_argument("--rounds", type=int, default=2)
    submit.add_argument("--warmup", type=float, default=3)
    submit.add_argument("--workers", type=int, default=2)
    submit.add_argument("--existing-cases", type=int, default=20_000)
    args = parser.parse_args()
    if args.what == "tree":
        tree_bench(args.entries)
    else:
        submit_bench(args.seconds, args.concurrency, args.rounds, args.warmup, args.workers,
                     args.existing_cases)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
