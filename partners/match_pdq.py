"""Exact PDQ radius search (Hamming distance <= 31) over millions of hashes: a multi-index hash
written with numpy, updated incrementally, lookups lock-free.

Why not faiss: python-threatexchange's PDQIndex (faiss IndexBinaryMultiHash, 16 slots of 16 bits)
does ~98 lookups/s at 10 M random hashes on this 2-core machine, faiss flat ~121/s, and the best
faiss MultiHash setting found (11 slots of 23 bits, nflip 2, exact by pigeonhole) ~706/s; its
per-probe hash-map lookups and per-candidate work dominate. The goal is >= 4,000/s on one core.
(bench/match_bench.py measures PDQIndex again in the same run.)

Layout
------
The 256 bits are cut into 11 contiguous slots (3 of 24 bits, 8 of 23). Pigeonhole: if
d(a, b) <= 31 then some slot differs in <= floor(31 / 11) = 2 bits, so probing every slot with
its key and all keys within 2 bit flips (1 + L + L(L-1)/2 each: 3,119 probes in all) finds every
match. At 10 M hashes a 23-bit bucket holds ~1.2 ids, so a lookup verifies ~3,200 candidates
(16 x 16-bit slots would be 272 probes but ~41,000 candidates; measured slower).

All slots share ONE CSR table: "global bucket" = slot base + key (bases: cumulative 2^L),
`offsets` (int32, 2^24*3 + 2^23*8 + 1 = ~117 M entries, 470 MB) and `ids` (int32 row numbers,
11 per hash, sorted by global bucket). A lookup is a handful of vectorised numpy calls with no
Python loop per probe: gather 3,119 bucket bounds, expand them into candidate positions with one
np.repeat, gather ids and the candidates' 4 x uint64 words, XOR + np.bitwise_count on two words
(a random pair at 2 words is ~64 apart, so this rejects nearly everything), then the full 256-bit
distance on the few survivors. Memory at 10 M: rows 320 MB + ids 440 MB + offsets 470 MB +
pathway masks 10 MB ~= 1.25 GB.

Rows, removes, adds, and what is rebuilt when
---------------------------------------------
* `rows` (N x 4 uint64) and `masks` (uint8 per row: one bit per pathway it is shared under) are
  addressed by row number. A remove clears the pathway bit in place; a row whose mask is 0 is a
  tombstone that lookups skip. A re-add of a value whose row is still indexed sets the bit back:
  no structural change at all.
* A new value gets a row (a freed one or the next) and goes into the DELTA tier: its row number
  is appended to `delta_rows` and its words to `delta_words`, which lookups scan brute force
  (vectorised popcount). So a new hash is matchable as soon as catch_up has applied its entry.
* MERGE (background thread; started when the delta reaches MERGE_DELTA_ROWS, or by `compact()`):
  builds a new (ids, offsets) from the current main table plus the delta rows present at its
  start, per slot (np.insert of the delta ids at their buckets' ends + shifted offsets: O(main)
  copying, ~1-2 s at 10 M on this machine, no sorting of the main). When at least
  DROP_DEAD_FRACTION of the main's rows are tombstones, the same pass also drops them from the
  table (and their rows go to the free list). The new table replaces the old by one attribute
  assignment; lookups never wait for it (they hold a reference to whichever view they started
  with). Rows that a merge left out because they were tombstones, but that were re-added while it
  ran, are put back into the delta at the swap. Nothing ever rebuilds the whole index from
  scratch except `bulk_load` (an explicit initial load) and a merge into an empty main.
* Transient memory during a merge: the new table is built next to the old (+ ~0.9 GB at 10 M)
  until the swap frees the old one.

Thread safety: writers (catch_up's batches, the merge's swap) are serialised by `write_lock`.
Lookups take no lock: they read `self._view`, an immutable tuple replaced atomically by writers,
plus in-place mask bytes (a lookup racing a remove sees it before or after; both are valid).
"""
from __future__ import annotations

import itertools
import threading
import time
from typing import NamedTuple

import numpy as np

