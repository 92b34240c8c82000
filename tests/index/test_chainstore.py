"""The SQL StateStore: corpus replays match the reference, and undo is exact."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from bns_resolver.bns.engine import BnsEngine
from bns_resolver.bns.expiry import expiry_rule
from bns_resolver.bns.state import MemoryStateStore
from bns_resolver.chain.virtualchain import apply_block
from bns_resolver.errors import ChainError
from bns_resolver.index import schema
from bns_resolver.index.chainstore import SqlStateStore
from bns_resolver.index.db import open_index
from bns_resolver.index.lookup import IndexReader
from tests.support.corpus import corpus_dir, corpus_files, load_scenario

# Every fifth scenario keeps the suite quick; tests/bns/test_conformance.py replays them all in memory.
SAMPLE = corpus_files()[::5]


def _store(tmp_path: Path, name: str, profile: Any) -> tuple[Engine, SqlStateStore]:
    engine = open_index(f"sqlite:///{tmp_path / name}")
    return engine, SqlStateStore(engine, expiry=expiry_rule(profile), network="regtest")


def _flushed_block(store: SqlStateStore, engine: BnsEngine, block: Any) -> None:
    apply_block(store, engine, block)
    store.flush()


def _dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    tables = (schema.names, schema.namespaces, schema.chain_records, schema.blocks)
    with engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t))) for t in tables}


@pytest.mark.skipif(not SAMPLE, reason=f"no corpus files under {corpus_dir()}")
@pytest.mark.parametrize("path", SAMPLE, ids=lambda p: str(Path(p).relative_to(corpus_dir())))
def test_sql_store_replays_corpus_like_memory_store(tmp_path: Path, path: Path) -> None:
    """Consensus hashes per block and final name records equal the in-memory store's and the reference's."""
    scenario = load_scenario(path)
    if not scenario.blocks or scenario.profile is None:
        pytest.skip("aborted log without blocks")
    engine, sql_store = _store(tmp_path, "index.sqlite", scenario.profile)
    memory = MemoryStateStore()
    sql_engine, mem_engine = BnsEngine(scenario.profile, sql_store), BnsEngine(scenario.profile, memory)
    heights = scenario.replayable_heights()
    for block, recorded in zip(scenario.blocks, scenario.data["blocks"]):
        if block.height not in heights:
            break
        # The whole replay is one flush batch: later blocks read what earlier ones wrote.
        outcome = apply_block(sql_store, sql_engine, block)
        assert outcome.consensus_hash == apply_block(memory, mem_engine, block).consensus_hash
        assert outcome.consensus_hash == recorded["consensus_hash"]
    sql_store.flush()
    names = {fqn for fqn, in engine.connect().execute(select(schema.names.c.fqn))}
    for fqn in names:
        assert sql_store.get_name(fqn) == memory.get_name(fqn)
    assert IndexReader(engine).indexed_height() == max(heights)


def test_rolling_back_three_blocks_equals_a_shorter_sync(tmp_path: Path) -> None:
    """Undoing the last 3 blocks leaves exactly the state of a sync that stopped 3 blocks earlier."""
    path = next(p for p in corpus_files() if "name_import_transfer_update_transfer_condensed" in p.name)
    scenario = load_scenario(path)
    full_engine, full = _store(tmp_path, "full.sqlite", scenario.profile)
    short_engine, short = _store(tmp_path, "short.sqlite", scenario.profile)
    blocks = scenario.blocks
    for block in blocks:
        _flushed_block(full, BnsEngine(scenario.profile, full), block)
    for block in blocks[:-3]:
        _flushed_block(short, BnsEngine(scenario.profile, short), block)
    assert _dump(full_engine) != _dump(short_engine)
    for block in reversed(blocks[-3:]):
        full.undo_block(block.height)
    assert _dump(full_engine) == _dump(short_engine)
    assert full.last_block() == blocks[-4].height
    assert IndexReader(full_engine).sync_state()["height"] == str(blocks[-4].height)


def test_rolling_back_every_block_empties_the_chain_state(tmp_path: Path) -> None:
    """Undo down to nothing: no blocks, no names, no height."""
    path = next(p for p in corpus_files() if p.name == "name_import_revoke.json.gz")
    scenario = load_scenario(path)
    engine, store = _store(tmp_path, "index.sqlite", scenario.profile)
    for block in scenario.blocks:
        _flushed_block(store, BnsEngine(scenario.profile, store), block)
    for block in reversed(scenario.blocks):
        store.undo_block(block.height)
    assert store.last_block() is None
    assert all(rows == [] for rows in _dump(engine).values())


def _undo_scenario() -> Any:
    path = next(p for p in corpus_files() if "name_import_transfer_update_transfer_condensed" in p.name)
    return load_scenario(path)


def test_unflushed_blocks_are_invisible_to_readers_and_lost_without_flush(tmp_path: Path) -> None:
    """Blocks committed in one batch reach other connections only at flush; a crash keeps the last flush."""
    scenario = _undo_scenario()
    engine, store = _store(tmp_path, "index.sqlite", scenario.profile)
    bns = BnsEngine(scenario.profile, store)
    first, *rest = scenario.blocks[:4]
    _flushed_block(store, bns, first)
    for block in rest:
        apply_block(store, bns, block)
    assert store.last_block() == rest[-1].height
    assert IndexReader(engine).sync_state()["height"] == str(first.height)
    crashed = SqlStateStore(engine, expiry=expiry_rule(scenario.profile), network="regtest")
    store._discard()  # what a kill does to the open transaction
    assert crashed.last_block() == store.last_block() == first.height


def test_rollback_drops_only_the_open_block(tmp_path: Path) -> None:
    """A failed block inside a batch leaves the batch's earlier blocks exactly as a clean run has them."""
    scenario = _undo_scenario()
    engine, store = _store(tmp_path, "batch.sqlite", scenario.profile)
    clean_engine, clean = _store(tmp_path, "clean.sqlite", scenario.profile)
    blocks = scenario.blocks[:6]
    bns = BnsEngine(scenario.profile, store)
    for block in blocks[:-1]:
        apply_block(store, bns, block)
    store.begin_block(blocks[-1].height, blocks[-1].block_hash)
    bns.process_block(blocks[-1])
    store.rollback()
    store.flush()
    for block in blocks[:-1]:
        _flushed_block(clean, BnsEngine(scenario.profile, clean), block)
    assert _dump(engine) == _dump(clean_engine)
    assert store.last_block() == blocks[-2].height


