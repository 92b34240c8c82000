"""The change feed: index_changes (seq, name), one sequence number per committed change.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_changes",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(160), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("index_changes")