THRESHOLD = 31
SLOT_BITS = (24, 24, 24) + (23,) * 8
assert sum(SLOT_BITS) == 256 and THRESHOLD // len(SLOT_BITS) == 2
SLOT_START = tuple(int(x) for x in np.cumsum((0,) + SLOT_BITS[:-1]))
TABLE_BASE = tuple(int(x) for x in np.cumsum((0,) + tuple(1 << b for b in SLOT_BITS[:-1])))
TABLE_SIZE = sum(1 << b for b in SLOT_BITS)
NSLOTS = len(SLOT_BITS)

MERGE_DELTA_ROWS = 4096
# Below this many rows everything stays in the brute-force delta (a scan of 32 k rows costs about
# what a table lookup does) and the 470 MB bucket table is never allocated: small deployments and
# each test's app do not pay for it.
MIN_MAIN_ROWS = 32768
DROP_DEAD_FRACTION = 0.10


def _probe_tables():
    """Per probe: its slot, and the XOR mask (0, 1 or 2 bits flipped) applied to the slot's key."""
    slots, flips = [], []
    for s, bits in enumerate(SLOT_BITS):
        masks = [0] + [1 << i for i in range(bits)] + [
            (1 << i) | (1 << j) for i, j in itertools.combinations(range(bits), 2)]
        slots += [s] * len(masks)
        flips += masks
    return np.array(slots, dtype=np.intp), np.array(flips, dtype=np.int64)


_PROBE_SLOT, _PROBE_FLIP = _probe_tables()
_PROBE_BASE = np.array(TABLE_BASE, dtype=np.int64)[_PROBE_SLOT]
_SLOT_SHIFT = tuple(256 - SLOT_START[s] - SLOT_BITS[s] for s in range(NSLOTS))
_SLOT_MASK = tuple((1 << b) - 1 for b in SLOT_BITS)


def words_of(value: str) -> np.ndarray:
    """64-hex PDQ value -> 4 uint64 words, most significant first."""
    return np.frombuffer(bytes.fromhex(value), dtype=">u8").astype(np.uint64)


def words_of_many(values: list[str]) -> np.ndarray:
    raw = bytes.fromhex("".join(values))
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 4)


def hex_of(words: np.ndarray) -> str:
    return words.astype(">u8").tobytes().hex()


def slot_keys(rows: np.ndarray, s: int) -> np.ndarray:
    """The key (int64) of slot s for every row of an (n, 4) uint64 array."""
    start, bits = SLOT_START[s], SLOT_BITS[s]
    word, offset = divmod(start, 64)
    mask = np.uint64((1 << bits) - 1)
    if offset + bits <= 64:
        keys = (rows[:, word] >> np.uint64(64 - offset - bits)) & mask
    else:
        high = 64 - offset
        low = bits - high
        keys = (((rows[:, word] & np.uint64((1 << high) - 1)) << np.uint64(low))
                | (rows[:, word + 1] >> np.uint64(64 - low)))
    return keys.astype(np.int64)


def _argsort_keys(keys: np.ndarray) -> np.ndarray:
    """Stable argsort of keys < 2^24 by two 16-bit radix passes (numpy's radix sort), ~3x
    faster than a 32-bit sort at 10 M."""
    low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    return low[np.argsort((keys >> 16).astype(np.uint16)[low], kind="stable")]


class MainTable(NamedTuple):
    ids: np.ndarray      # int32 row numbers, 11 per indexed row, sorted by global bucket
    offsets: np.ndarray  # int32, TABLE_SIZE + 1: bucket g holds ids[offsets[g]:offsets[g+1]]
    count: int           # rows indexed


def _main_table(ids: np.ndarray, offsets: np.ndarray, count: int) -> MainTable:
    return MainTable(ids, offsets, count)


EMPTY_MAIN = _main_table(np.zeros(0, dtype=np.int32), np.zeros(TABLE_SIZE + 1, dtype=np.int32), 0)
_ARANGE = np.arange(1 << 16, dtype=np.int32)


def _arange(n: int) -> np.ndarray:
    return _ARANGE[:n] if n <= len(_ARANGE) else np.arange(n, dtype=np.int32)


