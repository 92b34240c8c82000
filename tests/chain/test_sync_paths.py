"""The default sync path (raw blocks, prefetched on a thread) against the verbose path."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bns_resolver.chain.fetcher import BlockFetcher, ReorgDetected
from bns_resolver.chain.prefetch import prefetched
from bns_resolver.chain.rpc import BitcoindRPC
from bns_resolver.chainsync import ChainSync, format_eta
from bns_resolver.config import ChainSettings
from bns_resolver.index import schema
from bns_resolver.index.db import open_index
from tests.support.bitcoind import BitcoindServer
from tests.support.chainbuilder import ChainBuilder, corpus_chain
from tests.support.corpus import corpus_files, load_scenario

# 0.14.1-era regtest knobs, as the reference's test mode set them (consensus-corpus README).
REGTEST_0141 = {"rules": "0.14.1", "import_keyring_size": 5, "namespace_reveal_expire": 144,
                "namespace_1char_cost": 4100000000}


def test_raw_prefetched_blocks_equal_verbose_blocks(rpc: BitcoindRPC, builder: ChainBuilder) -> None:
    """Same heights, hashes, candidate txs (inputs with prevouts, outputs) on every path."""
    verbose = BlockFetcher(rpc, batch_size=3, blocks_per_request=2).fetch(1, builder.height)
    raw = BlockFetcher(rpc, batch_size=3, blocks_per_request=2, raw=True).fetch(1, builder.height)
    piped = BlockFetcher(rpc, batch_size=3, blocks_per_request=2, raw=True, prefetch=2).fetch(1, builder.height)
    assert sum(len(b.txs) for b in verbose) >= 5  # the fixture's five id-looking txs
    assert raw == verbose
    assert piped == verbose


def test_fallback_to_verbose_when_node_refuses_raw(rpc: BitcoindRPC, node: BitcoindServer,
                                                   builder: ChainBuilder,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    verbose = BlockFetcher(rpc).fetch(1, builder.height)
    node.raw_blocks = False
    fetcher = BlockFetcher(rpc, batch_size=4, raw=True, prefetch=2)
    with caplog.at_level(logging.WARNING, logger="bns_resolver.chain.fetcher"):
        assert fetcher.fetch(1, builder.height) == verbose
    assert not fetcher.raw
    refusals = [r for r in caplog.records if "refused the raw-block path at block 1" in r.getMessage()]
    assert len(refusals) == 1  # logged once, then verbose blocks for the rest
    assert ("getblock", [builder.block_hash(1), 3]) in node.calls


def test_pruned_block_is_not_a_fallback(rpc: BitcoindRPC, node: BitcoindServer, builder: ChainBuilder) -> None:
    """A pruned block fails at every verbosity: the error says so instead of a silent switch."""
    node.pruned_heights.add(3)
    fetcher = BlockFetcher(rpc, raw=True, prefetch=2)
    with pytest.raises(Exception, match="pruned"):
        fetcher.fetch(1, builder.height)
    assert fetcher.raw


def test_reorg_raised_through_the_prefetch_thread(rpc: BitcoindRPC, builder: ChainBuilder) -> None:
    fetcher = BlockFetcher(rpc, batch_size=2, raw=True, prefetch=2)
    with pytest.raises(ReorgDetected) as info:
        fetcher.fetch(5, builder.height, prev_hash="11" * 32)
    assert info.value.height == 5


def test_prefetch_is_bounded_and_stops_when_closed() -> None:
    produced: list[int] = []
    gate = threading.Event()

    def source() -> object:
        for i in range(100):
            produced.append(i)
            yield i

    items = prefetched(source(), 3)
    assert next(items) == 0
    gate.wait(0.3)  # let the producer run ahead as far as the queue allows
    assert len(produced) <= 1 + 3 + 1  # the consumed one, the queue, one waiting to be put
    items.close()
    count = len(produced)
    gate.wait(0.3)
    assert len(produced) == count  # no further production after close


def test_prefetch_rejects_zero_depth() -> None:
    with pytest.raises(ValueError):
        next(prefetched([1], 0))


@pytest.mark.parametrize(("seconds", "text"), [(42.4, "42 s"), (425, "7 min 05 s"), (50580, "14 h 03 min")])
def test_format_eta(seconds: float, text: str) -> None:
    assert format_eta(seconds) == text


def synced_index(node: BitcoindServer, folder: Path, *, verbose: bool = False,
                 blocks_dir: Path | None = None) -> tuple[list[tuple[int, str]], dict[str, list[Any]]]:
    """Sync the served chain with ChainSync's default wiring (or its fetcher made verbose, or reading
    block files): the consensus hash after every block, and every row of every index table."""
    folder.mkdir(exist_ok=True)
    engine = open_index(f"sqlite:///{folder / 'index.sqlite'}")
    chain_sync = ChainSync(engine, ChainSettings(bitcoind=node.url, network="regtest", confirmations=1,
                                                 profile=REGTEST_0141, blocks_dir=blocks_dir))
    if verbose:
        chain_sync.virtualchain.fetcher = BlockFetcher(chain_sync.rpc, magic=chain_sync.profile.magic,
                                                       confirmations=1)
    hashes: list[tuple[int, str]] = []
    chain_sync.virtualchain.on_block = lambda block, outcome: hashes.append((block.height, outcome.consensus_hash))
    chain_sync.sync()
    chain_sync.rpc.close()
    with engine.connect() as conn:
        rows = {table.name: sorted(map(tuple, conn.execute(select(table))), key=repr)
                for table in schema.metadata.sorted_tables if table.name != "sync_state"}
    engine.dispose()
    return hashes, rows


def test_default_sync_builds_the_verbose_paths_index(node: BitcoindServer, tmp_path: Path) -> None:
    """ChainSync's default (raw + prefetch) and the verbose path: same consensus hash at every
    block and the same index, on a chain of reference-recorded BNS operations."""
    matches = [p for p in corpus_files() if p.parent.name == "0.14.1"
               and p.name == "name_preorder_register_update_accounts.json.gz"]
    if not matches:
        pytest.skip("corpus scenario 0.14.1/name_preorder_register_update_accounts not available")
    scenario = load_scenario(matches[0])
    node.serve_builder(corpus_chain(scenario.data))
    (tmp_path / "v3").mkdir()
    (tmp_path / "default").mkdir()
    verbose = synced_index(node, tmp_path / "v3", verbose=True)
    default = synced_index(node, tmp_path / "default", verbose=False)
    assert verbose[0][-1] == (int(scenario.data["blocks"][-1]["height"]),
                              scenario.data["blocks"][-1]["consensus_hash"])
    assert any(rows for rows in verbose[1].values())
    assert default == verbose
    assert ("getblock", [node.block_hash(verbose[0][-1][0]), 0]) in node.calls
