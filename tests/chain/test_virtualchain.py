"""VirtualChain end to end: test bitcoind -> rpc -> blocks -> sync loop -> BnsEngine."""

from __future__ import annotations

import copy
import gzip
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bns_resolver.bns.engine import BnsEngine
from bns_resolver.bns.networks import NetworkProfile, from_corpus_config
from bns_resolver.bns.state import MemoryStateStore
from bns_resolver.chain.fetcher import BlockFetcher, ReorgDetected
from bns_resolver.chain.rpc import BitcoindRPC
from bns_resolver.chain.types import ChainBlock
from bns_resolver.chain.virtualchain import FlushPolicy, Reorg, VirtualChain
from bns_resolver.errors import ChainError
from tests.support.bitcoind import BitcoindServer
from tests.support.chainbuilder import ChainBuilder, corpus_chain
from tests.support.corpus import corpus_dir

COLLISIONS = "0.13/name_preorder_register_collisions.json.gz"
TRANSFERS = "0.13/name_preorder_register_transfer_update.json.gz"


def scenario(name: str) -> dict[str, Any]:
    path = corpus_dir() / name
    if not path.exists():
        pytest.skip(f"corpus scenario {path} not available")
    return json.load(gzip.open(path))


def profile_of(data: dict[str, Any]) -> NetworkProfile:
    return from_corpus_config(data["config"], data["version"])


class FlushRecorder(MemoryStateStore):
    """The in-memory store, noting the newest committed block at each flush that had blocks to flush."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed_at: list[int | None] = []

    def flush(self) -> None:
        self.flushed_at.append(self.last_block())


class Sync:
    """A full client stack against one node: rpc, fetcher, engine, store, loop."""

    def __init__(self, node: BitcoindServer, profile: NetworkProfile, *, confirmations: int = 1,
                 batch_size: int = 4, **kwargs: Any) -> None:
        self.store = FlushRecorder()
        self.rpc = BitcoindRPC(node.url, retry_for=30.0, sleep=lambda _: None)
        self.fetcher = BlockFetcher(self.rpc, magic=profile.magic, confirmations=confirmations,
                                    batch_size=batch_size)
        self.consensus: dict[int, str] = {}
        self.loop = VirtualChain(self.fetcher, BnsEngine(profile, self.store), self.store,
                                 first_block=profile.first_block, on_block=self._record, **kwargs)

    def _record(self, block: ChainBlock, outcome: Any) -> None:
        self.consensus[block.height] = outcome.consensus_hash

    def state(self) -> dict[str, Any]:
        """Everything the store holds, plus the block hashes it anchors to."""
        last = self.store.last_block()
        hashes = {h: self.store.get_block_hash(h) for h in range(self.loop.first_block, (last or 0) + 1)}
        return {"tables": copy.deepcopy(self.store._tables), "hashes": hashes, "last": last}


def clean_state(blocks: ChainBuilder, profile: NetworkProfile) -> dict[str, Any]:
    with BitcoindServer() as node:
        node.serve_builder(blocks)
        sync = Sync(node, profile)
        sync.loop.sync()
        return sync.state()


@pytest.fixture
def node() -> Iterator[BitcoindServer]:
    with BitcoindServer() as server:
        yield server


def test_clean_sync_matches_the_reference(node: BitcoindServer) -> None:
    """Served over RPC, every block's consensus hash equals the recorded one."""
    data = scenario(TRANSFERS)
    node.serve_builder(corpus_chain(data))
    sync = Sync(node, profile_of(data))
    result = sync.loop.sync()
    assert result.processed == len(data["blocks"]) and result.reorgs == ()
    assert sync.consensus == {b["height"]: b["consensus_hash"] for b in data["blocks"]}
    assert sync.loop.sync().processed == 0  # nothing new


@pytest.mark.parametrize("name", [COLLISIONS, TRANSFERS])
def test_reorg_of_last_three_blocks_equals_clean_sync(node: BitcoindServer, name: str) -> None:
    """Real -> empty branch -> real again: each time the state equals a clean sync of that chain."""
    data = scenario(name)
    profile = profile_of(data)
    real = corpus_chain(data)
    empty = real.fork(3)
    empty.mine(3)
    node.serve_builder(real)
    sync = Sync(node, profile)
    sync.loop.sync()
    real_state = sync.state()

    node.stage_reorg(3, empty.blocks[-3:])
    result = sync.loop.sync()
    assert result.reorgs == (Reorg(fork_height=real.height - 3, undone=3),) and result.processed == 3
    assert sync.state() == clean_state(empty, profile)
    assert sync.state()["tables"] != real_state["tables"]

    node.stage_reorg(3, real.blocks[-3:])
    sync.loop.sync()
    assert sync.state() == real_state
    assert sync.consensus == {b["height"]: b["consensus_hash"] for b in data["blocks"]}


