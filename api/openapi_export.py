"""Writes openapi.yaml from the app: the contract file is generated, and a test keeps it equal.

Run `python -m api.openapi_export` after changing a route; tests/test_openapi.py fails otherwise.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from api.app import create_app

CONTRACT = Path(__file__).resolve().parents[1] / "openapi.yaml"


def render() -> str:
    return yaml.safe_dump(create_app().openapi(), sort_keys=False, allow_unicode=True)


if __name__ == "__main__":
    CONTRACT.write_text(render())
    sys.stdout.write(f"wrote {CONTRACT}\n")
