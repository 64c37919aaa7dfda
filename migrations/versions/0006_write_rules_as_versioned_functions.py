"""PostgreSQL: the write rules as small functions kept as versioned source in the store

Revision ID: 0006
Revises: 0005

Until 0005 the live body of `hashguard_create_cases` existed only in a migration, and the same
rules (best quality, share only `ok`, `also_shared`) were restated in Python's statements for
every other writer. Now each rule is one function (store/backends/pg_functions/ says
which), every PostgreSQL writer calls them, and this migration installs the version the code
names (WRITE_RULES_0006) instead of holding its own copy. `hashguard_create_cases` keeps 0005's
signature and result.
"""
import importlib.util
from pathlib import Path

from alembic import op

from store.backends.pg_functions.v0006 import WRITE_RULES as WRITE_RULES_0006

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _revision_0005():
    path = Path(__file__).with_name("0005_create_cases_from_the_upserted_rows.py")
    spec = importlib.util.spec_from_file_location("hashguard_migration_0005", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WRITE_RULES_0006.create)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_revision_0005()._CREATE_CASES)
        op.execute(WRITE_RULES_0006.drop)
