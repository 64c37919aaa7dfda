"""`hashguard submit / status / withdraw`: only hashes leave the device, the token is shown once and
never passed on the command line, and errors are clear.

Two kinds of server: a tiny recording HTTP server (to see exactly which bytes the CLI sends) and
the real `hashguard serve` on SQLite (end to end). The CLI always runs as the installed console
script in a subprocess, except where a hidden prompt has to be answered (CliRunner).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from api import idempotency_keys
from hashing.cli import app
from hashing.client import chunks
from tests.helpers import FAKE_REF, FAKE_TOKEN, RecordingServer, free_port, hashguard_serve

TESTDATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"
PHOTO = TESTDATA / "pdq" / "bridge-mods" / "aaa-orig.jpg"
PNG = TESTDATA / "pdq" / "misc-images" / "c.png"
LOW_QUALITY = TESTDATA / "pdq" / "misc-images" / "small.jpg"
VIDEO = TESTDATA / "tmk" / "doorknob-hd-no-bar.mp4"
EXE = Path(sys.executable).with_name("hashguard")
UNKNOWN_CASE = "unknown case reference or wrong token"


@pytest.fixture(scope="module", autouse=True)
def _testdata():
    for path in (PHOTO, PNG, LOW_QUALITY, VIDEO):
        if not path.is_file():
            pytest.fail(f"reference media not found: {path} (expected ../shared/testdata)",
                        pytrace=False)


def hashguard(*args: str, token: str | None = None, server: str | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the installed CLI; the token only ever goes through the environment."""
    argv = [str(EXE), *args]
    env = {k: v for k, v in os.environ.items() if k not in ("HASHGUARD_TOKEN", "HASHGUARD_SERVER")}
    if token is not None:
        env["HASHGUARD_TOKEN"] = token
        assert not any(token in arg for arg in argv), "the token must never be in argv"
    if server is not None:
        env["HASHGUARD_SERVER"] = server
    env["COLUMNS"] = "200"  # keep rich panels from wrapping the token
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _field(stdout: str, name: str) -> str:
    match = re.search(rf"^{name}: (\S+)$", stdout, re.MULTILINE)
    assert match, f"no '{name}:' line in stdout:\n{stdout}"
    return match.group(1)


def _local_hashes(*paths: Path) -> list[dict]:
    out = hashguard("hash", "--json", *map(str, paths))
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


@pytest.fixture()
def recorder():
    server = RecordingServer()
    yield server
    server.close()


def test_submit_sends_only_the_hashes_never_the_image(recorder):
    out = hashguard("submit", "--server", recorder.url, "--pathway", "adult", str(PHOTO))
    assert out.returncode == 0, out.stderr
    [request] = recorder.requests
    assert request["method"] == "POST" and request["path"] == "/v1/cases"
    body = request["body"]
    assert len(body) < 10_000
    image = PHOTO.read_bytes()
    assert image[:64] not in body and b"\xff\xd8\xff" not in body and b"JFIF" not in body
    assert PHOTO.name.encode() not in body and b"bridge-mods" not in body  # not even the name
    sent = json.loads(body)
    assert set(sent) == {"pathway", "hashes"} and sent["pathway"] == "adult"
    [local] = _local_hashes(PHOTO)
    assert sent["hashes"] == [{"signal_type": "pdq", "value": local["value"], "quality": 100}]
    key = request["headers"]["idempotency-key"]  # 256 random bits, base64url: a strong key
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key) and not idempotency_keys.is_weak(key)
    assert "authorization" not in request["headers"]
    # the reference and the token, once, in machine-readable lines; a warning that it can't be recovered
    assert _field(out.stdout, "case_ref") == FAKE_REF
    assert _field(out.stdout, "token") == FAKE_TOKEN
    assert out.stdout.count(FAKE_TOKEN) == 1
    assert "cannot be recovered" in out.stderr
    assert "1 pdq" in out.stderr  # what will be sent, before it is sent


