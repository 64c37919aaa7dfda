"""The PDQ index's slot layout: how the 256 bits are cut into slots, which keys a lookup probes,
and the conversions between hex values, words and slot keys. Everything else in the index
(partners/pdq_buckets.py, pdq_arenas.py, pdq_index.py) is sized and addressed from these tables.

Why not faiss: python-threatexchange's PDQIndex (faiss IndexBinaryMultiHash, 16 slots of 16 bits)
does ~98 lookups/s at 10 M random hashes on this 2-core machine, faiss flat ~121/s, and the best
faiss MultiHash setting found (11 slots of 23 bits, nflip 2, exact by pigeonhole) ~706/s; its
per-probe hash-map lookups and per-candidate work dominate. The goal is >= 4,000/s on one core.
(bench/match_bench.py measures PDQIndex again in the same run.)

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
"""
from __future__ import annotations

import itertools

import numpy as np

THRESHOLD = 31
# Slot widths and how many bits of each key are flipped when probing (see above): exact as
# long as the flips plus one, summed over the slots, exceed the threshold.
SLOT_BITS = (24,) * 6 + (23,) * 4 + (20,)
SLOT_FLIPS = (2,) * 10 + (1,)
assert sum(SLOT_BITS) == 256 and sum(t + 1 for t in SLOT_FLIPS) > THRESHOLD
assert all(0 <= t <= 2 for t in SLOT_FLIPS)  # 3 flips of a 24-bit key: 2,325 probes per slot
SLOT_START = tuple(int(x) for x in np.cumsum((0,) + SLOT_BITS[:-1]))
NSLOTS = len(SLOT_BITS)


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


PROBE_SLOT, PROBE_FLIP = _probe_tables()
SLOT_SHIFT_MASK = tuple((256 - SLOT_START[s] - SLOT_BITS[s], (1 << SLOT_BITS[s]) - 1)
                        for s in range(NSLOTS))  # a slot's key from the hash as an int
WORD_MASK = (1 << 64) - 1


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
