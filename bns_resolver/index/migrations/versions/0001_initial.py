"""Initial index schema: namespaces, names, history, zone files, subdomains, blocks, sync state.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "namespaces",
        sa.Column("namespace_id", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("lifetime", sa.Integer, nullable=False),
        sa.Column("coeff", sa.Integer, nullable=False),
        sa.Column("base", sa.Integer, nullable=False),
        sa.Column("buckets", sa.String(64), nullable=False),
        sa.Column("nonalpha_discount", sa.Integer, nullable=False),
        sa.Column("no_vowel_discount", sa.Integer, nullable=False),
        sa.Column("address", sa.String(64)),
        sa.Column("reveal_block", sa.Integer),
        sa.Column("ready_block", sa.Integer),
        sa.Column("ready", sa.Boolean, nullable=False),
        sa.Column("record_json", sa.Text),
    )
    op.create_table(
        "names",
        sa.Column("fqn", sa.String(64), primary_key=True),
        sa.Column("namespace_id", sa.String(32), nullable=False),
        sa.Column("owner_address", sa.String(64)),
        sa.Column("owner_script", sa.String(256)),
        sa.Column("value_hash", sa.String(40)),
        sa.Column("first_registered", sa.Integer),
        sa.Column("last_renewed", sa.Integer),
        sa.Column("expire_block", sa.Integer),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("last_txid", sa.String(64)),
        sa.Column("record_json", sa.Text),
    )
    op.create_index("ix_names_owner_script", "names", ["owner_script"])
    op.create_index("ix_names_namespace", "names", ["namespace_id"])
    op.create_table(
        "name_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("fqn", sa.String(64), nullable=False),
        sa.Column("block_height", sa.Integer, nullable=False),
        sa.Column("vtxindex", sa.Integer, nullable=False),
        sa.Column("txid", sa.String(64)),
        sa.Column("opcode", sa.String(4), nullable=False),
        sa.Column("value_hash", sa.String(40)),
        sa.Column("owner_address", sa.String(64)),
        sa.Column("record_json", sa.Text),
    )
    op.create_index("ix_name_history_fqn", "name_history", ["fqn", "block_height", "vtxindex"])
    op.create_index("ix_name_history_block", "name_history", ["block_height"])
    op.create_table(
        "zonefiles",
        sa.Column("zonefile_hash", sa.String(40), primary_key=True),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("fetched_at", sa.Float, nullable=False),
    )
    _create_subdomain_tables()
    _create_sync_tables()


def _create_subdomain_tables() -> None:
    op.create_table(
        "subdomains",
        sa.Column("fqn", sa.String(128), primary_key=True),
        sa.Column("domain", sa.String(64), nullable=False),
        sa.Column("owner_address", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("zonefile_hash", sa.String(40), nullable=False),
        sa.Column("parent_zonefile_hash", sa.String(40)),
        sa.Column("parent_zonefile_index", sa.Integer),
        sa.Column("block_height", sa.Integer),
        sa.Column("resolver", sa.String(256)),
        sa.Column("signature", sa.Text),
    )
    op.create_index("ix_subdomains_domain", "subdomains", ["domain"])
    op.create_table(
        "subdomain_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("fqn", sa.String(128), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("owner_address", sa.String(64), nullable=False),
        sa.Column("zonefile_hash", sa.String(40), nullable=False),
        sa.Column("parent_zonefile_hash", sa.String(40)),
        sa.Column("parent_zonefile_index", sa.Integer),
        sa.Column("block_height", sa.Integer),
        sa.Column("accepted", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_subdomain_history_fqn", "subdomain_history", ["fqn", "sequence"])


def _create_sync_tables() -> None:
    op.create_table(
        "zonefile_wants",
        sa.Column("zonefile_hash", sa.String(40), primary_key=True),
        sa.Column("first_block", sa.Integer),
        sa.Column("inv_index", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text),
    )
    op.create_table(
        "blocks",
        sa.Column("height", sa.Integer, primary_key=True),
        sa.Column("block_hash", sa.String(64), nullable=False),
        sa.Column("consensus_hash", sa.String(32), nullable=False),
        sa.Column("ops_hash", sa.String(64)),
    )
    op.create_table(
        "sync_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("sync_state", "blocks", "zonefile_wants", "subdomain_history", "subdomains",
                  "zonefiles", "name_history", "names", "namespaces"):
        op.drop_table(table)
