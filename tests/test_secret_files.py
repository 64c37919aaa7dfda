"""Secrets made on first start, by several workers starting at the same moment (no
HASHGUARD_SECRET, no key in the environment): every worker must end up with the same, complete
secret, and none may crash. Real processes, released together by a barrier, round after round,
each round in a fresh data dir."""
from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path

import pytest

WORKERS = 6
ROUNDS = 100


def _server_secret(data_dir: Path) -> bytes:
    from api.settings import Settings

    return Settings(data_dir=data_dir, secret=None).server_secret()


def _transparency_key(data_dir: Path) -> bytes:
    from partners.transparency import public_key_raw, signing_key

    return public_key_raw(signing_key(data_dir))


def _webhook_key(data_dir: Path) -> bytes:
    from partners.webhooks import WebhookSigner

    return WebhookSigner(data_dir).public_key().encode()


def _worker(make, base: str, barrier, results) -> None:
    for round_ in range(ROUNDS):
        barrier.wait(timeout=60)
        try:
            results.put((round_, "ok", make(Path(base) / str(round_))))
        except Exception:  # noqa: BLE001 - what a worker would crash with is the finding
            results.put((round_, "crash", traceback.format_exc(limit=2)))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("make", [_server_secret, _transparency_key, _webhook_key],
                         ids=["server-secret", "transparency-key", "webhook-key"])
def test_workers_starting_together_share_one_complete_secret(make, tmp_path):
    context = multiprocessing.get_context("fork")  # the start-up race, without import time
    barrier, results = context.Barrier(WORKERS), context.Queue()
    workers = [context.Process(target=_worker, args=(make, str(tmp_path), barrier, results))
               for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    seen: dict[int, list] = {}
    for _ in range(WORKERS * ROUNDS):
        round_, outcome, value = results.get(timeout=120)
        seen.setdefault(round_, []).append((outcome, value))
    for worker in workers:
        worker.join(30)
    crashes = [value for outcomes in seen.values() for outcome, value in outcomes
               if outcome == "crash"]
    assert not crashes, f"{len(crashes)} worker start(s) crashed, e.g.:\n{crashes[0]}"
    split = [round_ for round_, outcomes in seen.items()
             if len({value for _, value in outcomes}) != 1 or not outcomes[0][1]]
    assert not split, f"workers disagreed on the secret (or read it empty) in rounds {split}"
