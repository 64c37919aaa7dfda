"""Exact PDQ radius search (Hamming distance <= 31) over millions of hashes: a multi-index hash
in numpy arrays, probed by a compiled loop (partners/pdq_kernel.py), updated incrementally,
lookups lock-free, memory bounded at all times. This module is the index itself: rows, the
delta tier, merges and lookups. Its layers live beside it: the slot layout and why not faiss
(pdq_layout.py), the per-slot bucket tables (pdq_buckets.py), the memory-mapped arenas and what
a lookup costs (pdq_arenas.py), the reuse grace period (pdq_grace.py).

Rows, removes, adds, and what is rebuilt when
---------------------------------------------
* `rows` (N x 4 uint64) and `masks` (uint8 per row: one bit per pathway it is shared under) are
  addressed by row number. A remove clears the pathway bit in place; a row whose mask is 0 is a
  tombstone that lookups skip. A re-add of a value whose row is still indexed sets the bit back:
  no structural change at all.
* A new value gets a row (a freed one or the next) and goes into the DELTA tier: its row number
  is appended to `delta_rows` and its words to `delta_words`, which lookups scan brute force
  (the compiled scan_block). So a new hash is matchable as soon as catch_up has applied its entry.
  The delta is bounded: past MAX_DELTA_ROWS (a catch-up burst), apply_batch waits for a merge
  (`backlogged()` says when; partners/match_index.py waits for it outside its locks).
* MERGE (background thread; started when the delta reaches MERGE_DELTA_ROWS, paced under a
  stream of adds (MERGE_PACE_SECONDS says why), or by `compact()`, or `bulk_load`): merges the delta rows present at its start into the main table ONE SLOT AT A
  TIME. Each arena holds, besides the 11 slots' regions, a spare region (bucket starts: one per
  slot width). A slot is rebuilt into the spare (pdq_buckets.build_slot), published by replacing
  the view, and its old region becomes the spare for the next slot once no lookup can still be
  reading it (pdq_grace.Readers). When at least DROP_DEAD_FRACTION of the main's rows are
  tombstones, the same pass drops them (their rows go to the free list at the end). So a merge
  needs one slot's worth of extra memory (spares and temporaries: ~150 MB at 10 M, ~240 MB when
  it drops tombstones; 0.3-0.8 s) rather than a second table (+0.9 GB), and the spare regions'
  pages are handed back to the OS (madvise) when it ends. While a merge runs, a merged row is in
  the delta and in some slots: lookups report each row once. Nothing ever rebuilds the whole
  index except `bulk_load` (an explicit initial load: the same slot-by-slot pass, one in-place
  sort of (key << 32 | row) per slot; peak ~+150 MB over the finished index) and a merge into
  an empty main.
* Capacity is reserved, not used: 16 M rows for `rows` at first (and 16 M ids per slot region,
  pdq_arenas.py). Past it, `rows` is doubled under the write lock: +34 B per row while the old
  copy is in use. So an index grown to 10 M one add at a time never pays for a copy; `bulk_load`
  reserves twice what it loads.

Thread safety: writers (apply_batch, the merge's publications) are serialised by `write_lock`.
Lookups take no lock: they read `self._view`, an immutable tuple replaced atomically by writers,
plus in-place mask bytes (a lookup racing a remove sees it before or after; both are valid).
Memory a merge retires (a slot's old regions, dropped rows) is reused only after every lookup
that might still read it has finished (pdq_grace.py).
"""
from __future__ import annotations

import itertools
import threading
import time
from typing import NamedTuple

import numpy as np

from partners.pdq_arenas import EMPTY_MAIN, Arenas, MainTable, SlotRef, main_table
from partners.pdq_buckets import build_slot, sorted_packed, take_into
from partners.pdq_grace import Readers
from partners.pdq_kernel import probe_main, scan_block
from partners.pdq_layout import (NSLOTS, PROBE_FLIP, PROBE_SLOT, SLOT_BITS, SLOT_SHIFT_MASK,
                                 THRESHOLD, WORD_MASK, hex_of, slot_keys, words_of_many)
from partners.signal_index import SignalIndex

