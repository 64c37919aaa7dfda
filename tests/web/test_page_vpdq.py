"""vPDQ from the page: Chromium plays the person's video from a local object URL, takes the frame
at each whole second and hashes it with the page's PDQ (web/js/vpdq.js). The page's value and
`hashguard hash`'s for the same file match under the reference's rule (frame by frame within a
few bits), the page's value is valid as sent, and a partner matching re-encoded copies finds the
video the page hashed and not an unrelated clip (PostgreSQL and SQLite). A phone's rotated or
mirrored video is hashed as stored on both sides, as the vPDQ authors' hasher and HMA do."""
from __future__ import annotations

import json
import random
import subprocess

import pytest

from hashing.signals import pdq, vpdq
from tests.helpers import bearer
from tests.video_clips import MIRRORED, ROTATED, make_clips, make_turned_clips
from tests.web.helpers import (WEB, go_to_file_picker, node_available, strings,
                                wait_for_hashes)

# Frame by frame, page against CLI: the browser converts YUV to RGB with its own rounding (and
# the colour matrix the file is tagged with, where the CLI uses BT.601 as the vPDQ authors do).
FRAME_BITS = 8
CLIPS = ["original.mp4", "reencode_small.mp4", "other_testsrc2.mp4", "ntsc_bt709.mp4"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_clips(tmp_path_factory.mktemp("page-vpdq"))


def hashed_on_the_page(browser, web_server, paths, webcodecs: bool = True) -> dict[str, str]:
    """The vPDQ value the page shows (and would send) for each file, by file name. Without
    `webcodecs` the page runs as in a browser (or an http:// page) that has no VideoFrame."""
    context = browser.new_context(locale="en-US")
    if not webcodecs:
        context.add_init_script("delete globalThis.VideoFrame")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    logged = []  # why a file came out unplayable, when the page says (console.error)
    page.on("console", lambda m: logged.append(m.text) if m.type == "error" else None)
    page.goto(web_server + "/")
    page.wait_for_selector("body[data-ready='true']")
    go_to_file_picker(page)
    page.set_input_files("#file-input", [str(path) for path in paths])
    wait_for_hashes(page, len(paths), timeout=300)
    shown = page.eval_on_selector_all(
        "#file-list li.file",
        """els => els.map(e => [e.dataset.file, e.dataset.vpdqProblem,
            (e.querySelector('code[data-signal=vpdq]') || {dataset: {}}).dataset.value || null, e.dataset.ms])""")
    payload = json.loads(page.text_content("#payload"))
    context.close()
    assert errors == []
    assert all(problem == "" for _, problem, _, _ in shown), (shown, logged)
    print("page ms per video (digests + vPDQ):", {name: ms for name, _, _, ms in shown})
    values = {name: value for name, _, value, _ in shown}
    assert {h["value"] for h in payload["hashes"] if h["signal_type"] == "vpdq"} == set(
        values.values())
    return values


@pytest.fixture(scope="module")
def page_values(browser, web_server, clips):
    return hashed_on_the_page(browser, web_server, [clips[name] for name in CLIPS])


@pytest.mark.parametrize("name", CLIPS)
def test_page_vpdq_matches_the_cli_s(page_values, clips, name):
    page_value = page_values[name]
    [cli] = vpdq.hash_file(clips[name])
    assert vpdq.parse(page_value) == page_value  # already canonical: the server stores it as sent
    page_frames, cli_frames = vpdq.decode(page_value), vpdq.decode(cli.value)
    assert vpdq.matches(page_value, cli.value) and vpdq.matches(cli.value, page_value)
    print(name, "page vs CLI match %:", vpdq.match_percentages(page_value, cli.value))
    if name != "ntsc_bt709.mp4":  # whole frame rate: the page takes the CLI's very frames
        assert [f.timestamp for f in page_frames] == [f.timestamp for f in cli_frames]
        distances = [pdq.distance(a.pdq_hex, b.pdq_hex) for a, b in zip(page_frames, cli_frames)]
        assert max(distances) <= FRAME_BITS, distances
        print(name, "page vs CLI bits per frame:", distances)


def test_partner_matches_reencodes_against_the_page_s_hash(page_values, clips, client,
                                                           make_partner):
    """What the page sends for the original, stored and pulled; re-encodes hashed by the CLI
    (as a platform would) find it; the unrelated clip does not."""
    created = client.post("/v1/cases", json={"pathway": "adult", "hashes": [
        {"signal_type": "vpdq", "value": page_values["original.mp4"]}]})
    assert created.status_code == 201, created.text
    key = make_partner("platform", "adult")
    pulled = client.get("/v1/partner/hashes", headers=bearer(key)).json()["entries"]
    assert [e["value"] for e in pulled if e["signal_type"] == "vpdq"] == [
        page_values["original.mp4"]]
    queries = [vpdq.hash_file(clips[name])[0].value for name in
               ("reencode_low_bitrate.mp4", "reencode_small.mp4", "trimmed.mp4",
                "other_testsrc2.mp4", "other_life.mp4")]
    results = client.post("/v1/partner/match", headers=bearer(key), json={"hashes": [
        {"signal_type": "vpdq", "value": v} for v in queries]}).json()["results"]
    assert [len(r["matches"]) for r in results] == [1, 1, 1, 0, 0]


def _display_matrix(path) -> tuple[list[int], float]:
    """The first video stream's display matrix (nine integers) and rotation, as ffprobe reads them."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream_side_data", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    [side] = [d for stream in json.loads(out.stdout)["streams"]
              for d in stream.get("side_data_list", []) if d["side_data_type"] == "Display Matrix"]
    numbers = [int(n) for line in side["displaymatrix"].strip().splitlines()
               for n in line.split(":", 1)[1].split()]
    return numbers, side["rotation"]


@pytest.fixture(scope="module")
def turned_clips(clips, tmp_path_factory):
    return make_turned_clips(tmp_path_factory.mktemp("page-vpdq-turned"), clips["original.mp4"])


@pytest.mark.slow  # clips made, seven hashed in Chromium and by the CLI: ~55 s at load 7
@pytest.mark.parametrize("webcodecs", [True, False], ids=["videoframe", "no-videoframe"])
def test_a_phone_s_rotated_or_mirrored_video_matches_between_page_and_cli(
        browser, web_server, clips, turned_clips, webcodecs):
    """A phone records portrait video as landscape frames plus a turn in the track header. The
    CLI (and the vPDQ authors' hasher, so HMA) hashes the frames as stored; Chromium shows them
    turned, and the page used to hash what it showed (every frame 100+ bits away: never a match).
    Each turned copy (the original's very frames, stream-copied) must hash on the page within
    FRAME_BITS of the CLI per frame, and the CLI's value must be the original's. With WebCodecs
    the page undoes the turn its VideoFrame reports; without, the one it reads from the track
    header (web/js/video-meta.js)."""
    turned = turned_clips
    for name, degrees in ROTATED.items():  # the clips really carry the turn
        assert _display_matrix(turned[name])[1] % 360 == degrees, name
    for name, (a, b, c, d) in MIRRORED.items():
        assert _display_matrix(turned[name])[0][:5] == [a, b, 0, c, d], name
    values = hashed_on_the_page(browser, web_server, list(turned.values()), webcodecs)
    [original] = vpdq.hash_file(clips["original.mp4"])
    far = {}
    for name, path in turned.items():
        [cli] = vpdq.hash_file(path)
        assert cli.value == original.value, name  # stored frames, turn not applied
        page_frames, cli_frames = vpdq.decode(values[name]), vpdq.decode(cli.value)
        assert [f.timestamp for f in page_frames] == [f.timestamp for f in cli_frames], name
        distances = [pdq.distance(a.pdq_hex, b.pdq_hex) for a, b in zip(page_frames, cli_frames)]
        print(name, "page vs CLI bits per frame:", distances)
        matched = vpdq.matches(values[name], cli.value) and vpdq.matches(cli.value, values[name])
        if max(distances) > FRAME_BITS or not matched:
            far[name] = distances
    assert far == {}


def test_page_writes_frame_times_as_python_does():
    """The page's spelling of seconds is Python's format(t, ".3"), ties rounded to even (JS's
    own toPrecision rounds 1085 to 1.09e+03, Python to 1.08e+03)."""
    rng = random.Random(5)
    values = [0.0, 0.5, 0.968, 1.0, 12.0, 99.0, 99.96, 100.0, 123.0, 1085.0, 1234.5, 4799.0,
              172800.0, 1.125, 0.0001] + list(range(5000))
    values += [rng.uniform(0, 172800) for _ in range(2000)]
    script = ("import { formatSeconds } from %s; import { readFileSync } from 'node:fs';"
              "console.log(JSON.stringify(JSON.parse(readFileSync(0, 'utf8')).map(formatSeconds)))"
              % json.dumps((WEB / "js" / "vpdq.js").as_uri()))
    out = subprocess.run([node_available(), "--input-type=module", "-e", script],
                         input=json.dumps(values), capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [f"{float(v):.3}" for v in values]


def test_a_video_the_browser_cannot_play_keeps_its_digests_and_says_why(recorded_page, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(range(256)) * 64)
    recorded = recorded_page("ja")
    page = recorded.page
    recorded.goto("/")
    go_to_file_picker(page)
    page.set_input_files("#file-input", [str(broken)])
    wait_for_hashes(page, 1, timeout=120)
    item = page.locator("#file-list li.file")
    assert item.get_attribute("data-vpdq-problem") == "unplayable"
    assert item.locator(".file-note").inner_text() == strings("ja")["files"]["vpdq_unplayable"]
    sent = json.loads(page.text_content("#payload"))["hashes"]
    assert [h["signal_type"] for h in sent] == ["video_md5", "video_sha256"]


def _busy_cores(count: int) -> list[subprocess.Popen]:
    """Processes that keep `count` cores busy: the loaded machine (CI, a phone doing other
    work) under which Chromium hands out the frame from before a seek."""
    import sys
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


@pytest.mark.slow  # a 30 s clip hashed three times with both cores busy (~90 s)
def test_under_load_every_frame_is_the_one_at_its_second(browser, web_server, tmp_path):
    """A person's busy phone: after a seek Chromium can still show the previous frame for a
    while, and the page hashed it (14 of 300 frames of a 30 s clip at load 11-17, 70-104 bits
    from the CLI's frame, though two grabs 20 ms apart agreed). The page now checks each frame's
    own media time (VideoFrame.timestamp). Three hashings of a 30 s clip with both cores kept
    busy: every frame within FRAME_BITS of the CLI's."""
    from tests.video_clips import _ffmpeg
    clip = tmp_path / "thirty.mp4"
    _ffmpeg("-f", "lavfi", "-i", "mandelbrot=size=640x360:rate=25", "-t", "30", "-pix_fmt",
            "yuv420p", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", str(clip))
    cli = vpdq.decode(vpdq.hash_file(clip)[0].value)
    context = browser.new_context(locale="en-US")
    busy = _busy_cores(2)
    far = []
    try:
        page = context.new_page()
        page.goto(web_server + "/")
        page.wait_for_selector("body[data-ready='true']")
        go_to_file_picker(page)
        for attempt in range(3):
            page.set_input_files("#file-input", [str(clip)])
            wait_for_hashes(page, 1, timeout=300)
            value = page.get_attribute("#file-list li.file code[data-signal=vpdq]", "data-value")
            frames = vpdq.decode(value)
            assert [f.timestamp for f in frames] == [f.timestamp for f in cli]
            far += [(attempt, second, pdq.distance(a.pdq_hex, b.pdq_hex))
                    for second, (a, b) in enumerate(zip(frames, cli))
                    if pdq.distance(a.pdq_hex, b.pdq_hex) > FRAME_BITS]
            page.evaluate("document.querySelectorAll('#file-list button.remove')"
                          ".forEach(b => b.click())")
    finally:
        for process in busy:
            process.kill()
            process.wait()
        context.close()
    assert far == []
