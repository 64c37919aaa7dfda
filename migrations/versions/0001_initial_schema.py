"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 03:43:11.843793
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


# PostgreSQL: change-log positions are drawn at COMMIT (store/changelog.py explains why). The
# deferred constraint trigger runs inside the committing backend, so the append lock is held
# for a few row updates and the commit record, never across a round trip to the application.
_PG_POSITION_AT_COMMIT = """
CREATE SEQUENCE change_log_position;
CREATE FUNCTION change_log_assign_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1212629836);  -- 0x4847434C, "HGCL"
    UPDATE change_log
       SET seq = nextval('change_log_position'),
           logged_at = floor(extract(epoch FROM clock_timestamp()))::bigint
     WHERE id = NEW.id;
    -- Wakes long-polling partners in every API process (partners/wakeup.py). Delivered at
    -- COMMIT; identical payloads in one transaction collapse into one notification.
    PERFORM pg_notify('hashguard_change_log', '');
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER change_log_position_at_commit AFTER INSERT ON change_log
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION change_log_assign_position();
"""
_PG_DROP_POSITION_AT_COMMIT = """
DROP TRIGGER IF EXISTS change_log_position_at_commit ON change_log;
DROP FUNCTION IF EXISTS change_log_assign_position();
DROP SEQUENCE IF EXISTS change_log_position;
"""


def upgrade() -> None:
    op.create_table('cases',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ref', sa.String(length=16), nullable=False),
    sa.Column('pathway', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('token_verifier', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('idempotency_digest', sa.LargeBinary(length=32), nullable=True),
    sa.Column('idempotency_request', sa.LargeBinary(length=32), nullable=True),
    sa.Column('idempotency_sealed_token', sa.LargeBinary(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_digest'),
    sa.UniqueConstraint('ref')
    )
    op.create_table('hashes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('signal_type', sa.String(length=32), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('quality', sa.SmallInteger(), nullable=True),
    sa.Column('digest', sa.LargeBinary(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), server_default='ok', nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest')
    )
    op.create_table('partners',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('pathways', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('case_hashes',
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hash_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['hash_id'], ['hashes.id'], ),
    sa.PrimaryKeyConstraint('case_id', 'hash_id')
    )
    with op.batch_alter_table('case_hashes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_hashes_hash_id'), ['hash_id'], unique=False)

    op.create_table('change_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('op', sa.String(length=8), nullable=False),
    sa.Column('hash_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('signal_type', sa.String(length=32), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('quality', sa.SmallInteger(), nullable=True),
    sa.Column('pathway', sa.String(length=32), nullable=False),
    sa.Column('logged_at', sa.BigInteger(), nullable=False),
    sa.Column('also_shared', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['hash_id'], ['hashes.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('seq')
    )
    with op.batch_alter_table('change_log', schema=None) as batch_op:
        batch_op.create_index('ix_change_log_hash_id', ['hash_id'], unique=False)
        batch_op.create_index('ix_change_log_logged_at', ['logged_at'], unique=False)
        batch_op.create_index('ix_change_log_pathway_seq', ['pathway', 'seq'], unique=False)

    op.create_table('feedback',
    sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hash_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('tags', sa.String(length=512), nullable=False),
    sa.Column('reported_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['hash_id'], ['hashes.id'], ),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], ),
    sa.PrimaryKeyConstraint('partner_id', 'hash_id', 'action')
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_hash_id'), ['hash_id'], unique=False)

    op.create_table('partner_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('verifier', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('partner_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partner_keys_partner_id'), ['partner_id'], unique=False)

    op.create_table('shared_hashes',
    sa.Column('hash_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('pathway', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['hash_id'], ['hashes.id'], ),
    sa.PrimaryKeyConstraint('hash_id', 'pathway')
    )
    op.create_table('partner_webhooks',
    sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('delivered_seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], ),
    sa.PrimaryKeyConstraint('partner_id')
    )
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('latest_seq', sa.BigInteger(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=True),
    sa.Column('attempted_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_partner_id'), ['partner_id'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_POSITION_AT_COMMIT)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_DROP_POSITION_AT_COMMIT)
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_partner_id'))
    op.drop_table('webhook_deliveries')
    op.drop_table('partner_webhooks')
    op.drop_table('shared_hashes')
    with op.batch_alter_table('partner_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partner_keys_partner_id'))

    op.drop_table('partner_keys')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_hash_id'))

    op.drop_table('feedback')
    with op.batch_alter_table('change_log', schema=None) as batch_op:
        batch_op.drop_index('ix_change_log_pathway_seq')
        batch_op.drop_index('ix_change_log_logged_at')
        batch_op.drop_index('ix_change_log_hash_id')

    op.drop_table('change_log')
    with op.batch_alter_table('case_hashes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_hashes_hash_id'))

    op.drop_table('case_hashes')
    op.drop_table('partners')
    op.drop_table('hashes')
    op.drop_table('cases')