class View(NamedTuple):
    main: MainTable
    rows: np.ndarray         # (capacity, 4) uint64
    masks: np.ndarray        # (capacity,) uint8
    delta_rows: np.ndarray   # int32 row numbers not in main (first delta_len valid)
    delta_words: np.ndarray  # their words, same order
    delta_len: int


def build_table(rows: np.ndarray, main: MainTable, drop: np.ndarray | None,
                add: np.ndarray) -> MainTable:
    """A new table = `main` minus the rows where drop[row] (if given) plus rows `add`.

    Per slot, so the transient memory beyond the result is one slot's worth.
    """
    old_ids, old_off = main.ids, main.offsets
    if drop is not None and main.count:
        kept_count = main.count - int(np.count_nonzero(drop[old_ids[:main.count]]))
    else:
        kept_count = main.count
    total = kept_count + len(add)
    new_ids = np.empty(total * NSLOTS, dtype=np.int32)
    new_off = np.empty(TABLE_SIZE + 1, dtype=np.int32)
    add_words = rows[add] if len(add) else np.zeros((0, 4), dtype=np.uint64)
    for s, bits in enumerate(SLOT_BITS):
        base = TABLE_BASE[s]
        start, end = s * main.count, (s + 1) * main.count
        old = old_ids[start:end]
        rel = old_off[base:base + (1 << bits) + 1] - start  # slot-relative bucket bounds
        if drop is not None and len(old):
            keep = ~drop[old]
            old = old[keep]
            cum = np.zeros(len(keep) + 1, dtype=np.int32)
            np.cumsum(keep, dtype=np.int32, out=cum[1:])
            rel = cum[rel]
        if len(add):
            keys = slot_keys(add_words, s)
            order = _argsort_keys(keys)
            keys, vals = keys[order], add[order]
            if len(old):
                merged = np.insert(old, rel[keys + 1], vals)
            else:
                merged = vals.astype(np.int32)
            counts = np.bincount(keys, minlength=1 << bits)
            shift = np.zeros((1 << bits) + 1, dtype=np.int32)
            np.cumsum(counts, dtype=np.int32, out=shift[1:])
            rel = rel + shift
        else:
            merged = old
        new_start = s * total
        new_ids[new_start:new_start + total] = merged
        new_off[base:base + (1 << bits)] = rel[:-1] + new_start
    new_off[TABLE_SIZE] = total * NSLOTS
    return _main_table(new_ids, new_off, total)


def _find_in_main(view: View, words: np.ndarray) -> np.ndarray:
    """Row number of each (exact) value in the main table, or -1. Vectorised over values."""
    found = np.full(len(words), -1, dtype=np.int64)
    main = view.main
    if not main.count or not len(words):
        return found
    g = slot_keys(words, 0) + TABLE_BASE[0]
    start, end = main.offsets[g], main.offsets[g + 1]
    lengths = (end - start).astype(np.int64)
    n = int(lengths.sum())
    if not n:
        return found
    owner = np.repeat(np.arange(len(words)), lengths)
    ends = np.cumsum(lengths)
    positions = np.repeat(start - (ends - lengths), lengths) + np.arange(n)
    cand = main.ids[positions]
    equal = (view.rows[cand] == words[owner]).all(axis=1)
    found[owner[equal]] = cand[equal]
    return found