def test_reorg_while_fetching_is_caught_by_the_link_check(node: BitcoindServer) -> None:
    """The chain moves between batches: the next batch does not link, the loop rewinds."""
    data = scenario(COLLISIONS)
    profile = profile_of(data)
    real = corpus_chain(data)
    branch = real.fork(6)
    branch.mine(8)
    node.serve_builder(real)
    sync = Sync(node, profile, batch_size=2)
    moved: list[int] = []

    def move_chain(block: ChainBlock, _outcome: Any) -> None:
        sync._record(block, _outcome)
        if block.height == real.height - 4 and not moved:
            moved.append(block.height)
            node.stage_reorg(6, branch.blocks[-8:])

    sync.loop.on_block = move_chain
    result = sync.loop.sync()
    assert moved and len(result.reorgs) == 1 and result.reorgs[0].fork_height == real.height - 6
    assert sync.state() == clean_state(branch, profile)


def test_node_restart_mid_sync_loses_nothing(node: BitcoindServer) -> None:
    """The node goes away after a few blocks; retries resume where the loop stood."""
    data = scenario(TRANSFERS)
    profile = profile_of(data)
    chain = corpus_chain(data)
    node.serve_builder(chain)
    sync = Sync(node, profile, batch_size=2)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            node.come_up()

    sync.rpc._sleep = sleep

    def go_down_once(block: ChainBlock, outcome: Any) -> None:
        sync._record(block, outcome)
        if block.height == profile.first_block + 2 and not sleeps:
            node.go_down()

    sync.loop.on_block = go_down_once
    result = sync.loop.sync()
    assert len(sleeps) == 2 and result.processed == len(data["blocks"])
    assert sync.state() == clean_state(chain, profile)


def test_confirmations_hold_back_the_tip(node: BitcoindServer) -> None:
    """With 6 confirmations the last 5 blocks wait; new blocks release them."""
    data = scenario(TRANSFERS)
    chain = corpus_chain(data)
    node.serve_builder(chain)
    sync = Sync(node, profile_of(data), confirmations=6)
    assert sync.loop.sync().last_block == chain.height - 5
    chain.mine(2)
    node.serve_builder(chain)
    result = sync.loop.sync()
    assert result.processed == 2 and result.last_block == chain.height - 5


