"""Where the shared reference media live: ../shared/testdata next to the project root."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TESTDATA = PROJECT_ROOT.parent / "shared" / "testdata"
PDQ_DIR = TESTDATA / "pdq"
TMK_DIR = TESTDATA / "tmk"


def require_testdata() -> Path:
    if not (PDQ_DIR / "hashes.csv").is_file():
        pytest.fail(
            f"reference media not found at {TESTDATA}: hashguard's tests expect the shared test data "
            "(PDQ and TMK authors' samples) in ../shared/testdata relative to the project root",
            pytrace=False,
        )
    return TESTDATA


def pdq_reference_rows() -> list[dict]:
    if not (PDQ_DIR / "hashes.csv").is_file():
        return []  # require_testdata() in the test reports the missing folder clearly
    with open(PDQ_DIR / "hashes.csv", newline="") as f:
        return list(csv.DictReader(f))
