"""A synthetic regtest chain of realistic blocks for the sync benchmark, built once and cached.

Heights 0..255 are the test builder's coinbase-only premine; from the regtest first BNS
block (256) on, each block holds about `txs` real, signed p2pkh transactions (~1 MB):
1-in/10-out and 2-in/6-out spends among 16 keys, signed with libsecp256k1 (coincurve)
over the legacy SIGHASH_ALL digest, plus BNS ops made by `tests/support/bns_ops` that the
rules accept: the namespace launch, then one op every `op_every` blocks (a name's preorder,
its registration, its update, in turn; mainnet 2016-2020 carried about one per 50 blocks),
or with `--op-every 1` the old dense shape (per block a preorder, the previous block's
registration and the one before's update).  The in-memory engine that followed the build
gives the consensus hash a synced index must end with.

Cache: bench/out/sync-chain-<blocks>x<txs>/ with blocks.hex (one serialized block per
line, genesis first), v3/<height>.json (`getblock <hash> 3` replies, pre-encoded once with
`--v3`: the test server needs ~1.5 ms per tx to build them) and meta.json.

    python bench/sync_chain.py [--blocks 40] [--txs 2000] [--op-every 50] [--v3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import random
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import coincurve
from bitcoin.core import CBlock, CTransaction, b2lx

from bns_resolver.hashing import hash160
from tests.support import bns_ops
from tests.support.bitcoind import BitcoindServer
from tests.support.bitcoind_json import _encode_json

OUT = REPO / "bench" / "out"
FORMAT = 2  # bump when the chain's shape changes, so old caches are not reused
FUNDING_HEIGHTS = range(140, 150)  # premined 50 BTC coinbases the filler economy starts from
RICH_OUTPUTS = 2_400  # fan-out outputs: every block's spends come from earlier blocks
FEE = 2_000


def cache_dir(blocks: int, txs: int, op_every: int) -> Path:
    return OUT / f"sync-chain-{blocks}x{txs}-e{op_every}-v{FORMAT}"


def dsha256(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    return b"\xfe" + n.to_bytes(4, "little")


def _push(data: bytes) -> bytes:
    assert len(data) < 0x4C
    return bytes([len(data)]) + data


class Key:
    def __init__(self, seed: bytes) -> None:
        self.priv = coincurve.PrivateKey(hashlib.sha256(seed).digest())
        self.pub = self.priv.public_key.format(compressed=True)
        self.script = bytes.fromhex("76a914") + hash160(self.pub) + bytes.fromhex("88ac")


class Utxo:
    __slots__ = ("key", "n", "txid", "value")

    def __init__(self, txid: bytes, n: int, value: int, key: Key) -> None:
        self.txid, self.n, self.value, self.key = txid, n, value, key


def signed_tx(inputs: list[Utxo], outputs: list[tuple[int, bytes]]) -> tuple[bytes, bytes]:
    """(serialized tx, txid in internal byte order): legacy p2pkh, SIGHASH_ALL, version 2."""
    outs = _varint(len(outputs)) + b"".join(v.to_bytes(8, "little") + _varint(len(s)) + s for v, s in outputs)
    tail = outs + b"\x00\x00\x00\x00"
    prevouts = [u.txid + u.n.to_bytes(4, "little") for u in inputs]
    seq = b"\xff\xff\xff\xff"
    script_sigs = []
    for i, utxo in enumerate(inputs):
        ins = b"".join(p + (_varint(len(utxo.key.script)) + utxo.key.script if j == i else b"\x00") + seq
                       for j, p in enumerate(prevouts))
        digest = dsha256(b"\x02\x00\x00\x00" + _varint(len(inputs)) + ins + tail + b"\x01\x00\x00\x00")
        sig = utxo.key.priv.sign(digest, hasher=None) + b"\x01"
        script_sigs.append(_push(sig) + _push(utxo.key.pub))
    ins = b"".join(p + _varint(len(s)) + s + seq for p, s in zip(prevouts, script_sigs))
    raw = b"\x02\x00\x00\x00" + _varint(len(inputs)) + ins + tail
    return raw, dsha256(raw)


class FillerEconomy:
    """Plain payments among a few keys: each tx spends one 'rich' output (and sometimes a
    small one) from earlier blocks, pays 9 (or 5) small outputs and returns the change."""

    def __init__(self, miner: Any, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.keys = [Key(f"bench sync key {i}".encode()) for i in range(16)]
        self.miner = Key(b"")  # replaced below: the builder's miner key signs the funding
        self.miner.priv = coincurve.PrivateKey(bytes(miner.secret)[:32])
        self.miner.pub = bytes(miner.secret.pub)
        self.miner.script = bytes(miner.script_pubkey)
        self.rich: deque[Utxo] = deque()
        self.small: deque[Utxo] = deque()

    def fan_out(self, coinbases: list[tuple[bytes, int]]) -> list[bytes]:
        """Split premined coinbases into RICH_OUTPUTS outputs (txs for the first block)."""
        raws, per_tx = [], -(-RICH_OUTPUTS // len(coinbases))
        for txid, value in coinbases:
            share = (value - FEE) // per_tx
            outputs = [(share, self.keys[i % 16].script) for i in range(per_tx)]
            raw, new_txid = signed_tx([Utxo(txid, 0, value, self.miner)], outputs)
            self.rich.extend(Utxo(new_txid, n, share, self.keys[n % 16]) for n in range(per_tx))
            raws.append(raw)
        return raws

    def payments(self, count: int) -> list[bytes]:
        made, change_later = [], []
        for _ in range(count):
            inputs = [self.rich.popleft()]
            two = len(self.small) > 4 * count and self.rng.random() < 0.25
            if two:
                inputs.append(self.small.popleft())
            pays = [(self.rng.randrange(600, 5_000), self.rng.choice(self.keys)) for _ in range(5 if two else 9)]
            change = sum(u.value for u in inputs) - sum(v for v, _ in pays) - FEE
            if change < 10_000:
                raise RuntimeError("the filler economy ran dry: raise FUNDING_HEIGHTS or lower the payments")
            owner = self.rng.choice(self.keys)
            outputs = [(change, owner.script), *((v, k.script) for v, k in pays)]
            raw, txid = signed_tx(inputs, outputs)
            change_later.append(Utxo(txid, 0, change, owner))
            self.small.extend(Utxo(txid, n + 1, v, k) for n, (v, k) in enumerate(pays))
            made.append(raw)
        self.rich.extend(change_later)  # spendable from the next block on
        return made


class _BnsOnlyOutputs(bns_ops._Outputs):
    """bns_ops' block converter, skipping filler txs (they carry no ops; keeps memory small)."""

    def __init__(self, base: bns_ops._Outputs, fillers: set[int]) -> None:
        self._outs = base._outs
        self.fillers = fillers

    def convert(self, block: CBlock, height: int) -> Any:
        from bns_resolver.chain.types import ChainBlock, ChainTx, TxInput, TxOutput

        txs = []
        for index, tx in enumerate(block.vtx):
            if id(tx) in self.fillers:
                continue
            txid = b2lx(tx.GetTxid())
            inputs = tuple(TxInput(b2lx(i.prevout.hash), i.prevout.n, bytes(i.scriptSig).hex(),
                                   None if index == 0 else self._outs[(b2lx(i.prevout.hash), i.prevout.n)])
                           for i in tx.vin)
            outputs = tuple(TxOutput(o.nValue, bytes(o.scriptPubKey).hex()) for o in tx.vout)
            for n, out in enumerate(outputs):
                self._outs[(txid, n)] = out
            txs.append(ChainTx(txid, index, inputs, outputs))
        return ChainBlock(height, b2lx(block.GetHash()), b2lx(block.hashPrevBlock), tuple(txs))