def test_end_height_stops_the_sync_and_says_so(node: BitcoindServer,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """Like mainnet's freeze at 665750: process through the end height, then stop."""
    data = scenario(TRANSFERS)
    profile = profile_of(data)
    node.serve_builder(corpus_chain(data))
    end = profile.first_block + 3
    sync = Sync(node, profile, end_height=end, end_reason=f"BNS froze at block {end + 1}")
    with caplog.at_level(logging.INFO, logger="bns_resolver.chain.virtualchain"):
        result = sync.loop.sync()
    assert result.reached_end and result.last_block == end and result.processed == 4
    assert sync.loop.finished and sync.loop.sync().processed == 0
    assert any(f"end height {end}: BNS froze at block {end + 1}" in r.getMessage() for r in caplog.records)


def test_resume_from_stored_height(node: BitcoindServer) -> None:
    """A second loop over the same store continues at the stored height + 1."""
    data = scenario(TRANSFERS)
    profile = profile_of(data)
    chain = corpus_chain(data)
    node.serve_builder(chain)
    first = Sync(node, profile, end_height=profile.first_block + 2)
    first.loop.sync()
    second = VirtualChain(first.fetcher, BnsEngine(profile, first.store), first.store,
                          first_block=profile.first_block)
    assert second.next_height() == profile.first_block + 3
    assert second.sync().processed == len(data["blocks"]) - 3
    assert first.state() == clean_state(chain, profile)


def test_node_behind_our_index_is_waited_for(node: BitcoindServer, caplog: pytest.LogCaptureFixture) -> None:
    """A node that is still syncing (its tip below ours, same chain) undoes nothing."""
    data = scenario(TRANSFERS)
    profile = profile_of(data)
    chain = corpus_chain(data)
    node.serve_builder(chain)
    sync = Sync(node, profile)
    sync.loop.sync()
    before = sync.state()
    node.set_chain(chain.blocks[:-4])
    with caplog.at_level(logging.WARNING, logger="bns_resolver.chain.virtualchain"):
        result = sync.loop.sync()
    assert result.processed == 0 and result.reorgs == () and sync.state() == before
    assert any("behind our index" in r.getMessage() for r in caplog.records)
    node.set_chain(chain.blocks[:10])  # below the first block
    assert sync.loop.sync().processed == 0 and sync.state() == before


def test_reorg_deeper_than_the_limit_is_refused(node: BitcoindServer) -> None:
    """A fork below reorg_limit means the index must be rebuilt."""
    data = scenario(TRANSFERS)
    profile = profile_of(data)
    chain = corpus_chain(data)
    branch = chain.fork(5)
    branch.mine(5)
    node.serve_builder(chain)
    sync = Sync(node, profile, reorg_limit=3)
    sync.loop.sync()
    node.stage_reorg(5, branch.blocks[-5:])
    with pytest.raises(ChainError, match="more than 3 blocks"):
        sync.loop.sync()


def test_engine_failure_commits_nothing(node: BitcoindServer) -> None:
    """An exception from the engine propagates; the failing block is not anchored."""
    data = scenario(TRANSFERS)
    profile = profile_of(data)
    node.serve_builder(corpus_chain(data))
    sync = Sync(node, profile)
    engine = sync.loop.engine

    class Exploding:
        def process_block(self, block: ChainBlock) -> Any:
            if block.height == profile.first_block + 2:
                raise RuntimeError("boom")
            return engine.process_block(block)

    sync.loop.engine = Exploding()
    with pytest.raises(RuntimeError):
        sync.loop.sync()
    assert sync.store.last_block() == profile.first_block + 1
    assert sync.store.get_block_hash(profile.first_block + 2) is None


def test_block_is_anchored_to_its_hash_inside_the_open_block(node: BitcoindServer) -> None:
    """begin_block carries the block hash, so the engine's writes and the anchor commit together."""
    data = scenario(TRANSFERS)
    profile = profile_of(data)
    chain = corpus_chain(data)
    node.serve_builder(chain)
    sync = Sync(node, profile)
    engine = sync.loop.engine
    seen: list[tuple[int, str | None]] = []

    class Watching:
        def process_block(self, block: ChainBlock) -> Any:
            seen.append((block.height, sync.store.get_block_hash(block.height)))
            return engine.process_block(block)

    sync.loop.engine = Watching()
    sync.loop.sync()
    assert seen == [(h, chain.block_hash(h)) for h in range(profile.first_block, chain.height + 1)]


def test_flush_points_batch_blocks_and_flush_the_last_one(node: BitcoindServer) -> None:
    """During a catch-up blocks are flushed in batches; the last processable block always is."""
    data = scenario(TRANSFERS)
    profile = profile_of(data)
    chain = corpus_chain(data)
    node.serve_builder(chain)
    sync = Sync(node, profile, flush_policy=FlushPolicy(max_blocks=3, max_seconds=3600))
    sync.loop.sync()
    batches = list(range(profile.first_block + 2, chain.height, 3))
    assert sync.store.flushed_at == batches + [chain.height, chain.height]  # caught up, then stop


def test_an_engine_error_keeps_the_batch_before_it(node: BitcoindServer) -> None:
    """The stop flush point: whole blocks committed before a failure are flushed, the failed one is not."""
    data = scenario(TRANSFERS)
    profile = profile_of(data)
    node.serve_builder(corpus_chain(data))
    sync = Sync(node, profile, flush_policy=FlushPolicy(max_blocks=100, max_seconds=3600))
    engine = sync.loop.engine

    class Exploding:
        def process_block(self, block: ChainBlock) -> Any:
            if block.height == profile.first_block + 4:
                raise RuntimeError("boom")
            return engine.process_block(block)

    sync.loop.engine = Exploding()
    with pytest.raises(RuntimeError):
        sync.loop.sync()
    assert sync.store.flushed_at == [profile.first_block + 3]
    assert sync.store.get_block_hash(profile.first_block + 4) is None


def test_a_stop_request_flushes_after_the_current_block(node: BitcoindServer) -> None:
    """The shutdown flush point: a stop asked for mid-batch ends the sync with that block flushed."""
    data = scenario(TRANSFERS)
    profile = profile_of(data)
    chain = corpus_chain(data)
    node.serve_builder(chain)
    sync = Sync(node, profile, flush_policy=FlushPolicy(max_blocks=100, max_seconds=3600))

    def stop_at_third(block: ChainBlock, outcome: Any) -> None:
        sync._record(block, outcome)
        if block.height == profile.first_block + 2:
            sync.loop.request_stop()

    sync.loop.on_block = stop_at_third
    result = sync.loop.sync()
    assert result.last_block == profile.first_block + 2 and result.processed == 3
    assert sync.store.flushed_at == [profile.first_block + 2]
    assert sync.loop.sync().processed == 0  # stopped for good: a later round does nothing


def test_chain_does_not_import_bns() -> None:
    """chain/ stays chain-agnostic: the engine is handed in."""
    root = Path(__file__).resolve().parents[2] / "bns_resolver" / "chain"
    for module in root.glob("*.py"):
        assert "bns_resolver.bns" not in module.read_text(), module.name


def test_a_chain_that_never_links_up_is_reported(node: BitcoindServer) -> None:
    """Endless link failures without progress end in ChainError instead of spinning."""
    data = scenario(TRANSFERS)
    profile = profile_of(data)
    node.serve_builder(corpus_chain(data))
    sync = Sync(node, profile)
    calls: list[int] = []

    def never_links(start: int, stop: int, *, prev_hash: str | None = None) -> Iterator[ChainBlock]:
        calls.append(start)
        raise ReorgDetected("asked for one block, got another", height=start)
        yield  # pragma: no cover - makes this a generator

    sync.fetcher.iter_blocks = never_links  # type: ignore[method-assign]
    with pytest.raises(ChainError, match="keeps changing under us"):
        sync.loop.sync()
    assert len(calls) == 9
