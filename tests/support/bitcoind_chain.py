"""The regtest node's chain state: the active chain, every block it saw, and a txindex."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bitcoin.core import CBlock, CTransaction, b2lx

from tests.support.bitcoind_json import Prevout, txid_bytes


def bits_target(bits: int) -> int:
    return (bits & 0xFFFFFF) << (8 * ((bits >> 24) - 3))


def difficulty(bits: int) -> float:
    return bits_target(0x1D00FFFF) / bits_target(bits)


class NodeChain:
    """The node's view: an active chain plus every block it ever saw (stale ones too)."""

    def __init__(self) -> None:
        self.active: list[CBlock] = []
        self.hashes: list[str] = []
        self.known: dict[str, CBlock] = {}
        self.known_height: dict[str, int] = {}
        self.txindex: dict[str, tuple[CTransaction, int, int]] = {}  # txid -> (tx, height, pos)
        self.external: dict[tuple[str, int], tuple[bytes, int]] = {}

    def set_active(self, blocks: Sequence[CBlock]) -> None:
        self.active = list(blocks)
        self.hashes = [b2lx(b.GetHash()) for b in self.active]
        self.txindex = {}
        for height, (block, block_hash) in enumerate(zip(self.active, self.hashes)):
            self.known[block_hash] = block
            self.known_height[block_hash] = height
            for pos, tx in enumerate(block.vtx):
                self.txindex[b2lx(txid_bytes(tx))] = (tx, height, pos)

    def height_of(self, block_hash: str) -> int | None:
        height = self.known_height.get(block_hash)
        if height is None or height >= len(self.hashes) or self.hashes[height] != block_hash:
            return None
        return height

    def prevout(self, txid: str, vout: int) -> Prevout | None:
        found = self.txindex.get(txid)
        if found is not None:
            tx, height, pos = found
            out = tx.vout[vout]
            return Prevout(bytes(out.scriptPubKey), out.nValue, height, pos == 0)
        ext = self.external.get((txid, vout))
        if ext is not None:
            return Prevout(ext[0], ext[1], 0, False)
        return None

    def prevouts(self, tx: CTransaction) -> list[Prevout | None]:
        if tx.is_coinbase():
            return [None]
        return [self.prevout(b2lx(i.prevout.hash), i.prevout.n) for i in tx.vin]

    def median_time(self, height: int) -> int:
        times = [b.nTime for b in self.active[max(0, height - 10): height + 1]]
        return int(statistics.median_low(sorted(times)))

    def chainwork(self, height: int) -> str:
        work = sum((1 << 256) // (bits_target(b.nBits) + 1) for b in self.active[: height + 1])
        return f"{work:064x}"
