"""Browser hashing speed: the page's PDQ of a 12 MP JPEG in headless Chromium, next to the native
path on the same file in the same run.

    .venv/bin/python bench/web_pdq_bench.py [--rounds 7] [IMAGE.jpg]

Without IMAGE, a 4000x3000 JPEG is made from the PDQ authors' bridge photo. Rounds interleave
browser and native runs (the machine may be busy); medians are printed, with:
- browser: file -> hash in the page's worker (decode at the CLI's JPEG draft scale, orientation,
  Pillow-exact shrink, PDQ), and its stages;
- native `hashguard hash`: hashing/media.py + pdqhash (Pillow decodes a DCT-scaled JPEG draft);
- native pdqhash on the full 12 MP pixels (Pillow full decode + pdqhash.compute, no shrink).
The machine's load average is printed beside the result (the ratio moves with it).
Needs Debian's /usr/bin/chromium and the `playwright` Python package (the test extra).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pdqhash
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hashing.signals.pdq import bits_to_hex, hash_file  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
BRIDGE = ROOT.parent / "shared" / "testdata" / "pdq" / "bridge-mods" / "aaa-orig.jpg"


def make_12mp(folder: Path) -> Path:
    rng = np.random.default_rng(1)
    with Image.open(BRIDGE) as im:
        big = np.asarray(im.convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC))
    noisy = np.clip(big.astype(np.float32) + rng.normal(0, 8, big.shape), 0, 255).astype(np.uint8)
    path = folder / "bridge-4000x3000.jpg"
    Image.fromarray(noisy).save(path, quality=88)
    return path


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HASHGUARD_DATA_DIR": str(folder)}
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("hashguard")), "serve", "--host", "127.0.0.1",
         "--port", str(port), "--database-url", f"sqlite:///{folder / 'bench.db'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return server, base
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("hashguard serve did not start")


def browser_hash(page, path: Path) -> dict:
    page.set_input_files("#file-input", [str(path)])
    deadline = time.monotonic() + 120
    while not page.evaluate("!!document.querySelector('#file-list li.file') && "
                            "!document.querySelector('#file-list li.file[data-status=hashing]')"):
        if time.monotonic() > deadline:
            raise SystemExit("the page did not hash the image within 120 s")
        time.sleep(0.01)
    item = page.evaluate("""(() => { const e = document.querySelector('#file-list li.file');
        return {ms: Number(e.dataset.ms), stages: JSON.parse(e.dataset.stages || '{}'),
                hash: e.querySelector('code[data-signal=pdq]').textContent}; })()""")
    page.evaluate("document.querySelectorAll('#file-list button.remove').forEach(b => b.click())")
    return item


def native_pipeline(path: Path) -> tuple[float, str]:
    started = time.perf_counter()
    [signal] = hash_file(path)
    return (time.perf_counter() - started) * 1000, signal.value


def native_full(path: Path) -> float:
    started = time.perf_counter()
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    bits, _ = pdqhash.compute(rgb)
    bits_to_hex(bits)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        image = args.image or make_12mp(folder)
        with Image.open(image) as im:
            size = im.size
        server, base = start_server(folder)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_context(locale="en-US").new_page()
                page.goto(base + "/")
                page.wait_for_selector("body[data-ready='true']")
                page.click("#view-ask button[data-go='home']")
                page.click("#view-home button[data-go='pathway']")
                page.check("#pathway-adult")
                page.click("#pathway-form button[type=submit]")
                browser_hash(page, image)  # warm-up: module compile, JIT
                native_pipeline(image)
                runs = {"browser": [], "native_pipeline": [], "native_full": [], "stages": []}
                for _ in range(args.rounds):
                    item = browser_hash(page, image)
                    runs["browser"].append(item["ms"])
                    runs["stages"].append(item["stages"])
                    ms, native_hash = native_pipeline(image)
                    runs["native_pipeline"].append(ms)
                    runs["native_full"].append(native_full(image))
                browser.close()
        finally:
            server.terminate()
            server.wait(10)

    def median(values):
        return round(statistics.median(values), 1)

    distance = (int(native_hash, 16) ^ int(item["hash"], 16)).bit_count()
    result = {
        "image": f"{image.name} {size[0]}x{size[1]}",
        "rounds": args.rounds,
        "browser_ms": median(runs["browser"]),
        "browser_stages_ms": {k: median([s[k] for s in runs["stages"]]) for k, v in runs["stages"][0].items()
                              if isinstance(v, (int, float))},
        "browser_decode_path": runs["stages"][0].get("path"),  # 'jpeg-draft': WebCodecs at the CLI's scale
        "load_average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "native_hashguard_hash_ms": median(runs["native_pipeline"]),
        "native_pdqhash_full_ms": median(runs["native_full"]),
        "ratio_to_hashguard_hash": round(median(runs["browser"]) / median(runs["native_pipeline"]), 2),
        "ratio_to_pdqhash_full": round(median(runs["browser"]) / median(runs["native_full"]), 2),
        "hash_distance_browser_vs_cli": distance,
    }
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:32} {value}")


if __name__ == "__main__":
    main()
