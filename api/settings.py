"""Service settings, read from the environment (HASHGUARD_*) with command-line overrides."""
from __future__ import annotations

import os
from dataclasses import dataclass

# SQLite in the working directory: one command runs the service on a fresh machine.
DEFAULT_DATABASE_URL = "sqlite:///hashguard.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        values = {"database_url": os.environ.get("HASHGUARD_DATABASE_URL", DEFAULT_DATABASE_URL)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
