"""BNS v1 operations as real signed regtest transactions (on top of `chainbuilder.ChainBuilder`).

`BnsChain` wraps a builder and replays every block it mines through an in-memory
`BnsEngine` (the default regtest profile: v22 rules, first block 256, mainnet
epochs), so scenarios can quote fresh consensus hashes the way a wallet asks its
node for one.  The op helpers build the output layouts of bns-v1.md §1.4:

* NAME_PREORDER: exactly 3 outputs `OP_RETURN, change, burn` (the whole wallet
  balance is spent, so the builder appends no 4th change output);
* NAME_REGISTRATION / NAME_TRANSFER / NAMESPACE_REVEAL: `OP_RETURN, recipient, change`;
* NAMESPACE_PREORDER: `OP_RETURN, change, burn`;
* NAME_UPDATE / NAME_REVOKE / NAMESPACE_READY: `OP_RETURN, change`.

`replay` runs a fresh engine over a builder's blocks: the reference the tests compare
an index built through bitcoind RPC with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bitcoin.core import CBlock, CScript, b2lx
from bitcoin.core.script import OP_RETURN

from bns_resolver.chain.virtualchain import apply_block
from bns_resolver.base58 import b58check_encode
from bns_resolver.bns.engine import BlockOutcome, BnsEngine
from bns_resolver.bns.names import (
    hash_name,
    name_consensus_hash,
    name_hash128,
    split_name,
)
from bns_resolver.bns.pricing import price_name, price_namespace
from bns_resolver.bns.networks import NetworkProfile
from bns_resolver.bns.state import MemoryStateStore
from bns_resolver.chain.types import ChainBlock, ChainTx, TxInput, TxOutput
from bns_resolver.chainsync import build_profile
from bns_resolver.config import ChainSettings
from bns_resolver.hashing import hash160, hash160_hex
from tests.support.chainbuilder import DEFAULT_FEE, ChainBuilder, Wallet

MAGIC = b"id"
BURN_SCRIPT = bytes.fromhex("76a914" + "00" * 20 + "88ac")
DUST = 5_500
# The .id namespace's price function (bns-v1.md §3.7): 5 letters 400 000 sat, 6 letters 100 000.
ID_LIKE = {"lifetime": 52595, "coeff": 250, "base": 4, "buckets": (6, 5, 4, 3, 2, 1) + (0,) * 10,
           "nonalpha_discount": 4, "no_vowel_discount": 4, "version": 1}


def regtest_profile() -> NetworkProfile:
    """What `bns-resolver sync --network regtest` uses with no [chain] overrides."""
    return build_profile(ChainSettings(network="regtest"))


class _Outputs:
    """Every output the chain ever created: the prevouts the engine needs for senders."""

    def __init__(self) -> None:
        self._outs: dict[tuple[str, int], TxOutput] = {}

    def convert(self, block: CBlock, height: int) -> ChainBlock:
        txs = []
        for index, tx in enumerate(block.vtx):
            txid = b2lx(tx.GetTxid())
            inputs = []
            for txin in tx.vin:
                prev = None if index == 0 else self._outs[(b2lx(txin.prevout.hash), txin.prevout.n)]
                inputs.append(TxInput(b2lx(txin.prevout.hash), txin.prevout.n, bytes(txin.scriptSig).hex(), prev))
            outputs = tuple(TxOutput(o.nValue, bytes(o.scriptPubKey).hex()) for o in tx.vout)
            for n, out in enumerate(outputs):
                self._outs[(txid, n)] = out
            txs.append(ChainTx(txid, index, tuple(inputs), outputs))
        return ChainBlock(height, b2lx(block.GetHash()), b2lx(block.hashPrevBlock), tuple(txs))


def replay(blocks: Sequence[CBlock], profile: NetworkProfile | None = None) -> tuple[BnsEngine, list[BlockOutcome]]:
    """A fresh in-memory engine run over `blocks` (genesis first): the reference result."""
    profile = profile or regtest_profile()
    engine = BnsEngine(profile, MemoryStateStore())
    outputs = _Outputs()
    outcomes = []
    for height, block in enumerate(blocks):
        chain_block = outputs.convert(block, height)
        if height >= profile.first_block:
            outcomes.append(apply_block(engine.store, engine, chain_block))
    return engine, outcomes


@dataclass
class BnsChain:
    """A regtest chain builder whose blocks an in-memory BNS engine follows as they are mined."""

    builder: ChainBuilder | None = None
    profile: NetworkProfile = field(default_factory=regtest_profile)
    outcomes: dict[int, BlockOutcome] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.builder is None:
            self.builder = ChainBuilder(network="regtest", premine=self.profile.first_block - 1)
        self.store = MemoryStateStore()
        self.engine = BnsEngine(self.profile, self.store)
        self._outputs = _Outputs()
        self._seen = 0
        self._follow()

    # -- chain ---------------------------------------------------------------------
    @property
    def chain(self) -> ChainBuilder:
        assert self.builder is not None
        return self.builder

    @property
    def height(self) -> int:
        return self.chain.height

    @property
    def blocks(self) -> list[CBlock]:
        return self.chain.blocks

    def mine(self, count: int = 1) -> list[BlockOutcome]:
        """Mine `count` blocks (the first takes the mempool) and run them through the engine."""
        self.chain.mine(count)
        return self._follow()

    def mine_to(self, height: int) -> None:
        if height > self.height:
            self.mine(height - self.height)

    def _follow(self) -> list[BlockOutcome]:
        new = []
        while self._seen < len(self.chain.blocks):
            height = self._seen
            block = self._outputs.convert(self.chain.blocks[height], height)
            if height >= self.profile.first_block:
                outcome = apply_block(self.engine.store, self.engine, block)
                self.outcomes[height] = outcome
                new.append(outcome)
            self._seen += 1
        return new

    def consensus_hash(self, height: int | None = None) -> str:
        """The consensus hash of `height` (default: the newest block), as a wallet would quote it."""
        height = self.height if height is None else height
        if height < self.profile.first_block:
            return self.profile.genesis_consensus_hash
        return self.outcomes[height].consensus_hash

    def accepted(self, height: int) -> list[tuple[str, str | None]]:
        """(opcode, name or namespace) of each op the engine accepted in block `height`."""
        return [(a.opcode, a.fqn or a.namespace_id) for a in self.outcomes[height].accepted]

    def fork(self, depth: int, *, tag: bytes = b"fork") -> BnsChain:
        """A competing branch dropping the newest `depth` blocks (engine state replayed to the fork)."""
        return BnsChain(self.chain.fork(depth, tag=tag), self.profile)

    # -- wallets ----------------------------------------------------------------------
    def wallet(self, label: str, sats: int = 100_000_000) -> Wallet:
        """A new p2pkh wallet funded by the miner (the funding confirms with the next block)."""
        wallet = self.chain.new_wallet(label)
        if sats:
            self.chain.fund(wallet, sats)
        return wallet

    # -- raw sending ----------------------------------------------------------------------
    def send(self, wallet: Wallet, opchar: str, body: bytes,
             outputs: Sequence[tuple[bytes, int]] = (), *, change_at: int | None = None,
             fee: int = DEFAULT_FEE) -> str:
        """Queue `OP_RETURN id<opchar><body>` + outputs; returns the txid.

        change_at=None: the builder's change goes last.  change_at=i: the whole wallet
        balance is spent and the change is output i (so no extra output appears).
        """
        op_return = (CScript([OP_RETURN, MAGIC + opchar.encode() + body]), 0)
        outs: list[tuple[bytes | CScript, int]] = [op_return, *outputs]
        if change_at is not None:
            change = self.chain.balance(wallet) - sum(v for _, v in outs) - fee
            if change <= 0:
                raise ValueError(f"{wallet.label} cannot pay {sum(v for _, v in outs)} + fee")
            outs.insert(change_at, (bytes(wallet.script_pubkey), change))
        tx = self.chain.spend(wallet, outs, fee=fee)
        return b2lx(tx.GetTxid())


def script_hex(wallet: Wallet) -> str:
    return bytes(wallet.script_pubkey).hex()


def address(wallet: Wallet, profile: NetworkProfile | None = None) -> str:
    """The wallet's p2pkh address on the profile's network (independent of bitcoinlib's global params)."""
    version = (profile or regtest_profile()).p2pkh_version
    return b58check_encode(version, hash160(wallet.pubkey))


# -- namespace operations --------------------------------------------------------------------
def namespace_preorder(chain: BnsChain, sender: Wallet, namespace_id: str, reveal_to: Wallet, *,
                       fee: int | None = None, consensus_hash: str | None = None) -> str:
    """NAMESPACE_PREORDER `*`: hash_name(id, sender script, reveal address) + consensus hash; burn outputs[2]."""
    fee = price_namespace(namespace_id, chain.height + 1, chain.profile) if fee is None else fee
    preorder_hash = hash_name(namespace_id, script_hex(sender), address(reveal_to, chain.profile))
    ch = consensus_hash or chain.consensus_hash()
    return chain.send(sender, "*", bytes.fromhex(preorder_hash + ch), [(BURN_SCRIPT, fee)], change_at=1)


def namespace_reveal(chain: BnsChain, sender: Wallet, namespace_id: str, reveal_to: Wallet,
                     params: dict | None = None) -> str:
    """NAMESPACE_REVEAL `&`: lifetime, coeff, base, bucket nibbles, discounts, version, id; outputs[1] = reveal address."""
    p = dict(ID_LIKE, **(params or {}))
    buckets = p["buckets"]
    body = (int(p["lifetime"]).to_bytes(4, "big") + bytes([p["coeff"], p["base"]])
            + bytes((buckets[i] << 4) | buckets[i + 1] for i in range(0, 16, 2))
            + bytes([(p["nonalpha_discount"] << 4) | p["no_vowel_discount"]])
            + int(p["version"]).to_bytes(2, "big") + namespace_id.encode("ascii"))
    return chain.send(sender, "&", body, [(bytes(reveal_to.script_pubkey), DUST)])


def namespace_ready(chain: BnsChain, revealer: Wallet, namespace_id: str) -> str:
    """NAMESPACE_READY `!`: `.` + id, sent by the reveal address."""
    return chain.send(revealer, "!", b"." + namespace_id.encode("ascii"))


def name_price(chain: BnsChain, fqn: str) -> float | int:
    label, namespace_id = split_name(fqn)
    namespace = chain.store.get_namespace(namespace_id)
    assert namespace is not None, f"namespace {namespace_id} is not known yet"
    return price_name(label, namespace, chain.height + 1, chain.profile)


# -- name operations ----------------------------------------------------------------------------
def preorder(chain: BnsChain, sender: Wallet, fqn: str, recipient: Wallet | None = None, *,
             fee: int | None = None, consensus_hash: str | None = None) -> str:
    """NAME_PREORDER `?`: hash_name(fqn, sender script, recipient address) + consensus hash;
    exactly 3 outputs, the burn (default: the name's price) in outputs[2]."""
    recipient = recipient or sender
    fee = int(name_price(chain, fqn)) if fee is None else fee
    preorder_hash = hash_name(fqn, script_hex(sender), address(recipient, chain.profile))
    ch = consensus_hash or chain.consensus_hash()
    return chain.send(sender, "?", bytes.fromhex(preorder_hash + ch), [(BURN_SCRIPT, fee)], change_at=1)


def register(chain: BnsChain, sender: Wallet, fqn: str, recipient: Wallet | None = None) -> str:
    """NAME_REGISTRATION `:` (epoch 1 form: the bare fqn); outputs[1] = the new owner, 3 outputs."""
    recipient = recipient or sender
    return chain.send(sender, ":", fqn.encode("ascii"), [(bytes(recipient.script_pubkey), DUST)])


def update(chain: BnsChain, sender: Wallet, fqn: str, value_hash: str, *,
           consensus_hash: str | None = None) -> str:
    """NAME_UPDATE `+`: hash128(fqn ‖ consensus hash) + value hash."""
    ch = consensus_hash or chain.consensus_hash()
    return chain.send(sender, "+", bytes.fromhex(name_consensus_hash(fqn, ch) + value_hash))


def transfer(chain: BnsChain, sender: Wallet, fqn: str, recipient: Wallet, *, keep_value: bool = True,
             consensus_hash: str | None = None) -> str:
    """NAME_TRANSFER `>`: disposition + name_hash128 + consensus hash; outputs[1] = the new owner."""
    ch = consensus_hash or chain.consensus_hash()
    body = (b">" if keep_value else b"~") + bytes.fromhex(name_hash128(fqn) + ch)
    return chain.send(sender, ">", body, [(bytes(recipient.script_pubkey), DUST)])


def renew(chain: BnsChain, sender: Wallet, fqn: str, *, fee: int | None = None) -> str:
    """NAME_RENEWAL `:` (bare fqn): outputs `OP_RETURN, owner, change, burn` (4 outputs, so v22
    reads it as a renewal; 2016-17 rules by the missing preorder), paying the name's price."""
    fee = int(name_price(chain, fqn)) if fee is None else fee
    return chain.send(sender, ":", fqn.encode("ascii"),
                      [(bytes(sender.script_pubkey), DUST), (BURN_SCRIPT, fee)], change_at=2)


def revoke(chain: BnsChain, sender: Wallet, fqn: str) -> str:
    """NAME_REVOKE `~`: the fqn."""
    return chain.send(sender, "~", fqn.encode("ascii"))


# -- zone files -----------------------------------------------------------------------------------
def zonefile(fqn: str, a: str, *, uri: str | None = None, txt: str | None = None, www: str | None = None) -> bytes:
    """A BNS zone file for `fqn` with an apex A record (and optional URI/TXT/www A)."""
    lines = [f"$ORIGIN {fqn}", "$TTL 3600", f"@ IN A {a}"]
    if uri:
        lines.append(f'@ IN URI 10 1 "{uri}"')
    if txt:
        lines.append(f'@ IN TXT "{txt}"')
    if www:
        lines.append(f"www IN A {www}")
    return ("\n".join(lines) + "\n").encode()


def zonefile_hash(content: bytes) -> str:
    return hash160_hex(content)
