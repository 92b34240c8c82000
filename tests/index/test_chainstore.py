"""The SQL StateStore: corpus replays match the reference, and undo is exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from bns_resolver.bns.engine import BnsEngine
from bns_resolver.bns.expiry import expiry_rule
from bns_resolver.bns.state import MemoryStateStore
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
        outcome = sql_engine.process_block(block)
        assert outcome.consensus_hash == mem_engine.process_block(block).consensus_hash == recorded["consensus_hash"]
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
        BnsEngine(scenario.profile, full).process_block(block)
    for block in blocks[:-3]:
        BnsEngine(scenario.profile, short).process_block(block)
    assert _dump(full_engine) != _dump(short_engine)
    for block in reversed(blocks[-3:]):
        full.rollback_block(block.height)
    assert _dump(full_engine) == _dump(short_engine)
    assert full.last_block() == blocks[-4].height
    assert IndexReader(full_engine).sync_state()["height"] == str(blocks[-4].height)


def test_rolling_back_every_block_empties_the_chain_state(tmp_path: Path) -> None:
    """Undo down to nothing: no blocks, no names, no height."""
    path = next(p for p in corpus_files() if p.name == "name_import_revoke.json.gz")
    scenario = load_scenario(path)
    engine, store = _store(tmp_path, "index.sqlite", scenario.profile)
    for block in scenario.blocks:
        BnsEngine(scenario.profile, store).process_block(block)
    for block in reversed(scenario.blocks):
        store.rollback_block(block.height)
    assert store.last_block() is None
    assert all(rows == [] for rows in _dump(engine).values())