class PdqIndex:
    """The PDQ part of the match index. `apply_batch` and `lookup` are its interface."""

    def __init__(self, pathways: tuple[str, ...] = ("adult", "under18_at_capture"),
                 background: bool = True, merge_delta_rows: int = MERGE_DELTA_ROWS) -> None:
        self.write_lock = threading.RLock()
        self._bits: dict[str, int] = {p: 1 << i for i, p in enumerate(pathways)}
        self._background = background
        self._merge_delta_rows = merge_delta_rows
        self._count = 0                  # rows ever allocated (high-water mark)
        self._free: list[int] = []       # rows in no structure, reusable
        self._delta_pos: dict[str, int] = {}  # value -> row, for delta rows
        self._delta_values: list[str] = []    # value of each delta row, same order
        self._in_main = np.zeros(0, dtype=bool)
        self._main_dead = 0              # rows in main whose mask is 0
        self._merge_thread: threading.Thread | None = None
        self._merge_lock = threading.Lock()  # one merge at a time (background or explicit)
        self.merges = 0
        self._view = View(EMPTY_MAIN, np.zeros((1024, 4), dtype=np.uint64),
                          np.zeros(1024, dtype=np.uint8), np.zeros(1024, dtype=np.int32),
                          np.zeros((1024, 4), dtype=np.uint64), 0)
        self._in_main = np.zeros(1024, dtype=bool)

    # ------------------------------------------------------------------ helpers
    def pathway_bits(self, pathways) -> int:
        bits = 0
        for p in pathways:
            bit = self._bits.get(p)
            if bit is None:
                with self.write_lock:
                    bit = self._bits.get(p)
                    if bit is None:
                        if len(self._bits) >= 8:
                            raise ValueError("at most 8 pathways")
                        bit = self._bits[p] = 1 << len(self._bits)
            bits |= bit
        return bits

    def __len__(self) -> int:
        view = self._view
        return int(np.count_nonzero(view.masks[:self._count]))

    def _grow_rows(self, view: View, needed: int) -> View:
        capacity = len(view.rows)
        if needed <= capacity:
            return view
        # A one-off copy of the rows under the write lock (~0.3 s at 10 M): lookups go on
        # with the old arrays meanwhile; adds wait for it.
        new_capacity = max(needed, capacity + capacity // 2)
        rows = np.zeros((new_capacity, 4), dtype=np.uint64)
        rows[:capacity] = view.rows
        masks = np.zeros(new_capacity, dtype=np.uint8)
        masks[:capacity] = view.masks
        in_main = np.zeros(new_capacity, dtype=bool)
        in_main[:capacity] = self._in_main
        self._in_main = in_main
        return view._replace(rows=rows, masks=masks)

    @staticmethod
    def _grow_delta(view: View, needed: int) -> View:
        capacity = len(view.delta_rows)
        if needed <= capacity:
            return view
        new_capacity = max(needed, capacity * 2)
        delta_rows = np.zeros(new_capacity, dtype=np.int32)
        delta_rows[:capacity] = view.delta_rows
        delta_words = np.zeros((new_capacity, 4), dtype=np.uint64)
        delta_words[:capacity] = view.delta_words
        return view._replace(delta_rows=delta_rows, delta_words=delta_words)

    # ------------------------------------------------------------------ updates
    def apply_batch(self, entries: list[tuple[bool, str, str]]) -> None:
        """Apply (is_add, value, pathway) entries in order. Caller-visible effects are those of
        applying them one by one; the work is vectorised per batch."""
        if not entries:
            return
        with self.write_lock:
            view = self._view
            distinct = list(dict.fromkeys(v for _, v, _ in entries))
            row_of: dict[str, int] = {}
            missing = []
            for value in distinct:
                row = self._delta_pos.get(value)
                if row is None:
                    missing.append(value)
                else:
                    row_of[value] = row
            if missing:
                found = _find_in_main(view, words_of_many(missing))
                for value, row in zip(missing, found.tolist()):
                    if row >= 0:
                        row_of[value] = row
            current = {v: int(view.masks[r]) for v, r in row_of.items()}
            final: dict[str, int] = {}
            for is_add, value, pathway in entries:
                mask = final.get(value, current.get(value, 0))
                bit = self._bits.get(pathway) or self.pathway_bits([pathway])
                final[value] = (mask | bit) if is_add else (mask & ~bit)
            new_values = [v for v in distinct if v not in row_of and final[v]]
            if new_values:
                reuse = min(len(self._free), len(new_values))
                new_rows = self._free[len(self._free) - reuse:]
                del self._free[len(self._free) - reuse:]
                fresh = len(new_values) - reuse
                new_rows += range(self._count, self._count + fresh)
                self._count += fresh
                view = self._grow_rows(view, self._count)
                rows_arr = np.array(new_rows, dtype=np.int32)
                words = words_of_many(new_values)
                view.rows[rows_arr] = words
                view = self._grow_delta(view, view.delta_len + len(new_values))
                end = view.delta_len + len(new_values)
                view.delta_rows[view.delta_len:end] = rows_arr
                view.delta_words[view.delta_len:end] = words
                for value, row in zip(new_values, new_rows):
                    row_of[value] = row
                    self._delta_pos[value] = row
                self._delta_values.extend(new_values)
                view = view._replace(delta_len=end)
            changed = [(row_of[v], m) for v, m in final.items() if v in row_of]
            if changed:
                rows_idx = np.array([r for r, _ in changed], dtype=np.int64)
                new_masks = np.array([m for _, m in changed], dtype=np.uint8)
                in_main = self._in_main[rows_idx]
                was_dead = view.masks[rows_idx] == 0
                now_dead = new_masks == 0
                self._main_dead += int(np.count_nonzero(in_main & now_dead & ~was_dead))
                self._main_dead -= int(np.count_nonzero(in_main & was_dead & ~now_dead))
                view.masks[rows_idx] = new_masks
            self._view = view
            if self._background and self._merge_due(view):
                self._start_merge()

    def bulk_load(self, words: np.ndarray, pathway: str) -> float:
        """Load many new distinct values (n x 4 uint64, e.g. an initial load or a benchmark)
        straight into the main table with one sort per slot. Returns the build seconds."""
        started = time.perf_counter()
        self.wait_for_merge()
        with self.write_lock:
            bit = self.pathway_bits([pathway])
            view = self._view
            first = self._count
            self._count += len(words)
            # slack, so the adds that follow do not reallocate (copy) the rows under the lock
            view = self._grow_rows(view, self._count + max(1024, self._count // 8))
            view.rows[first:self._count] = words
            view.masks[first:self._count] = bit
            self._view = view
        self._merge(extra=np.arange(first, first + len(words), dtype=np.int32))
        return time.perf_counter() - started

    def compact(self) -> None:
        """Merge the delta (and drop tombstones if enough) now, in the caller's thread."""
        self.wait_for_merge()
        self._merge(force_drop=True)

    def wait_for_merge(self) -> None:
        while True:
            thread = self._merge_thread
            if thread is None:
                return
            thread.join()
            if self._merge_thread is thread:
                return

    def _merge_due(self, view: View) -> bool:
        return view.delta_len >= self._merge_delta_rows and (
            view.main.count > 0 or view.delta_len >= MIN_MAIN_ROWS)

    def _start_merge(self) -> None:
        if self._merge_thread is not None and self._merge_thread.is_alive():
            return
        thread = threading.Thread(target=self._merge_loop, name="pdq-index-merge", daemon=True)
        self._merge_thread = thread
        thread.start()

    def _merge_loop(self) -> None:
        while True:
            self._merge()
            with self.write_lock:
                if not self._merge_due(self._view):
                    self._merge_thread = None
                    return

    def _merge(self, extra: np.ndarray | None = None, force_drop: bool = False) -> None:
        """Build main + delta (+ `extra` rows) - tombstones into a new table; swap it in."""
        with self._merge_lock:
            self._merge_locked(extra, force_drop)

    def _merge_locked(self, extra: np.ndarray | None, force_drop: bool) -> None:
        with self.write_lock:
            view = self._view
            taken = view.delta_len
            delta = view.delta_rows[:taken].copy()
            dead_at_start = view.masks == 0  # a snapshot: rows dying later stay (tombstones)
            drop_main = bool(view.main.count) and (
                self._main_dead >= DROP_DEAD_FRACTION * view.main.count
                or (force_drop and self._main_dead > 0))
            if not taken and extra is None and not drop_main:
                return
        add = delta[~dead_at_start[delta]]
        if extra is not None:
            add = np.concatenate([add, extra])
        left_out = delta[dead_at_start[delta]]
        if drop_main:
            main_rows = view.main.ids[:view.main.count]
            left_out = np.concatenate([left_out, main_rows[dead_at_start[main_rows]]])
        table = build_table(view.rows, view.main, dead_at_start if drop_main else None, add)
        with self.write_lock:
            now = self._view
            in_main = self._in_main
            in_main[add] = True
            in_main[left_out] = False
            revived = left_out[now.masks[left_out] != 0]  # re-added while we were building
            later = now.delta_rows[taken:now.delta_len]
            new_delta = np.concatenate([later, revived]).astype(np.int32)
            values = self._delta_values[taken:]
            values += [hex_of(now.rows[r]) for r in revived]
            capacity = max(1024, 2 * len(new_delta))
            delta_rows = np.zeros(capacity, dtype=np.int32)
            delta_rows[:len(new_delta)] = new_delta
            delta_words = np.zeros((capacity, 4), dtype=np.uint64)
            delta_words[:len(new_delta)] = now.rows[new_delta]
            self._delta_values = values
            self._delta_pos = dict(zip(values, new_delta.tolist()))
            still_dead = left_out[now.masks[left_out] == 0]
            self._free.extend(still_dead.tolist())
            self._main_dead = int(np.count_nonzero(now.masks[table.ids[:table.count]] == 0))
            self._view = View(table, now.rows, now.masks, delta_rows, delta_words, len(new_delta))
            self.merges += 1

    # ------------------------------------------------------------------ lookups
    def lookup(self, value: str, pathways, threshold: int = THRESHOLD) -> list[tuple[str, int]]:
        """(value, distance) of every indexed value within `threshold` (<= 31) of `value` and
        shared under one of `pathways`, nearest first."""
        assert threshold <= THRESHOLD
        want = self.pathway_bits(pathways)
        view = self._view
        q = int(value, 16)
        qw = words_of(value)
        hits_rows, hits_dist = [], []
        main = view.main
        if main.count:
            qkeys = np.array([(q >> _SLOT_SHIFT[s]) & _SLOT_MASK[s] for s in range(NSLOTS)],
                             dtype=np.int64)
            g = qkeys[_PROBE_SLOT]
            g ^= _PROBE_FLIP
            g += _PROBE_BASE
            start = main.offsets.take(g)
            g += 1
            lengths = main.offsets.take(g)
            lengths -= start
            ends = lengths.cumsum(dtype=np.int32)
            n = int(ends[-1])
            if n:
                # positions of all candidates: bucket i contributes start[i] .. end[i]-1
                shift = start - ends
                shift += lengths
                positions = shift.repeat(lengths.astype(np.intp))
                positions += _arange(n)
                cand = main.ids.take(positions)
                self._verify(view.rows, cand, qw, threshold, hits_rows, hits_dist)
        if view.delta_len:
            delta_words = view.delta_words[:view.delta_len]
            d = np.bitwise_count(delta_words[:, 0] ^ qw[0])
            d += np.bitwise_count(delta_words[:, 1] ^ qw[1])
            close = np.flatnonzero(d <= threshold)
            if len(close):
                d = d[close]
                d += np.bitwise_count(delta_words[close, 2] ^ qw[2])
                d += np.bitwise_count(delta_words[close, 3] ^ qw[3])
                ok = d <= threshold
                hits_rows.append(view.delta_rows[close[ok]])
                hits_dist.append(d[ok])
        if not hits_rows:
            return []
        rows = np.concatenate(hits_rows) if len(hits_rows) > 1 else hits_rows[0]
        dist = np.concatenate(hits_dist) if len(hits_dist) > 1 else hits_dist[0]
        visible = (view.masks[rows] & want) != 0
        # a match shows up once per slot it is found in: dict keeps one per row
        unique = dict(zip(rows[visible].tolist(), dist[visible].tolist()))
        found = [(hex_of(view.rows[r]), d) for r, d in unique.items()]
        # The row may have been reused for another value after our view was taken: recheck.
        found = [(v, d) for v, d in found if d == (int(v, 16) ^ q).bit_count()]
        found.sort(key=lambda m: (m[1], m[0]))
        return found

    @staticmethod
    def _verify(rows, cand, qw, threshold, hits_rows, hits_dist) -> None:
        words = np.take(rows, cand, axis=0)
        d = np.bitwise_count(words[:, 0] ^ qw[0])
        d += np.bitwise_count(words[:, 1] ^ qw[1])
        close = np.flatnonzero(d <= threshold)
        if len(close):
            d = d[close]
            d += np.bitwise_count(words[close, 2] ^ qw[2])
            d += np.bitwise_count(words[close, 3] ^ qw[3])
            ok = d <= threshold
            hits_rows.append(cand[close[ok]])
            hits_dist.append(d[ok])
