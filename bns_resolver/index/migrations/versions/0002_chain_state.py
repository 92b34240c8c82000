"""Chain sync state: name_hash128 on names, engine records, per-block undo log.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("names") as batch:
        batch.add_column(sa.Column("name_hash128", sa.String(32)))
        batch.create_index("ix_names_hash128", ["name_hash128"])
    op.create_table(
        "chain_records",
        sa.Column("kind", sa.String(24), primary_key=True),
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("record_json", sa.Text, nullable=False),
    )
    op.create_table(
        "undo_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("before_json", sa.Text),
    )
    op.create_index("ix_undo_log_height", "undo_log", ["height"])


def downgrade() -> None:
    op.drop_table("undo_log")
    op.drop_table("chain_records")
    with op.batch_alter_table("names") as batch:
        batch.drop_index("ix_names_hash128")
        batch.drop_column("name_hash128")
