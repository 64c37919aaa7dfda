"""Exact PDQ radius search (Hamming distance <= 31) over millions of hashes: a multi-index hash
in numpy arrays, probed by a compiled loop (partners/pdq_kernel.py), updated incrementally,
lookups lock-free, memory bounded at all times.

Why not faiss: python-threatexchange's PDQIndex (faiss IndexBinaryMultiHash, 16 slots of 16 bits)
does ~98 lookups/s at 10 M random hashes on this 2-core machine, faiss flat ~121/s, and the best
faiss MultiHash setting found (11 slots of 23 bits, nflip 2, exact by pigeonhole) ~706/s; its
per-probe hash-map lookups and per-candidate work dominate. The goal is >= 4,000/s on one core.
(bench/match_bench.py measures PDQIndex again in the same run.)

Layout
------
The 256 bits are cut into 11 contiguous slots: 6 of 24 bits, 4 of 23 and one of 20. A slot is
probed with its key and every key within t bit flips: t = 2 for the first ten, t = 1 for the
20-bit one. Generalised pigeonhole: if every slot differed in more than its t bits, the distance
would be at least sum(t + 1) = 10 x 3 + 2 = 32; so a hash within 31 is in some probed bucket,
and the search is exact. (Eleven slots all at t = 2 sum to 33, one more than needed; spending
the spare flip on a narrow slot saves probes.) That makes 2,935 probes in all, and at 10 M
hashes ~2,600 candidates to verify (a 24-bit bucket holds ~0.6 ids, a 23-bit one ~1.2, a 20-bit
one ~9.5). Probes plus candidates are ~14 % fewer than with 3 x 24 + 8 x 23 bits all at t = 2
(3,119 probes, ~3,200 candidates), and far fewer than 16 x 16-bit slots at t = 1 (272 probes
but ~41,000 candidates; measured slower).

Each slot is a CSR table: its bucket starts (2^L + 1 int32, relative to the slot's id list) and
its id list (int32 row numbers sorted by bucket). All slots' bucket starts live in ONE int32
array and all id lists in another (two "arenas", each cut into page-aligned regions), and each
probe carries its slot's region starts, so a lookup is one call of the compiled kernel: read
2,935 bucket bounds, copy the candidates' ids, XOR + popcount on the candidates' first two
words (a random pair is ~64 apart on 128 bits, so this rejects nearly everything); then the
full 256-bit distance, in Python, on the few survivors. Memory at 10 M: rows 320 MB + ids 440 MB
+ bucket starts 540 MB + pathway masks 10 MB ~= 1.3 GB. The arenas are anonymous mappings with
transparent huge pages (as numpy's own large arrays): with 4 KB pages the random reads are
~10% slower.

Rows, removes, adds, and what is rebuilt when
---------------------------------------------
* `rows` (N x 4 uint64) and `masks` (uint8 per row: one bit per pathway it is shared under) are
  addressed by row number. A remove clears the pathway bit in place; a row whose mask is 0 is a
  tombstone that lookups skip. A re-add of a value whose row is still indexed sets the bit back:
  no structural change at all.
* A new value gets a row (a freed one or the next) and goes into the DELTA tier: its row number
  is appended to `delta_rows` and its words to `delta_words`, which lookups scan brute force
  (the compiled scan_block). So a new hash is matchable as soon as catch_up has applied its entry.
  The delta is bounded: past MAX_DELTA_ROWS (a catch-up burst), apply_batch waits for a merge.
* MERGE (background thread; started when the delta reaches MERGE_DELTA_ROWS, or by `compact()`,
  or `bulk_load`): merges the delta rows present at its start into the main table ONE SLOT AT A
  TIME. Each arena holds, besides the 11 slots' regions, a spare region (bucket starts: one per
  slot width). A slot is rebuilt into the spare (its old ids copied with the new ones inserted at
  their buckets' ends, bucket starts shifted: O(slot) copying, no sort of the main), published
  by replacing the view, and its old region becomes the spare for the next slot once no lookup
  can still be reading it (see `_Readers`). When at least DROP_DEAD_FRACTION of the main's rows
  are tombstones, the same pass drops them (their rows go to the free list at the end). So a
  merge needs one slot's worth of extra memory (spares and temporaries: ~150 MB at 10 M, ~240
  MB when it drops tombstones; 0.3-0.8 s) rather than a second table (+0.9 GB), and the spare
  regions' pages are handed back to the OS (madvise) when it ends. While a merge runs, a merged
  row is in the delta and in some slots: lookups report each row once. Nothing ever rebuilds
  the whole index except `bulk_load` (an explicit initial load: the same slot-by-slot pass, one
  in-place sort of (key << 32 | row) per slot; peak ~+150 MB over the finished index) and a
  merge into an empty main.
* Capacity is reserved, not used: 16 M rows for `rows` and for each slot's id region at first
  (untouched pages cost no memory). Past it, the id lists are copied once into a new arena of
  twice the size during a merge, and `rows` is doubled under the write lock: +44 B and +34 B
  per row while the old copies are in use. So an index grown to 10 M one add at a time never
  pays for a copy; `bulk_load` reserves twice what it loads.

Thread safety: writers (apply_batch, the merge's publications) are serialised by `write_lock`.
Lookups take no lock: they read `self._view`, an immutable tuple replaced atomically by writers,
plus in-place mask bytes (a lookup racing a remove sees it before or after; both are valid).
Memory a merge retires (a slot's old regions, dropped rows) is reused only after every lookup
that might still read it has finished: lookups register themselves (a dict entry, no lock).
"""
from __future__ import annotations

