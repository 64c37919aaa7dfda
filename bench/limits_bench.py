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
        base = _median_us(read_only, rounds)
        checked = _median_us(read_with_check, rounds)
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


if __name__ == "__main__":
    main()
