"""Fetch ranges of blocks from bitcoind, checking that they link up.

Hashes come from one batched `getblockhash` per chunk of `batch_size` heights, blocks
from batched `getblock <hash> 3` calls of `blocks_per_request` each (a full mainnet
block at verbosity 3 is several MB of JSON, so that batch stays small).  Every block
must name the previous one as its parent (the first one: the hash the caller already
holds), or `ReorgDetected` says where the chain moved.  A height is *processable* once
it has `confirmations` confirmations (the tip has one).

`raw=True` asks for serialized blocks instead (verbosity 0, a fraction of the bytes and
of bitcoind's work), scans them locally and fetches only candidate transactions, with
their prevouts, through `getrawtransaction <txid> 2 <blockhash>` (Bitcoin Core >= 25).
When the node refuses that path (an RPC error that is not about transport, auth, warm-up
or pruning), the fetcher logs it once and fetches verbose blocks from then on.

`block_files=BlockFiles(...)` reads those raw blocks from a local bitcoind's blk*.dat
(chain/blkfiles.py) and asks `getblock <hash> 0` only for the ones the files do not hold
or hold damaged; the node's `getblockhash` still picks the blocks.

`prefetch=N` fetches and decodes on a worker thread up to N requests ahead of the
consumer (chain/prefetch.py), so RPC waits and the raw scan overlap the engine's work.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator, Sequence
from typing import Any, Protocol

from bns_resolver.chain.blkfiles import BlockFiles
from bns_resolver.chain.blocks import MAGIC, BlockDecoder
from bns_resolver.chain.prefetch import prefetched
from bns_resolver.chain.rpc import TxIndexRequiredError
from bns_resolver.chain.types import ChainBlock
from bns_resolver.errors import ChainError, RpcError

log = logging.getLogger(__name__)

DEFAULT_CONFIRMATIONS = 6
DEFAULT_BATCH = 64
DEFAULT_BLOCKS_PER_REQUEST = 4


class BlockSource(Protocol):
    """The part of BitcoindRPC the fetcher uses."""

    def getblockcount(self) -> int: ...
    def getblockhash(self, height: int) -> str: ...
    def getblockhashes(self, heights: Sequence[int]) -> list[str]: ...
    def getblocks(self, block_hashes: Sequence[str], verbosity: int = 3) -> list[Any]: ...
    def getrawtransactions(self, txids: Sequence[str]) -> list[dict[str, Any]]: ...
    def getrawtransactions_in_block(self, pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]: ...


class ReorgDetected(ChainError):
    """The node's chain no longer extends the blocks we hold."""

    def __init__(self, message: str, *, height: int) -> None:
        super().__init__(message)
        self.height = height