def test_submit_video_sends_four_hashes_and_no_video_bytes(recorder):
    out = hashguard("submit", "--server", recorder.url, "--pathway", "under18_at_capture", str(VIDEO))
    assert out.returncode == 0, out.stderr
    [request] = recorder.requests
    sent = json.loads(request["body"])
    assert sent["pathway"] == "under18_at_capture"
    assert [h["signal_type"] for h in sent["hashes"]] == ["video_md5", "video_sha256", "vpdq",
                                                     "video_tmk_pdqf"]
    assert all(set(h) == {"signal_type", "value"} for h in sent["hashes"])
    assert VIDEO.read_bytes()[:64] not in request["body"] and b"ftyp" not in request["body"]


def test_low_quality_image_is_not_sent(recorder):
    out = hashguard("submit", "--server", recorder.url, "--pathway", "adult", "--yes",
                    str(LOW_QUALITY), str(PNG))
    assert out.returncode == 0, out.stderr
    assert "small.jpg" in out.stderr and "quality" in out.stderr
    [request] = recorder.requests
    [sent] = json.loads(request["body"])["hashes"]
    [local_png] = _local_hashes(PNG)
    assert sent["value"] == local_png["value"]


def test_nothing_usable_sends_nothing(recorder):
    out = hashguard("submit", "--server", recorder.url, "--pathway", "adult", str(LOW_QUALITY))
    assert out.returncode == 1
    assert "nothing to submit" in out.stderr
    assert recorder.requests == []


def test_json_output_is_the_servers_answer(recorder):
    out = hashguard("submit", "--server", recorder.url, "--pathway", "adult", "--json", str(PNG))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"case_ref": FAKE_REF, "token": FAKE_TOKEN, "status": "active"}


def test_retries_reuse_the_idempotency_key(recorder):
    answers = iter([(503, {"error": {"code": "unavailable", "message": "try later"}}),
                    (502, {}),
                    (201, {"case_ref": FAKE_REF, "token": FAKE_TOKEN})])
    recorder.responder = lambda request: next(answers)
    out = hashguard("submit", "--server", recorder.url, "--pathway", "adult", str(PNG))
    assert out.returncode == 0, out.stderr
    keys = {r["headers"]["idempotency-key"] for r in recorder.requests}
    assert len(recorder.requests) == 3 and len(keys) == 1
    assert len({r["body"] for r in recorder.requests}) == 1


def test_each_submit_has_its_own_idempotency_key(recorder):
    for _ in range(2):
        assert hashguard("submit", "--server", recorder.url, "--pathway", "adult",
                         str(PNG)).returncode == 0
    assert len({r["headers"]["idempotency-key"] for r in recorder.requests}) == 2


def test_gives_up_after_three_attempts(recorder):
    recorder.responder = lambda request: (503, {"error": {"code": "unavailable",
                                                          "message": "down for maintenance"}})
    out = hashguard("submit", "--server", recorder.url, "--pathway", "adult", str(PNG))
    assert out.returncode == 1
    assert len(recorder.requests) == 3
    assert "unavailable" in out.stderr and "down for maintenance" in out.stderr
    assert "token:" not in out.stdout


def test_server_error_shows_code_and_message(recorder):
    recorder.responder = lambda request: (422, {"error": {"code": "pdq_degenerate",
                                                          "message": "this PDQ hash is flat"}})
    out = hashguard("submit", "--server", recorder.url, "--pathway", "adult", str(PNG))
    assert out.returncode == 1
    assert "pdq_degenerate" in out.stderr and "this PDQ hash is flat" in out.stderr
    assert len(recorder.requests) == 1  # a 4xx is not retried


def test_unreachable_server_is_a_clear_error(recorder):
    dead = f"http://127.0.0.1:{free_port()}"
    out = hashguard("submit", "--server", dead, "--pathway", "adult", str(PNG))
    assert out.returncode == 1
    assert "cannot connect" in out.stderr and dead in out.stderr
    assert "Traceback" not in out.stderr


def test_server_defaults_to_env(recorder):
    out = hashguard("submit", "--pathway", "adult", str(PNG), server=recorder.url)
    assert out.returncode == 0, out.stderr
    assert len(recorder.requests) == 1


