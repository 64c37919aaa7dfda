"""The CLI in a real pseudo-terminal at 60, 80 and 200 columns shows every message whole (issue 18).

At 80 columns the "case created" box ended mid-sentence ("The tok │"): the console's soft wrap
made rich crop the panel, and "the token is never shown again" was lost. Here the installed
console script runs with a pty as its stdin, stdout and stderr, sized with TIOCSWINSZ (no COLUMNS
in the environment), answers its questions as a person would, and every sentence it meant to show
must be on the screen, whole, with no box wider than the terminal.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from hashing.cli import NEW_CASE_WARNING
from tests.helpers import FAKE_REF, FAKE_TOKEN, RecordingServer, run_in_terminal
from tests.testdata import PDQ_DIR, require_testdata

EXE = Path(sys.executable).with_name("hashguard")
BOX = "│╭╮╰╯─"


@pytest.fixture()
def recorder():
    server = RecordingServer()
    yield server
    server.close()


def _flat(text: str) -> str:
    """The screen's words in order: box borders gone, every run of spaces and line ends one
    space (a sentence wrapped over lines reads as it was written; a cropped one does not)."""
    return " ".join(re.sub(f"[{BOX}]", " ", text).split())


def _whole(sentence: str, screen: str) -> bool:
    return " ".join(sentence.split()) in _flat(screen)


def _boxes_fit(screen: str, columns: int) -> list[str]:
    return [line for line in screen.splitlines()
            if any(c in line for c in BOX) and len(line.rstrip()) > columns]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HASHGUARD_TOKEN"}
    return {**env, **extra}


@pytest.mark.parametrize("columns", [60, 80, 200])
def test_submit_shows_every_message_whole(recorder, tmp_path, columns):
    require_testdata()
    missing = tmp_path / "nosuch.jpg"
    code, screen = run_in_terminal(
        [str(EXE), "submit", "--pathway", "adult", "--server", recorder.url,
         str(PDQ_DIR / "misc-images" / "c.png"), str(missing)],
        columns, answers={"[y/N]": "y\n"}, env=_env())
    assert code == 0, screen
    assert "never again" in NEW_CASE_WARNING and "cannot be recovered" in NEW_CASE_WARNING
    for sentence in (
            NEW_CASE_WARNING,
            f"not sent: {missing}: no such file or folder",
            "1 of the files you gave could not be hashed (listed above). Send the hashes of the "
            "other 1 file(s) without them?",
            "Only these hashes are sent, no image or video data.",
            f"case reference: {FAKE_REF}",
            f"token: {FAKE_TOKEN}"):
        assert _whole(sentence, screen), f"cut at {columns} columns: {sentence!r}\n{screen}"
    assert _boxes_fit(screen, columns) == [], screen
    assert len(recorder.requests) == 1  # sent after the answer


def test_answering_no_sends_nothing_and_is_not_an_error(recorder, tmp_path):
    require_testdata()
    code, screen = run_in_terminal(
        [str(EXE), "add", "--server", recorder.url, FAKE_REF,
         str(PDQ_DIR / "misc-images" / "c.png"), str(tmp_path / "typo.jpg")],
        80, answers={"[y/N]": "n\n"}, env=_env(HASHGUARD_TOKEN=FAKE_TOKEN))
    assert code == 0, screen
    assert recorder.requests == []
    assert "Nothing was sent." in screen and "error" not in screen


@pytest.mark.parametrize("columns", [60, 200])
def test_declining_withdraw_is_calm_and_whole(recorder, columns):
    code, screen = run_in_terminal(
        [str(EXE), "withdraw", "--server", recorder.url, FAKE_REF], columns,
        answers={"[y/N]": "n\n"}, env=_env(HASHGUARD_TOKEN=FAKE_TOKEN))
    assert code == 0, screen
    assert recorder.requests == []
    assert _whole(f"Withdraw case {FAKE_REF}? Partners will stop matching its hashes.", screen)
    assert _whole(f"Not withdrawn: case {FAKE_REF} is unchanged.", screen), screen
    assert "error" not in screen


def test_status_in_plain_words_at_60_columns(recorder):
    recorder.responder = lambda request: (200, {
        "case_ref": FAKE_REF, "status": "active", "pathway": "adult",
        "hashes": [{"signal_type": "pdq", "value": "ab" * 32, "quality": 100,
                    "reports": {"pulled": 0, "matched": 0, "removed": 0, "blocked": 0,
                                "not_violating": 0}}]})
    code, screen = run_in_terminal([str(EXE), "status", "--server", recorder.url, FAKE_REF], 60,
                                   env=_env(HASHGUARD_TOKEN=FAKE_TOKEN))
    assert code == 0, screen
    assert _whole("No platform has received it yet.", screen)
    assert _whole("Platforms that take part use these hashes to find and block copies.", screen)
    assert "pulled=" not in screen and "not_violating" not in screen
