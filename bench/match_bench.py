"""PDQ match index (partners/match_pdq.py) at 1 M and 10 M hashes, against python-threatexchange's
PDQIndex (what HMA uses) on the same data and queries in the same run.

Per size N: N uniform random PDQ hashes, plus the hashes of real images planted among them;
queries are planted near-duplicates (distance 0..40 from a random indexed hash, one in 8 with the
adversarial spread for 16-bit chunks: 15 chunks with 2 flips and one with 1 at d=31) and the
real images' transformed copies (resize 50%, JPEG q70, 10% crop, the PDQ authors' bridge
modifications).

Each size runs in its own process holding nothing but the index and the benchmark's few
structures, and PDQIndex runs in another (its memory is not mixed in). Memory figures are the
process's VmRSS / VmHWM (the peak, reset through /proc/self/clear_refs before each phase), and
the index's part of them: minus the RSS the process had before the index existed (interpreter,
numpy, the image hashes) and minus the benchmark's N x 32 B source array while it is alive.

Figures: build time (bulk_load); peak RSS while building; steady RSS; lookups/s on one core
(single-threaded loop; wall clock and thread CPU time, as the machine may be shared), p50/p99;
recall vs brute force (exact result sets on a sample; brute force = numpy scan of all N),
planted recall at every distance 0..31 and no planted hit at 32..40; real images; add ->
matchable latency (apply_batch, as catch_up calls it, then lookups until found) p50/p99/max
while background merges run, and the peak RSS meanwhile; a tombstone-dropping compaction and
its peak RSS; the index built a second way, through apply_batch in catch_up's batches (as a
restarted API process does), and its peak RSS; PDQIndex's build, lookups/s, p99, planted
recall, and the ratio.

    flock /tmp/hashguard-bench.lock nice -n 10 python bench/match_bench.py
        [--sizes 1000000,10000000] [--queries 5000] [--pytx-queries 500] [--brute-queries 100]
        [--no-pytx] [--no-catch-up]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hashing.signals import pdq  # noqa: E402
from hashing.signals.base import UnusableMedia  # noqa: E402
from partners.pdq_index import MERGE_DELTA_ROWS, PdqIndex  # noqa: E402
from partners.pdq_layout import hex_of  # noqa: E402

PDQ_DIR = ROOT.parent / "shared" / "testdata" / "pdq"
PATHWAY = "adult"
ADD_BATCH = 8  # values per apply_batch in the add -> matchable loop (a small catch_up batch)


# ---------------------------------------------------------------------------- measuring
def status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """VmHWM := VmRSS now (Linux >= 4.0), so the next VmHWM read is this phase's peak."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def machine() -> str:
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        import importlib.metadata as md
        pytx = md.version("threatexchange")
        faiss_version = md.version("faiss-cpu")
    except Exception:  # noqa: BLE001
        pytx = faiss_version = "?"
    load = os.getloadavg()
    return (f"{platform.node()} {platform.machine()} {cpu}, {os.cpu_count()} cores, "
            f"{mem:.1f} GiB RAM, kernel {platform.release()}; Python "
            f"{platform.python_version()}, numpy {np.__version__}, faiss {faiss_version}, "
            f"python-threatexchange {pytx}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


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
    return {"results": results, "per_s": len(queries) / wall, "per_cpu_s": len(queries) / cpu,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}


# ---------------------------------------------------------------------------- data
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


def dataset(n: int, originals: list[str]) -> np.ndarray:
    """N random hashes (n x 4 uint64) with the originals planted: the same in every process."""
    nprng = np.random.default_rng(n)
    words = nprng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)
    rows = nprng.choice(n, size=len(originals), replace=False)
    for row, original in zip(rows.tolist(), originals):
        words[row] = np.frombuffer(bytes.fromhex(original), dtype=">u8").astype(np.uint64)
    return words


def make_queries(words: np.ndarray, count: int, rng: random.Random):
    """(query hex, planted value, planted distance, its row) at distances 0..40 (planted must be
    found for <= 31 and must not be reported for >= 32)."""
    queries = []
    for i in range(count):
        row = rng.randrange(len(words))
        base = hex_of(words[row])
        distance = i % 41
        if distance == 31 and i % 8 == 0:  # adversarial for 16 x 16-bit chunks
            lone = rng.randrange(16)
            bits = []
            for chunk in range(16):
                bits += rng.sample(range(16 * chunk, 16 * chunk + 16), 1 if chunk == lone else 2)
        else:
            bits = rng.sample(range(256), distance)
        queries.append((f"{flip(int(base, 16), bits):064x}", base, distance, row))
    return queries