def test_writes_outside_a_block_and_undo_with_unflushed_blocks_are_refused(tmp_path: Path) -> None:
    """The engine writes only inside the virtualchain's block; a reorg undo needs a flush first."""
    scenario = _undo_scenario()
    _engine, store = _store(tmp_path, "index.sqlite", scenario.profile)
    with pytest.raises(ChainError, match="outside begin_block"):
        store.put_name({"name": "foo.test"})
    apply_block(store, BnsEngine(scenario.profile, store), scenario.blocks[0])
    with pytest.raises(ChainError, match="flush before undoing"):
        store.undo_block(scenario.blocks[0].height)


def test_a_database_that_rolled_back_by_itself_loses_the_whole_batch(tmp_path: Path) -> None:
    """A full disk makes SQLite roll back the transaction: then no flush may claim the batch's blocks."""
    scenario = _undo_scenario()
    engine, store = _store(tmp_path, "index.sqlite", scenario.profile)
    bns = BnsEngine(scenario.profile, store)
    first, *batch, failing = scenario.blocks[:5]
    _flushed_block(store, bns, first)
    for block in batch:
        apply_block(store, bns, block)

    class FullDisk:
        def process_block(self, block: Any) -> Any:
            assert store._conn is not None
            store._conn.connection.driver_connection.rollback()  # what SQLITE_FULL does
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))

    with pytest.raises(OperationalError):
        apply_block(store, FullDisk(), failing)  # type: ignore[arg-type]
    store.flush()
    assert store.last_block() == first.height
    assert IndexReader(engine).sync_state()["height"] == str(first.height)
    clean_engine, clean = _store(tmp_path, "clean.sqlite", scenario.profile)
    _flushed_block(clean, BnsEngine(scenario.profile, clean), first)
    assert _dump(engine) == _dump(clean_engine)
