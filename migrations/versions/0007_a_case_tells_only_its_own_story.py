"""An event clock, so that a case's status counts only what happened after it was opened

Revision ID: 0007
Revises: 0006

Why (a red team's finding): an abuser who submits the image's hash in a fresh case read
`pulled: 3, removed: 1` from its status — the victim's earlier case and the platforms' reports —
against zeros for a never-seen value. Now case openings, partner reports and pull
acknowledgements are ordered by one event clock (a sequence on PostgreSQL, a one-row counter on
SQLite; it is an order, not a time), and a case's status counts only later events. Each link
also keeps the quality its case reported, not the best anyone reported.

Existing rows: reports and acknowledgements get event 1, cases event 0, so a case opened before
this migration still counts what it counted; cases opened after it start from 2.
"""
import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("event_clock", sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("value", sa.BigInteger(), nullable=False))
    op.execute("INSERT INTO event_clock (id, value) VALUES (1, 1)")
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("opened_event", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    with op.batch_alter_table("case_hashes") as batch:
        batch.add_column(sa.Column("quality", sa.SmallInteger(), nullable=True))
    with op.batch_alter_table("partners") as batch:
        batch.add_column(sa.Column("acknowledged_event", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("reported_event", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    op.execute("UPDATE partners SET acknowledged_event = 1")
    op.execute("UPDATE feedback SET reported_event = 1")
    op.execute("UPDATE case_hashes SET quality = "
               "(SELECT h.quality FROM hashes h WHERE h.id = case_hashes.hash_id)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE hashguard_events START 2")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE hashguard_events")
    for table, column in (("feedback", "reported_event"), ("partners", "acknowledged_event"),
                          ("case_hashes", "quality"), ("cases", "opened_event")):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
    op.drop_table("event_clock")
