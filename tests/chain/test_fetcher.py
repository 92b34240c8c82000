"""BlockFetcher: batched range fetches, link checks, confirmations, surviving a restart."""

from __future__ import annotations

import pytest

from bns_resolver.chain.blocks import BlockDecoder
from bns_resolver.chain.fetcher import BlockFetcher, ReorgDetected, check_links
from bns_resolver.chain.rpc import BitcoindRPC
from bns_resolver.chain.types import ChainBlock
from tests.support.bitcoind import BitcoindServer
from tests.support.chainbuilder import ChainBuilder


def test_fetch_range_in_batches(rpc: BitcoindRPC, node: BitcoindServer, builder: ChainBuilder) -> None:
    """A range arrives in order: one getblockhash batch per chunk, getblock batches within it."""
    fetcher = BlockFetcher(rpc, batch_size=4, blocks_per_request=2)
    before = node.http_posts
    blocks = fetcher.fetch(98, builder.height)  # 10 blocks: chunks of 4, 4, 2
    assert [b.height for b in blocks] == list(range(98, builder.height + 1))
    assert [b.block_hash for b in blocks] == [builder.block_hash(h) for h in range(98, builder.height + 1)]
    assert node.http_posts - before == 3 + 5


def test_fetch_matches_single_block_decoding(rpc: BitcoindRPC, builder: ChainBuilder) -> None:
    """Batching changes nothing about the decoded blocks."""
    fetched = BlockFetcher(rpc, batch_size=3).fetch(100, builder.height)
    single = [BlockDecoder(rpc).decode([rpc.getblock(builder.block_hash(h))])[0]
              for h in range(100, builder.height + 1)]
    assert fetched == single


def test_confirmations(rpc: BitcoindRPC, builder: ChainBuilder) -> None:
    """A height is processable when tip - height + 1 >= confirmations."""
    fetcher = BlockFetcher(rpc, confirmations=6)
    tip = builder.height
    assert fetcher.tip_height() == tip
    assert fetcher.last_processable() == tip - 5
    assert fetcher.is_processable(tip - 5) and not fetcher.is_processable(tip - 4)
    assert BlockFetcher(rpc, confirmations=1).last_processable() == tip
    with pytest.raises(ValueError):
        BlockFetcher(rpc, confirmations=0)


def test_first_link_checked_against_held_hash(rpc: BitcoindRPC, node: BitcoindServer,
                                              builder: ChainBuilder) -> None:
    """After a reorg the first fetched block no longer builds on the hash we hold."""
    fetcher = BlockFetcher(rpc, batch_size=2)
    held = fetcher.fetch(100, builder.height)
    branch = builder.fork(3)
    branch.mine(4)
    node.stage_reorg(3, branch.blocks[-4:])
    fork_point = builder.height - 3
    assert fetcher.block_hash(fork_point) == held[fork_point - 100].block_hash  # below the fork: same
    with pytest.raises(ReorgDetected) as info:
        fetcher.fetch(builder.height + 1, node.tip_height, prev_hash=held[-1].block_hash)
    assert info.value.height == builder.height + 1
    extension = fetcher.fetch(fork_point + 1, node.tip_height, prev_hash=held[fork_point - 100].block_hash)
    new_heights = range(fork_point + 1, branch.height + 1)
    assert [b.block_hash for b in extension] == [branch.block_hash(h) for h in new_heights]


def test_broken_link_inside_a_batch() -> None:
    """A block that does not name its predecessor is reported at its height."""
    a = ChainBlock(10, "aa" * 32, "99" * 32, ())
    b = ChainBlock(11, "bb" * 32, "cc" * 32, ())
    with pytest.raises(ReorgDetected, match="reorganised") as info:
        check_links([a, b], [a.block_hash, b.block_hash], 10, "99" * 32)
    assert info.value.height == 11


def test_block_other_than_asked_is_reported() -> None:
    """A block whose hash differs from the one asked for (chain moved between calls)."""
    a = ChainBlock(10, "aa" * 32, "99" * 32, ())
    with pytest.raises(ReorgDetected) as info:
        check_links([a], ["ab" * 32], 10, None)
    assert info.value.height == 10


def test_node_restart_mid_range_keeps_progress(node: BitcoindServer, builder: ChainBuilder) -> None:
    """The node goes down between batches; the iterator retries and finishes the range."""
    clock: list[float] = []

    def sleep(seconds: float) -> None:
        clock.append(seconds)
        if len(clock) == 2:
            node.come_up()

    rpc = BitcoindRPC(node.url, sleep=sleep, clock=lambda: sum(clock))
    blocks = []
    for block in BlockFetcher(rpc, batch_size=2).iter_blocks(100, builder.height):
        blocks.append(block)
        if len(blocks) == 2:
            node.go_down()
    clean = BlockFetcher(BitcoindRPC(node.url), batch_size=50).fetch(100, builder.height)
    assert blocks == clean
    assert len(clock) == 2