@pytest.fixture(scope="module")
def many_images(tmp_path_factory) -> Path:
    """501 distinct, detailed images: one more than the server takes in one request."""
    folder = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(20240501)
    for i in range(501):
        pixels = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).resize((128, 128)).save(folder / f"{i:04d}.png")
    return folder


def test_more_than_500_hashes_go_in_chunks(recorder, many_images):
    out = hashguard("submit", "--server", recorder.url, "--pathway", "adult", str(many_images))
    assert out.returncode == 0, out.stderr
    create, more = recorder.requests
    assert create["path"] == "/v1/cases" and len(json.loads(create["body"])["hashes"]) == 500
    assert more["method"] == "POST" and more["path"] == f"/v1/cases/{FAKE_REF}/hashes"
    assert more["headers"]["authorization"] == f"Bearer {FAKE_TOKEN}"
    assert len(json.loads(more["body"])["hashes"]) == 1
    assert _field(out.stdout, "token") == FAKE_TOKEN


def test_a_failed_chunk_still_shows_the_token(recorder, many_images):
    def responder(request):
        if request["path"] == "/v1/cases":
            return 201, {"case_ref": FAKE_REF, "token": FAKE_TOKEN}
        return 400, {"error": {"code": "too_many_hashes", "message": "case is full"}}

    recorder.responder = responder
    out = hashguard("submit", "--server", recorder.url, "--pathway", "adult", str(many_images))
    assert out.returncode == 1
    assert _field(out.stdout, "token") == FAKE_TOKEN
    assert "1 hash(es) could not be added" in out.stderr and "too_many_hashes" in out.stderr


def test_chunks_respect_the_count_and_the_body_size():
    pdqs = [{"signal_type": "pdq", "value": f"{i:064x}", "quality": 100} for i in range(1201)]
    assert [len(c) for c in chunks(pdqs)] == [500, 500, 201]
    assert sum(chunks(pdqs), []) == pdqs
    # TMK+PDQF values are ~350 kB of base64: the server's 4 MiB body cap fits ~11, not 500
    tmks = [{"signal_type": "video_tmk_pdqf", "value": f"{i:04d}" + "A" * 351_000} for i in range(25)]
    batches = chunks(tmks)
    assert sum(batches, []) == tmks and len(batches) > 2
    assert all(len(json.dumps({"pathway": "adult", "hashes": b})) < 4 * 1024 * 1024 for b in batches)


def test_status_output_from_recorded_server(recorder):
    tmk = "VE1LMUZWRUNQRFFG" + "A" * 200

    def responder(request):
        return 200, {"case_ref": FAKE_REF, "status": "active", "pathway": "adult", "hashes": [
            {"signal_type": "pdq", "value": "ab" * 32, "quality": 100,
             "reports": {"pulled": 3, "matched": 1, "removed": 1}},
            {"signal_type": "video_tmk_pdqf", "value": tmk, "reports": {"pulled": 2, "blocked": 5}},
        ]}

    recorder.responder = responder
    out = hashguard("status", "--server", recorder.url, FAKE_REF.lower(), token=FAKE_TOKEN)
    assert out.returncode == 0, out.stderr
    [request] = recorder.requests
    assert request["method"] == "GET" and request["path"] == f"/v1/cases/{FAKE_REF}"
    assert request["headers"]["authorization"] == f"Bearer {FAKE_TOKEN}"
    assert _field(out.stdout, "status") == "active"
    # in plain words (issue 18), not "pulled=3 matched=1 removed=1"
    assert "ab" * 32 in out.stdout and "quality=100" in out.stdout
    assert "Received by 3 platforms; 1 found a copy, 1 removed a copy." in out.stdout
    assert tmk[:32] + "..." in out.stdout and tmk not in out.stdout
    assert "Received by 2 platforms; 5 blocked an upload." in out.stdout
    assert "pulled=" not in out.stdout and "removed=" not in out.stdout
    assert FAKE_TOKEN not in out.stdout + out.stderr


