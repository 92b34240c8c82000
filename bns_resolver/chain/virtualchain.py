"""The chain-agnostic sync loop: blocks in order -> state engine -> atomic per-block commit.

The engine is handed in and only seen through small Protocols (chain/ never imports
bns/).  Per block the loop stages the block hash in the store, lets the engine process
the block (the engine frames it with begin_block/commit_block, so state, consensus
hash and block hash commit together), and moves on.  Before extending, and whenever a
fetched block does not build on the hash we hold, it compares stored block hashes with
the node's, walks back to the fork point, undoes the orphaned blocks newest first
through the store's undo journal, and replays the new branch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bns_resolver.chain.fetcher import BlockFetcher, ReorgDetected
from bns_resolver.chain.types import ChainBlock
from bns_resolver.errors import ChainError

log = logging.getLogger(__name__)

DEFAULT_REORG_LIMIT = 200
MAX_STUCK_RETRIES = 8  # link failures in a row without a processed block


class EngineOutcome(Protocol):
    """What the loop reads from an engine's per-block result (read-only, e.g. a frozen dataclass)."""

    @property
    def height(self) -> int: ...
    @property
    def consensus_hash(self) -> str: ...
    @property
    def ops_hash(self) -> str: ...


class StateEngine(Protocol):
    def process_block(self, block: ChainBlock) -> EngineOutcome: ...


class AnchoredStore(Protocol):
    """What the loop needs from the engine's store (see `HashAnchoredStore` for an adapter)."""

    def last_block(self) -> int | None: ...
    def rollback_block(self, height: int) -> None: ...
    def get_block_hash(self, height: int) -> str | None: ...
    def stage_block_hash(self, height: int, block_hash: str) -> None: ...


