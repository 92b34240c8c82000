"""Every consensus-corpus scenario, served by the test bitcoind and synced through the real
client path (rpc -> blocks -> fetcher -> virtualchain -> BnsEngine), block by block; every
8th also through the raw-block path (all of them with BNS_CORPUS_RAW_ALL=1).

The folder comes from BNS_CORPUS_DIR (default: shared/data/consensus-corpus beside the
repository).  Each scenario reports a match or its first diverging block.  A scenario whose
version was recorded by more than one generation of reference code is synced under the one a
direct replay finds (tests/support/corpus.py `best_replay`): this test is about the client path
feeding the engine the same blocks, not about which generation a file needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bns_resolver.bns.engine import BnsEngine
from bns_resolver.bns.networks import NetworkProfile
from bns_resolver.bns.state import MemoryStateStore
from bns_resolver.chain.blocks import op_return_data
from bns_resolver.chain.fetcher import BlockFetcher
from bns_resolver.chain.rpc import BitcoindRPC
from bns_resolver.chain.types import ChainBlock, ChainTx
from bns_resolver.chain.virtualchain import VirtualChain
from tests.support.bitcoind import BitcoindServer
from tests.support.chainbuilder import corpus_chain
from tests.support.corpus import Scenario, best_replay, corpus_dir, corpus_files, load_scenario

FILES = corpus_files()
RAW_FILES = FILES if os.environ.get("BNS_CORPUS_RAW_ALL") else FILES[::8]


@pytest.fixture(scope="module")
def node() -> Iterator[BitcoindServer]:
    with BitcoindServer() as server:
        yield server


def candidates(block: ChainBlock) -> tuple[ChainTx, ...]:
    return tuple(t for t in block.txs if is_candidate_tx(t))


def is_candidate_tx(tx: ChainTx) -> bool:
    payloads = (op_return_data(bytes.fromhex(o.script_hex)) for o in tx.outputs)
    return any(p is not None and p.startswith(b"id") for p in payloads)


def sync_scenario(node: BitcoindServer, scenario: Scenario, profile: NetworkProfile, *,
                  raw: bool = False) -> tuple[dict[int, tuple[str, str]], Any]:
    """Serve the scenario's chain and sync it; returns {height: (consensus, ops hash)}.

    Each fetched block's transactions must equal the corpus loader's reading of the same
    block (its candidates), so the RPC path and the direct path feed the engine alike.
    """
    loaded = {b.height: candidates(b) for b in scenario.blocks}
    heights = scenario.replayable_heights()
    node.serve_builder(corpus_chain(scenario.data))
    rpc = BitcoindRPC(node.url)
    fetcher = BlockFetcher(rpc, magic=profile.magic, confirmations=1, raw=raw,
                           prefetch=4 if raw else 0)  # raw as ChainSync wires it: prefetched
    store = MemoryStateStore()
    got: dict[int, tuple[str, str]] = {}

    def record(block: ChainBlock, outcome: Any) -> None:
        assert block.txs == loaded[block.height], f"{scenario.label}: block {block.height} differs"
        got[block.height] = (outcome.consensus_hash, outcome.ops_hash)

    loop = VirtualChain(fetcher, BnsEngine(profile, store), store,
                        first_block=profile.first_block, end_height=max(heights), on_block=record)
    result = loop.sync()
    rpc.close()
    return got, result


def check_scenario(node: BitcoindServer, path: Path, *, raw: bool) -> None:
    scenario = load_scenario(path)
    if not scenario.blocks or scenario.profile is None:
        pytest.skip(f"{scenario.label}: aborted log without blocks")
    profile = best_replay(scenario).profile
    got, result = sync_scenario(node, scenario, profile, raw=raw)
    heights = scenario.replayable_heights()
    for recorded in scenario.data["blocks"]:
        height = recorded["height"]
        if height not in heights:
            break
        expected = (recorded["consensus_hash"], recorded["ops_hash"])
        if got.get(height) != expected:
            pytest.fail(f"{scenario.label}: first divergence at block {height} under {profile.rules}: "
                        f"got {got.get(height)}, reference {expected}")
    assert result.last_block == max(heights) and result.reached_end


@pytest.mark.skipif(not FILES, reason=f"no corpus files under {corpus_dir()}")
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(Path(p).relative_to(corpus_dir())))
def test_scenario_via_rpc(node: BitcoindServer, path: Path) -> None:
    """getblock 3 path: consensus and ops hash after every replayable block equal the reference's."""
    check_scenario(node, path, raw=False)


@pytest.mark.skipif(not FILES, reason=f"no corpus files under {corpus_dir()}")
@pytest.mark.parametrize("path", RAW_FILES, ids=lambda p: str(Path(p).relative_to(corpus_dir())))
def test_scenario_via_rpc_raw_blocks(node: BitcoindServer, path: Path) -> None:
    """Raw-block path (a sample, to keep the suite short): the same hashes."""
    check_scenario(node, path, raw=True)
