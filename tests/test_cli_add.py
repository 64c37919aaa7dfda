"""`hashguard add REF FILE...`, and the question before sending when some given files could not be
hashed (issue 18: `hashguard submit photo.jpg nosuch.jpg` sent without the missing file and
without asking). Against a recording stand-in for the server, to see exactly what is sent; the
CLI runs as the installed console script with no terminal (the question itself, answered in a
real terminal, is in tests/test_cli_terminal.py)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FAKE_REF, FAKE_TOKEN, RecordingServer
from tests.testdata import PDQ_DIR, require_testdata

EXE = Path(sys.executable).with_name("hashguard")


@pytest.fixture()
def recorder():
    server = RecordingServer()
    yield server
    server.close()


@pytest.fixture()
def media(tmp_path) -> dict[str, Path]:
    require_testdata()
    photo, png = tmp_path / "photo.jpg", tmp_path / "c.png"
    photo.write_bytes((PDQ_DIR / "bridge-mods" / "aaa-orig.jpg").read_bytes())
    png.write_bytes((PDQ_DIR / "misc-images" / "c.png").read_bytes())
    broken = tmp_path / "clip.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    notes = tmp_path / "notes.txt"
    notes.write_text("not media")
    return {"photo": photo, "png": png, "missing": tmp_path / "nosuch.jpg", "broken": broken,
            "notes": notes}


def hashguard(*args, token: str | None = FAKE_TOKEN) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HASHGUARD_TOKEN"}
    if token is not None:
        env["HASHGUARD_TOKEN"] = token
    env["COLUMNS"] = "80"
    return subprocess.run([str(EXE), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL)


def _local(path: Path) -> str:
    out = hashguard("hash", "--json", path)
    [record] = [json.loads(line) for line in out.stdout.splitlines()]
    return record["value"]


def test_add_sends_only_hashes_to_the_case_with_its_token(recorder, media):
    out = hashguard("add", "--server", recorder.url, FAKE_REF.lower(), media["photo"],
                    media["png"])
    assert out.returncode == 0, out.stderr
    [request] = recorder.requests
    assert request["method"] == "POST" and request["path"] == f"/v1/cases/{FAKE_REF}/hashes"
    assert request["headers"]["authorization"] == f"Bearer {FAKE_TOKEN}"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", request["headers"]["idempotency-key"])
    sent = json.loads(request["body"])
    assert sent == {"hashes": [{"signal_type": "pdq", "value": _local(media["photo"]),
                                "quality": 100},
                               {"signal_type": "pdq", "value": _local(media["png"]),
                                "quality": 100}]}
    assert b"photo" not in request["body"] and b"JFIF" not in request["body"]
    assert "added: 2" in out.stdout and "hash_count: 3" in out.stdout
    assert FAKE_TOKEN not in out.stdout + out.stderr


def test_a_full_width_token_typed_on_a_japanese_keyboard_is_sent_plainly(recorder, media):
    typed = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in "ab12-cd34") + "ー9z"
    out = hashguard("add", "--server", recorder.url, FAKE_REF, media["png"], token=typed)
    assert out.returncode == 0, out.stderr
    assert recorder.requests[0]["headers"]["authorization"] == "Bearer ab12-cd34-9z"


@pytest.mark.parametrize("verb", ["submit", "add"])
def test_unhashable_files_are_listed_and_nothing_is_sent_without_an_answer(recorder, media, verb):
    args = (["submit", "--pathway", "adult"] if verb == "submit" else ["add", FAKE_REF])
    out = hashguard(*args, "--server", recorder.url, media["photo"], media["missing"],
                    media["broken"], media["notes"])
    assert recorder.requests == [], "sent without asking"
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    for name, start, reason in (("nosuch.jpg", "not sent: ", "no such file"),
                                ("notes.txt", "not sent: ", "not an image or video"),
                                # its exact-copy digests would go, not its vPDQ and TMK+PDQF
                                ("clip.mp4", "partly sent: ", "vpdq: ffmpeg")):
        [line] = [line for line in lines if name in line]  # one line per file
        assert line.startswith(start) and reason in line, line
    assert "nothing was sent" in out.stderr and "--yes" in out.stderr


@pytest.mark.parametrize("verb", ["submit", "add"])
def test_yes_sends_the_hashes_of_the_other_files(recorder, media, verb):
    args = (["submit", "--pathway", "adult"] if verb == "submit" else ["add", FAKE_REF])
    out = hashguard(*args, "--yes", "--server", recorder.url, media["missing"], media["photo"])
    assert out.returncode == 0, out.stderr
    [request] = recorder.requests
    assert [h["value"] for h in json.loads(request["body"])["hashes"]] == [_local(media["photo"])]
    assert f"not sent: {media['missing']}: no such file or folder" in out.stderr


def test_nothing_usable_to_add_sends_nothing(recorder, media):
    out = hashguard("add", "--server", recorder.url, "--yes", FAKE_REF, media["missing"])
    assert out.returncode == 1 and "nothing to add" in out.stderr
    assert recorder.requests == []


def test_a_file_name_with_brackets_is_shown_as_it_is(recorder, tmp_path):
    odd = tmp_path / "[red]x[/].jpg"  # rich markup in a name must not break the line
    out = hashguard("submit", "--pathway", "adult", "--server", recorder.url, "--yes", odd,
                    PDQ_DIR / "misc-images" / "c.png")
    assert out.returncode == 0, out.stderr
    assert f"not sent: {odd}: no such file or folder" in out.stderr
