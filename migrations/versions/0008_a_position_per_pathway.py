"""Change-log entries get a position within their pathway; the trigger's function joins the source

Revision ID: 0008
Revises: 0007

Why (a red team's finding): a partner entitled to one pathway read global positions, so each gap
between its entries counted the other pathway's entries, and their timing; its webhooks said the
same. Now each entry also has `pathway_seq`, drawn from its pathway's own sequence under the same
append lock (the write rules installed by 0010), and such partners read those
(store/changelog.py).
Existing entries are numbered in seq order per pathway; webhook delivery marks of single-pathway
partners move to the same numbering; `legacy_cursor_limit` records the last global position, up
to which a numeric cursor handed out before still works.
"""
import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

PATHWAYS = ("adult", "under18_at_capture")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("change_log") as batch:
        batch.add_column(sa.Column("pathway_seq", sa.BigInteger(), nullable=True))
        batch.drop_index("ix_change_log_pathway_seq")
    # One pass with a window function (a correlated count would be quadratic in the log).
    op.execute("""
        UPDATE change_log SET pathway_seq = numbered.n
        FROM (SELECT id, row_number() OVER (PARTITION BY pathway ORDER BY seq) AS n
                FROM change_log WHERE seq IS NOT NULL) AS numbered
        WHERE change_log.id = numbered.id""")
    with op.batch_alter_table("change_log") as batch:
        batch.create_index("ix_change_log_pathway_position", ["pathway", "pathway_seq"],
                           unique=True)
    op.create_table("legacy_cursor_limit", sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("last_global_seq", sa.BigInteger(), nullable=False))
    op.execute("INSERT INTO legacy_cursor_limit (id, last_global_seq) "
               "SELECT 1, coalesce(max(seq), 0) FROM change_log")
    # A single-pathway partner's webhook mark: the same point, in its pathway's numbering.
    for pathway in PATHWAYS:
        op.execute(f"""
            UPDATE partner_webhooks SET delivered_seq = coalesce((
                SELECT max(c.pathway_seq) FROM change_log c
                WHERE c.pathway = '{pathway}' AND c.seq <= partner_webhooks.delivered_seq), 0)
            WHERE partner_id IN (SELECT id FROM partners WHERE pathways = '{pathway}')""")
    if postgres:
        for pathway in PATHWAYS:
            op.execute(f"CREATE SEQUENCE change_log_position_{pathway}")
            op.execute(f"SELECT setval('change_log_position_{pathway}', "
                       f"(SELECT coalesce(max(pathway_seq), 0) + 1 FROM change_log "
                       f"WHERE pathway = '{pathway}'), false)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for pathway in PATHWAYS:
            op.execute(f"DROP SEQUENCE change_log_position_{pathway}")
    for pathway in PATHWAYS:
        op.execute(f"""
            UPDATE partner_webhooks SET delivered_seq = coalesce((
                SELECT max(c.seq) FROM change_log c
                WHERE c.pathway = '{pathway}'
                  AND c.pathway_seq <= partner_webhooks.delivered_seq), 0)
            WHERE partner_id IN (SELECT id FROM partners WHERE pathways = '{pathway}')""")
    op.drop_table("legacy_cursor_limit")
    with op.batch_alter_table("change_log") as batch:
        batch.drop_index("ix_change_log_pathway_position")
        batch.create_index("ix_change_log_pathway_seq", ["pathway", "seq"], unique=False)
        batch.drop_column("pathway_seq")