def brute_force(rows: np.ndarray, query: str) -> dict[str, int]:
    q = np.frombuffer(bytes.fromhex(query), dtype=">u8").astype(np.uint64)
    d = np.bitwise_count(rows[:, 0] ^ q[0]).astype(np.int32)
    for w in range(1, 4):
        d += np.bitwise_count(rows[:, w] ^ q[w])
    hits = np.flatnonzero(d <= pdq.MATCH_THRESHOLD)
    return {hex_of(rows[i]): int(d[i]) for i in hits}


# ---------------------------------------------------------------------------- our index
def run_index(n: int, args, pairs, out: Path) -> None:
    originals = sorted({o for o, _, _ in pairs})
    rng = random.Random(n)
    gc.collect()
    before = status_mib("VmRSS")  # interpreter, numpy, the image hashes
    words = dataset(n, originals)
    queries = make_queries(words, args.queries, rng)
    with_source = status_mib("VmRSS")
    print(f"RSS before the index: {before:,.0f} MiB, + the benchmark's source array "
          f"{words.nbytes / 2**20:,.0f} MiB and queries = {with_source:,.0f} MiB")

    reset_peak()
    index = PdqIndex()
    build = index.bulk_load(words, PATHWAY)
    build_peak = status_mib("VmHWM")
    print(f"build (bulk_load: slot by slot, one sort per slot): {build:.1f} s; peak RSS during "
          f"it: index {build_peak - with_source:,.0f} MiB (process VmHWM {build_peak:,.0f} MiB)")
    del words
    gc.collect()
    steady = status_mib("VmRSS") - before
    print(f"steady RSS: index {steady:,.0f} MiB (process VmRSS {status_mib('VmRSS'):,.0f} MiB)")

    query_values = [q[0] for q in queries]
    lookup = lambda v: index.lookup(v, [PATHWAY])  # noqa: E731
    timed_lookups(lookup, query_values[:300])  # warm-up
    ours = timed_lookups(lookup, query_values)
    results = ours.pop("results")
    print(f"lookups: {ours['per_s']:,.0f}/s wall, {ours['per_cpu_s']:,.0f}/s per CPU-second "
          f"(1 thread); p50 {ours['p50_ms']:.3f} ms, p99 {ours['p99_ms']:.3f} ms over "
          f"{len(queries):,} queries (1-minute load average after: {os.getloadavg()[0]:.1f})")

    check_recall(index, n, queries, results, args, rng)
    check_real_images(lookup, pairs)
    adds_with_merges(index, query_values, rng, before)
    drop_tombstones(index, n, before)
    out.write_text(json.dumps({"ours": ours, "queries": queries[:args.pytx_queries],
                               "originals": originals}))


def check_recall(index, n, queries, results, args, rng) -> None:
    planted_ok = planted_total = false_planted = 0
    missed: dict[int, int] = {}
    for (_, base, distance, _), found in zip(queries, results):
        got = dict(found)
        if distance <= 31:
            planted_total += 1
            if got.get(base) == distance:
                planted_ok += 1
            else:
                missed[distance] = missed.get(distance, 0) + 1
        elif base in got:
            false_planted += 1
    print(f"planted recall d<=31: {planted_ok}/{planted_total} "
          f"({100 * planted_ok / max(1, planted_total):.2f}%), misses by distance "
          f"{missed or 'none'}; planted reported at d>=32: {false_planted}")
    all_rows = index._view.rows[:n]  # what the index stores (all N, nothing removed yet)
    sample = rng.sample(range(len(queries)), min(args.brute_queries, len(queries)))
    same = 0
    t = time.perf_counter()
    for i in sample:
        same += dict(results[i]) == brute_force(all_rows, queries[i][0])
    print(f"recall vs brute force: {same}/{len(sample)} result sets identical "
          f"(brute force {1e3 * (time.perf_counter() - t) / len(sample):.0f} ms/query)")


def check_real_images(lookup, pairs) -> None:
    real = timed_lookups(lookup, [v for _, v, _ in pairs])
    real_ok = real_total = 0
    for (original, variant, _), found in zip(pairs, real["results"]):
        if pdq.distance(original, variant) <= 31:
            real_total += 1
            real_ok += dict(found).get(original) == pdq.distance(original, variant)
    print(f"real images: {len(pairs)} transformed copies, {real_total} within 31 of their "
          f"original, found {real_ok}/{real_total}")


