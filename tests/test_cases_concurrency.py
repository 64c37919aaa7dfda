"""Concurrent submits and withdrawals of overlapping hashes keep the shared set and the change log
consistent: the log replayed in seq order gives exactly the shared set."""
from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from store.db import Database
from store.models import ChangeLogEntry, Hash, SharedHash
from tests.hashes import BRIDGE, C_PNG, Q0122, Q0291, Q1050, pdq

POOL = [BRIDGE, C_PNG, Q0122, Q0291, Q1050]


def test_overlapping_submits_and_withdrawals_stay_consistent(client, database_url):
    rng = random.Random(7)

    def one_case(i: int) -> None:
        hashes = [pdq(v) for v in rng.sample(POOL, 2)]
        body = client.post("/v1/cases", json={"pathway": "adult", "hashes": hashes}).json()
        if i % 2 == 0:
            client.post(f"/v1/cases/{body['case_ref']}/withdraw",
                        headers={"Authorization": f"Bearer {body['token']}"})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one_case, range(60)))

    db = Database(database_url)
    with db.transaction() as s:
        log = s.execute(select(ChangeLogEntry.op, Hash.value, ChangeLogEntry.pathway)
                        .join(Hash, Hash.id == ChangeLogEntry.hash_id)
                        .order_by(ChangeLogEntry.seq)).all()
        shared = {(v, p) for v, p in s.execute(
            select(Hash.value, SharedHash.pathway).join(SharedHash, SharedHash.hash_id == Hash.id))}
    db.dispose()
    replayed: set = set()
    for op, value, pathway in log:
        key = (value, pathway)
        assert (key in replayed) == (op == "remove"), "an add of a present or remove of an absent hash"
        (replayed.add if op == "add" else replayed.discard)(key)
    assert replayed == shared
    # 30 cases stay active, each holding 2 of 5 hashes: the shared set cannot be empty.
    assert shared