class BlockFetcher:
    def __init__(self, rpc: BlockSource, *, magic: bytes = MAGIC,
                 confirmations: int = DEFAULT_CONFIRMATIONS, batch_size: int = DEFAULT_BATCH,
                 blocks_per_request: int = DEFAULT_BLOCKS_PER_REQUEST, keep_all: bool = False,
                 raw: bool = False, prefetch: int = 0, block_files: BlockFiles | None = None) -> None:
        if confirmations < 1:
            raise ValueError("confirmations counts the block itself, so it is at least 1")
        if raw and keep_all:
            raise ValueError("raw mode keeps only candidate transactions")
        if block_files is not None and not raw:
            raise ValueError("block files serve the raw path")
        self.block_files = block_files
        self.raw, self.prefetch = raw, max(0, prefetch)
        self.rpc, self.confirmations, self.batch_size = rpc, confirmations, max(1, batch_size)
        self.blocks_per_request = max(1, blocks_per_request)
        self._decoder = BlockDecoder(rpc, magic=magic, keep_all=keep_all)

    def tip_height(self) -> int:
        return self.rpc.getblockcount()

    def block_hash(self, height: int) -> str:
        return self.rpc.getblockhash(height)

    def block_hashes(self, start: int, stop: int) -> list[str]:
        """Hashes of heights start..stop inclusive."""
        return self.rpc.getblockhashes(list(range(start, stop + 1)))

    def last_processable(self, tip: int | None = None) -> int:
        """The highest height with enough confirmations (may be below the first block)."""
        return (self.tip_height() if tip is None else tip) - self.confirmations + 1

    def is_processable(self, height: int, tip: int | None = None) -> bool:
        return height <= self.last_processable(tip)

    def fetch(self, start: int, stop: int, *, prev_hash: str | None = None) -> list[ChainBlock]:
        """Blocks start..stop inclusive; `prev_hash` is the hash we hold for start - 1."""
        return list(self.iter_blocks(start, stop, prev_hash=prev_hash))

    def iter_blocks(self, start: int, stop: int, *, prev_hash: str | None = None) -> Generator[ChainBlock, None, None]:
        """Like fetch, one batch at a time, so a caller can commit as blocks arrive.

        With `prefetch`, close the iterator (or exhaust it) before using the fetcher again."""
        if not self.prefetch:
            yield from self._iter_blocks(start, stop, prev_hash)
            return
        for blocks in prefetched(self._iter_batches(start, stop, prev_hash), self.prefetch):
            yield from blocks

    def _iter_blocks(self, start: int, stop: int, prev_hash: str | None) -> Iterator[ChainBlock]:
        for blocks in self._iter_batches(start, stop, prev_hash):
            yield from blocks

    def _iter_batches(self, start: int, stop: int, prev_hash: str | None) -> Iterator[list[ChainBlock]]:
        """One decoded, link-checked request's worth of blocks at a time."""
        for first in range(start, stop + 1, self.batch_size):
            hashes = self.block_hashes(first, min(first + self.batch_size - 1, stop))
            for offset in range(0, len(hashes), self.blocks_per_request):
                wanted = hashes[offset: offset + self.blocks_per_request]
                blocks = self._fetch(wanted, first + offset)
                check_links(blocks, wanted, first + offset, prev_hash)
                yield blocks
                prev_hash = blocks[-1].block_hash

    def _fetch(self, hashes: Sequence[str], first: int) -> list[ChainBlock]:
        if self.raw:
            heights = list(range(first, first + len(hashes)))
            try:
                return self._decode_raw(hashes, heights)
            except RpcError as exc:
                if not refuses_raw(exc):
                    raise
                self.raw = False
                log.warning("bitcoind refused the raw-block path at block %d (%s); fetching verbose "
                            "blocks (getblock verbosity 3, or 2 with prevout lookups) from now on",
                            first, exc)
        return self._decoder.decode(self.rpc.getblocks(hashes, 3))


    def _decode_raw(self, hashes: Sequence[str], heights: list[int]) -> list[ChainBlock]:
        raws = self._raw_blocks(hashes)
        try:
            return self._decoder.decode_raw(raws, heights)
        except ChainError as exc:
            # The header check cannot see damage past byte 80; a block that does not parse
            # is read again from the node, which would refuse to serve a block it cannot read.
            if all(isinstance(raw, str) for raw in raws):
                raise
            log.warning("blocks %d..%d as read from the block files do not parse (%s); fetching them "
                        "over RPC", heights[0], heights[-1], exc)
            return self._decoder.decode_raw(self.rpc.getblocks(hashes, 0), heights)

    def _raw_blocks(self, hashes: Sequence[str]) -> list[str | bytes]:
        """Serialized blocks: from the block files when they hold them intact, else over RPC."""
        if self.block_files is None:
            return list(self.rpc.getblocks(hashes, 0))
        found: list[str | bytes | None] = [self.block_files.get(block_hash) for block_hash in hashes]
        missing = [i for i, raw in enumerate(found) if raw is None]
        if missing:
            for i, raw in zip(missing, self.rpc.getblocks([hashes[i] for i in missing], 0), strict=True):
                found[i] = raw
        return [raw for raw in found if raw is not None]


def refuses_raw(exc: RpcError) -> bool:
    """An answer meaning "this node cannot serve the raw path" rather than "cannot serve at all":
    transport, auth, warm-up and pruning failures (its subclasses) would fail verbose fetches too."""
    return type(exc) in (RpcError, TxIndexRequiredError)


def check_links(blocks: Sequence[ChainBlock], hashes: Sequence[str], first: int,
                prev_hash: str | None) -> None:
    """Each block is the one asked for and names its predecessor as parent."""
    for offset, (block, wanted) in enumerate(zip(blocks, hashes, strict=True)):
        height = first + offset
        if block.block_hash != wanted or block.height != height:
            raise ReorgDetected(f"asked for block {wanted} at {height}, got {block.block_hash} at "
                                f"{block.height}", height=height)
        if prev_hash is not None and block.prev_hash != prev_hash:
            raise ReorgDetected(f"block {block.block_hash} at {height} builds on {block.prev_hash}, "
                                f"not on {prev_hash}: the chain reorganised", height=height)
        prev_hash = block.block_hash
