"""Regtest chains built from real, signed Bitcoin transactions (python-bitcoinlib).

`ChainBuilder` keeps a block list, a mempool and a small UTXO set of its own test
wallets, so tests can write scenarios the way the reference's integration tests did:
fund a wallet, send an `OP_RETURN` payload, mine, fork.  Blocks have correct txids,
merkle roots, header hashes and (cheap at regtest difficulty) real proof of work.

`corpus_chain` turns a recorded consensus-corpus scenario into the same kind of chain:
coinbase-only blocks up to the scenario's first block, then each recorded raw tx at its
recorded vtxindex.  The funding outputs the recording does not contain come back as
`external_prevouts`, which the test bitcoind serves as `vin[].prevout`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bitcoin
from bitcoin.core import (
    CBlock,
    CBlockHeader,
    CMutableTransaction,
    CMutableTxIn,
    CMutableTxOut,
    CoreMainParams,
    CoreRegTestParams,
    CoreTestNetParams,
    COutPoint,
    CTransaction,
    CTxOut,
    b2lx,
)
from bitcoin.core.script import (
    OP_0,
    OP_RETURN,
    OP_TRUE,
    SIGHASH_ALL,
    CScript,
    CScriptInvalidError,
    SignatureHash,
)
from bitcoin.wallet import CBitcoinSecret, P2PKHBitcoinAddress

from bns_resolver.hashing import hash160
from tests.support.bitcoind_json import txid_bytes

COIN = 100_000_000
REGTEST_BITS = 0x207FFFFF
COINBASE_MATURITY = 100
DEFAULT_FEE = 10_000

_PARAMS = {"regtest": CoreRegTestParams, "main": CoreMainParams, "test": CoreTestNetParams}
_PREFIX_CACHE: dict[tuple[str, int, bytes, int], tuple[CBlock, ...]] = {}
_BITCOINLIB_NAME = {"regtest": "regtest", "main": "mainnet", "test": "testnet"}


def _target(bits: int) -> int:
    return (bits & 0xFFFFFF) << (8 * ((bits >> 24) - 3))


@dataclass(frozen=True)
class Wallet:
    """A p2pkh key the builder can spend from."""

    label: str
    secret: CBitcoinSecret

    @property
    def pubkey(self) -> bytes:
        return bytes(self.secret.pub)

    @property
    def script_pubkey(self) -> CScript:
        return CScript(bytes.fromhex("76a914") + hash160(self.pubkey) + bytes.fromhex("88ac"))

    @property
    def address(self) -> str:
        return str(P2PKHBitcoinAddress.from_pubkey(self.secret.pub))


@dataclass
class _Utxo:
    outpoint: COutPoint
    txout: CTxOut
    owner: Wallet
    height: int | None  # None while in the mempool
    coinbase: bool


@dataclass
class ChainBuilder:
    """Builds a regtest chain on top of the real regtest genesis block."""

    network: str = "regtest"
    premine: int = COINBASE_MATURITY + 1
    branch_tag: bytes = b""
    start_time: int = 1_600_000_000
    blocks: list[CBlock] = field(default_factory=list)
    mempool: list[CTransaction] = field(default_factory=list)
    external_prevouts: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bitcoin.SelectParams(_BITCOINLIB_NAME[self.network])
        self._wallets: dict[bytes, Wallet] = {}
        self._utxos: dict[COutPoint, _Utxo] = {}
        self._outputs: dict[COutPoint, CTxOut] = {}
        self._wallet_counter = 0
        self.miner = self.new_wallet("miner")
        if not self.blocks:
            self.blocks.extend(self._premined_prefix())
            self._replay_utxos()

    # -- chain facts -------------------------------------------------------------------
    @property
    def height(self) -> int:
        return len(self.blocks) - 1

    @property
    def tip_hash(self) -> str:
        return b2lx(self.blocks[-1].GetHash())

    def block_hash(self, height: int) -> str:
        return b2lx(self.blocks[height].GetHash())

    # -- wallets -------------------------------------------------------------------
    def new_wallet(self, label: str | None = None) -> Wallet:
        """A deterministic key (same label sequence -> same keys, across builders)."""
        self._wallet_counter += 1
        label = label or f"wallet{self._wallet_counter}"
        seed = hashlib.sha256(f"bns-resolver test key {label}".encode()).digest()
        wallet = Wallet(label, CBitcoinSecret.from_secret_bytes(seed))
        self._wallets[bytes(wallet.script_pubkey)] = wallet
        return wallet

    def balance(self, wallet: Wallet) -> int:
        return sum(u.txout.nValue for u in self._spendable(wallet))

    # -- transactions ----------------------------------------------------------------
    def fund(self, wallet: Wallet, sats: int, *, fee: int = DEFAULT_FEE) -> CTransaction:
        """Queue a miner -> wallet payment of `sats` (a p2pkh output)."""
        return self.spend(self.miner, [(wallet.script_pubkey, sats)], fee=fee)

    def spend(
        self,
        wallet: Wallet,
        outputs: Sequence[tuple[CScript | bytes | str, int]],
        *,
        fee: int = DEFAULT_FEE,
    ) -> CTransaction:
        """Queue a signed p2pkh spend from `wallet` with change back to it."""
        txouts = [CMutableTxOut(sats, _script(script)) for script, sats in outputs]
        need = sum(o.nValue for o in txouts) + fee
        chosen, total = self._select(wallet, need)
        if total > need:
            txouts.append(CMutableTxOut(total - need, wallet.script_pubkey))
        tx = CMutableTransaction([CMutableTxIn(u.outpoint) for u in chosen], txouts)
        for index, utxo in enumerate(chosen):
            sighash = SignatureHash(utxo.txout.scriptPubKey, tx, index, SIGHASH_ALL)
            sig = wallet.secret.sign(sighash) + bytes([SIGHASH_ALL])
            tx.vin[index].scriptSig = CScript([sig, wallet.pubkey])
        return self.add_tx(CTransaction.from_tx(tx))

    def op_return_tx(
        self,
        wallet: Wallet,
        payload: bytes,
        extra_outputs: Sequence[tuple[CScript | bytes | str, int]] = (),
        *,
        fee: int = DEFAULT_FEE,
    ) -> CTransaction:
        """Queue a tx whose output 0 is `OP_RETURN <payload>`, then `extra_outputs`, then change."""
        outputs = [(CScript([OP_RETURN, payload]), 0), *extra_outputs]
        return self.spend(wallet, outputs, fee=fee)

    def add_tx(self, tx: CTransaction) -> CTransaction:
        """Queue any transaction; outputs paying a builder wallet become spendable."""
        tx = CTransaction.from_tx(tx)
        self.mempool.append(tx)
        self._apply_tx(tx, height=None, coinbase=False)
        return tx

    # -- mining ----------------------------------------------------------------------
    def mine(self, count: int = 1) -> list[CBlock]:
        """Mine `count` blocks; the first one takes the whole mempool."""
        mined = []
        for _ in range(count):
            txs, self.mempool = self.mempool, []
            mined.append(self._mine_block(txs))
        return mined

    def mine_at_positions(self, txs_at: Mapping[int, CTransaction]) -> CBlock:
        """Mine one block with each tx at the given vtxindex (>= 1); gaps get filler txs."""
        if self.mempool:
            raise ValueError("mine_at_positions needs an empty mempool")
        last = max(txs_at, default=0)
        txs = [txs_at.get(i) or self._filler_tx(i) for i in range(1, last + 1)]
        for tx in txs:
            self._apply_tx(tx, height=None, coinbase=False)
        return self._mine_block(txs)

    def fork(self, depth: int, *, tag: bytes = b"fork") -> ChainBuilder:
        """A builder for a competing branch that drops the last `depth` blocks.

        Blocks it mines differ from this builder's (the tag goes into each coinbase),
        so even empty blocks get new hashes.
        """
        if not 0 < depth <= self.height:
            raise ValueError(f"cannot fork {depth} blocks deep at height {self.height}")
        branch = ChainBuilder(
            network=self.network,
            premine=0,
            branch_tag=self.branch_tag + tag,
            start_time=self.start_time + 7,
            blocks=list(self.blocks[: len(self.blocks) - depth]),
            external_prevouts=dict(self.external_prevouts),
        )
        for wallet in self._wallets.values():
            branch._wallets.setdefault(bytes(wallet.script_pubkey), wallet)
        branch._wallet_counter = self._wallet_counter
        branch._replay_utxos()
        return branch

    # -- internals ----------------------------------------------------------------------
    def _subsidy(self, height: int) -> int:
        return (50 * COIN) >> (height // _PARAMS[self.network].SUBSIDY_HALVING_INTERVAL)

    def _coinbase(self, height: int, fees: int) -> CTransaction:
        script_sig = CScript([height, OP_0] + ([self.branch_tag] if self.branch_tag else []))
        txin = CMutableTxIn(COutPoint(), script_sig, nSequence=0xFFFFFFFF)
        txout = CMutableTxOut(self._subsidy(height) + fees, self.miner.script_pubkey)
        return CTransaction([txin], [txout])

    def _mine_block(self, txs: Sequence[CTransaction]) -> CBlock:
        height = len(self.blocks)
        coinbase = self._coinbase(height, self._fees(txs))
        vtx = [coinbase, *txs]
        merkle_root = CBlock(vtx=vtx).calc_merkle_root()
        prev = self.blocks[-1].GetHash()
        ntime = max(self.start_time + 600 * height, self.blocks[-1].nTime + 1)
        nonce = 0
        while True:  # ~2 tries on average at regtest difficulty
            header = CBlockHeader(0x20000000, prev, merkle_root, ntime, REGTEST_BITS, nonce)
            if int.from_bytes(header.GetHash(), "little") <= _target(REGTEST_BITS):
                break
            nonce += 1
        block = CBlock(0x20000000, prev, merkle_root, ntime, REGTEST_BITS, nonce, vtx)
        self.blocks.append(block)
        self._confirm(txs, height)
        self._apply_tx(coinbase, height=height, coinbase=True)
        return block

    def _fees(self, txs: Iterable[CTransaction]) -> int:
        fees = 0
        for tx in txs:
            spent = [self._prev_value(i.prevout) for i in tx.vin]
            if None in spent:
                continue  # unknown funding (a corpus tx): leave its fee out
            fees += sum(v for v in spent if v is not None) - sum(o.nValue for o in tx.vout)
        return max(fees, 0)

    def _prev_value(self, outpoint: COutPoint) -> int | None:
        known = self._outputs.get(outpoint)
        return known.nValue if known is not None else None

    def _premined_prefix(self) -> list[CBlock]:
        # Coinbase-only blocks are deterministic, so every builder shares one copy.
        key = (self.network, self.premine, self.branch_tag, self.start_time)
        if key not in _PREFIX_CACHE:
            self.blocks.append(_PARAMS[self.network].GENESIS_BLOCK)
            self.mine(self.premine)
            _PREFIX_CACHE[key] = tuple(self.blocks)
            self.blocks.clear()
        return list(_PREFIX_CACHE[key])

    def _apply_tx(self, tx: CTransaction, *, height: int | None, coinbase: bool) -> None:
        txid = txid_bytes(tx)
        for txin in tx.vin:
            self._utxos.pop(txin.prevout, None)
        for n, txout in enumerate(tx.vout):
            outpoint = COutPoint(txid, n)
            self._outputs[outpoint] = txout
            owner = self._wallets.get(bytes(txout.scriptPubKey))
            if owner is not None:
                self._utxos[outpoint] = _Utxo(outpoint, txout, owner, height, coinbase)

    def _confirm(self, txs: Iterable[CTransaction], height: int) -> None:
        for tx in txs:
            txid = txid_bytes(tx)
            for n in range(len(tx.vout)):
                utxo = self._utxos.get(COutPoint(txid, n))
                if utxo is not None:
                    utxo.height = height

    def _replay_utxos(self) -> None:
        self._utxos.clear()
        self._outputs.clear()
        for height, block in enumerate(self.blocks[1:], start=1):
            for index, tx in enumerate(block.vtx):
                self._apply_tx(tx, height=height, coinbase=index == 0)

    def _spendable(self, wallet: Wallet) -> list[_Utxo]:
        next_height = len(self.blocks)
        return [
            u
            for u in self._utxos.values()
            if u.owner == wallet
            and not (u.coinbase and next_height - (u.height or 0) < COINBASE_MATURITY)
        ]

    def _select(self, wallet: Wallet, need: int) -> tuple[list[_Utxo], int]:
        chosen, total = [], 0
        for utxo in sorted(self._spendable(wallet), key=lambda u: -u.txout.nValue):
            chosen.append(utxo)
            total += utxo.txout.nValue
            if total >= need:
                return chosen, total
        raise ValueError(f"{wallet.label} has {total} sats spendable, needs {need}")

    def _filler_tx(self, index: int) -> CTransaction:
        # A stand-in for a tx the recording did not keep: no OP_RETURN, unique outpoint.
        seed = hashlib.sha256(b"filler" + self.branch_tag + index.to_bytes(4, "big")).digest()
        txin = CMutableTxIn(COutPoint(seed, 0), CScript([b"\x00" * 8]))
        return CTransaction([txin], [CMutableTxOut(1000, CScript([OP_TRUE]))])


def _script(script: CScript | bytes | str) -> CScript:
    return CScript(bytes.fromhex(script) if isinstance(script, str) else script)


# -- recorded corpus scenarios --------------------------------------------------------------
def derive_prevout_script(script_sig: bytes, witness: Sequence[bytes] = ()) -> bytes | None:
    """The spent scriptPubKey an input implies (the corpus README's rule, plus native segwit).

    p2pkh: scriptSig is (sig, 33/65-byte pubkey); p2sh: the last push is the redeem script
    (a lone push, or after OP_0 for multisig); p2wpkh/p2wsh: empty scriptSig and a witness.
    """
    if not script_sig and witness:
        if len(witness) == 2 and len(witness[1]) == 33:
            return b"\x00\x14" + hash160(witness[1])
        return b"\x00\x20" + hashlib.sha256(witness[-1]).digest()
    try:
        pushes = [data for _, data, _ in CScript(script_sig).raw_iter()]
    except CScriptInvalidError:  # a malformed scriptSig implies nothing
        return None
    if not pushes or any(p is None for p in pushes):
        return None
    if len(pushes) == 2 and len(pushes[1]) in (33, 65) and pushes[0]:
        return bytes.fromhex("76a914") + hash160(pushes[1]) + bytes.fromhex("88ac")
    if (len(pushes) == 1 or pushes[0] == b"") and len(pushes[-1]) > 0:
        return bytes.fromhex("a914") + hash160(pushes[-1]) + bytes.fromhex("87")
    return None


def derived_prevouts(txs: Iterable[CTransaction], *,
                     value: int = COIN) -> dict[tuple[str, int], tuple[str, int]]:
    """external_prevouts for every non-coinbase input of `txs`, derived from its scriptSig/witness."""
    out: dict[tuple[str, int], tuple[str, int]] = {}
    for tx in txs:
        if tx.is_coinbase():
            continue
        for index, txin in enumerate(tx.vin):
            witness = tx.wit.vtxinwit[index].scriptWitness.stack if tx.has_witness() else ()
            script = derive_prevout_script(bytes(txin.scriptSig), [bytes(w) for w in witness])
            if script is not None:
                out[(b2lx(txin.prevout.hash), txin.prevout.n)] = (script.hex(), value)
    return out


def corpus_chain(scenario: Mapping[str, Any], *, external_value: int = 0) -> ChainBuilder:
    """A builder holding a corpus scenario's chain (see consensus-corpus/README.md, Replay)."""
    blocks = scenario["blocks"]
    first = blocks[0]["height"] if blocks else 1
    builder = ChainBuilder(network="regtest", premine=first - 1)
    for key, prevout in scenario.get("external_prevouts", {}).items():
        txid, vout = key.split(":")
        builder.external_prevouts[(txid, int(vout))] = (prevout["script_pubkey"], external_value)
    for block in blocks:
        if block["height"] != builder.height + 1:
            raise ValueError(f"corpus heights not contiguous at {block['height']}")
        txs = {
            pos: CTransaction.deserialize(bytes.fromhex(raw))
            for pos, raw in zip(block["tx_vtxindex"], block["txs"], strict=True)
        }
        builder.mine_at_positions(txs)
    return builder


def txid_of(tx: CTransaction) -> str:
    return b2lx(txid_bytes(tx))
