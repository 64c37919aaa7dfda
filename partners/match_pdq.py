"""Where the PDQ match index used to live in one 735-line file; kept so that existing imports
(`from partners.match_pdq import PdqIndex, hex_of, ...`) go on working. The index is now split
along its layers, each module with its part of the design notes:

    partners/pdq_layout.py   the 11 slots, the probes, exactness by pigeonhole, why not faiss
    partners/pdq_buckets.py  one CSR bucket table per slot, built and rebuilt with small temporaries
    partners/pdq_arenas.py   the memory-mapped arenas the tables live in, and the MainTable view
    partners/pdq_grace.py    the grace period before a merge reuses memory lookups may still read
    partners/pdq_index.py    the index: rows, the delta tier, merges, lookups (PdqIndex)
    partners/pdq_kernel.py   the compiled lookup loop (numba)

Tuning constants are read from the module that uses them: a test or a benchmark that changes
one (CHUNK, MAX_DELTA_ROWS, ...) sets it there, not here.
"""
from __future__ import annotations

from partners.pdq_buckets import build_slot
from partners.pdq_index import MAX_DELTA_ROWS, MERGE_DELTA_ROWS, PdqIndex
from partners.pdq_layout import (NSLOTS, SLOT_BITS, SLOT_FLIPS, SLOT_START, THRESHOLD, hex_of,
                                 slot_keys, words_of_many)

__all__ = ["MAX_DELTA_ROWS", "MERGE_DELTA_ROWS", "NSLOTS", "SLOT_BITS", "SLOT_FLIPS", "SLOT_START",
           "THRESHOLD", "PdqIndex", "build_slot", "hex_of", "slot_keys", "words_of_many"]
