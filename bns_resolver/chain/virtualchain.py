"""The chain-agnostic sync loop: blocks in order -> state engine -> block transactions.

The engine and its store are handed in and only seen through small Protocols (chain/
never imports bns/).  The loop owns the block transaction, as ElectrumX's block
processor does: for each block it calls `store.begin_block(height, block_hash)`, lets
the engine read and write state inside it, then `store.commit_block()`, or
`store.rollback()` if the engine fails.  Committed blocks become durable, together
with the sync state, at named flush points (`FlushPolicy`): every few blocks or
seconds during initial sync, at every block once caught up, before a reorg, and when
the loop stops, also on an error (the failed block itself is never kept).  Before
extending, and whenever a fetched block does not build on the hash we hold, it compares
stored block hashes with the node's, walks back to the fork point, undoes the orphaned
blocks newest first through the store's undo journal, and replays the new branch.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

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
    def process_block(self, block: ChainBlock) -> EngineOutcome:
        """Apply one block's ops to the store's open block (the caller frames it)."""
        ...


class BlockStore(Protocol):
    """The block transaction, as the loop drives it (the engine only reads and writes inside it).

    `begin_block(h, hash)` opens block h (h = last_block()+1, or the first block) and anchors
    it to `hash`; `commit_block()` closes it; `rollback()` discards the open block exactly.
    `flush()` makes every committed block durable in one transaction with the sync state;
    until then a crash loses them all and `last_block()` falls back to the last flush.
    `undo_block(h)` undoes the newest flushed block h from its undo journal (reorgs), and
    `discard_undo(h)` drops undo data below h.
    """

    def last_block(self) -> int | None: ...
    def get_block_hash(self, height: int) -> str | None: ...
    def begin_block(self, height: int, block_hash: str) -> None: ...
    def commit_block(self) -> None: ...
    def rollback(self) -> None: ...
    def flush(self) -> None: ...
    def undo_block(self, height: int) -> None: ...


def apply_block(store: BlockStore, engine: StateEngine, block: ChainBlock) -> EngineOutcome:
    """Run one block through `engine` inside its own block frame; nothing of it stays on error."""
    store.begin_block(block.height, block.block_hash)
    try:
        outcome = engine.process_block(block)
    except BaseException:
        store.rollback()
        raise
    store.commit_block()
    return outcome


@dataclass(frozen=True)
class FlushPolicy:
    """When committed blocks are flushed during a catch-up (each flush is one SQL COMMIT).

    A batch ends after `max_blocks` blocks or `max_seconds`, whichever comes first; the
    last block of a catch-up is always flushed, so once caught up every block is.
    """

    max_blocks: int = 100
    max_seconds: float = 5.0


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


class _Batch:
    """Counts committed blocks since the last flush against a FlushPolicy."""

    def __init__(self, policy: FlushPolicy) -> None:
        self.policy = policy
        self._reset()

    def _reset(self) -> None:
        self.blocks, self.started = 0, time.monotonic()

    def add(self) -> bool:
        """Count one committed block; True (and a fresh batch) when it is time to flush."""
        self.blocks += 1
        full = self.blocks >= self.policy.max_blocks
        if full or time.monotonic() - self.started >= self.policy.max_seconds:
            self._reset()
            return True
        return False


class VirtualChain:
    """Keeps `store` in step with the node, `confirmations` deep, up to `end_height`."""

    def __init__(self, fetcher: BlockFetcher, engine: StateEngine, store: BlockStore, *,
                 first_block: int, end_height: int | None = None, end_reason: str = "",
                 reorg_limit: int = DEFAULT_REORG_LIMIT, flush_policy: FlushPolicy = FlushPolicy(),
                 on_block: Callable[[ChainBlock, EngineOutcome], None] | None = None) -> None:
        self.fetcher, self.engine, self.store = fetcher, engine, store
        self.first_block, self.end_height, self.end_reason = first_block, end_height, end_reason
        self.reorg_limit, self.flush_policy, self.on_block = reorg_limit, flush_policy, on_block
        self._stop = threading.Event()

    def request_stop(self) -> None:
        """Shutting down: a running sync (in another thread) flushes after the block it is on and
        returns, and later calls process nothing."""
        self._stop.set()

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
        """Process every processable block, handling reorgs on the way; flush before returning."""
        start, progress = self.next_height(), _Progress()
        try:
            self._catch_up(progress)
        finally:
            # The stop flush point: blocks committed before an error or an interrupt are whole
            # blocks (the failed one was rolled back), so they are kept.
            self._flush("stop")
        if self.finished:
            log.info("sync reached its end height %d%s; nothing later can change state",
                     self.end_height, f": {self.end_reason}" if self.end_reason else "")
        return SyncResult(start, self.store.last_block(), progress.processed, tuple(progress.reorgs),
                          self.finished)

    def _catch_up(self, progress: _Progress) -> None:
        stuck = 0
        while True:
            before = progress.processed
            try:
                if self._check_tip(progress):
                    self._extend(progress)
                return
            except ReorgDetected as exc:
                stuck = 0 if progress.processed > before else stuck + 1
                if stuck > MAX_STUCK_RETRIES:
                    raise ChainError(f"bitcoind's chain keeps changing under us, or it answers "
                                     f"inconsistently ({exc}); giving up for now") from exc
                log.info("chain moved under us at %d (%s)", exc.height, exc)
                self._reorg(progress)

    def _extend(self, progress: _Progress) -> None:
        start, stop = self.next_height(), self.target_height()
        if start > stop or self._stop.is_set():
            return
        prev_hash = self.store.get_block_hash(start - 1) if start > self.first_block else None
        # closing(): a prefetching fetcher's worker stops before we touch the RPC again.
        with contextlib.closing(self.fetcher.iter_blocks(start, stop, prev_hash=prev_hash)) as blocks:
            self._apply_all(blocks, stop, progress)

    def _apply_all(self, blocks: Iterator[ChainBlock], stop: int, progress: _Progress) -> None:
        batch = _Batch(self.flush_policy)
        for block in blocks:
            outcome = apply_block(self.store, self.engine, block)
            progress.processed += 1
            if block.height >= stop:
                self._flush("caught up")
            elif batch.add():
                self._flush("batch")
            if self.on_block is not None:
                self.on_block(block, outcome)
            if self._stop.is_set():
                log.info("stopping at block %d on request", block.height)
                return  # sync() flushes on the way out (the stop flush point)

    def _flush(self, reason: str) -> None:
        log.debug("flush (%s) at block %s", reason, self.store.last_block())
        self.store.flush()

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
        self._flush("reorg")
        for height in range(last, fork, -1):
            self.store.undo_block(height)
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
