"""Writes openapi.yaml from the app: the contract file is generated, and a test keeps it equal.

Run `python -m api.openapi_export` after changing a route; tests/test_openapi.py fails otherwise.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

import tempfile

from api.app import create_app
from api.settings import Settings

CONTRACT = Path(__file__).resolve().parents[1] / "openapi.yaml"


def render() -> str:
    with tempfile.TemporaryDirectory() as scratch:  # the schema needs no real database
        app = create_app(Settings(data_dir=scratch, secret="A" * 43), run_migrations=False)
        return yaml.safe_dump(app.openapi(), sort_keys=False, allow_unicode=True)


if __name__ == "__main__":
    CONTRACT.write_text(render())
    sys.stdout.write(f"wrote {CONTRACT}\n")
