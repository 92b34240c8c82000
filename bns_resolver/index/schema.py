"""The local index schema (SQLAlchemy Core).

Columns the DNS gateway reads are plain typed columns. The engine's full
protocol record for a name or namespace (every field the consensus hash
serializes) is kept as JSON beside them, so the chain side can grow without
schema churn on the read path.

Schema changes go through Alembic revisions in `index/migrations/versions`.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

namespaces = Table(
    "namespaces",
    metadata,
    Column("namespace_id", String(32), primary_key=True),
    Column("version", Integer, nullable=False, default=1),
    Column("lifetime", Integer, nullable=False),
    Column("coeff", Integer, nullable=False),
    Column("base", Integer, nullable=False),
    Column("buckets", String(64), nullable=False),
    Column("nonalpha_discount", Integer, nullable=False),
    Column("no_vowel_discount", Integer, nullable=False),
    Column("address", String(64)),
    Column("reveal_block", Integer),
    Column("ready_block", Integer),
    Column("ready", Boolean, nullable=False, default=False),
    Column("record_json", Text),
)

names = Table(
    "names",
    metadata,
    Column("fqn", String(64), primary_key=True),
    Column("namespace_id", String(32), nullable=False),
    Column("owner_address", String(64)),
    Column("owner_script", String(256)),
    Column("value_hash", String(40)),
    Column("first_registered", Integer),
    Column("last_renewed", Integer),
    # First block at which the name no longer resolves (NULL: never expires).
    Column("expire_block", Integer),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("last_txid", String(64)),
    Column("record_json", Text),
    Column("name_hash128", String(32)),
    Index("ix_names_owner_script", "owner_script"),
    Index("ix_names_namespace", "namespace_id"),
    Index("ix_names_hash128", "name_hash128"),
)

name_history = Table(
    "name_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fqn", String(64), nullable=False),
    Column("block_height", Integer, nullable=False),
    Column("vtxindex", Integer, nullable=False),
    Column("txid", String(64)),
    Column("opcode", String(4), nullable=False),
    Column("value_hash", String(40)),
    Column("owner_address", String(64)),
    Column("record_json", Text),
    Index("ix_name_history_fqn", "fqn", "block_height", "vtxindex"),
    Index("ix_name_history_block", "block_height"),
)

zonefiles = Table(
    "zonefiles",
    metadata,
    Column("zonefile_hash", String(40), primary_key=True),
    Column("content", LargeBinary, nullable=False),
    Column("source", String(256), nullable=False),
    Column("fetched_at", Float, nullable=False),
)

subdomains = Table(
    "subdomains",
    metadata,
    Column("fqn", String(128), primary_key=True),
    Column("domain", String(64), nullable=False),
    Column("owner_address", String(64), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("zonefile_hash", String(40), nullable=False),
    Column("parent_zonefile_hash", String(40)),
    Column("parent_zonefile_index", Integer),
    Column("block_height", Integer),
    Column("resolver", String(256)),
    Column("signature", Text),
    Index("ix_subdomains_domain", "domain"),
)

subdomain_history = Table(
    "subdomain_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fqn", String(128), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("owner_address", String(64), nullable=False),
    Column("zonefile_hash", String(40), nullable=False),
    Column("parent_zonefile_hash", String(40)),
    Column("parent_zonefile_index", Integer),
    Column("block_height", Integer),
    Column("accepted", Boolean, nullable=False),
    Column("reason", Text),
    Index("ix_subdomain_history_fqn", "fqn", "sequence"),
)

# Which zone-file hashes the index references and whether we hold them;
# the data plane's fetcher works through the missing ones.
zonefile_wants = Table(
    "zonefile_wants",
    metadata,
    Column("zonefile_hash", String(40), primary_key=True),
    Column("first_block", Integer),
    Column("inv_index", Integer),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False, default=0.0),
    Column("last_error", Text),
)

# One row per processed block: the chain backend's anchor for reorg detection.
blocks = Table(
    "blocks",
    metadata,
    Column("height", Integer, primary_key=True),
    Column("block_hash", String(64), nullable=False),
    Column("consensus_hash", String(32), nullable=False),
    Column("ops_hash", String(64)),
)

# Engine state that is not a name or namespace: preorders, import keychains, op history.
chain_records = Table(
    "chain_records",
    metadata,
    Column("kind", String(24), primary_key=True),
    Column("key", String(160), primary_key=True),
    Column("record_json", Text, nullable=False),
)

# Before-images of every row a block changed, so a reorg can undo it exactly.
undo_log = Table(
    "undo_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("height", Integer, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("key", String(160), nullable=False),
    Column("before_json", Text),
    Index("ix_undo_log_height", "height"),
)

# Key/value sync state, written in the same transaction as the data it describes.
sync_state = Table(
    "sync_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# The change feed: which names a commit changed, under one sequence number per commit, written
# in the writer's own transaction (see index/changes.py). Name "" marks a commit that moved only
# the sync state (height, tip); "*" marks one that changed everything (a snapshot import).
index_changes = Table(
    "index_changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("name", String(160), primary_key=True),
)
