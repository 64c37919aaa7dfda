"""The database records the server secret's check values and the signing keys (issue 23)

Revision ID: 0013
Revises: 0012

Why: a process started on an existing database with an empty data folder made itself a new
server secret and a new transparency key with only a warning; every case owner then got 404,
every partner 401, and the log was signed by a new key unnoticed. With these tables a process
whose secret or keys do not match what the database recorded refuses to start
(store/secret_check.py), and the signing keys are shared by every host (sealed under the secret).

Nothing is recorded here: the first process that starts after the upgrade records its secret
and keys (the ones it has used so far, from the environment or its data folder).
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'secret_versions',
        sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('check_value', sa.LargeBinary(length=32), nullable=False),
        sa.Column('sealed_previous', sa.LargeBinary(), nullable=True),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('version'),
    )
    op.create_table(
        'signing_keys',
        sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
        sa.Column('purpose', sa.String(length=32), nullable=False),
        sa.Column('key_id', sa.String(length=64), nullable=False),
        sa.Column('public_key', sa.LargeBinary(length=32), nullable=False),
        sa.Column('sealed_seed', sa.LargeBinary(), nullable=True),
        sa.Column('secret_version', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('retired_at', sa.BigInteger(), nullable=True),
        sa.Column('endorsement', sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_signing_keys_purpose', 'signing_keys', ['purpose'])


def downgrade() -> None:
    op.drop_index('ix_signing_keys_purpose', table_name='signing_keys')
    op.drop_table('signing_keys')
    op.drop_table('secret_versions')
