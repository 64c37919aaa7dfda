"""Same file, same hash: the page in Chromium against `hashguard hash`'s pipeline.

The page decodes with the browser (createImageBitmap, EXIF orientation, no colour management),
shrinks with the JS copy of Pillow's thumbnail and hashes with the JS PDQ; the CLI decodes with
Pillow (a DCT-scaled draft for big JPEGs), shrinks and hashes with pdqhash. Over the PDQ authors'
reference images and the generated varied set (photos 64 px .. 12 MP, screenshots, drawings,
EXIF-rotated JPEGs, PNG with alpha, greyscale, palette), every image the browser can read and the
CLI rates quality >= 80 must be within distance 10 (the PDQ authors' bar for an implementation);
the distribution is printed and written to test-artifacts/web-parity.json.
"""
from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np

from hashing.media import load_canonical_image
from hashing.signals.pdq import distance, hash_array
from tests.testdata import PDQ_DIR, require_testdata
from tests.web.helpers import artifacts_dir, go_to_file_picker, wait_for_hashes
from tests.web.imageset import reference_images

AUTHORS_BAR = 10
BATCH = 25


def _cli(path: Path) -> tuple[str, int, float]:
    started = time.perf_counter()
    signal = hash_array(np.asarray(load_canonical_image(path)))
    return signal.value, signal.quality, time.perf_counter() - started


def test_page_hashes_equal_cli_hashes(recorded_page, image_set, tmp_path):
    require_testdata()
    # Unique, recognisable names: the page lists files by name.
    files: list[tuple[str, Path, str]] = []
    for path in reference_images():
        name = "ref-" + str(path.relative_to(PDQ_DIR)).replace("/", "-")
        files.append((name, path, "reference"))
    for path in image_set:
        files.append(("gen-" + path.name, path, "generated"))
    folder = tmp_path / "upload"
    folder.mkdir()
    for name, path, _ in files:
        shutil.copyfile(path, folder / name)

    recorded = recorded_page("en")
    page = recorded.page
    recorded.goto("/")
    go_to_file_picker(page)

    browser: dict[str, dict] = {}
    for start in range(0, len(files), BATCH):
        batch = files[start:start + BATCH]
        page.set_input_files("#file-input", [str(folder / name) for name, _, _ in batch])
        wait_for_hashes(page, len(batch), timeout=300)
        for item in page.eval_on_selector_all(
                "#file-list li.file",
                """els => els.map(e => ({name: e.dataset.file, ms: Number(e.dataset.ms || 0),
                   problem: e.dataset.problem || null,
                   hash: (e.querySelector('code[data-signal=pdq]') || {}).textContent || null,
                   quality: Number(e.dataset.quality || -1)}))"""):
            browser[item["name"]] = item
        page.evaluate("document.querySelectorAll('#file-list button.remove').forEach(b => b.click())")

    rows = []
    for name, path, origin in files:
        cli_hash, cli_quality, cli_s = _cli(path)
        got = browser[name]
        row = {"name": name, "set": origin, "cli_hash": cli_hash, "cli_quality": cli_quality,
               "browser_hash": got["hash"], "browser_quality": got["quality"],
               "browser_ms": round(got["ms"], 1), "cli_ms": round(cli_s * 1000, 1),
               "distance": distance(cli_hash, got["hash"]) if got["hash"] else None,
               "browser_problem": got["problem"]}
        rows.append(row)

    readable = [r for r in rows if r["distance"] is not None]
    unreadable = [r["name"] for r in rows if r["distance"] is None]
    histogram = Counter(r["distance"] for r in readable)
    generated = [r for r in readable if r["set"] == "generated"]
    report = {
        "images": len(rows),
        "readable_in_browser": len(readable),
        "unreadable_in_browser": unreadable,
        "exactly_equal": sum(1 for r in readable if r["distance"] == 0),
        "exactly_equal_generated": sum(1 for r in generated if r["distance"] == 0),
        "generated": len(generated),
        "quality_equal": sum(1 for r in readable if r["cli_quality"] == r["browser_quality"]),
        "distance_histogram": dict(sorted(histogram.items())),
        "max_distance_quality_ge_80": max((r["distance"] for r in readable if r["cli_quality"] >= 80),
                                          default=0),
        "rows": rows,
    }
    (artifacts_dir() / "web-parity.json").write_text(json.dumps(report, indent=1))
    print(f"\nweb parity: {report['readable_in_browser']}/{report['images']} readable, "
          f"{report['exactly_equal']} exactly equal ({report['exactly_equal_generated']}/"
          f"{report['generated']} generated), distance histogram {report['distance_histogram']}, "
          f"unreadable {unreadable}")
    for r in readable:
        if r["distance"]:
            print(f"  {r['name']}: distance {r['distance']} (cli quality {r['cli_quality']}, "
                  f"browser quality {r['browser_quality']})")

    assert len(generated) >= 50
    far = [(r["name"], r["distance"]) for r in readable
           if r["cli_quality"] >= 80 and r["distance"] > AUTHORS_BAR]
    assert far == []
    # Every generated image is one a phone or a computer makes: the browser must read them all.
    assert not [name for name in unreadable if name.startswith("gen-")]