class HashAnchoredStore:
    """Adds block-hash anchors to a state store that lacks them.

    The hash staged for height h is written when the engine calls commit_block(h):
    through the wrapped store's `put_block_hash` inside its open block if it has one
    (one transaction), otherwise into this adapter's own map, which rollback_block(h)
    undoes together with the wrapped store.  Every other attribute is the wrapped store's.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._native = hasattr(inner, "put_block_hash") and hasattr(inner, "get_block_hash")
        self._hashes: dict[int, str] = {}
        self._staged: tuple[int, str] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def stage_block_hash(self, height: int, block_hash: str) -> None:
        self._staged = (height, block_hash)

    def commit_block(self, height: int) -> None:
        staged, self._staged = self._staged, None
        if staged is None or staged[0] != height:
            raise ChainError(f"no block hash staged for block {height}")
        if self._native:
            self.inner.put_block_hash(height, staged[1])
            self.inner.commit_block(height)
            return
        self.inner.commit_block(height)
        self._hashes[height] = staged[1]

    def rollback_block(self, height: int) -> None:
        self.inner.rollback_block(height)
        self._hashes.pop(height, None)

    def get_block_hash(self, height: int) -> str | None:
        if self._native:
            return self.inner.get_block_hash(height)
        return self._hashes.get(height)


@dataclass(frozen=True)
class Reorg:
    fork_height: int  # the highest height both chains share
    undone: int  # how many of our blocks were rolled back


@dataclass(frozen=True)
class SyncResult:
    start_height: int  # the first height this call tried to process
    last_block: int | None  # the last height committed when the call returned
    processed: int
    reorgs: tuple[Reorg, ...] = ()
    reached_end: bool = False


@dataclass
class _Progress:
    processed: int = 0
    reorgs: list[Reorg] = field(default_factory=list)


class VirtualChain:
    """Keeps `store` in step with the node, `confirmations` deep, up to `end_height`."""

    def __init__(self, fetcher: BlockFetcher, engine: StateEngine, store: AnchoredStore, *,
                 first_block: int, end_height: int | None = None, end_reason: str = "",
                 reorg_limit: int = DEFAULT_REORG_LIMIT,
                 on_block: Callable[[ChainBlock, EngineOutcome], None] | None = None) -> None:
        self.fetcher, self.engine, self.store = fetcher, engine, store
        self.first_block, self.end_height, self.end_reason = first_block, end_height, end_reason
        self.reorg_limit, self.on_block = reorg_limit, on_block

    def next_height(self) -> int:
        last = self.store.last_block()
        return self.first_block if last is None else last + 1

    def target_height(self, tip: int | None = None) -> int:
        """The last height to process now: enough confirmations, not past the end height."""
        target = self.fetcher.last_processable(tip)
        return target if self.end_height is None else min(target, self.end_height)

    @property
    def finished(self) -> bool:
        """True once the end height is committed (nothing after it can change state)."""
        last = self.store.last_block()
        return self.end_height is not None and last is not None and last >= self.end_height

    def sync(self) -> SyncResult:
        """Process every processable block, handling reorgs on the way."""
        start, progress = self.next_height(), _Progress()
        stuck = 0
        while True:
            before = progress.processed
            try:
                if self._check_tip(progress):
                    self._extend(progress)
                break
            except ReorgDetected as exc:
                stuck = 0 if progress.processed > before else stuck + 1
                if stuck > MAX_STUCK_RETRIES:
                    raise ChainError(f"bitcoind's chain keeps changing under us, or it answers "
                                     f"inconsistently ({exc}); giving up for now") from exc
                log.info("chain moved under us at %d (%s)", exc.height, exc)
                self._reorg(progress)
        if self.finished:
            log.info("sync reached its end height %d%s; nothing later can change state",
                     self.end_height, f": {self.end_reason}" if self.end_reason else "")
        return SyncResult(start, self.store.last_block(), progress.processed, tuple(progress.reorgs),
                          self.finished)

    def _extend(self, progress: _Progress) -> None:
        start, stop = self.next_height(), self.target_height()
        if start > stop:
            return
        prev_hash = self.store.get_block_hash(start - 1) if start > self.first_block else None
        for block in self.fetcher.iter_blocks(start, stop, prev_hash=prev_hash):
            self.store.stage_block_hash(block.height, block.block_hash)
            outcome = self.engine.process_block(block)
            progress.processed += 1
            if self.on_block is not None:
                self.on_block(block, outcome)

    def _check_tip(self, progress: _Progress) -> bool:
        """Undo blocks the node no longer has; False while the node is behind our index."""
        last = self.store.last_block()
        if last is None:
            return True
        tip = self.fetcher.tip_height()
        height = min(last, tip)
        if height < self.first_block:
            log.warning("bitcoind is at block %d, below the first block %d; waiting", tip, self.first_block)
            return False
        if self.fetcher.block_hash(height) != self.store.get_block_hash(height):
            self._reorg(progress)
            return True
        if last > tip:
            # A node still syncing (or reindexing) is behind us on the same chain: wait for it
            # rather than undo blocks it simply has not reached yet.
            log.warning("bitcoind is at block %d, behind our index at %d; waiting for it", tip, last)
            return False
        return True

    def _reorg(self, progress: _Progress) -> None:
        last = self.store.last_block()
        if last is None:
            return
        fork = self.fork_point(last)
        if fork == last:  # the node moved between our calls, but not below our tip
            return
        for height in range(last, fork, -1):
            self.store.rollback_block(height)
        progress.reorgs.append(Reorg(fork, last - fork))
        log.warning("reorg: rolled back blocks %d..%d, replaying from %d", fork + 1, last, fork + 1)

    def fork_point(self, last: int) -> int:
        """The highest stored height whose hash the node still has (first_block - 1 if none)."""
        tip = self.fetcher.tip_height()
        floor = max(self.first_block - 1, last - self.reorg_limit)
        top = min(last, tip)
        window = 8
        while top > floor:
            low = max(floor + 1, top - window + 1)
            node_hashes = self.fetcher.block_hashes(low, top)
            for height in range(top, low - 1, -1):
                if node_hashes[height - low] == self._stored_hash(height):
                    return height
            top, window = low - 1, window * 2
        if floor > self.first_block - 1:
            raise ChainError(f"the chain reorganised more than {self.reorg_limit} blocks below our "
                             f"block {last}; rebuild the index")
        return floor

    def _stored_hash(self, height: int) -> str:
        stored = self.store.get_block_hash(height)
        if stored is None:
            raise ChainError(f"no block hash stored for block {height}; cannot find the fork point")
        return stored