import itertools
import mmap
import sys
import threading
import time
from typing import NamedTuple

import numpy as np

from partners.pdq_kernel import probe_main, scan_block

THRESHOLD = 31
# Slot widths and how many bits of each key are flipped when probing (see "Layout"): exact as
# long as the flips plus one, summed over the slots, exceed the threshold.
SLOT_BITS = (24,) * 6 + (23,) * 4 + (20,)
SLOT_FLIPS = (2,) * 10 + (1,)
assert sum(SLOT_BITS) == 256 and sum(t + 1 for t in SLOT_FLIPS) > THRESHOLD
assert all(0 <= t <= 2 for t in SLOT_FLIPS)  # 3 flips of a 24-bit key: 2,325 probes per slot
SLOT_START = tuple(int(x) for x in np.cumsum((0,) + SLOT_BITS[:-1]))
NSLOTS = len(SLOT_BITS)
assert sys.byteorder == "little"  # packed (key << 32 | row) is split by viewing it as 2 x uint32

MERGE_DELTA_ROWS = 4096
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
CHUNK = 1 << 18  # rows per step where a whole-array temporary would cost memory
PAGE_INT32 = mmap.PAGESIZE // 4


def _probe_tables():
    """Per probe: its slot, and the XOR mask (up to SLOT_FLIPS bits flipped) applied to the
    slot's key."""
    slots, flips = [], []
    for s, (bits, most) in enumerate(zip(SLOT_BITS, SLOT_FLIPS)):
        masks = [sum(1 << i for i in chosen) for k in range(most + 1)
                 for chosen in itertools.combinations(range(bits), k)]
        slots += [s] * len(masks)
        flips += masks
    return np.array(slots, dtype=np.intp), np.array(flips, dtype=np.int64)


_PROBE_SLOT, _PROBE_FLIP = _probe_tables()
_SLOT_SHIFT_MASK = tuple((256 - SLOT_START[s] - SLOT_BITS[s], (1 << SLOT_BITS[s]) - 1)
                         for s in range(NSLOTS))  # a slot's key from the hash as an int
_WORD = (1 << 64) - 1


def words_of_many(values: list[str]) -> np.ndarray:
    """64-hex PDQ values -> (n, 4) uint64 words, most significant first."""
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


def _sorted_packed(rows: np.ndarray, add: np.ndarray, s: int) -> np.ndarray:
    """Rows `add` (intp) sorted by their slot-s key, as uint64 (key << 32 | row): one in-place
    sort of 8 B per row, ~5x faster than a two-pass radix argsort and without its index arrays."""
    packed = np.empty(len(add), dtype=np.uint64)
    for c in range(0, len(add), CHUNK):
        part = add[c:c + CHUNK]
        packed[c:c + len(part)] = slot_keys(rows[part], s)
    packed <<= np.uint64(32)
    packed |= add.view(np.uint64)
    packed.sort()
    return packed


