"""PDQ match index (partners/match_pdq.py) at 1 M and 10 M hashes, against python-threatexchange's
PDQIndex (what HMA uses) on the same queries in the same run.

For each size N: N uniform random PDQ hashes; planted near-duplicates (queries at distance
0..31 from a random indexed hash, one in 8 with the adversarial spread for 16-bit chunks: 15
chunks with 2 flips and one with 1 at d=31); hashes of real images (the shared test data,
transformed: resize 50%, JPEG q70, 10% crop, plus the PDQ authors' bridge modifications) whose
originals are planted among the random ones, queried with the transformed copies.

Figures: index build time (bulk load), index RSS (process VmRSS after building minus before; the
source array is freed first) and peak RSS, lookups/s on one core (single-threaded loop; wall
clock and thread CPU time, as the machine may be shared), p50/p99 latency, recall vs brute force
(exact result sets on a query sample; brute force = numpy scan of all N), planted recall at
every distance 0..31 and no planted hit at 32..40, time from an add via the incremental path
(apply_batch: what catch_up calls) to being matchable, a background merge's duration, and the
PDQIndex figures with the ratio.

    python bench/match_bench.py [--sizes 1000000,10000000] [--queries 5000]
        [--pytx-queries 500] [--brute-queries 100]
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hashing.signals import pdq  # noqa: E402
from hashing.signals.base import UnusableMedia  # noqa: E402
from partners.match_pdq import PdqIndex, hex_of  # noqa: E402

PDQ_DIR = ROOT.parent / "shared" / "testdata" / "pdq"
PATHWAY = "adult"


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import faiss
    try:
        import importlib.metadata as md
        pytx = md.version("threatexchange")
    except Exception:  # noqa: BLE001
        pytx = "?"
    load = os.getloadavg()
    return (f"{platform.node()} {platform.machine()} {cpu}, {os.cpu_count()} cores, "
            f"{mem:.1f} GiB RAM; Python {platform.python_version()}, numpy {np.__version__}, "
            f"faiss {faiss.__version__}, python-threatexchange {pytx}; "
            f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


def flip(value: int, bits) -> int:
    for bit in bits:
        value ^= 1 << (255 - bit)
    return value


def real_image_pairs() -> list[tuple[str, str, str]]:
    """(original hash, transformed hash, label) for the test images."""
    from PIL import Image

    def hash_of(path):
        try:
            return pdq.hash_file(path)[0].value
        except UnusableMedia:
            return None

    originals = [PDQ_DIR / "bridge-mods" / "aaa-orig.jpg", PDQ_DIR / "misc-images" / "c.png",
                 PDQ_DIR / "reg-test-input" / "pen-and-coaster.png"]
    originals += sorted((PDQ_DIR / "reg-test-input" / "labelme-subset").glob("*"))[:8]
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in originals:
            original = hash_of(path)
            if original is None:
                continue
            image = Image.open(path).convert("RGB")
            w, h = image.size
            variants = {"resize": image.resize((max(64, w // 2), max(64, h // 2))),
                        "jpeg70": image,
                        "crop": image.crop((w // 20, h // 20, w - w // 20, h - h // 20))}
            for name, variant in variants.items():
                target = Path(tmp) / f"{path.stem}-{name}.jpg"
                variant.save(target, quality=70 if name == "jpeg70" else 90)
                value = hash_of(target)
                if value is not None:
                    pairs.append((original, value, f"{path.name}:{name}"))
            if path.name == "aaa-orig.jpg":
                for mod in sorted((PDQ_DIR / "bridge-mods").glob("*.jpg")):
                    value = hash_of(mod)
                    if value is not None and mod.name != "aaa-orig.jpg":
                        pairs.append((original, value, f"bridge:{mod.stem}"))
    return pairs


def make_queries(words: np.ndarray, count: int, rng: random.Random):
    """(query hex, planted row, planted distance) at distances 0..40 (planted must be found for
    <= 31 and must not be reported for >= 32)."""
    queries = []
    for i in range(count):
        row = rng.randrange(len(words))
        base = int(hex_of(words[row]), 16)
        distance = i % 41
        if distance == 31 and i % 8 == 0:  # adversarial for 16 x 16-bit chunks
            lone = rng.randrange(16)
            bits = []
            for chunk in range(16):
                bits += rng.sample(range(16 * chunk, 16 * chunk + 16), 1 if chunk == lone else 2)
        else:
            bits = rng.sample(range(256), distance)
        queries.append((f"{flip(base, bits):064x}", row, distance))
    return queries


def brute_force(rows: np.ndarray, query: str) -> dict[str, int]:
    q = np.frombuffer(bytes.fromhex(query), dtype=">u8").astype(np.uint64)
    d = np.bitwise_count(rows[:, 0] ^ q[0]).astype(np.int32)
    for w in range(1, 4):
        d += np.bitwise_count(rows[:, w] ^ q[w])
    hits = np.flatnonzero(d <= pdq.MATCH_THRESHOLD)
    return {hex_of(rows[i]): int(d[i]) for i in hits}


def timed_lookups(lookup, queries):
    latencies = []
    wall, cpu = time.perf_counter(), time.thread_time()
    results = []
    for query in queries:
        t = time.perf_counter()
        results.append(lookup(query))
        latencies.append(time.perf_counter() - t)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    lat = np.array(latencies) * 1e3
    return results, len(queries) / wall, len(queries) / cpu, np.percentile(lat, 50), \
        np.percentile(lat, 99)


def run(n: int, args, pairs) -> None:
    rng = random.Random(n)
    nprng = np.random.default_rng(n)
    print(f"\n=== {n:,} random PDQ hashes + {len({o for o, _, _ in pairs})} real-image "
          f"originals planted ===")
    gc.collect()
    before = rss_mb()
    words = nprng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)
    originals = sorted({o for o, _, _ in pairs})
    real_rows = {}
    for i, original in enumerate(originals):  # planted among the random ones
        row = int(nprng.integers(n))
        while row in real_rows.values():
            row = int(nprng.integers(n))
        words[row] = np.frombuffer(bytes.fromhex(original), dtype=">u8").astype(np.uint64)
        real_rows[original] = row
    index = PdqIndex()
    build = index.bulk_load(words, PATHWAY)
    queries = make_queries(words, args.queries, rng)
    values_for_pytx = None
    if not args.no_pytx:
        values_for_pytx = words  # kept for the baseline below (counted outside the index)
    else:
        del words
    gc.collect()
    after = rss_mb()
    index_rss = after - before - (values_for_pytx.nbytes / 2**20 if values_for_pytx is not None
                                  else 0)
    print(f"build (bulk load, 11 slot sorts): {build:.1f} s; index RSS {index_rss:,.0f} MB "
          f"(process {after:,.0f} MB, peak {peak_mb():,.0f} MB)")

    query_values = [q for q, _, _ in queries]
    lookup = lambda v: index.lookup(v, [PATHWAY])  # noqa: E731
    timed_lookups(lookup, query_values[:200])  # warm-up
    results, lps, lps_cpu, p50, p99 = timed_lookups(lookup, query_values)
    print(f"ours: {lps:,.0f} lookups/s wall, {lps_cpu:,.0f}/s per CPU-second (1 thread); "
          f"p50 {p50:.3f} ms, p99 {p99:.3f} ms over {len(queries):,} queries")

    view = index._view
    all_rows = view.rows[:n]
    planted_ok = planted_total = false_planted = 0
    by_distance = {}
    for (query, row, distance), found in zip(queries, results):
        base = hex_of(all_rows[row])
        got = dict(found)
        if distance <= 31:
            planted_total += 1
            ok = got.get(base) == distance
            planted_ok += ok
            by_distance.setdefault(distance, [0, 0])[ok] += 1
        elif base in got:
            false_planted += 1
    missed = {d: c[0] for d, c in by_distance.items() if c[0]}
    print(f"planted recall d<=31: {planted_ok}/{planted_total} "
          f"({100 * planted_ok / max(1, planted_total):.2f}%), misses by distance {missed or 'none'};"
          f" planted reported at d>=32: {false_planted}")
    sample = rng.sample(range(len(queries)), min(args.brute_queries, len(queries)))
    same = 0
    t = time.perf_counter()
    for i in sample:
        same += dict(results[i]) == brute_force(all_rows, query_values[i])
    print(f"exact result sets vs brute force: {same}/{len(sample)} identical "
          f"(brute force {1e3 * (time.perf_counter() - t) / len(sample):.0f} ms/query)")

    real_queries = [v for _, v, _ in pairs]
    real_results, rlps, _, _, rp99 = timed_lookups(lookup, real_queries)
    real_ok = real_total = 0
    for (original, variant, label), found in zip(pairs, real_results):
        if pdq.distance(original, variant) <= 31:
            real_total += 1
            real_ok += dict(found).get(original) == pdq.distance(original, variant)
    print(f"real images: {len(pairs)} transformed copies, {real_total} within 31 of their "
          f"original, found {real_ok}/{real_total}; {rlps:,.0f} lookups/s, p99 {rp99:.3f} ms")

    # adds via the incremental path: the entry applied as catch_up would, then matchable?
    delays = []
    for _ in range(20):
        value = f"{rng.getrandbits(256):064x}"
        probe = f"{flip(int(value, 16), rng.sample(range(256), 20)):064x}"
        t = time.perf_counter()
        index.apply_batch([(True, value, PATHWAY)])
        while dict(index.lookup(probe, [PATHWAY])).get(value) != 20:
            pass
        delays.append(time.perf_counter() - t)
    print(f"add -> matchable (apply_batch then lookup): median "
          f"{1e3 * np.median(delays):.2f} ms, max {1e3 * max(delays):.2f} ms")
    t = time.perf_counter()
    index.apply_batch([(False, value, PATHWAY)])
    gone = dict(index.lookup(probe, [PATHWAY])).get(value) is None
    print(f"remove -> unmatchable: {1e3 * (time.perf_counter() - t):.2f} ms ({gone})")

    # a merge of 4096 delta rows in the background while lookups continue
    index.apply_batch([(True, f"{rng.getrandbits(256):064x}", PATHWAY) for _ in range(4096)])
    t = time.perf_counter()
    during = 0
    while index._merge_thread is not None:
        index.lookup(query_values[during % len(query_values)], [PATHWAY])
        during += 1
    merge_s = time.perf_counter() - t
    print(f"background merge of 4,096 delta rows into the main table: {merge_s:.1f} s, "
          f"{during:,} lookups served meanwhile ({during / merge_s:,.0f}/s on the other thread); "
          f"peak RSS now {peak_mb():,.0f} MB")
    del index, view, all_rows
    gc.collect()

    if values_for_pytx is None:
        return
    import faiss
    from threatexchange.signal_type.pdq.pdq_index import PDQIndex
    faiss.omp_set_num_threads(1)  # one core, like ours
    t = time.perf_counter()
    baseline = PDQIndex()
    hexes = (values_for_pytx.astype(">u8").tobytes()).hex()
    baseline.add_all((hexes[64 * i:64 * i + 64], i) for i in range(n))
    del hexes
    pytx_build = time.perf_counter() - t
    count = min(args.pytx_queries, len(queries))
    _, plps, plps_cpu, pp50, pp99 = timed_lookups(baseline.query, query_values[:count])
    pytx_results = [[m.metadata for m in baseline.query(v)] for v in query_values[:min(count, 300)]]
    pok = ptotal = 0
    for (query, row, distance), found in zip(queries, pytx_results):
        if distance <= 31:
            ptotal += 1
            pok += row in found
    print(f"python-threatexchange PDQIndex (faiss IndexBinaryMultiHash 16x16): build "
          f"{pytx_build:.1f} s; {plps:,.1f} lookups/s wall, {plps_cpu:,.1f}/s per CPU-second; "
          f"p50 {pp50:.2f} ms, p99 {pp99:.2f} ms over {count} queries; planted recall "
          f"{pok}/{ptotal}")
    print(f"ratio ours / PDQIndex: {lps / plps:.1f}x (wall), {lps_cpu / plps_cpu:.1f}x (CPU)")
    del baseline
    gc.collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--pytx-queries", type=int, default=500,
                        help="queries run through PDQIndex (it is ~100/s at 10 M)")
    parser.add_argument("--brute-queries", type=int, default=100)
    parser.add_argument("--no-pytx", action="store_true")
    args = parser.parse_args()
    print(machine())
    pairs = real_image_pairs()
    for n in (int(s) for s in args.sizes.split(",")):
        run(n, args, pairs)


if __name__ == "__main__":
    main()