MERGE_DELTA_ROWS = 4096
# A merge rewrites every slot's bucket starts (2^20-2^24 entries each, ~700 MB of writes)
# however few rows it adds: ~0.2-0.4 s of CPU. A merge per 4,096 adds was fine for trickles but
# under a stream of submits (18,000 hashes/s in bench/submit_bench.py) it wanted more than a
# core and halved submits/s. So once the main table is in service (>= MIN_MAIN_ROWS rows),
# merges start at most once per MERGE_PACE_SECONDS, letting the delta grow meanwhile, unless it
# reaches MAX_SCAN_ROWS (its brute-force scan then costs about two table lookups). Trickles
# still merge every MERGE_DELTA_ROWS adds; a burst costs at most one merge per pace. At 2 s
# the merges were still ~0.2 s of CPU per 1,800 adds/s (bench/submit_bench.py at load ~15); at
# 10 s a stream costs a merge per 10 s (or per 65,536 adds at over 6,500 adds/s).
MERGE_PACE_SECONDS = 10.0
MAX_SCAN_ROWS = 1 << 16
# Only lookups pay for a big delta (its scan: ~2.2 ns a row; 0.10 ms a lookup at 500 k rows, 0.25
# ms with a 65 k delta), and a merge costs ~0.3 s of CPU. So a paced merge waits until lookups
# since the last one have scanned this many delta rows (~0.2 s of scanning; ski rental): a stream
# of submits nobody matches against merges per MAX_SCAN_ROWS adds, not every pace (issue 22).
MERGE_SCAN_BUDGET_ROWS = 100_000_000
# Below this many rows everything stays in the brute-force delta (a scan of 32 k rows costs about
# what a table lookup does) and the 470 MB of bucket starts are never allocated: small
# deployments and each test's app do not pay for them.
MIN_MAIN_ROWS = 32768
# A burst of adds (catch_up after a restart applies 50 k entries a batch) outruns the merges:
# past this many delta rows, apply_batch waits for the running merge, so the delta (its words,
# and a Python dict entry per value) stays bounded. Normal traffic never gets near it.
MAX_DELTA_ROWS = 1 << 18
DROP_DEAD_FRACTION = 0.10
# Capacities reserved up front, in rows: pages never written cost no memory, and growing past a
# capacity copies (rows: 34 B a row, ids: 44 B a row) while the old copy is still in use, so
# growing to 10 M row by row never does it.
INITIAL_ROWS = 1 << 24
MIN_ID_CAPACITY = 1 << 24  # ids per slot region; doubled when a merge needs more


class View(NamedTuple):
    main: MainTable
    rows: np.ndarray         # (capacity, 4) uint64
    masks: np.ndarray        # (capacity,) uint8
    delta_rows: np.ndarray   # int32 row numbers not in main (first delta_len valid)
    delta_words: np.ndarray  # their words, same order
    delta_len: int


class _MergePlan(NamedTuple):
    add: np.ndarray                # intp rows to insert
    alive: np.ndarray | None       # bool per row: keep in main (None: drop nothing)
    taken: int                     # delta entries merged (the first `taken`)
    freed: np.ndarray              # rows no structure holds at the end (dropped tombstones)
    need: int                      # ids per slot after the merge