def _unpack(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(keys, rows) of a packed array, as uint32 views (no copy)."""
    halves = packed.view(np.uint32).reshape(-1, 2)
    return halves[:, 1], halves[:, 0]


def _count_below(keys: np.ndarray, out: np.ndarray) -> None:
    """out[g] = number of keys < g, for sorted keys: the bucket starts of a CSR table. Each run
    of equal keys puts its size just past its key, then a running sum (np.cumsum lets other
    threads run meanwhile; np.maximum.accumulate would hold the GIL for ~70 ms per slot).
    Chunked over the keys, so temporaries stay small."""
    out[:] = 0
    counted = 0
    for c in range(0, len(keys), CHUNK):
        k = keys[c:c + CHUNK + 1]  # one past the chunk: a run ends where the next key differs
        ends = np.flatnonzero(k[1:] != k[:-1]) + (c + 1)  # keys up to the end of each run
        if c + CHUNK >= len(keys):
            ends = np.append(ends, len(keys))  # the last run
        if len(ends):  # (a run may span chunks)
            out[keys[ends - 1].astype(np.intp) + 1] = np.diff(ends, prepend=counted)
            counted = int(ends[-1])
    np.cumsum(out, dtype=out.dtype, out=out)


def _take_into(table: np.ndarray, index: np.ndarray, out: np.ndarray) -> None:
    """out[:] = table[index], chunked: np.take would convert all of an int32 index to intp."""
    for c in range(0, len(index), CHUNK):
        np.take(table, index[c:c + CHUNK], out=out[c:c + CHUNK])


def build_slot(old_ids: np.ndarray, old_starts: np.ndarray, keep: np.ndarray | None,
               packed: np.ndarray, out_ids: np.ndarray, out_starts: np.ndarray) -> int:
    """One slot of a new table, written into out_ids / out_starts: the old ids (where `keep`, if
    given) plus the packed rows (sorted by this slot's key). Returns the new id count."""
    if keep is not None and len(old_ids):
        kept_before = np.zeros(len(old_ids) + 1, dtype=np.int32)
        np.cumsum(keep, dtype=np.int32, out=kept_before[1:])
        kept_starts = np.empty_like(old_starts)
        _take_into(kept_before, old_starts, kept_starts)
        del kept_before
        old_ids, old_starts = old_ids[keep], kept_starts
    keys, rows = _unpack(packed)
    total = len(old_ids) + len(rows)
    if not len(rows):
        out_ids[:total] = old_ids
        out_starts[:] = old_starts
    elif not len(old_ids):
        out_ids[:total] = rows
        _count_below(keys, out_starts)
    else:
        # The i-th new id (in key order) goes at its bucket's old end, moved up by the i new ids
        # before it; every old id moves up by the number of new ids in earlier buckets.
        at = old_starts.take(keys.astype(np.intp) + 1)
        at += np.arange(len(rows))
        is_old = np.ones(total, dtype=bool)
        is_old[at] = False
        out_ids[:total][is_old] = old_ids
        out_ids[at] = rows
        del is_old, at
        _count_below(keys, out_starts)
        out_starts += old_starts
    return total


class _Int32Arena:
    """An int32 array in its own anonymous mapping, so that ranges of it can be given back to
    the OS; pages never written cost no memory."""

    def __init__(self, length: int) -> None:
        self._map = mmap.mmap(-1, max(1, length) * 4, flags=mmap.MAP_PRIVATE)
        # Transparent huge pages, as numpy asks for its own large arrays: lookups gather at
        # random over hundreds of MB, and 4 KB pages make that ~10% slower (TLB misses).
        if hasattr(mmap, "MADV_HUGEPAGE"):
            self._map.madvise(mmap.MADV_HUGEPAGE)
        self.array = np.frombuffer(self._map, dtype=np.int32)

    def release(self, start: int, length: int) -> None:
        """Drop the pages wholly inside [start, start + length): they read as zeros after."""
        first = -(-start // PAGE_INT32) * PAGE_INT32
        end = (start + length) // PAGE_INT32 * PAGE_INT32
        if end > first:
            self._map.madvise(mmap.MADV_DONTNEED, first * 4, (end - first) * 4)


def _page_round(n: int) -> int:
    return -(-n // PAGE_INT32) * PAGE_INT32


class SlotRef(NamedTuple):
    starts: int  # where the slot's 2^L + 1 bucket starts begin in the starts arena
    ids: int     # where its id list begins in the id arena
    count: int   # ids in it (equal for all slots except while a merge runs)


class MainTable(NamedTuple):
    starts: np.ndarray | None  # the starts arena's array (int32)
    ids: np.ndarray | None     # the id arena's array (int32)
    slots: tuple[SlotRef, ...]
    probe_starts: np.ndarray   # per probe: its slot's starts region (intp)
    probe_ids: np.ndarray      # per probe: its slot's id region (int32)
    count: int                 # the largest slot's id count (0: nothing to probe)


def _main_table(starts: np.ndarray | None, ids: np.ndarray | None,
                slots: tuple[SlotRef, ...]) -> MainTable:
    probe_starts = np.array([r.starts for r in slots], dtype=np.intp)[_PROBE_SLOT]
    probe_ids = np.array([r.ids for r in slots], dtype=np.int32)[_PROBE_SLOT]
    return MainTable(starts, ids, slots, probe_starts, probe_ids,
                     max((r.count for r in slots), default=0))


EMPTY_MAIN = MainTable(None, None, (), np.zeros(0, np.intp), np.zeros(0, np.int32), 0)


class _Arenas:
    """The memory behind the main table (merge thread only): the two arenas and which of their
    regions are spare. Starts: one region per slot plus a spare per slot width; ids: one region
    per slot plus one spare, all of `id_capacity` entries."""

    def __init__(self, id_capacity: int) -> None:
        spare_widths = sorted(set(SLOT_BITS))
        widths = list(SLOT_BITS) + spare_widths  # the 11 slots, then a spare per width
        sizes = [_page_round((1 << b) + 1) for b in widths]
        bases = np.cumsum([0] + sizes[:-1]).tolist()
        self.starts = _Int32Arena(sum(sizes))
        self.spare_starts = dict(zip(spare_widths, bases[NSLOTS:]))
        self.slot_starts = bases[:NSLOTS]
        self._new_ids(id_capacity)

    def _new_ids(self, id_capacity: int) -> None:
        self.id_capacity = _page_round(id_capacity)
        assert (NSLOTS + 1) * self.id_capacity < 2**31  # positions are int32
        self.ids = _Int32Arena((NSLOTS + 1) * self.id_capacity)
        self.spare_ids = NSLOTS * self.id_capacity

    def empty_main(self) -> MainTable:
        slots = tuple(SlotRef(self.slot_starts[s], s * self.id_capacity, 0)
                      for s in range(NSLOTS))
        return _main_table(self.starts.array, self.ids.array, slots)

    def grow_ids(self, main: MainTable, id_capacity: int) -> MainTable:
        """Copy every slot's id list into a new, larger id arena; the old one is freed when the
        last view using it goes."""
        old = main.ids
        self._new_ids(id_capacity)
        slots = []
        for s, ref in enumerate(main.slots):
            base = s * self.id_capacity
            self.ids.array[base:base + ref.count] = old[ref.ids:ref.ids + ref.count]
            slots.append(ref._replace(ids=base))
        return _main_table(self.starts.array, self.ids.array, tuple(slots))

    def release_spares(self) -> None:
        for bits, start in self.spare_starts.items():
            self.starts.release(start, (1 << bits) + 1)
        self.ids.release(self.spare_ids, self.id_capacity)


class _Readers:
    """Running lookups, registered without a lock, so that a merge reuses memory it retired (a
    slot's old regions, dropped rows) only once no lookup can still read it: a grace period.

    A lookup registers the publication count BEFORE it reads the view. So if a writer replaces
    the view, then bumps the count to N, then sees no registration below N, every lookup still
    running registered after the replacement and reads the new view."""

    def __init__(self) -> None:
        self._tickets = itertools.count()
        self._running: dict[int, int] = {}  # ticket -> publication count when it started
        self.published = 0

    def enter(self) -> int:
        ticket = next(self._tickets)
        self._running[ticket] = self.published
        return ticket

    def leave(self, ticket: int) -> None:
        del self._running[ticket]

    def publish(self) -> int:
        """Call right after replacing the view (under the write lock)."""
        self.published += 1
        return self.published

    def wait_for(self, published: int) -> None:
        """Return once no lookup that started before publication `published` is running."""
        while any(p < published for p in list(self._running.values())):
            time.sleep(0.0002)


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
        self._main_dead = 0              # rows in main whose mask is 0
        self._merge_thread: threading.Thread | None = None
        self._merge_lock = threading.Lock()  # one merge at a time (background or explicit)
        self._arenas: _Arenas | None = None  # allocated by the first merge into the main table
        self._readers = _Readers()
        self.merges = 0
        self.merge_seconds = 0.0  # total time merges took (observability, benchmarks)
        self._view = View(EMPTY_MAIN, np.zeros((INITIAL_ROWS, 4), dtype=np.uint64),
                          np.zeros(INITIAL_ROWS, dtype=np.uint8), np.zeros(1024, dtype=np.int32),
                          np.zeros((1024, 4), dtype=np.uint64), 0)
        self._in_main = np.zeros(INITIAL_ROWS, dtype=bool)  # in main and not being dropped

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
        if self._background and self._view.delta_len >= MAX_DELTA_ROWS:
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
            self._arenas = _Arenas(max(2 * need, MIN_ID_CAPACITY))
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
            _take_into(plan.alive, old_ids, keep)
        # the current rows array: the words of `add` never change, and an old array (replaced
        # by a growth) is not kept alive for the length of the merge
        packed = _sorted_packed(self._view.rows, plan.add, s)
        new = SlotRef(arenas.spare_starts[bits], arenas.spare_ids, 0)
        count = build_slot(old_ids, main.starts[ref.starts:ref.starts + n_starts], keep, packed,
                           main.ids[new.ids:new.ids + arenas.id_capacity],
                           main.starts[new.starts:new.starts + n_starts])
        del packed, keep
        slots = main.slots[:s] + (new._replace(count=count),) + main.slots[s + 1:]
        with self.write_lock:
            self._view = self._view._replace(main=_main_table(main.starts, main.ids, slots))
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
        self._readers.wait_for(published)
        self._arenas.release_spares()
        with self.write_lock:
            self._free.extend(plan.freed.tolist())

    # ------------------------------------------------------------------ lookups
    def lookup(self, value: str, pathways, threshold: int = THRESHOLD) -> list[tuple[str, int]]:
        """(value, distance) of every indexed value within `threshold` (<= 31) of `value` and
        shared under one of `pathways`, nearest first."""
        assert threshold <= THRESHOLD
        want = self.pathway_bits(pathways)
        ticket = self._readers.enter()  # before reading the view: see _Readers
        try:
            return self._lookup(self._view, value, want, threshold)
        finally:
            self._readers.leave(ticket)

    @staticmethod
    def _lookup(view: View, value: str, want: int, threshold: int) -> list[tuple[str, int]]:
        q = int(value, 16)
        qw = np.array([q >> 192, (q >> 128) & _WORD, (q >> 64) & _WORD, q & _WORD], np.uint64)
        close = []  # rows passing the 2-word filter (a row may come from several slots)
        main = view.main
        if main.count:
            qkeys = np.array([(q >> shift) & mask for shift, mask in _SLOT_SHIFT_MASK], np.int64)
            close.append(probe_main(main.starts, main.ids, view.rows, main.probe_starts,
                                    main.probe_ids, _PROBE_SLOT, _PROBE_FLIP, qkeys, qw,
                                    threshold))
        if view.delta_len:
            close.append(scan_block(view.delta_words[:view.delta_len],
                                    view.delta_rows[:view.delta_len], qw, threshold))
        found = []
        for row in set(itertools.chain.from_iterable(c.tolist() for c in close)):
            if view.masks[row] & want:  # a handful: the exact distance with Python ints
                candidate = hex_of(view.rows[row])
                distance = (int(candidate, 16) ^ q).bit_count()
                if distance <= threshold:
                    found.append((candidate, distance))
        found.sort(key=lambda m: (m[1], m[0]))
        return found
