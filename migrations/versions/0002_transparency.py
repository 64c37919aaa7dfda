"""transparency log: Merkle tree leaves, stored subtrees and signed tree heads

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('transparency_leaves',
    sa.Column('leaf_index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('nonce', sa.LargeBinary(length=16), nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('leaf_index'),
    sa.UniqueConstraint('seq')
    )
    op.create_table('transparency_nodes',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('node_index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('level', 'node_index')
    )
    op.create_table('transparency_heads',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('timestamp_ms', sa.BigInteger(), nullable=False),
    sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.Column('key_id', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('transparency_heads', schema=None) as batch_op:
        batch_op.create_index('ix_transparency_heads_tree_size', ['tree_size'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('transparency_heads', schema=None) as batch_op:
        batch_op.drop_index('ix_transparency_heads_tree_size')
    op.drop_table('transparency_heads')
    op.drop_table('transparency_nodes')
    op.drop_table('transparency_leaves')
