"""In-memory token buckets keyed by a keyed hash, for the limits each process keeps on its own.

These bound load (per-process lookups, per-partner requests, per-address case writes and value
bytes) and count successes too, so sharing them would put a database write on every request.
The limits that bound guessing count failures only and are shared by every process through the
database instead (store/limits.py; issue 23: kept here they multiplied with the processes).

Keys are HMACs under a per-process random key, so even a memory dump does not hold a case
reference or an address in clear, and nothing is ever written to the database or logs.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time


class RateLimiter:
    def __init__(self, capacity: float, refill_per_second: float, max_keys: int = 100_000):
        self.capacity, self.refill = capacity, refill_per_second
        self.max_keys = max_keys
        self._key = os.urandom(32)
        self._buckets: dict[bytes, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, subject: str, cost: float = 1) -> bool:
        """Take `cost` tokens from the subject's bucket if it holds them (a byte budget charges
        a request by its size; a request budget charges 1)."""
        key = self._bucket_key(subject)
        now = time.monotonic()
        with self._lock:
            tokens = self._level(key, now)
            allowed = tokens >= cost
            self._buckets[key] = (tokens - cost if allowed else tokens, now)
            if len(self._buckets) > self.max_keys:
                self._evict_full(now)
            return allowed

    def peek(self, subject: str) -> bool:
        """Whether `allow` would pass now, without taking a token (for limits that only charge
        some outcomes, such as failed partner keys, yet must refuse before doing the work)."""
        key = self._bucket_key(subject)
        with self._lock:
            return self._level(key, time.monotonic()) >= 1

    def _bucket_key(self, subject: str) -> bytes:
        return hmac.new(self._key, subject.encode(), hashlib.sha256).digest()[:16]

    def _level(self, key: bytes, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - last) * self.refill)

    def _evict_full(self, now: float) -> None:
        """Drop buckets that have refilled completely: they carry no information."""
        full = [k for k, (t, last) in self._buckets.items()
                if t + (now - last) * self.refill >= self.capacity]
        for k in full:
            del self._buckets[k]