def _queue_bns_ops(chain: bns_ops.BnsChain, step: int, owners: list[tuple[str, Any]]) -> None:
    """A few ops per block: fund an owner, preorder its name, register last block's, update the one before."""
    ns = bns_ops.NAMESPACE
    label = f"bench{step:04d}x"
    owner = chain.wallet(f"bench-owner{step}", 5_000_000)
    bns_ops.preorder(chain, owner, f"{label}.{ns}")
    if len(owners) >= 1:
        prev_label, prev_owner = owners[-1]
        bns_ops.register(chain, prev_owner, f"{prev_label}.{ns}")
    if len(owners) >= 2:
        old_label, old_owner = owners[-2]
        content = bns_ops.zonefile(f"{old_label}.{ns}", "192.0.2.7")
        bns_ops.update(chain, old_owner, f"{old_label}.{ns}", bns_ops.zonefile_hash(content))
    owners.append((label, owner))


def _queue_sparse_op(chain: bns_ops.BnsChain, step: int, owners: list[tuple[str, Any]]) -> None:
    """One op per call, in turn: preorder a new name, register it, update it."""
    ns = bns_ops.NAMESPACE
    if step % 3 == 0:
        label = f"bench{step // 3:04d}x"
        owner = chain.wallet(f"bench-owner{step // 3}", 5_000_000)
        bns_ops.preorder(chain, owner, f"{label}.{ns}")
        owners.append((label, owner))
        return
    label, owner = owners[-1]
    if step % 3 == 1:
        bns_ops.register(chain, owner, f"{label}.{ns}")
    else:
        content = bns_ops.zonefile(f"{label}.{ns}", "192.0.2.7")
        bns_ops.update(chain, owner, f"{label}.{ns}", bns_ops.zonefile_hash(content))


