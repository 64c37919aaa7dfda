"""PostgreSQL: the write rules as functions kept as versioned source in the store

Revision ID: 0010
Revises: 0009

Until 0005 the live body of `hashguard_create_cases` existed only in a migration, the commit
trigger's function only in 0003, and the same rules (best quality, share only `ok`,
`also_shared`) were restated in Python's statements for every other writer. Now each rule is one
function (store/backends/pg_functions/ says which), every PostgreSQL writer calls them, and this
migration installs the version the code names instead of holding its own copy. It comes after
0006-0009, whose columns and sequences the functions use (held pathways, the event clock, a
position per pathway). `hashguard_create_cases` keeps 0005's signature and result.
"""
import importlib.util
from pathlib import Path

from alembic import op

from store.backends.pg_functions.v0010 import WRITE_RULES

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def _revision(name: str):
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f"hashguard_migration_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WRITE_RULES.create)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_revision("0005_create_cases_from_the_upserted_rows.py")._CREATE_CASES)
        op.execute(_revision("0003_submit_in_one_round_trip.py")
                   ._ASSIGN_POSITIONS_PER_TRANSACTION)
        op.execute(WRITE_RULES.drop)
