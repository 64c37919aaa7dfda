"""Alembic: an empty database upgrades to head, matches the models, and downgrades back."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from store import migrate
from store.db import make_engine
from store.models import Base


def test_upgrade_matches_models_and_downgrade_empties(database_url):
    # database_url arrives migrated to head (conftest); check, go down, come back up.
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    migrate.downgrade(database_url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(database_url)
    assert set(Base.metadata.tables) <= set(inspect(make_engine(database_url)).get_table_names())
    engine.dispose()
