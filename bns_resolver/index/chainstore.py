"""The BNS engine's StateStore (and the virtualchain's BlockStore) on the index database.

The virtualchain opens and commits each block; the store keeps one SQL
transaction open across the blocks committed since the last `flush()`, which
writes the sync state and COMMITs: names, namespaces, engine records, block
hashes, consensus hashes and the sync state become durable together, so a crash
leaves the index at the last flushed block. Every row a block changes has its
before-image written to `undo_log` in the same transaction, so the open block can
be dropped (`rollback()`) and a reorg can undo flushed blocks exactly, newest first.

The DNS-facing columns of `names` (owner, value hash, expiry, revoked) are
projections of the engine's record, recomputed whenever a name or its
namespace changes. This module knows SQL, not BNS rules: the expiry rule is
handed in as a function.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from bns_resolver.bns.state import Record
from bns_resolver.errors import ChainError
from bns_resolver.index import schema
from bns_resolver.index.changes import record_changes
from bns_resolver.index.sync_state import bump_generation, read_sync_state, write_sync_state

# (name record, namespace record or None) -> first block at which the name stops resolving.
ExpiryRule = Callable[[Record, Record | None], int | None]

_NAMES, _NAMESPACES, _BLOCKS = "names", "namespaces", "blocks"
# The engine reads these once or more per op: statements built once skip SQLAlchemy's
# per-call construction and cache-key work.
_NAME_JSON = select(schema.names.c.record_json).where(schema.names.c.fqn == bindparam("key"))
_NAMESPACE_JSON = select(schema.namespaces.c.record_json).where(schema.namespaces.c.namespace_id == bindparam("key"))
_RECORD_JSON = select(schema.chain_records.c.record_json).where(
    schema.chain_records.c.kind == bindparam("kind"), schema.chain_records.c.key == bindparam("key"))
_CONSENSUS_HASH = select(schema.blocks.c.consensus_hash).where(schema.blocks.c.height == bindparam("height"))
_JOURNAL = insert(schema.undo_log)
_NAME_DELETE = delete(schema.names).where(schema.names.c.fqn == bindparam("key"))
_NAMESPACE_DELETE = delete(schema.namespaces).where(schema.namespaces.c.namespace_id == bindparam("key"))
_RECORD_DELETE = delete(schema.chain_records).where(
    schema.chain_records.c.kind == bindparam("kind"), schema.chain_records.c.key == bindparam("key"))
# Consensus hashes remembered (each op checks a window of 24 and the snapshot a geometric
# series); cleared whole past this size, and on any undo.
_CONSENSUS_MEMO_MAX = 4096
log = logging.getLogger(__name__)


class SqlStateStore:
    def __init__(self, db_engine: Engine, *, expiry: ExpiryRule, network: str = "mainnet") -> None:
        self._engine = db_engine
        self._expiry = expiry
        self._network = network
        self._conn: Connection | None = None  # the transaction of every block since the last flush
        self._open: int | None = None
        self._open_hash = ""
        self._committed: dict[str, str] | None = None  # sync state of the newest unflushed block
        self._touched_namespaces: set[str] = set()
        self._changed_names: set[str] = set()  # for the change feed, logged at the flush or undo
        self._consensus_memo: dict[int, str | None] = {}

    # -- block framing (driven by the virtualchain) ----------------------------------------
    def begin_block(self, height: int, block_hash: str) -> None:
        if self._open is not None:
            raise ChainError(f"block {self._open} is still open")
        if self._conn is None:
            self._conn = self._engine.connect()
            self._conn.begin()
        self._open, self._open_hash = height, block_hash

    def commit_block(self) -> None:
        conn, height = self._require_open()
        self._refresh_namespaces(conn)
        self._touched_namespaces.clear()
        self._committed = {"height": str(height), "consensus_hash": self.get_consensus_hash(height) or "",
                           "block_hash": self._open_hash}
        self._open = None

    def rollback(self) -> None:
        """Drop the open block's writes (replaying its undo rows); blocks committed before stay."""
        if self._open is None or self._conn is None:
            return
        height, self._open = self._open, None
        if not self._transaction_alive():
            # The database itself gave up on the transaction (SQLite rolls back on a full disk or
            # an I/O error): the blocks of this batch are gone too, so nothing may claim them.
            log.error("the database rolled back the transaction of block %d; dropping every unflushed block",
                      height)
            self._discard()
            return
        try:
            self._undo_rows(self._conn, height)
        except SQLAlchemyError:
            # E.g. PostgreSQL refuses every statement after an error until ROLLBACK. The error
            # that made the caller roll back is the one to report; this one is logged.
            log.exception("could not undo the open block %d; dropping every unflushed block", height)
            self._discard()

    def flush(self) -> None:
        """COMMIT every committed block together with the sync state (a no-op with none pending)."""
        if self._open is not None:
            raise ChainError(f"cannot flush while block {self._open} is open")
        if self._conn is None:
            return
        try:
            if self._committed is not None:
                write_sync_state(self._conn, {"source": "chain", "network": self._network, **self._committed})
                bump_generation(self._conn)
                record_changes(self._conn, self._changed_names)  # also a block without name changes: its height
            self._conn.commit()
        except BaseException:
            self._discard()
            raise
        self._close()

    def undo_block(self, height: int) -> None:
        """Undo the newest flushed block from its undo rows, in a transaction of its own."""
        if self._conn is not None:
            raise ChainError(f"flush before undoing block {height}")
        last = self.last_block()
        if last != height:
            raise ChainError(f"can only undo the newest block {last}, not {height}")
        with self._engine.begin() as conn:
            self._undo(conn, height)

    def discard_undo(self, before_height: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(schema.undo_log).where(schema.undo_log.c.height < before_height))

    def last_block(self) -> int | None:
        """The newest committed block (flushed or not); None for an index not built from a chain."""
        if self._committed is not None:
            return int(self._committed["height"])
        with self._reader() as conn:
            state = read_sync_state(conn)
        if state.get("source") != "chain" or not state.get("height"):
            return None
        return int(state["height"])

    def _require_open(self) -> tuple[Connection, int]:
        if self._open is None or self._conn is None:
            raise ChainError("no block is open")
        return self._conn, self._open

    def _transaction_alive(self) -> bool:
        """False once SQLite has ended our transaction on its own (PostgreSQL's aborted
        transaction shows itself by failing the undo instead)."""
        assert self._conn is not None
        return bool(getattr(self._conn.connection.driver_connection, "in_transaction", True))

    def _discard(self) -> None:
        """Roll back the whole transaction: the index stays at the last flush."""
        self._consensus_memo.clear()
        if self._conn is not None:
            try:
                self._conn.rollback()
            finally:
                self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn, self._open, self._committed = None, None, None
        self._touched_namespaces.clear()
        self._changed_names.clear()

    def _reader(self) -> Any:
        """The open transaction's connection (to see its own writes), else a fresh one."""
        if self._conn is not None:
            return _Borrowed(self._conn)
        return self._engine.connect()

    # -- block hashes (the virtualchain's reorg anchors) -----------------------------------
    def get_block_hash(self, height: int) -> str | None:
        with self._reader() as conn:
            value = conn.execute(select(schema.blocks.c.block_hash).where(schema.blocks.c.height == height)).scalar()
        return value or None

    # -- names -----------------------------------------------------------------------------
    def get_name(self, fqn: str) -> Record | None:
        return self._get_json(_NAME_JSON, key=fqn)

    def put_name(self, record: Record) -> None:
        conn = self._writer()
        self._journal(conn, _NAMES, record["name"], self.get_name(record["name"]))
        self._write_name(conn, record)

    def names_by_owner(self, sender_script: str) -> list[str]:
        query = select(schema.names.c.fqn).where(schema.names.c.owner_script == sender_script)
        with self._reader() as conn:
            return sorted(row[0] for row in conn.execute(query))

    def name_by_hash128(self, name_hash128: str) -> str | None:
        query = select(schema.names.c.fqn).where(schema.names.c.name_hash128 == name_hash128)
        with self._reader() as conn:
            return conn.execute(query).scalar()

    # -- namespaces ------------------------------------------------------------------------
    def get_namespace(self, namespace_id: str) -> Record | None:
        return self._get_json(_NAMESPACE_JSON, key=namespace_id)

    def put_namespace(self, record: Record) -> None:
        conn = self._writer()
        self._journal(conn, _NAMESPACES, record["namespace_id"], self.get_namespace(record["namespace_id"]))
        self._write_namespace(conn, record)
        self._touched_namespaces.add(record["namespace_id"])

    # -- preorders, keychains, history (generic engine records) ----------------------------
    def get_name_preorder(self, preorder_hash: str) -> Record | None:
        return self._get_record("name_preorder", preorder_hash)

    def put_name_preorder(self, record: Record) -> None:
        self._put_record("name_preorder", record["preorder_hash"], record)

    def delete_name_preorder(self, preorder_hash: str) -> None:
        self._put_record("name_preorder", preorder_hash, None)

    def get_namespace_preorder(self, preorder_hash: str) -> Record | None:
        return self._get_record("namespace_preorder", preorder_hash)

    def put_namespace_preorder(self, record: Record) -> None:
        self._put_record("namespace_preorder", record["preorder_hash"], record)

    def delete_namespace_preorder(self, preorder_hash: str) -> None:
        self._put_record("namespace_preorder", preorder_hash, None)

    def get_import_keychain(self, namespace_id: str) -> list[str] | None:
        return self._get_record("keychain", namespace_id)

    def put_import_keychain(self, namespace_id: str, addresses: list[str]) -> None:
        self._put_record("keychain", namespace_id, list(addresses))

    def get_history(self, key: str) -> list[Record]:
        return self._get_record("history", key) or []

    def append_history(self, key: str, record: Record) -> None:
        self._put_record("history", key, self.get_history(key) + [record])

    # STX accounts and the vesting schedule (epoch 4+), journaled like every engine record.
    def get_account(self, address: str) -> Record | None:
        return self._get_record("account", address)

    def put_account(self, address: str, record: Record | None) -> None:
        self._put_record("account", address, record)

    def get_vesting(self, height: int) -> Record | None:
        return self._get_record("vesting", str(height))

    def put_vesting(self, height: int, unlocks: Record | None) -> None:
        self._put_record("vesting", str(height), unlocks)

    # -- consensus hashes ------------------------------------------------------------------
    def get_consensus_hash(self, height: int) -> str | None:
        if height not in self._consensus_memo:
            with self._reader() as conn:
                value = conn.execute(_CONSENSUS_HASH, {"height": height}).scalar()
            self._remember_consensus(height, value)
        return self._consensus_memo[height]

    def _remember_consensus(self, height: int, value: str | None) -> None:
        if len(self._consensus_memo) >= _CONSENSUS_MEMO_MAX:
            self._consensus_memo.clear()
        self._consensus_memo[height] = value

    def put_consensus_hash(self, height: int, consensus_hash: str, ops_hash: str) -> None:
        conn = self._writer()
        self._journal(conn, _BLOCKS, str(height), None)
        conn.execute(delete(schema.blocks).where(schema.blocks.c.height == height))
        block_hash = self._open_hash if height == self._open else ""  # genesis seed rows have none
        conn.execute(insert(schema.blocks).values(height=height, block_hash=block_hash,
                                                  consensus_hash=consensus_hash, ops_hash=ops_hash))
        self._remember_consensus(height, consensus_hash)

    def block_for_consensus_hash(self, consensus_hash: str) -> int | None:
        query = select(func.min(schema.blocks.c.height)).where(schema.blocks.c.consensus_hash == consensus_hash)
        with self._reader() as conn:
            return conn.execute(query).scalar()

    # -- internals -------------------------------------------------------------------------
    def _writer(self) -> Connection:
        if self._conn is None or self._open is None:
            raise ChainError("state changed outside begin_block/commit_block")
        return self._conn

    def _get_json(self, statement: Any, **params: Any) -> Any:
        with self._reader() as conn:
            raw = conn.execute(statement, params).scalar()
        return json.loads(raw) if raw else None

    def _get_record(self, kind: str, key: str) -> Any:
        return self._get_json(_RECORD_JSON, kind=kind, key=key)

    def _put_record(self, kind: str, key: str, value: Any) -> None:
        conn = self._writer()
        self._journal(conn, kind, key, self._get_record(kind, key))
        _write_record(conn, kind, key, value)

    def _journal(self, conn: Connection, kind: str, key: str, before: Any) -> None:
        conn.execute(_JOURNAL, {"height": self._open, "kind": kind, "key": key,
                                "before_json": None if before is None else json.dumps(before)})

    def _write_name(self, conn: Connection, record: Record | None, fqn: str | None = None) -> None:
        fqn = record["name"] if record is not None else fqn
        self._changed_names.add(str(fqn))
        conn.execute(_NAME_DELETE, {"key": fqn})
        if record is not None:
            conn.execute(insert(schema.names), self._name_row(conn, record))

    def _name_row(self, conn: Connection, record: Record) -> dict[str, Any]:
        namespace_id = record["name"].rsplit(".", 1)[-1]
        raw = conn.execute(_NAMESPACE_JSON, {"key": namespace_id}).scalar()
        return {
            "fqn": record["name"], "namespace_id": namespace_id, "owner_script": record.get("sender"),
            "owner_address": record.get("address"), "value_hash": record.get("value_hash") or None,
            "first_registered": record.get("first_registered"), "last_renewed": record.get("last_renewed"),
            "expire_block": self._expiry(record, json.loads(raw) if raw else None),
            "revoked": bool(record.get("revoked")), "last_txid": record.get("txid"),
            "name_hash128": record.get("name_hash128"), "record_json": json.dumps(record),
        }

    def _write_namespace(self, conn: Connection, record: Record | None, namespace_id: str | None = None) -> None:
        namespace_id = record["namespace_id"] if record is not None else namespace_id
        conn.execute(_NAMESPACE_DELETE, {"key": namespace_id})
        if record is not None:
            conn.execute(insert(schema.namespaces), _namespace_row(record))

    def _refresh_namespaces(self, conn: Connection) -> None:
        """A namespace change (e.g. READY) moves the expiry of every name in it."""
        for namespace_id in sorted(self._touched_namespaces):
            rows = conn.execute(select(schema.names.c.record_json)
                                .where(schema.names.c.namespace_id == namespace_id)).all()
            for (raw,) in rows:
                if raw:
                    self._write_name(conn, json.loads(raw))

    def _undo(self, conn: Connection, height: int) -> None:
        self._undo_rows(conn, height)
        previous = conn.execute(select(schema.blocks.c.height, schema.blocks.c.consensus_hash,
                                       schema.blocks.c.block_hash)
                                .where(schema.blocks.c.height == height - 1)).first()
        # Undoing the first block also removed the genesis seed rows: then nothing remains.
        write_sync_state(conn, {
            "height": str(previous[0]) if previous else "", "consensus_hash": previous[1] if previous else "",
            "block_hash": previous[2] if previous else "",
        })
        bump_generation(conn)
        record_changes(conn, self._changed_names)
        self._changed_names.clear()

    def _undo_rows(self, conn: Connection, height: int) -> None:
        """Restore every before-image block `height` journaled, newest first, and drop its journal."""
        entries = conn.execute(select(schema.undo_log.c.kind, schema.undo_log.c.key, schema.undo_log.c.before_json)
                               .where(schema.undo_log.c.height == height)
                               .order_by(schema.undo_log.c.id.desc())).all()
        for kind, key, before_json in entries:
            self._restore(conn, kind, key, json.loads(before_json) if before_json else None)
        self._refresh_namespaces(conn)
        self._touched_namespaces.clear()
        conn.execute(delete(schema.undo_log).where(schema.undo_log.c.height == height))
        self._consensus_memo.clear()

    def _restore(self, conn: Connection, kind: str, key: str, before: Any) -> None:
        if kind == _NAMES:
            self._write_name(conn, before, key)
        elif kind == _NAMESPACES:
            self._write_namespace(conn, before, key)
            self._touched_namespaces.add(key)
        elif kind == _BLOCKS:
            conn.execute(delete(schema.blocks).where(schema.blocks.c.height == int(key)))
        else:
            _write_record(conn, kind, key, before)


class _Borrowed:
    """Context manager that lends the open block's connection without closing it."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def __enter__(self) -> Connection:
        return self._conn

    def __exit__(self, *_exc: object) -> None:
        return None


def _write_record(conn: Connection, kind: str, key: str, value: Any) -> None:
    conn.execute(_RECORD_DELETE, {"kind": kind, "key": key})
    if value is not None:
        conn.execute(insert(schema.chain_records), {"kind": kind, "key": key, "record_json": json.dumps(value)})


def _namespace_row(record: Record) -> dict[str, Any]:
    buckets = record.get("buckets") or []
    return {
        "namespace_id": record["namespace_id"], "version": record.get("version") or 1,
        "lifetime": record.get("lifetime") or 0, "coeff": record.get("coeff") or 0,
        "base": record.get("base") or 0, "buckets": ",".join(str(b) for b in buckets),
        "nonalpha_discount": record.get("nonalpha_discount") or 0,
        "no_vowel_discount": record.get("no_vowel_discount") or 0,
        "address": record.get("address"), "reveal_block": record.get("reveal_block"),
        "ready_block": record.get("ready_block"), "ready": bool(record.get("ready")),
        "record_json": json.dumps(record),
    }
