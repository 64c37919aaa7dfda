"""The compiled inner loop of a PDQ lookup (numba): probe every slot's buckets, gather the
candidates' ids and words, keep those within the threshold.

Why compiled: a lookup at 10 M hashes makes ~8,000 random memory reads, and its time is how many
of them the CPU can have in flight at once. The numpy version (one vectorised call per step)
already overlapped the reads within a step, but spent about a third of its time making,
converting and walking the steps' intermediate arrays. Here each step is one plain loop whose
loads do not depend on each other's values (the filter is branch-free), so the out-of-order core
keeps many of them in flight, and nothing is allocated but the few outputs. No library does a
multi-index radius search this way (faiss' MultiHash probes a hash map per key and verifies
candidates one by one: ~700 lookups/s at 10 M, bench/match_bench.py); numba keeps it in Python
syntax, compiled for the host's CPU on first use and cached on disk.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def _popcount64(typingctx, x):
    """The CPU's popcount instruction (LLVM's ctpop) on a uint64."""
    signature = types.uint64(types.uint64)

    def codegen(context, builder, sig, args):
        return builder.ctpop(args[0])

    return signature, codegen


@njit(inline="always")
def _two_word_distance(words, i, q0, q1):
    """Hamming distance of words[i]'s first two uint64 words to the query's (q0, q1)."""
    return _popcount64(words[i, 0] ^ q0) + _popcount64(words[i, 1] ^ q1)


@njit(nogil=True, cache=True, boundscheck=False)
def probe_main(starts, ids, rows, probe_starts, probe_ids, probe_slot, probe_flip, qkeys, qw,
               threshold):
    """Rows of the main table whose first two words are within `threshold` of the query's.

    starts: the bucket-starts arena (int32); ids: the id arena (int32); rows: (n, 4) uint64.
    Per probe p: its slot's starts region probe_starts[p], id region probe_ids[p], slot
    probe_slot[p] and key flip probe_flip[p]. qkeys: the query's key per slot; qw: its 4 words.
    A random pair of hashes is ~64 apart on 128 bits, so the two-word filter keeps the true
    matches and next to nothing else; the caller takes the exact distance of those few. A row
    found through several slots is returned once per slot (the caller dedupes)."""
    n_probes = probe_flip.shape[0]
    first = np.empty(n_probes, np.int64)
    length = np.empty(n_probes, np.int64)
    # 1. bucket bounds: independent loads, one (or two adjacent) per probe
    total = 0
    for p in range(n_probes):
        g = probe_starts[p] + (qkeys[probe_slot[p]] ^ probe_flip[p])
        start = starts[g]
        first[p] = start + probe_ids[p]
        length[p] = starts[g + 1] - start
        total += length[p]
    # 2. candidate ids, bucket after bucket
    candidates = np.empty(total, np.int32)
    k = 0
    for p in range(n_probes):
        base = first[p]
        for i in range(length[p]):
            candidates[k + i] = ids[base + i]
        k += length[p]
    # 3. two-word filter, branch-free: a mispredicted branch would stall on every load
    q0 = qw[0]
    q1 = qw[1]
    close = np.empty(total, np.int32)
    n_close = 0
    for i in range(total):
        row = candidates[i]
        close[n_close] = row
        n_close += 1 if _two_word_distance(rows, row, q0, q1) <= threshold else 0
    return close[:n_close]


@njit(nogil=True, cache=True, boundscheck=False)
def scan_block(words, rows, qw, threshold):
    """rows[i] for every i whose words[i] (first two) are within `threshold` of the query's: the
    brute-force scan of the delta tier, with the same filter as probe_main."""
    q0 = qw[0]
    q1 = qw[1]
    close = np.empty(words.shape[0], np.int32)
    n_close = 0
    for i in range(words.shape[0]):
        close[n_close] = rows[i]
        n_close += 1 if _two_word_distance(words, i, q0, q1) <= threshold else 0
    return close[:n_close]


@njit(nogil=True, cache=True, boundscheck=False)
def insert_sorted(old_ids, old_starts, keys, rows, out_ids, out_starts):
    """A merge's slot in one pass (pdq_buckets.build_slot): out_ids = old_ids with rows[i]
    inserted at the end of bucket keys[i] (keys sorted), out_starts[g] = old_starts[g] + the
    number of keys < g. Returns the id count.

    Why compiled: the bucket starts are 2^24 entries a slot whatever the merge adds, so a merge
    costs at least 11 x 64 MB of starts; the numpy version (zero, scatter, cumsum, add, a
    boolean-mask copy of the ids) walked them four times and took ~0.3 s of CPU per merge, which
    under a stream of submits (a merge per 4,096 adds) was a quarter of the server's CPU. One
    read and one write of each array here, without the GIL."""
    src = 0
    dst = 0
    for i in range(keys.shape[0]):
        end = old_starts[keys[i] + 1]
        n = end - src
        out_ids[dst:dst + n] = old_ids[src:end]
        dst += n
        src = end
        out_ids[dst] = rows[i]
        dst += 1
    n = old_ids.shape[0] - src
    out_ids[dst:dst + n] = old_ids[src:]
    dst += n
    below = 0
    n_keys = keys.shape[0]
    for g in range(old_starts.shape[0]):
        while below < n_keys and keys[below] < g:
            below += 1
        out_starts[g] = old_starts[g] + below
    return dst
