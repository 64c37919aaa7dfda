"""The memory behind the PDQ index's main table: two memory-mapped int32 arenas (all slots'
bucket starts in one, all id lists in the other), each cut into page-aligned regions plus spare
regions that a merge rebuilds a slot into, and the immutable MainTable that lookups read.

Why arenas: each probe carries its slot's region starts, so a lookup is one call of the compiled
kernel (partners/pdq_kernel.py) over two arrays: read 2,935 bucket bounds, copy the candidates'
ids, XOR + popcount on the candidates' first two words (a random pair is ~64 apart on 128 bits,
so this rejects nearly everything); then the full 256-bit distance, in Python, on the few
survivors. Memory at 10 M: rows 320 MB + ids 440 MB + bucket starts 540 MB + pathway masks
10 MB ~= 1.3 GB. The arenas are anonymous mappings with transparent huge pages (as numpy's own
large arrays): with 4 KB pages the random reads are ~10% slower. Being mappings of their own,
ranges of them can be handed back to the OS (madvise) when a merge's spare regions are done.

Capacity is reserved, not used: each slot's id region starts at 16 M ids (untouched pages cost
no memory). Past it, the id lists are copied once into a new arena of twice the size during a
merge (+44 B per row while the old copy is in use), so an index grown to 10 M one add at a time
never pays for a copy.
"""
from __future__ import annotations

import mmap
from typing import NamedTuple

import numpy as np

from partners.pdq_layout import NSLOTS, PROBE_SLOT, SLOT_BITS

PAGE_INT32 = mmap.PAGESIZE // 4


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


def main_table(starts: np.ndarray | None, ids: np.ndarray | None,
                slots: tuple[SlotRef, ...]) -> MainTable:
    probe_starts = np.array([r.starts for r in slots], dtype=np.intp)[PROBE_SLOT]
    probe_ids = np.array([r.ids for r in slots], dtype=np.int32)[PROBE_SLOT]
    return MainTable(starts, ids, slots, probe_starts, probe_ids,
                     max((r.count for r in slots), default=0))


EMPTY_MAIN = MainTable(None, None, (), np.zeros(0, np.intp), np.zeros(0, np.int32), 0)


class Arenas:
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
        return main_table(self.starts.array, self.ids.array, slots)

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
        return main_table(self.starts.array, self.ids.array, tuple(slots))

    def release_spares(self) -> None:
        for bits, start in self.spare_starts.items():
            self.starts.release(start, (1 << bits) + 1)
        self.ids.release(self.spare_ids, self.id_capacity)
