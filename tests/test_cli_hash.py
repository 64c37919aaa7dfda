"""`hashguard hash`: one record per media file, a skip line for the rest, no network, honest exit codes."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hashing.cli import app
from tests.testdata import PDQ_DIR, TMK_DIR, require_testdata


@pytest.fixture()
def mixed_folder(tmp_path: Path) -> Path:
    require_testdata()
    folder = tmp_path / "mixed"
    (folder / "nested").mkdir(parents=True)
    shutil.copy(PDQ_DIR / "bridge-mods" / "aaa-orig.jpg", folder / "photo.jpg")
    shutil.copy(PDQ_DIR / "misc-images" / "small.jpg", folder / "nested" / "tiny.jpg")
    shutil.copy(TMK_DIR / "doorknob-hd-no-bar.mp4", folder / "nested" / "clip.mp4")
    (folder / "notes.txt").write_text("not media")
    return folder


@pytest.fixture()
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("hashguard hash tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_json_output_has_one_record_per_signal_and_skips_other_files(mixed_folder, no_network):
    result = CliRunner().invoke(app, ["hash", "--json", str(mixed_folder)])
    assert result.exit_code == 0, result.output
    records = _json_lines(result.stdout)
    by_file = {}
    for record in records:
        by_file.setdefault(Path(record["path"]).name, []).append(record)
    assert set(by_file) == {"photo.jpg", "tiny.jpg", "clip.mp4"}
    [photo] = by_file["photo.jpg"]
    assert photo["signal_type"] == "pdq" and len(photo["value"]) == 64 and photo["quality"] == 100
    [tiny] = by_file["tiny.jpg"]
    assert tiny["error_code"] == "pdq_low_quality" and "value" not in tiny
    assert {r["signal_type"] for r in by_file["clip.mp4"]} == {
        "video_md5", "video_sha256", "vpdq", "video_tmk_pdqf"}
    assert all("value" in r for r in by_file["clip.mp4"])
    assert "skipped (not an image or video)" in result.stderr and "notes.txt" in result.stderr


def test_missing_path_is_a_real_error(tmp_path, no_network):
    result = CliRunner().invoke(app, ["hash", str(tmp_path / "nope.jpg")])
    assert result.exit_code == 1
    assert "no such file" in result.stderr


def test_corrupt_image_is_a_real_error(tmp_path, no_network):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = CliRunner().invoke(app, ["hash", "--json", str(tmp_path)])
    assert result.exit_code == 1
    [record] = _json_lines(result.stdout)
    assert record["error_code"] == "unreadable" and "value" not in record


def test_human_output_names_the_hash_and_quality(mixed_folder, no_network):
    result = CliRunner().invoke(app, ["hash", str(mixed_folder / "photo.jpg")])
    assert result.exit_code == 0
    assert "pdq" in result.stdout and "quality=100" in result.stdout


def test_installed_command_runs(mixed_folder):
    """The console script that users get (not only the in-process app)."""
    exe = Path(sys.executable).with_name("hashguard")
    out = subprocess.run([str(exe), "hash", "--json", str(mixed_folder / "photo.jpg")],
                         capture_output=True, text=True, check=True)
    [record] = _json_lines(out.stdout)
    assert record["signal_type"] == "pdq"