def test_status_404_is_unknown_case_or_wrong_token(recorder):
    out = hashguard("status", "--server", recorder.url, "HG-NOPE-NOPE", token="whatever")
    assert out.returncode == 1
    assert UNKNOWN_CASE in out.stderr


def test_token_is_prompted_hidden_when_not_in_env(recorder, monkeypatch):
    monkeypatch.delenv("HASHGUARD_TOKEN", raising=False)
    recorder.responder = lambda request: (200, {"case_ref": FAKE_REF, "status": "withdrawn"})
    result = CliRunner().invoke(app, ["withdraw", "--server", recorder.url, FAKE_REF],
                                input=f"{FAKE_TOKEN}\ny\n")
    assert result.exit_code == 0, result.output
    [request] = recorder.requests
    assert request["path"] == f"/v1/cases/{FAKE_REF}/withdraw"
    assert request["headers"]["authorization"] == f"Bearer {FAKE_TOKEN}"
    assert FAKE_TOKEN not in result.stdout  # hidden input is not echoed
    assert "status: withdrawn" in result.stdout


def test_withdraw_can_be_cancelled(recorder):
    result = CliRunner().invoke(app, ["withdraw", "--server", recorder.url, FAKE_REF],
                                input="n\n", env={"HASHGUARD_TOKEN": FAKE_TOKEN})
    # declining is a choice, not an error (issue 18): exit 0, a calm line, no "error"
    assert result.exit_code == 0, result.output
    assert recorder.requests == []
    assert "Not withdrawn" in result.stderr and "error" not in result.output


def test_no_token_option_exists():
    for verb in ("status", "withdraw", "submit", "add"):
        out = hashguard(verb, "--help")
        assert "--token" not in out.stdout


# End to end against the real server -----------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory) -> str:
    with hashguard_serve(EXE, tmp_path_factory.mktemp("server")) as url:
        yield url


def _submit(server: str, *paths: Path, pathway: str = "adult", yes: bool = False) -> tuple[str, str]:
    out = hashguard("submit", "--server", server, "--pathway", pathway, *(["--yes"] if yes else []),
                    *map(str, paths))
    assert out.returncode == 0, out.stderr
    ref, token = _field(out.stdout, "case_ref"), _field(out.stdout, "token")
    assert re.fullmatch(r"HG-[A-Z0-9]{4}-[A-Z0-9]{4}", ref), ref
    return ref, token


def test_submit_status_withdraw_end_to_end(server):
    ref, token = _submit(server, PHOTO, VIDEO)

    out = hashguard("status", "--server", server, ref, token=token)
    assert out.returncode == 0, out.stderr
    assert _field(out.stdout, "status") == "active"
    [photo] = _local_hashes(PHOTO)
    lines = out.stdout.splitlines()
    [pdq_line] = [line for line in lines if line.startswith("pdq ")]
    assert photo["value"] in pdq_line and "quality=100" in pdq_line
    video_md5, video_sha256, vpdq, tmk = _local_hashes(VIDEO)
    assert video_md5["value"] in out.stdout and video_sha256["value"] in out.stdout
    for long_value in (vpdq, tmk):  # shortened on screen
        assert long_value["value"][:32] + "..." in out.stdout and long_value["value"] not in out.stdout
    assert token not in out.stdout + out.stderr

    raw = hashguard("status", "--server", server, "--json", ref, token=token)
    case = json.loads(raw.stdout)
    assert case["case_ref"] == ref and case["status"] == "active" and case["pathway"] == "adult"
    assert {h["signal_type"] for h in case["hashes"]} == {
        "pdq", "video_md5", "video_sha256", "vpdq", "video_tmk_pdqf"}
    assert all(isinstance(h["reports"], dict) for h in case["hashes"])

    out = hashguard("withdraw", "--server", server, "--yes", ref, token=token)
    assert out.returncode == 0, out.stderr
    assert _field(out.stdout, "status") == "withdrawn"

    out = hashguard("status", "--server", server, ref, token=token)
    assert out.returncode == 0, out.stderr
    assert _field(out.stdout, "status") == "withdrawn"


