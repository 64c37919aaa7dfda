"""Change-log times to the hour, like case times (write rules 0010)

Revision ID: 0010
Revises: 0009

Why (a red team's finding): `change_log.logged_at` gave each case's submission second, through
its `add` entries, although case times are kept to the hour so that a database dump cannot be
lined up with request logs. New entries are timed to the hour (store/backends/pg_functions/
v0010.py, store/backends/sqlite.py) and existing ones are rounded down, which keeps times
non-decreasing along the log.
"""
from alembic import op

from store.backends.pg_functions.v0009 import WRITE_RULES as WRITE_RULES_0009
from store.backends.pg_functions.v0010 import WRITE_RULES as WRITE_RULES_0010

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE change_log SET logged_at = logged_at / 3600 * 3600")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WRITE_RULES_0009.drop)
        op.execute(WRITE_RULES_0010.create)


def downgrade() -> None:
    # The seconds are gone for good; only the functions go back.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WRITE_RULES_0010.drop)
        op.execute(WRITE_RULES_0009.create)
