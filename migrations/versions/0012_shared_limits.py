"""Failure budgets shared by every serving process: the limit_counters table

Revision ID: 0012
Revises: 0011

Why (issue 23): wrong-token and wrong-key limits lived in each process's memory, so every added
process gave a guesser another budget. A budget is now a row that all processes update with one
UPSERT (store/limits.py). Rows are keyed by a 16-byte HMAC under a key derived from the server
secret, never by an address or a case reference, and are deleted once their budget is whole again;
the table therefore starts empty and a downgrade loses nothing worth keeping.
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'limit_counters',
        sa.Column('key', sa.LargeBinary(length=16), nullable=False),
        sa.Column('due', sa.Double(), nullable=False),
        sa.Column('refused', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('key'))
    # The sweep deletes rows whose `due` has passed.
    op.create_index('ix_limit_counters_due', 'limit_counters', ['due'])


def downgrade() -> None:
    op.drop_index('ix_limit_counters_due', table_name='limit_counters')
    op.drop_table('limit_counters')