def test_wrong_token_or_unknown_ref_says_neither(server):
    ref, token = _submit(server, PNG)
    # another character of the token's alphabet: a change of case is the same token now
    wrong = ("2" if token[0] != "2" else "3") + token[1:]
    for args, secret in ((("status", ref), wrong), (("withdraw", "--yes", ref), wrong),
                         (("status", "HG-ZZZZ-ZZZZ"), token)):
        out = hashguard(args[0], "--server", server, *args[1:], token=secret)
        assert out.returncode == 1, out.stdout
        assert UNKNOWN_CASE in out.stderr
    # and the case was not withdrawn by the wrong token
    out = hashguard("status", "--server", server, ref, token=token)
    assert _field(out.stdout, "status") == "active"


def test_low_quality_image_is_not_in_the_case(server):
    ref, token = _submit(server, LOW_QUALITY, PNG, yes=True)
    case = json.loads(hashguard("status", "--server", server, "--json", ref, token=token).stdout)
    [local_png] = _local_hashes(PNG)
    assert [(h["signal_type"], h["value"]) for h in case["hashes"]] == [("pdq", local_png["value"])]


def test_more_than_500_hashes_end_to_end(server, many_images):
    ref, token = _submit(server, many_images)
    case = json.loads(hashguard("status", "--server", server, "--json", ref, token=token).stdout)
    assert len(case["hashes"]) == 501


def test_submit_json_end_to_end(server):
    out = hashguard("submit", "--server", server, "--pathway", "under18_at_capture", "--json",
                    str(PNG))
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert created["case_ref"].startswith("HG-") and created["token"]


def test_many_videos_fit_the_servers_body_limit(server, tmp_path):
    """13 TMK+PDQF values (~350 kB each) exceed the server's 4 MiB body cap in one request."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg is needed for video hashing"
    for i in range(13):
        subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", "testsrc2=size=160x120:rate=15:duration=2",
                        "-vf", f"hue=h={i * 25}", "-pix_fmt", "yuv420p", str(tmp_path / f"v{i}.mp4")],
                       check=True, timeout=60)
    ref, token = _submit(server, tmp_path)
    case = json.loads(hashguard("status", "--server", server, "--json", ref, token=token).stdout)
    assert len(case["hashes"]) == 52  # MD5, SHA-256, vPDQ and TMK of each
    assert sum(h["signal_type"] == "video_tmk_pdqf" for h in case["hashes"]) == 13
    assert sum(h["signal_type"] == "vpdq" for h in case["hashes"]) == 13


def test_add_puts_more_files_in_the_same_case_end_to_end(server):
    """`hashguard add` (issue 18): a second case and a second token are no longer the only way
    to protect a picture found later."""
    ref, token = _submit(server, PNG)
    typed = token.lower().replace("-", " ")  # as a person may type it back
    out = hashguard("add", "--server", server, ref.lower(), str(PHOTO), str(PNG), token=typed)
    assert out.returncode == 0, out.stderr
    assert _field(out.stdout, "added") == "1" and _field(out.stdout, "hash_count") == "2"
    assert "1 was already in it" in out.stderr and token not in out.stdout + out.stderr
    case = json.loads(hashguard("status", "--server", server, "--json", ref, token=token).stdout)
    [photo], [png] = _local_hashes(PHOTO), _local_hashes(PNG)
    assert sorted(h["value"] for h in case["hashes"]) == sorted([photo["value"], png["value"]])

    wrong = ("2" if token[0] != "2" else "3") + token[1:]
    out = hashguard("add", "--server", server, ref, str(LOW_QUALITY), str(PHOTO), "--yes",
                    token=wrong)
    assert out.returncode == 1 and UNKNOWN_CASE in out.stderr

    assert hashguard("withdraw", "--server", server, "--yes", ref, token=token).returncode == 0
    out = hashguard("add", "--server", server, ref, str(PHOTO), token=token)
    assert out.returncode == 1
    assert "withdrawn" in out.stderr and "hashguard submit" in out.stderr
    assert "Traceback" not in out.stderr