def _find_in_main(view: View, in_main: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Row number of each (exact) value in the main table, or -1. Vectorised over values.
    Rows a running merge is dropping (in_main False) do not count."""
    found = np.full(len(words), -1, dtype=np.int64)
    main = view.main
    if not main.count or not len(words) or not main.slots[0].count:
        return found
    ref = main.slots[0]
    g = slot_keys(words, 0) + ref.starts
    start, end = main.starts[g], main.starts[g + 1]
    lengths = (end - start).astype(np.int64)
    n = int(lengths.sum())
    if not n:
        return found
    owner = np.repeat(np.arange(len(words)), lengths)
    ends = np.cumsum(lengths)
    positions = np.repeat(start - (ends - lengths), lengths) + np.arange(n) + ref.ids
    cand = main.ids[positions]
    equal = (view.rows[cand] == words[owner]).all(axis=1) & in_main[cand]
    found[owner[equal]] = cand[equal]
    return found


class PdqIndex(SignalIndex):
    """The PDQ part of the match index. `apply_batch` and `lookup` are its interface; `match`
    is `lookup` in SignalIndex's shape."""

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
        self._main_dead = 0              # rows in main whose mask is 0
        self._merge_thread: threading.Thread | None = None
        self._merge_lock = threading.Lock()  # one merge at a time (background or explicit)
        self._arenas: Arenas | None = None  # allocated by the first merge into the main table
        self._readers = Readers()
        self.merges = 0
        self._merged_at = time.monotonic()  # when the last merge finished (MERGE_PACE_SECONDS)
        self.scanned_rows = 0  # by lookups since the last merge (unlocked: a lost add is harmless)
        self.merge_seconds = 0.0  # total time merges took (observability, benchmarks)
        self._view = View(EMPTY_MAIN, np.zeros((INITIAL_ROWS, 4), dtype=np.uint64),
                          np.zeros(INITIAL_ROWS, dtype=np.uint8), np.zeros(1024, dtype=np.int32),
                          np.zeros((1024, 4), dtype=np.uint64), 0)
        self._in_main = np.zeros(INITIAL_ROWS, dtype=bool)  # in main and not being dropped

    @classmethod
    def for_signal(cls, signal, pathways: tuple[str, ...], background_merge: bool) -> PdqIndex:
        assert signal.MATCH_THRESHOLD == THRESHOLD  # the layout is exact up to this distance
        return cls(pathways, background=background_merge)

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

    def _grow_rows(self, view: View, used: int, needed: int) -> View:
        capacity = len(view.rows)
        if needed <= capacity:
            return view
        # A copy of the `used` rows under the write lock (~0.2 s at 10 M; lookups go on with
        # the old arrays meanwhile; adds wait for it). Doubling: np.zeros pages cost nothing
        # until written, so the capacity beyond `used` is not copied (that would touch it).
        new_capacity = max(needed, 2 * capacity)
        rows = np.zeros((new_capacity, 4), dtype=np.uint64)
        rows[:used] = view.rows[:used]
        masks = np.zeros(new_capacity, dtype=np.uint8)
        masks[:used] = view.masks[:used]
        in_main = np.zeros(new_capacity, dtype=bool)
        in_main[:used] = self._in_main[:used]
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
        if self.backlogged():
            self.wait_for_merge()
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
                found = _find_in_main(view, self._in_main, words_of_many(missing))
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
                view = self._grow_rows(view, self._count - fresh, self._count)
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
        straight into the main table with one sort per slot. Returns the build seconds.
        Meant for an index that is not serving yet: until it returns, a value is findable
        only through the slots already built."""
        started = time.perf_counter()
        self.wait_for_merge()
        with self.write_lock:
            bit = self.pathway_bits([pathway])
            view = self._view
            first = self._count
            self._count += len(words)
            # slack for the adds that follow (untouched pages cost nothing until used)
            view = self._grow_rows(view, first, 2 * self._count)
            view.rows[first:self._count] = words
            view.masks[first:self._count] = bit
            self._view = view
        self._merge(extra=np.arange(first, first + len(words), dtype=np.intp))
        return time.perf_counter() - started

    def compact(self) -> None:
        """Merge the delta (and drop tombstones if any) now, in the caller's thread."""
        self.wait_for_merge()
        self._merge(force_drop=True)

    def backlogged(self) -> bool:
        """apply_batch would wait for the running merge: the delta is past MAX_DELTA_ROWS."""
        thread = self._merge_thread
        return (self._background and self._view.delta_len >= MAX_DELTA_ROWS
                and thread is not None and thread.is_alive())

    def wait_for_backlog(self) -> None:
        self.wait_for_merge()

    def wait_for_merge(self) -> None:
        while True:
            thread = self._merge_thread
            if thread is None:
                return
            thread.join()
            if self._merge_thread is thread:
                return

    def _merge_due(self, view: View) -> bool:
        if view.delta_len < self._merge_delta_rows:
            return False
        if view.main.count < MIN_MAIN_ROWS:  # (an empty main: the first merge builds it)
            return view.main.count > 0 or view.delta_len >= MIN_MAIN_ROWS
        return (view.delta_len >= MAX_SCAN_ROWS
                or (self.scanned_rows >= MERGE_SCAN_BUDGET_ROWS
                    and time.monotonic() - self._merged_at >= MERGE_PACE_SECONDS))

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
        """Merge the delta (+ `extra` rows) into the main table, minus tombstones if due."""
        with self._merge_lock:
            started = time.perf_counter()
            plan = self._plan_merge(extra, force_drop)
            if plan is None:
                return
            self._reserve_ids(plan.need)
            for s in range(NSLOTS):
                self._merge_slot(s, plan)
            self._finish_merge(plan)
            self.merge_seconds += time.perf_counter() - started

    def _plan_merge(self, extra: np.ndarray | None, force_drop: bool) -> _MergePlan | None:
        """What this merge does, decided under the write lock. Rows it drops stop counting as
        in main at once, and dead delta rows lose their value's entry: a re-add of such a value
        while the merge runs gets a fresh row, so no dropped row ever comes back."""
        with self.write_lock:
            view = self._view
            taken = view.delta_len
            main_count = view.main.count
            drop_main = bool(main_count) and (
                self._main_dead >= DROP_DEAD_FRACTION * main_count
                or (force_drop and self._main_dead > 0))
            if not taken and extra is None and not drop_main:
                return None
            self.scanned_rows = 0  # the scanning paid for by this merge
            alive = view.masks[:self._count] != 0
            delta = view.delta_rows[:taken].astype(np.intp)
            delta_alive = alive[delta]
            for i in np.flatnonzero(~delta_alive).tolist():
                self._delta_pos.pop(self._delta_values[i], None)
            freed = [delta[~delta_alive]]
            dropped = 0
            if drop_main:
                ref = view.main.slots[0]
                main_rows = view.main.ids[ref.ids:ref.ids + ref.count]
                dead = main_rows[~alive[main_rows]]
                self._in_main[dead] = False
                self._main_dead -= len(dead)
                dropped = len(dead)
                freed.append(dead.astype(np.intp))
        add = delta[delta_alive]
        if extra is not None:
            add = np.concatenate([add, extra]) if len(add) else extra
        return _MergePlan(add, alive if drop_main else None, taken,
                          np.concatenate(freed), main_count - dropped + len(add))

    def _reserve_ids(self, need: int) -> None:
        """Make sure every id region holds `need` ids (allocating or growing the arenas)."""
        if self._arenas is None:
            self._arenas = Arenas(max(2 * need, MIN_ID_CAPACITY))
            with self.write_lock:
                self._view = self._view._replace(main=self._arenas.empty_main())
        elif need > self._arenas.id_capacity:
            main = self._arenas.grow_ids(self._view.main, 2 * need)
            with self.write_lock:
                self._view = self._view._replace(main=main)

    def _merge_slot(self, s: int, plan: _MergePlan) -> None:
        """Rebuild slot s into the spare regions, publish it, and take its old regions as the
        spares once no lookup can still read them."""
        arenas = self._arenas
        main = self._view.main  # only merges replace main, and this is the only merge
        ref, bits = main.slots[s], SLOT_BITS[s]
        n_starts = (1 << bits) + 1
        old_ids = main.ids[ref.ids:ref.ids + ref.count]
        keep = None
        if plan.alive is not None:
            keep = np.empty(len(old_ids), dtype=bool)
            take_into(plan.alive, old_ids, keep)
        # the current rows array: the words of `add` never change, and an old array (replaced
        # by a growth) is not kept alive for the length of the merge
        packed = sorted_packed(self._view.rows, plan.add, s)
        new = SlotRef(arenas.spare_starts[bits], arenas.spare_ids, 0)
        count = build_slot(old_ids, main.starts[ref.starts:ref.starts + n_starts], keep, packed,
                           main.ids[new.ids:new.ids + arenas.id_capacity],
                           main.starts[new.starts:new.starts + n_starts])
        del packed, keep
        slots = main.slots[:s] + (new._replace(count=count),) + main.slots[s + 1:]
        with self.write_lock:
            self._view = self._view._replace(main=main_table(main.starts, main.ids, slots))
            published = self._readers.publish()
        self._readers.wait_for(published)
        arenas.spare_starts[bits], arenas.spare_ids = ref.starts, ref.ids

    def _finish_merge(self, plan: _MergePlan) -> None:
        """Every slot holds the merged rows: take them out of the delta (keeping the entries
        added meanwhile), then free the dropped rows and spare pages after a grace period."""
        with self.write_lock:
            now = self._view
            later = now.delta_rows[plan.taken:now.delta_len]
            capacity = max(1024, 2 * len(later))
            delta_rows = np.zeros(capacity, dtype=np.int32)
            delta_rows[:len(later)] = later
            delta_words = np.zeros((capacity, 4), dtype=np.uint64)
            delta_words[:len(later)] = now.delta_words[plan.taken:now.delta_len]
            self._delta_values = self._delta_values[plan.taken:]
            self._delta_pos = dict(zip(self._delta_values, later.tolist()))
            self._in_main[plan.add] = True
            self._main_dead += int(np.count_nonzero(now.masks[plan.add] == 0))
            self._view = now._replace(delta_rows=delta_rows, delta_words=delta_words,
                                      delta_len=len(later))
            published = self._readers.publish()
            self.merges += 1
            self._merged_at = time.monotonic()
        self._readers.wait_for(published)
        self._arenas.release_spares()
        with self.write_lock:
            self._free.extend(plan.freed.tolist())

    # ------------------------------------------------------------------ lookups
    def match(self, value: str, pathways) -> list[tuple[str, float]]:
        return [(v, float(d)) for v, d in self.lookup(value, pathways)]

    def match_shared(self, value: str, pathways) -> list[tuple[str, float, frozenset[str]]]:
        return [(v, float(d), frozenset(p for p, bit in self._bits.items() if mask & bit))
                for v, d, mask in self._lookup_masked(value, pathways, THRESHOLD)]

    def lookup(self, value: str, pathways, threshold: int = THRESHOLD) -> list[tuple[str, int]]:
        """(value, distance) of every indexed value within `threshold` (<= 31) of `value` and
        shared under one of `pathways`, nearest first."""
        return [(v, d) for v, d, _ in self._lookup_masked(value, pathways, threshold)]

    def _lookup_masked(self, value: str, pathways, threshold: int) -> list[tuple[str, int, int]]:
        """lookup's matches, each with its pathway bits among `pathways`."""
        assert threshold <= THRESHOLD
        want = self.pathway_bits(pathways)
        ticket = self._readers.enter()  # before reading the view: see Readers
        try:
            view = self._view
            self.scanned_rows += view.delta_len
            return self._lookup(view, value, want, threshold)
        finally:
            self._readers.leave(ticket)

    @staticmethod
    def _lookup(view: View, value: str, want: int, threshold: int) -> list[tuple[str, int, int]]:
        q = int(value, 16)
        qw = np.array([q >> 192, (q >> 128) & WORD_MASK, (q >> 64) & WORD_MASK, q & WORD_MASK], np.uint64)
        close = []  # rows passing the 2-word filter (a row may come from several slots)
        main = view.main
        if main.count:
            qkeys = np.array([(q >> shift) & mask for shift, mask in SLOT_SHIFT_MASK], np.int64)
            close.append(probe_main(main.starts, main.ids, view.rows, main.probe_starts,
                                    main.probe_ids, PROBE_SLOT, PROBE_FLIP, qkeys, qw,
                                    threshold))
        if view.delta_len:
            close.append(scan_block(view.delta_words[:view.delta_len],
                                    view.delta_rows[:view.delta_len], qw, threshold))
        found = []
        for row in set(itertools.chain.from_iterable(c.tolist() for c in close)):
            # One read of the mask: a remove racing the lookup is seen before or after it.
            shared = int(view.masks[row]) & want
            if shared:  # a handful: the exact distance with Python ints
                candidate = hex_of(view.rows[row])
                distance = (int(candidate, 16) ^ q).bit_count()
                if distance <= threshold:
                    found.append((candidate, distance, shared))
        found.sort(key=lambda m: (m[1], m[0]))
        return found
