"""One transparency tree per pathway: the log's tables get a tree column, the single tree goes

Revision ID: 0011
Revises: 0010

Why (issue 21, a red team's finding): with one tree over every change-log entry, an adult-only
partner's entries endpoint showed its own `remove` followed by an under-18 commitment at the next
position: it learnt that the value was in the under-18 list too, and when. Now each pathway has a
tree of its own (leaf i = the pathway's entry i + 1, in pathway_seq order), heads sign the
pathway's name (txlog/head.py, format v2), and a tree is served only to partners entitled to its
pathway (partners/transparency.py).

The single tree is dropped, not converted: its leaves committed to global positions, which a
per-pathway tree must not reveal, so none of its hashes can be reused. After the upgrade the
builder builds each pathway's tree from the change log on its first steps (fresh nonces), and
partners' verifiers re-anchor once: delete the state file, verify again (README, docs/privacy.md).
A downgrade likewise leaves empty single-tree tables for the old builder to rebuild.
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _drop_all() -> None:
    op.drop_table('transparency_heads')
    op.drop_table('transparency_nodes')
    op.drop_table('transparency_leaves')


def upgrade() -> None:
    _drop_all()
    op.create_table(
        'transparency_leaves',
        sa.Column('tree', sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column('leaf_index', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('position', sa.BigInteger(), nullable=False),
        sa.Column('nonce', sa.LargeBinary(length=16), nullable=False),
        sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('tree', 'leaf_index'))
    op.create_index('ix_transparency_leaves_tree_seq', 'transparency_leaves', ['tree', 'seq'],
                    unique=True)
    op.create_table(
        'transparency_nodes',
        sa.Column('tree', sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column('node_index', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('tree', 'level', 'node_index'))
    op.create_table(
        'transparency_heads',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('tree', sa.SmallInteger(), nullable=False),
        sa.Column('tree_size', sa.BigInteger(), nullable=False),
        sa.Column('timestamp_ms', sa.BigInteger(), nullable=False),
        sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
        sa.Column('key_id', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_transparency_heads_tree_id', 'transparency_heads', ['tree', 'id'])


def downgrade() -> None:
    _drop_all()
    op.create_table(
        'transparency_leaves',
        sa.Column('leaf_index', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('nonce', sa.LargeBinary(length=16), nullable=False),
        sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('leaf_index'),
        sa.UniqueConstraint('seq'))
    op.create_table(
        'transparency_nodes',
        sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column('node_index', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('level', 'node_index'))
    op.create_table(
        'transparency_heads',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('tree_size', sa.BigInteger(), nullable=False),
        sa.Column('timestamp_ms', sa.BigInteger(), nullable=False),
        sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
        sa.Column('key_id', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_transparency_heads_tree_size', 'transparency_heads', ['tree_size'])