def adds_with_merges(index, query_values, rng, before) -> None:
    """Adds as catch_up applies them, each timed until a lookup finds it, while background
    merges of MERGE_DELTA_ROWS rows run; a second thread looks up meanwhile."""
    stop = threading.Event()
    served = [0]

    def reader():
        i = 0
        while not stop.is_set():
            index.lookup(query_values[i % len(query_values)], [PATHWAY])
            i += 1
        served[0] = i

    merges, merge_seconds = index.merges, index.merge_seconds
    reset_peak()
    other = threading.Thread(target=reader)
    other.start()
    delays = []
    started = time.perf_counter()
    batches = 6 * MERGE_DELTA_ROWS // ADD_BATCH
    for _ in range(batches):
        values = [f"{rng.getrandbits(256):064x}" for _ in range(ADD_BATCH)]
        probe = f"{flip(int(values[-1], 16), rng.sample(range(256), 20)):064x}"
        t = time.perf_counter()
        index.apply_batch([(True, v, PATHWAY) for v in values])
        while dict(index.lookup(probe, [PATHWAY])).get(values[-1]) != 20:
            pass
        delays.append(time.perf_counter() - t)
    index.wait_for_merge()
    elapsed = time.perf_counter() - started
    stop.set()
    other.join()
    peak = status_mib("VmHWM")
    ms = np.array(delays) * 1e3
    ran = index.merges - merges
    print(f"add -> matchable, {batches * ADD_BATCH:,} adds in batches of {ADD_BATCH} with "
          f"{ran} background merges running (of {MERGE_DELTA_ROWS:,}+ delta rows, "
          f"{(index.merge_seconds - merge_seconds) / max(1, ran):.2f} s each): p50 "
          f"{np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, max "
          f"{ms.max():.1f} ms; another thread served {served[0] / elapsed:,.0f} lookups/s "
          f"meanwhile")
    print(f"peak RSS during those merges: index {peak - before:,.0f} MiB (process VmHWM "
          f"{peak:,.0f} MiB)")
    t = time.perf_counter()
    index.apply_batch([(False, values[-1], PATHWAY)])
    gone = values[-1] not in dict(index.lookup(probe, [PATHWAY]))
    print(f"remove -> unmatchable: {1e3 * (time.perf_counter() - t):.2f} ms ({gone})")


def drop_tombstones(index, n, before) -> None:
    """Remove 1% of the hashes, then compact(): a merge that also drops tombstones."""
    rows = index._view.rows
    removed = [hex_of(rows[i]) for i in range(0, n, 100)]
    index.apply_batch([(False, v, PATHWAY) for v in removed])
    del removed
    gc.collect()
    reset_peak()
    t = time.perf_counter()
    index.compact()
    took = time.perf_counter() - t
    peak = status_mib("VmHWM")
    print(f"compaction dropping {n // 100:,} tombstones: {took:.1f} s; peak RSS during it: "
          f"index {peak - before:,.0f} MiB (process VmHWM {peak:,.0f} MiB); after: index "
          f"{status_mib('VmRSS') - before:,.0f} MiB")


def run_catch_up(n: int) -> None:
    """The index built the way a restarted API process builds it: catch_up's batches of 50,000
    adds through apply_batch (the delta, background merges, and their back-pressure)."""
    batch = 50_000
    gc.collect()
    before = status_mib("VmRSS")
    reset_peak()
    index = PdqIndex()
    nprng = np.random.default_rng(n + 1)
    started = time.perf_counter()
    for _ in range(0, n, batch):
        raw = nprng.integers(0, 2**64, size=(batch, 4), dtype=np.uint64).astype(">u8").tobytes()
        text = raw.hex()
        index.apply_batch([(True, text[i:i + 64], PATHWAY) for i in range(0, len(text), 64)])
    index.wait_for_merge()
    took = time.perf_counter() - started
    peak = status_mib("VmHWM")
    del raw, text
    gc.collect()
    print(f"build through apply_batch ({n:,} adds in batches of {batch:,}, {index.merges} "
          f"merges): {took:.0f} s; peak RSS during it: index {peak - before:,.0f} MiB (process "
          f"VmHWM {peak:,.0f} MiB); after: index {status_mib('VmRSS') - before:,.0f} MiB")