def _queue_ops(chain: bns_ops.BnsChain, index: int, op_every: int, owners: list[tuple[str, Any]]) -> None:
    if op_every <= 1:
        _queue_bns_ops(chain, index, owners)
    elif (index - 3) % op_every == 0:
        _queue_sparse_op(chain, (index - 3) // op_every, owners)


def build(blocks: int, txs: int, op_every: int) -> dict[str, Any]:
    started = time.monotonic()
    chain = bns_ops.BnsChain()
    builder = chain.chain
    first = chain.profile.first_block
    fillers: set[int] = set()
    chain._outputs = _BnsOnlyOutputs(chain._outputs, fillers)
    economy = FillerEconomy(builder.miner)
    coinbases = [(builder.blocks[h].vtx[0].GetTxid(), builder.blocks[h].vtx[0].vout[0].nValue)
                 for h in FUNDING_HEIGHTS]
    reserved = {(txid, 0) for txid, _ in coinbases}
    owners: list[tuple[str, Any]] = []
    keep: list[CTransaction] = []  # filler objects stay alive, so their ids stay unique
    for index in range(blocks):
        height = builder.height + 1
        if index == 0:
            creator, revealer = chain.wallet("creator", 100_000_000), chain.wallet("revealer", 10_000_000)
            bns_ops.namespace_preorder(chain, creator, bns_ops.NAMESPACE, revealer)
        elif index == 1:
            bns_ops.namespace_reveal(chain, creator, bns_ops.NAMESPACE, revealer)
        elif index == 2:
            bns_ops.namespace_ready(chain, revealer, bns_ops.NAMESPACE)
        else:
            _queue_ops(chain, index, op_every, owners)
        for tx in builder.mempool:
            assert not any((i.prevout.hash, i.prevout.n) in reserved for i in tx.vin), "BNS spent a reserved coinbase"
        raws = economy.fan_out(coinbases) if index == 0 else []
        raws += economy.payments(txs - 1 - len(builder.mempool) - len(raws))
        filler_txs = [CTransaction.deserialize(raw) for raw in raws]
        fillers.update(id(tx) for tx in filler_txs)
        keep.extend(filler_txs)
        builder.mempool.extend(filler_txs)
        chain.mine()
        accepted = chain.accepted(height)
        print(f"block {height}: {len(builder.blocks[-1].vtx)} txs, {len(builder.blocks[-1].serialize()):,} B, "
              f"accepted {accepted}", file=sys.stderr)
    tip = builder.height
    return {"chain": chain, "first_block": first, "tip": tip, "build_seconds": time.monotonic() - started}


_SERVER: BitcoindServer | None = None  # set before the pool forks: workers inherit it


def _encode_v3(args: tuple[str, Path]) -> int:
    block_hash, path = args
    assert _SERVER is not None
    data = _encode_json(_SERVER.rpc_getblock(block_hash, 3))
    path.write_bytes(data)
    return len(data)


def write_cache(built: dict[str, Any], folder: Path, txs: int, with_v3: bool) -> dict[str, Any]:
    chain, first, tip = built["chain"], built["first_block"], built["tip"]
    folder.mkdir(parents=True, exist_ok=True)
    all_blocks = chain.blocks
    with open(folder / "blocks.hex.tmp", "w") as out:
        out.writelines(block.serialize().hex() + "\n" for block in all_blocks)
    global _SERVER
    _SERVER = BitcoindServer(chain="regtest")
    _SERVER.set_chain(all_blocks)
    started = time.monotonic()
    v3_sizes: list[int] = []
    if with_v3:
        (folder / "v3").mkdir(exist_ok=True)
        jobs = [(b2lx(all_blocks[h].GetHash()), folder / "v3" / f"{h}.json") for h in range(first, tip + 1)]
        with multiprocessing.get_context("fork").Pool(2) as pool:
            v3_sizes = pool.map(_encode_v3, jobs, chunksize=1)
    accepted = sum(len(chain.accepted(h)) for h in range(first, tip + 1))
    meta = {
        "format": FORMAT, "first_block": first, "tip": tip, "txs_per_block": txs, "v3": with_v3,
        "blocks": tip - first + 1,
        "block_bytes": sum(len(all_blocks[h].serialize()) for h in range(first, tip + 1)),
        "tx_count": sum(len(all_blocks[h].vtx) for h in range(first, tip + 1)),
        "v3_json_bytes": sum(v3_sizes), "accepted_ops": accepted,
        "expected_consensus_hash": chain.consensus_hash(tip),
        "build_seconds": round(built["build_seconds"] + time.monotonic() - started, 1),
    }
    (folder / "blocks.hex.tmp").rename(folder / "blocks.hex")
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def ensure_chain(blocks: int, txs: int, op_every: int = 50, with_v3: bool = False) -> tuple[Path, dict[str, Any]]:
    """The cached chain's folder and meta, building it first if needed (again when the cached one
    lacks the verbosity-3 replies asked for)."""
    folder = cache_dir(blocks, txs, op_every)
    if (folder / "meta.json").exists():
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("v3") or not with_v3:
            return folder, meta
    print(f"building the synthetic chain ({blocks} blocks x {txs} txs, a BNS op every {op_every}) into "
          f"{folder} ...", file=sys.stderr)
    meta = write_cache(build(blocks, txs, op_every), folder, txs, with_v3)
    return folder, meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--txs", type=int, default=2000)
    parser.add_argument("--op-every", type=int, default=50, help="blocks per BNS op (1: the old dense shape)")
    parser.add_argument("--v3", action="store_true", help="also pre-encode the verbosity-3 replies")
    args = parser.parse_args()
    folder, meta = ensure_chain(args.blocks, args.txs, args.op_every, args.v3)
    print(folder)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
