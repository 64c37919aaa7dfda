"""Log epochs: the position ranges a restore lost, so partners who saw them are told (issue 23)

Revision ID: 0014
Revises: 0013

Why: after a restore from an older backup, a partner whose cursor lies past the restored log's
head has received entries the database no longer holds. Continuing from its cursor it would keep
them for ever; store/log_epochs.py refuses such a cursor (409 `log_restored`) using these rows,
written by store/log_rollback.py (a restore detected at start) and deploy/after-restore.sql.
Starts empty: no restore is known before this migration; unless deploy/after-restore.sql, run on
a backup taken before it, already made the table (the same columns): then it is kept as it is.
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table('log_epochs'):
        return  # made by deploy/after-restore.sql on a restored pre-0014 backup
    op.create_table(
        'log_epochs',
        sa.Column('epoch', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('numbering', sa.String(length=32), nullable=False),
        sa.Column('restored_head', sa.BigInteger(), nullable=False),
        sa.Column('resumes_at', sa.BigInteger(), nullable=False),
        sa.Column('restored_at', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('epoch', 'numbering'),
    )


def downgrade() -> None:
    op.drop_table('log_epochs')
