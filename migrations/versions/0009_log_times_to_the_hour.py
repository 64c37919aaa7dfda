"""Change-log times to the hour, like case times (write rules 0010)

Revision ID: 0009
Revises: 0008

Why (a red team's finding): `change_log.logged_at` gave each case's submission second, through
its `add` entries, although case times are kept to the hour so that a database dump cannot be
lined up with request logs. New entries are timed to the hour (the write rules, rule 7) and existing ones are rounded down, which keeps times
non-decreasing along the log.
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE change_log SET logged_at = logged_at / 3600 * 3600")


def downgrade() -> None:
    pass  # the seconds are gone for good