# ---------------------------------------------------------------------------- the baseline
def run_pytx(n: int, data: Path, out: Path) -> None:
    import faiss
    from threatexchange.signal_type.pdq.pdq_index import PDQIndex
    faiss.omp_set_num_threads(1)  # one core, like ours
    saved = json.loads(data.read_text())
    queries = saved["queries"]
    before = status_mib("VmRSS")
    words = dataset(n, saved["originals"])
    t = time.perf_counter()
    baseline = PDQIndex()
    hexes = words.astype(">u8").tobytes().hex()
    del words
    baseline.add_all((hexes[64 * i:64 * i + 64], i) for i in range(n))  # metadata: the row
    del hexes
    gc.collect()
    build = time.perf_counter() - t
    rss = status_mib("VmRSS") - before
    timed = timed_lookups(lambda v: [m.metadata for m in baseline.query(v)],
                          [q[0] for q in queries])
    ok = total = 0
    for (_, _, distance, row), found in zip(queries, timed.pop("results")):
        if distance <= 31:
            total += 1
            ok += row in found
    print(f"python-threatexchange PDQIndex (faiss IndexBinaryMultiHash 16x16, 1 thread): build "
          f"{build:.1f} s, RSS {rss:,.0f} MiB; {timed['per_s']:,.1f} lookups/s wall, "
          f"{timed['per_cpu_s']:,.1f}/s per CPU-second; p50 {timed['p50_ms']:.2f} ms, p99 "
          f"{timed['p99_ms']:.2f} ms over {len(queries)} queries; planted recall {ok}/{total}")
    out.write_text(json.dumps(timed))


# ---------------------------------------------------------------------------- driver
def child(mode: str, n: int, args, data: Path, out: Path) -> None:
    command = [sys.executable, __file__, f"--{mode}", str(n), "--data", str(data),
               "--out", str(out), "--queries", str(args.queries),
               "--pytx-queries", str(args.pytx_queries), "--brute-queries",
               str(args.brute_queries)]
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--pytx-queries", type=int, default=500,
                        help="queries run through PDQIndex (it is ~100/s at 10 M)")
    parser.add_argument("--brute-queries", type=int, default=100)
    parser.add_argument("--no-pytx", action="store_true")
    parser.add_argument("--index", type=int, help=argparse.SUPPRESS)  # child: our index at N
    parser.add_argument("--pytx", type=int, help=argparse.SUPPRESS)   # child: PDQIndex at N
    parser.add_argument("--catch-up", type=int, help=argparse.SUPPRESS)  # child: adds at N
    parser.add_argument("--no-catch-up", action="store_true",
                        help="skip building the index a second time through apply_batch")
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.index:
        pairs = json.loads(args.data.read_text())
        return run_index(args.index, args, [tuple(p) for p in pairs], args.out)
    if args.pytx:
        return run_pytx(args.pytx, args.data, args.out)
    if args.catch_up:
        return run_catch_up(args.catch_up)
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        pairs_file, ours_file, pytx_file = (Path(tmp) / name for name in ("p", "o", "x"))
        pairs_file.write_text(json.dumps(real_image_pairs()))
        for n in (int(s) for s in args.sizes.split(",")):
            pairs = json.loads(pairs_file.read_text())
            print(f"\n=== {n:,} random PDQ hashes + {len({o for o, _, _ in pairs})} real-image "
                  f"originals planted; {args.queries:,} planted queries (d = 0..40), "
                  f"{len(pairs)} transformed real-image queries ===", flush=True)
            print("-- our index (partners/match_pdq.py), in its own process:", flush=True)
            child("index", n, args, pairs_file, ours_file)
            if not args.no_catch_up:
                print("-- our index built through apply_batch, in its own process:", flush=True)
                child("catch-up", n, args, pairs_file, ours_file)
            if args.no_pytx:
                continue
            print("-- baseline, in its own process:", flush=True)
            child("pytx", n, args, ours_file, pytx_file)
            ours = json.loads(ours_file.read_text())["ours"]
            theirs = json.loads(pytx_file.read_text())
            print(f"ratio ours / PDQIndex: {ours['per_s'] / theirs['per_s']:.1f}x (wall), "
                  f"{ours['per_cpu_s'] / theirs['per_cpu_s']:.1f}x (CPU); p99 "
                  f"{ours['p99_ms']:.3f} ms vs {theirs['p99_ms']:.2f} ms")


if __name__ == "__main__":
    main()
