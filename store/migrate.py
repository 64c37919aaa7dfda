"""Runs the Alembic revisions in migrations/ (upgrade on start, downgrade for tests/operators)."""
from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config

from store.db import normalize_url

# migrations/ sits beside the packages in a source checkout; an installed image points
# HASHGUARD_MIGRATIONS at its copy (see Dockerfile).
MIGRATIONS_DIR = Path(os.environ.get("HASHGUARD_MIGRATIONS",
                                     Path(__file__).resolve().parents[1] / "migrations"))


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalize_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
