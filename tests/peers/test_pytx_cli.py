"""python-threatexchange's own CLI, with the hashguard-pytx extension added by configuration,
against a live hashguard: fetch, match (photo file, PDQ and TMK hashes), label, and a
withdrawal that leaves the CLI's index on the next fetch."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.hashes import Q0122
from tests.helpers import new_case, withdraw
from tests.peers.conftest import note
from tests.peers.test_hma import case_reports, pdq_of, tmk_value
from tests.testdata import PDQ_DIR, require_testdata

# slow: the first run builds the peers' venv (~30 s); `peers` comes from the folder
pytestmark = [pytest.mark.slow,
              pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)]

COLLAB = "HASHGUARD"


class TX:
    """`threatexchange ...` in the peers' venv, with its own HOME (the CLI keeps its state and
    configuration in ~/.threatexchange) and the partner key where pytx's credential helper looks
    for it (the environment variable the extension declares)."""

    def __init__(self, peers, home, key: str) -> None:
        self.exe = peers.bin("threatexchange")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
        self.env.update(HOME=str(home), TX_HASHGUARD_KEY=key)

    def __call__(self, *args: str) -> str:
        done = subprocess.run([self.exe, *args], env=self.env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, (f"threatexchange {' '.join(args)[:200]} failed "
                                      f"({done.returncode}):\n{done.stdout[-2000:]}\n"
                                      f"{done.stderr[-3000:]}")
        return done.stdout


def matched_collabs(output: str) -> list[str]:
    return [line for line in output.splitlines() if f"({COLLAB})" in line]


def test_pytx_cli_fetch_match_label(peers, tmp_path, live_server, client, make_partner):
    require_testdata()
    key = make_partner("cli-platform")
    photo = pdq_of(PDQ_DIR / "bridge-mods" / "aaa-orig.jpg")
    # two photos stay: pytx 1.2.16's PDQ index loses its only entry once stored and reloaded,
    # by the CLI as by HMA (tests/peers/test_hma.py)
    other_photo = pdq_of(PDQ_DIR / "reg-test-input" / "exif-rotn" / "exif-rotn-1.jpg")
    kept = new_case(client, [photo, other_photo])
    tmk = tmk_value()
    video = client.post("/v1/cases", json={"pathway": "under18_at_capture", "hashes": [
        {"signal_type": "video_tmk_pdqf", "value": tmk}]})
    assert video.status_code == 201, video.text
    later_withdrawn = new_case(client, [Q0122])

    tx = TX(peers, tmp_path / "home", key)
    tx("config", "extensions", "add", "hashguard_pytx")
    tx("config", "collab", "edit", "hashguard", COLLAB, "--create", "--base-url", live_server)
    tx("fetch")

    # a modified copy of the shared photo, hashed by pytx's own PDQ on the platform's side
    hits = matched_collabs(tx("match", "photo", str(PDQ_DIR / "bridge-mods" / "blur-a-lot.jpg")))
    assert len(hits) == 1 and hits[0].startswith("pdq "), hits
    assert "adult" in hits[0]  # the record's pathway, as the CLI prints its metadata
    unrelated = PDQ_DIR / "reg-test-input" / "labelme-subset" / "q0746.jpg"
    assert matched_collabs(tx("match", "photo", str(unrelated))) == []
    tmk_file = tmp_path / "query.tmk.b64"
    tmk_file.write_text(tmk)
    hits = matched_collabs(tx("match", "-H", "-S", "video_tmk_pdqf", "video", str(tmk_file)))
    assert len(hits) == 1 and hits[0].startswith("video_tmk_pdqf 0.0"), hits
    assert matched_collabs(tx("match", "-H", "photo", "--", Q0122))

    withdraw(client, later_withdrawn)
    tx("fetch")
    assert matched_collabs(tx("match", "-H", "photo", "--", Q0122)) == []
    assert matched_collabs(tx("match", "-H", "photo", "--", photo))  # the rest stays

    # (pytx's CLI takes its options before the positional arguments: the files argument
    # swallows everything after the content type)
    # `label` posts the opinion (POSITIVE_CLASS: "removed") with its labels as tags
    tx("label", "-H", "pdq", "-l", "ncii", COLLAB, "photo", "--", photo)
    assert case_reports(client, kept)[("pdq", photo)]["removed"] == 1
    note("pytx_cli", {"fetches": 2, "matched": 4, "not_matched": 2, "labels": 1})
