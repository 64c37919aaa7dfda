"""Disputes per pathway, with a life of their own (acting, queued, overruled, upheld)

Revision ID: 0006
Revises: 0005

Why (a red team's findings): two adult-only partners emptied the whole list with one request
each, their disputes also took hashes out of the under-18 list, and a restored hash went straight
back into quarantine when the same partners posted again. Quarantine was one global state per
hash, counted from every `not_violating` ever reported. Now:
- `hashes.held_pathways`: the pathways disputes keep a hash out of (NULL: none); the write
  rules (store/backends, rule 2) leave a hash out of a pathway it is held from;
- `disputes`: one row per (partner, hash, pathway), whose state says whether it counts.
Existing quarantined hashes become `ok` and held from every pathway, their disputes `acting`,
so the operator's queue is what it was.
"""
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

PATHWAYS = ("adult", "under18_at_capture")


def upgrade() -> None:
    with op.batch_alter_table("hashes") as batch:
        batch.add_column(sa.Column("held_pathways", sa.String(64), nullable=True))
    op.create_table(
        "disputes",
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  sa.ForeignKey("partners.id"), primary_key=True),
        sa.Column("hash_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  sa.ForeignKey("hashes.id"), primary_key=True),
        sa.Column("pathway", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("disputed_at", sa.BigInteger(), nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=True))
    op.create_index("ix_disputes_hash_id", "disputes", ["hash_id"])
    op.create_index("ix_disputes_partner_state_time", "disputes",
                    ["partner_id", "state", "disputed_at"])
    everywhere = ",".join(PATHWAYS)
    op.execute(f"UPDATE hashes SET state = 'ok', held_pathways = '{everywhere}' "
               "WHERE state = 'quarantined'")
    for pathway in PATHWAYS:
        op.execute(
            "INSERT INTO disputes (partner_id, hash_id, pathway, state, disputed_at) "
            f"SELECT f.partner_id, f.hash_id, '{pathway}', 'acting', f.reported_at "
            "FROM feedback f JOIN hashes h ON h.id = f.hash_id "
            f"JOIN partners p ON p.id = f.partner_id "
            f"WHERE f.action = 'not_violating' AND h.held_pathways IS NOT NULL "
            f"AND (',' || p.pathways || ',') LIKE '%,{pathway},%'")


def downgrade() -> None:
    op.execute("UPDATE hashes SET state = 'quarantined' WHERE held_pathways IS NOT NULL "
               "AND state = 'ok'")
    op.drop_index("ix_disputes_partner_state_time", "disputes")
    op.drop_index("ix_disputes_hash_id", "disputes")
    op.drop_table("disputes")
    with op.batch_alter_table("hashes") as batch:
        batch.drop_column("held_pathways")
