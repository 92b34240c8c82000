"""Chain-neutral records that flow from the chain backend to a state engine.

The backend (bitcoind RPC today) fills these in; the BNS engine reads them and
never sees JSON-RPC shapes. Scripts are lowercase hex, as bitcoind prints them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TxOutput:
    value_sats: int
    script_hex: str


@dataclass(frozen=True)
class TxInput:
    prev_txid: str
    prev_vout: int
    script_sig_hex: str
    # The output this input spends; None for a coinbase input.
    prevout: TxOutput | None
    witness: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChainTx:
    txid: str
    vtxindex: int
    inputs: tuple[TxInput, ...]
    outputs: tuple[TxOutput, ...]

    @property
    def is_coinbase(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].prevout is None


@dataclass(frozen=True)
class ChainBlock:
    height: int
    block_hash: str
    prev_hash: str
    txs: tuple[ChainTx, ...]
