"""Wiring for chain sync: bitcoind → block fetcher → virtualchain → BNS engine → SQL index.

Used by `bns-resolver sync` (once to the tip, then exit) and by `serve` when a
bitcoind is configured (in a worker thread, so DNS keeps answering).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from bns_resolver.bns.engine import BnsEngine
from bns_resolver.bns.expiry import expiry_rule
from bns_resolver.bns.networks import NetworkProfile, mainnet
from bns_resolver.chain.blkfiles import BlockFiles
from bns_resolver.chain.fetcher import BlockFetcher
from bns_resolver.chain.rpc import BitcoindRPC
from bns_resolver.chain.types import ChainBlock
from bns_resolver.chain.virtualchain import SyncResult, VirtualChain
from bns_resolver.config import ChainSettings
from bns_resolver.errors import ConfigError
from bns_resolver.index.chainstore import SqlStateStore
from bns_resolver.index.db import Engine, reported
from bns_resolver.index.changes import save_state_noted
from bns_resolver.index.sync_state import load_state

log = logging.getLogger(__name__)

BITCOIND_CHAIN_NAMES = {"mainnet": "main", "testnet": "test"}
TESTNET_VERSIONS: dict[str, Any] = {"p2pkh_version": 111, "p2sh_version": 196}
# The reference's regtest integration tests start BNS at block 256.
REGTEST_FIRST_BLOCK = 256
# Requests (of blocks_per_request blocks) decoded ahead of the engine: enough to hide one RPC
# round trip, few enough that memory stays a few MB of raw blocks.
SYNC_PREFETCH = 4


def build_profile(chain: ChainSettings) -> NetworkProfile:
    """The network profile, with the config file's [chain] overrides (validated in config.py) applied."""
    profile = mainnet()
    if chain.network == "regtest":
        profile = replace(profile, name="regtest", first_block=REGTEST_FIRST_BLOCK, freeze_height=None,
                          genesis=None, **TESTNET_VERSIONS)  # no STX allocation off mainnet
    elif chain.network == "testnet":
        profile = replace(profile, name="testnet", freeze_height=None, genesis=None, **TESTNET_VERSIONS)
    return chain.profile.apply_to(profile)


@dataclass
class ChainSync:
    """One index kept in step with one bitcoind."""

    db_engine: Engine  # the index database (the BNS state machine is `BnsEngine`)
    chain: ChainSettings
    profile: NetworkProfile = field(init=False)
    rpc: BitcoindRPC = field(init=False)
    virtualchain: VirtualChain = field(init=False)
    store: SqlStateStore = field(init=False)
    on_block: Callable[[ChainBlock], None] | None = None

    def __post_init__(self) -> None:
        if not self.chain.bitcoind:
            raise ConfigError("no bitcoind configured: pass --bitcoind URL or set [chain] bitcoind")
        self.profile = build_profile(self.chain)
        self.rpc = BitcoindRPC(self.chain.bitcoind, cookie_file=self.chain.cookie_file)
        confirmations = self.chain.confirmations or self.profile.min_confirmations
        # Raw blocks scanned locally, fetched ahead on a thread: the fastest correct path
        # (bench/RESULTS.md, "Sync speed as users see it"); it falls back to verbose blocks itself.
        fetcher = BlockFetcher(self.rpc, magic=self.profile.magic, confirmations=confirmations,
                               raw=True, prefetch=SYNC_PREFETCH, block_files=self._block_files())
        store = SqlStateStore(self.db_engine, expiry=expiry_rule(self.profile), network=self.profile.name)
        self.store = store
        self._refuse_snapshot_index()
        self.virtualchain = VirtualChain(
            fetcher, BnsEngine(self.profile, store), store,
            first_block=self.profile.first_block, end_height=self._end_height(),
            end_reason="BNS v1 froze here; its names moved to Stacks 2.0",
            on_block=lambda block, _outcome: self.on_block(block) if self.on_block else None,
        )

    def _block_files(self) -> BlockFiles | None:
        """bitcoind's blk*.dat when its blocks folder is local ([chain] blocks_dir)."""
        if self.chain.blocks_dir is None:
            return None
        try:
            return BlockFiles(self.chain.blocks_dir, self.chain.network.value)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"[chain] blocks_dir: {exc}") from None

    def _end_height(self) -> int | None:
        freeze = self.profile.freeze_height
        return None if freeze is None else freeze - 1

    def _refuse_snapshot_index(self) -> None:
        """A chain-built index never mixes in snapshot data."""
        state = load_state(self.db_engine)
        if state.get("source") == "snapshot":
            raise ConfigError("this data directory holds an imported snapshot; sync into a new --data-dir")
        if state.get("network") and state.get("source") == "chain" and state["network"] != self.profile.name:
            raise ConfigError(f"this index was built from {state['network']}, not {self.profile.name}")

    def sync(self) -> SyncResult:
        self.rpc.check_network(BITCOIND_CHAIN_NAMES.get(self.profile.name, self.profile.name))
        with reported(self.db_engine, "write to", outcome="it keeps its last flushed block"):
            result = self.virtualchain.sync()
            if result.last_block is not None:
                # Undo data deeper than any reorg we would follow only costs disk.
                self.store.discard_undo(result.last_block - self.virtualchain.reorg_limit)
            self.record_tip()
        return result

    def stop(self) -> None:
        """From another thread: end a running sync() after its current block, flushed (clean shutdown)."""
        self.virtualchain.request_stop()

    def record_tip(self) -> int:
        tip = self.virtualchain.fetcher.tip_height()
        save_state_noted(self.db_engine, {"tip": str(tip)})  # servers learn the tip from the change feed
        return tip


class ProgressReporter:
    """A one-line progress bar on a terminal, plain log lines otherwise."""

    def __init__(self, target: int, *, stream: TextIO = sys.stderr, every: float = 1.0) -> None:
        self.target, self.stream, self.every = target, stream, every
        self.started = time.monotonic()
        self.count = 0
        self._last_report = 0.0
        self._tty = stream.isatty()

    def __call__(self, block: ChainBlock) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._last_report < self.every and block.height < self.target:
            return
        self._last_report = now
        rate = self.count / max(now - self.started, 1e-6)
        eta = (self.target - block.height) / rate if rate else 0.0
        line = f"block {block.height}/{self.target}  {rate:.1f} blocks/s  ETA {format_eta(eta)}"
        if self._tty:
            self.stream.write("\r" + line.ljust(60))
            self.stream.flush()
        else:
            log.info("sync: %s", line)

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")


def format_eta(seconds: float) -> str:
    """A wall-time estimate as people read it: 42 s, 7 min 05 s, 14 h 03 min."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
