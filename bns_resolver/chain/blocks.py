"""bitcoind block JSON -> ChainBlock, keeping only transactions that can carry an op.

A transaction is a *candidate* when one of its outputs is exactly `OP_RETURN <one push>`
whose data starts with the magic bytes (virtualchain's nulldata rule, bns-v1.md §1.1).
This is a superset filter: the engine still applies the exact rules (last OP_RETURN
wins, opcode byte, sender types).  Dropping the rest keeps vtxindex = the real position.

Senders need each input's spent output.  `getblock <hash> 3` (nodes with prevout
support) carries it as `vin[].prevout`; older nodes get verbosity 2 semantics, and the
missing prevouts come from the block itself or from batched `getrawtransaction <txid> 1`
(which needs -txindex), fetched only for the inputs of transactions we keep.

The raw path (`scan_raw_block`, `BlockDecoder.decode_raw`) walks serialized blocks
without decoding them, hashes only candidate txs, and asks the node for just those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from bns_resolver.chain.types import ChainBlock, ChainTx, TxInput, TxOutput
from bns_resolver.errors import ChainError
from bns_resolver.hashing import dsha256

MAGIC = b"id"
COIN = 100_000_000
NULL_TXID = "00" * 32
_PUSHDATA_WIDTH = {0x4C: 1, 0x4D: 2, 0x4E: 4}

Outpoint = tuple[str, int]


class RawTxSource(Protocol):
    def getrawtransactions(self, txids: Sequence[str]) -> list[dict[str, Any]]: ...
    def getrawtransactions_in_block(self, pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]: ...


def btc_to_sats(value: Decimal | float | str) -> int:
    """An amount as bitcoind prints it (BTC, 8 decimals) -> satoshis, exactly."""
    if isinstance(value, bool):
        raise ChainError(f"not an amount: {value!r}")
    amount = Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
    sats = amount * COIN
    if sats != sats.to_integral_value():
        raise ChainError(f"amount {value!r} is not a whole number of satoshis")
    return int(sats)


def op_return_data(script: bytes) -> bytes | None:
    """The data of a script that is exactly `OP_RETURN <one push>`, else None."""
    if len(script) < 2 or script[0] != 0x6A:
        return None
    op = script[1]
    if 0x01 <= op <= 0x4B:
        start, size = 2, op
    elif op in _PUSHDATA_WIDTH:
        width = _PUSHDATA_WIDTH[op]
        start, size = 2 + width, int.from_bytes(script[2: 2 + width], "little")
    else:
        return None
    if len(script) != start + size:
        return None
    return script[start:]


def is_candidate(tx: Mapping[str, Any], magic: bytes = MAGIC) -> bool:
    """Does some output of this verbose tx look like `OP_RETURN <magic...>`?"""
    for vout in tx["vout"]:
        script_hex: str = vout["scriptPubKey"]["hex"]
        if script_hex.startswith("6a"):
            data = op_return_data(bytes.fromhex(script_hex))
            if data is not None and data.startswith(magic):
                return True
    return False


def _is_coinbase_vin(vin: Mapping[str, Any]) -> bool:
    return "coinbase" in vin


def _output(vout: Mapping[str, Any]) -> TxOutput:
    return TxOutput(btc_to_sats(vout["value"]), vout["scriptPubKey"]["hex"])


def _input(vin: Mapping[str, Any], prevouts: Mapping[Outpoint, TxOutput]) -> TxInput:
    witness = tuple(vin.get("txinwitness", ()))
    if _is_coinbase_vin(vin):
        return TxInput(NULL_TXID, 0xFFFFFFFF, vin["coinbase"], None, witness)
    outpoint = (vin["txid"], vin["vout"])
    if "prevout" in vin:
        prevout = TxOutput(btc_to_sats(vin["prevout"]["value"]), vin["prevout"]["scriptPubKey"]["hex"])
    elif outpoint in prevouts:
        prevout = prevouts[outpoint]
    else:
        raise ChainError(f"no spent output known for input {outpoint[0]}:{outpoint[1]}")
    return TxInput(outpoint[0], outpoint[1], vin["scriptSig"]["hex"], prevout, witness)


def decode_tx(tx: Mapping[str, Any], vtxindex: int, prevouts: Mapping[Outpoint, TxOutput] = {}) -> ChainTx:
    """One verbose tx -> ChainTx; inputs without `prevout` are looked up in `prevouts`."""
    return ChainTx(
        txid=tx["txid"],
        vtxindex=vtxindex,
        inputs=tuple(_input(vin, prevouts) for vin in tx["vin"]),
        outputs=tuple(_output(vout) for vout in tx["vout"]),
    )


def selected_txs(block: Mapping[str, Any], *, magic: bytes = MAGIC,
                 keep_all: bool = False) -> list[tuple[int, Mapping[str, Any]]]:
    """(vtxindex, tx) of the transactions a ChainBlock keeps."""
    txs = block["tx"]
    if txs and isinstance(txs[0], str):
        raise ChainError(f"block {block.get('hash')} came without transaction details (verbosity < 2)")
    return [(i, tx) for i, tx in enumerate(txs) if keep_all or is_candidate(tx, magic)]


def missing_prevouts(txs: Iterable[tuple[int, Mapping[str, Any]]]) -> set[Outpoint]:
    """Outpoints spent by these txs that the node did not describe (no verbosity 3)."""
    return {
        (vin["txid"], vin["vout"])
        for _, tx in txs
        for vin in tx["vin"]
        if not _is_coinbase_vin(vin) and "prevout" not in vin
    }


def decode_block(block: Mapping[str, Any], *, magic: bytes = MAGIC, keep_all: bool = False,
                 prevouts: Mapping[Outpoint, TxOutput] = {}) -> ChainBlock:
    """Verbose block JSON -> ChainBlock (candidates only unless `keep_all`)."""
    return _chain_block(block, selected_txs(block, magic=magic, keep_all=keep_all), prevouts)


def _chain_block(block: Mapping[str, Any], txs: Iterable[tuple[int, Mapping[str, Any]]],
                 prevouts: Mapping[Outpoint, TxOutput]) -> ChainBlock:
    return ChainBlock(
        height=block["height"],
        block_hash=block["hash"],
        prev_hash=block.get("previousblockhash", NULL_TXID),
        txs=tuple(decode_tx(tx, i, prevouts) for i, tx in txs),
    )


class BlockDecoder:
    """Decodes batches of verbose blocks, fetching prevouts an old node did not include."""

    def __init__(self, rpc: RawTxSource, *, magic: bytes = MAGIC, keep_all: bool = False) -> None:
        self._rpc, self.magic, self.keep_all = rpc, magic, keep_all

    def decode(self, blocks: Sequence[Mapping[str, Any]]) -> list[ChainBlock]:
        selected = [selected_txs(b, magic=self.magic, keep_all=self.keep_all) for b in blocks]
        wanted = set().union(*(missing_prevouts(s) for s in selected)) if selected else set()
        prevouts = self._resolve(wanted, blocks) if wanted else {}
        # The selection above is reused: scanning every tx's outputs twice cost 5 % of a sync.
        return [_chain_block(b, txs, prevouts) for b, txs in zip(blocks, selected)]

    def decode_raw(self, raw_blocks: Sequence[str | bytes], heights: Sequence[int]) -> list[ChainBlock]:
        """Raw blocks (getblock verbosity 0 hex, or bytes read from block files): scan locally,
        then fetch only the candidates, with prevouts, via `getrawtransaction <txid> 2 <blockhash>`
        (no -txindex needed)."""
        if self.keep_all:
            raise ValueError("keep_all needs verbose blocks: every tx would have to be fetched")
        scans = [scan_raw_block(bytes.fromhex(raw) if isinstance(raw, str) else raw, self.magic)
                 for raw in raw_blocks]
        pairs = [(txid, scan.block_hash) for scan in scans for _, txid in scan.candidates]
        fetched = self._rpc.getrawtransactions_in_block(pairs) if pairs else []
        by_txid = {tx["txid"]: tx for tx in fetched}
        selected = [(i, by_txid[txid]) for scan in scans for i, txid in scan.candidates]
        wanted = missing_prevouts(selected)
        prevouts = self._resolve(wanted, [{"tx": fetched}]) if wanted else {}
        return [
            ChainBlock(height, scan.block_hash, scan.prev_hash,
                       tuple(decode_tx(by_txid[txid], i, prevouts) for i, txid in scan.candidates))
            for scan, height in zip(scans, heights, strict=True)
        ]

    def _resolve(self, wanted: set[Outpoint],
                 blocks: Sequence[Mapping[str, Any]]) -> dict[Outpoint, TxOutput]:
        found = _outputs_in_blocks(wanted, blocks)
        txids = sorted({txid for txid, _ in wanted - found.keys()})
        for tx in self._rpc.getrawtransactions(txids) if txids else ():
            found.update(_outputs_of(tx, wanted))
        return found


def _outputs_of(tx: Mapping[str, Any], wanted: set[Outpoint]) -> dict[Outpoint, TxOutput]:
    return {(tx["txid"], n): _output(v) for n, v in enumerate(tx["vout"]) if (tx["txid"], n) in wanted}


def _outputs_in_blocks(wanted: set[Outpoint],
                       blocks: Sequence[Mapping[str, Any]]) -> dict[Outpoint, TxOutput]:
    wanted_txids = {txid for txid, _ in wanted}
    found: dict[Outpoint, TxOutput] = {}
    for block in blocks:
        for tx in block["tx"]:
            if tx["txid"] in wanted_txids:
                found.update(_outputs_of(tx, wanted))
    return found


# -- raw blocks ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RawScan:
    block_hash: str
    prev_hash: str
    candidates: tuple[tuple[int, str], ...]  # (vtxindex, txid)


def scan_raw_block(raw: bytes, magic: bytes = MAGIC) -> RawScan:
    """Walk a serialized block without decoding it; hash only the candidate txs."""
    if len(raw) < 81:
        raise ChainError("serialized block is shorter than its header")
    candidates = []
    try:
        count, offset = _varint(raw, 80)
        for vtxindex in range(count):
            offset, txid = _scan_tx(raw, offset, magic)
            if txid is not None:
                candidates.append((vtxindex, txid))
    except IndexError:
        raise ChainError("serialized block ends inside a transaction") from None
    if offset != len(raw):
        raise ChainError(f"serialized block has {len(raw) - offset} bytes after its last tx")
    return RawScan(dsha256(raw[:80])[::-1].hex(), raw[4:36][::-1].hex(), tuple(candidates))


def _varint(raw: bytes, offset: int) -> tuple[int, int]:
    first = raw[offset]
    if first < 0xFD:
        return first, offset + 1
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    return int.from_bytes(raw[offset + 1: offset + 1 + width], "little"), offset + 1 + width


def _scan_tx(raw: bytes, start: int, magic: bytes) -> tuple[int, str | None]:
    """(offset after the tx, its txid if some output is `OP_RETURN <magic...>`)."""
    offset = start + 4
    segwit = raw[offset] == 0 and raw[offset + 1] == 1  # BIP144 marker and flag
    if segwit:
        offset += 2
    body = offset
    inputs, offset = _varint(raw, offset)
    for _ in range(inputs):
        size, offset = _varint(raw, offset + 36)
        offset += size + 4
    outputs, offset = _varint(raw, offset)
    candidate = False
    for _ in range(outputs):
        size, offset = _varint(raw, offset + 8)
        if not candidate and raw[offset] == 0x6A:
            data = op_return_data(raw[offset: offset + size])
            candidate = data is not None and data.startswith(magic)
        offset += size
    body_end = offset
    if segwit:
        for _ in range(inputs):
            items, offset = _varint(raw, offset)
            for _ in range(items):
                size, offset = _varint(raw, offset)
                offset += size
    end = offset + 4
    if end > len(raw):
        raise ChainError("serialized block ends inside a transaction")
    if not candidate:
        return end, None
    stripped = raw[start: start + 4] + raw[body: body_end] + raw[end - 4: end]
    return end, dsha256(stripped)[::-1].hex()
