"""What the shared failure budgets (store/limits.py) add per request, on PostgreSQL.

Measured on a throwaway database, in one process, statement by statement (no HTTP: the HTTP
path around them is unchanged), each as the median of --rounds tries:

  * partner request, good key: one read transaction with the key lookup's shape (a SELECT by
    primary key), with and without the budget check before it; the difference is what every
    partner request now pays;
  * wrong case token: the charge, one transaction with two UPSERTs (per case, per address), on
    a new subject and on one whose budget is spent (the common case during an attack);
  * a correct case token pays nothing (it reads and writes no budget:
    tests/test_limit_counters.py checks that no statement touches the table);
  * the sweep of 5,000 expired rows (one statement, run every 256 charges per process).

    python bench/limits_bench.py [--rounds 2000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import text  # noqa: E402

from _server import throwaway_database  # noqa: E402
from store.db import Database  # noqa: E402
from store.limits import SharedLimits, budget  # noqa: E402


def _median_us(run, rounds: int) -> float:
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds
    with throwaway_database() as url:
        db = Database(url)
        limits = SharedLimits(db, os.urandom(32))
        per_case, per_client = budget("case", 10, 60), budget("client", 60, 60)
        key_budget = budget("partner-key", 20, 60)
        lookup = text("SELECT id FROM partner_keys WHERE id = :id")

        def read_only(_i):
            with db.read() as session:
                session.execute(lookup, {"id": 1}).first()

        def read_with_check(i):
            with db.read() as session:
                limits.exhausted(session, key_budget, f"198.51.100.{i % 250}")
                session.execute(lookup, {"id": 1}).first()

        for run in (read_only, read_with_check):  # warm the pool and the plans
            _median_us(run, 200)
        # Interleaved, round by round: on a loaded machine the two medians then see the same load.
        pairs = [(_median_us(read_only, 1), _median_us(read_with_check, 1)) for _ in range(rounds)]
        base = statistics.median(p[0] for p in pairs)
        checked = statistics.median(p[1] for p in pairs)
        server_check = _server_ms(db, limits._level, {"key": limits.key(key_budget, "x")})
        server_charge = _server_ms(db, limits._charge, {
            "key": limits.key(per_case, "x"), "step": per_case.step, "period": per_case.period})
        fresh = _median_us(lambda i: limits.charge(
            [(per_case, f"HG-{i}"), (per_client, f"203.0.113.{i}")]), rounds)
        spent = _median_us(lambda i: limits.charge(
            [(per_case, "HG-ATTACKED"), (per_client, "203.0.113.1")]), rounds)
        with db.transaction() as session:
            session.execute(text("DELETE FROM limit_counters"))
            session.execute(text(
                "INSERT INTO limit_counters (key, due, refused) SELECT "
                "substring(decode(md5(g::text), 'hex') from 1 for 16), 0, false "
                "FROM generate_series(1, 5000) g"))
        started = time.perf_counter()
        swept = limits.sweep()
        sweep_ms = (time.perf_counter() - started) * 1e3
        db.dispose()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {rounds} rounds, medians")
    print(f"partner request, good key: read txn {base:.0f} us -> {checked:.0f} us with the "
          f"budget check (+{checked - base:.0f} us)")
    print(f"wrong case token, charge (2 UPSERTs, one txn): new subject {fresh:.0f} us, "
          f"spent budget {spent:.0f} us")
    print(f"sweep of {swept} expired rows: {sweep_ms:.1f} ms")
    print(f"inside PostgreSQL (EXPLAIN ANALYZE execution time, median of 200): budget check "
          f"{server_check * 1e3:.0f} us, one charge UPSERT {server_charge * 1e3:.0f} us")


def _server_ms(db, statement, params) -> float:
    """The statement's execution time as PostgreSQL reports it (no client, no round trip)."""
    explain = text("EXPLAIN (ANALYZE, FORMAT JSON) " + statement.text)
    times = []
    for _ in range(200):
        with db.transaction() as session:
            plan = session.execute(explain, params).scalar_one()
            times.append(plan[0]["Execution Time"])
    return statistics.median(times)


if __name__ == "__main__":
    main()
