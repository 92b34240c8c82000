"""BnsEngine under mainnet (v22) rules, on a synthetic chain built from scratch.

The corpus only exercises 2016–17 code; this walks a namespace launch and a
name's life (preorder → register → update → transfer → renew) through the v22
paths, with the mainnet profile's epoch-1 prices.
"""

from __future__ import annotations

from coincurve import PrivateKey

from bns_resolver.chain.virtualchain import apply_block
from bns_resolver.bns import ops
from bns_resolver.bns.engine import BnsEngine
from bns_resolver.bns.names import hash_name, name_consensus_hash, name_hash128
from bns_resolver.bns.networks import mainnet
from bns_resolver.bns.senders import p2pkh_script, script_to_address
from bns_resolver.bns.state import MemoryStateStore
from bns_resolver.chain.types import ChainBlock, ChainTx, TxInput, TxOutput
from bns_resolver.hashing import hash160

BURN = ops.BURN_SCRIPT


class Wallet:
    def __init__(self, seed: int) -> None:
        self.pubkey = PrivateKey(bytes([seed]) * 32).public_key.format(compressed=True)
        self.script = p2pkh_script(hash160(self.pubkey))
        self.address = script_to_address(self.script, 0, 5)


def _push(data: bytes) -> str:
    return bytes([len(data)]).hex() + data.hex()


def _tx(n: int, sender: Wallet, payload: bytes, outputs: list[tuple[int, str]]) -> ChainTx:
    script_sig = _push(b"\x30" * 71) + _push(sender.pubkey)
    txin = TxInput(f"{n:064x}", 0, script_sig, TxOutput(10**9, sender.script))
    op_return = "6a" + _push(b"id" + payload)
    outs = (TxOutput(0, op_return),) + tuple(TxOutput(v, s) for v, s in outputs)
    return ChainTx(f"{n + 1000:064x}", 1, (txin,), outs)


class Chain:
    def __init__(self) -> None:
        self.profile = mainnet()
        self.engine = BnsEngine(self.profile, MemoryStateStore())
        self.height = self.profile.first_block - 1
        self.outcomes: dict[int, object] = {}

    def mine(self, *txs: ChainTx):
        self.height += 1
        block = ChainBlock(self.height, f"{self.height:064x}", "00" * 32, tuple(txs))
        outcome = apply_block(self.engine.store, self.engine, block)
        self.outcomes[self.height] = outcome
        return outcome

    def ch(self, height: int | None = None) -> str:
        return self.engine.store.get_consensus_hash(self.height if height is None else height)


def _launch(chain: Chain, creator: Wallet, revealer: Wallet) -> None:
    nsid = "podcast"
    preorder = bytes.fromhex(hash_name(nsid, creator.script, revealer.address)) + bytes.fromhex(chain.ch(chain.height))
    chain.mine(_tx(1, creator, b"*" + preorder, [(10**6, creator.script), (400_000_000, BURN)]))
    reveal = bytes.fromhex("0000cd73" "fa" "04" "6543210000000000" "44" "0001") + nsid.encode()
    chain.mine(_tx(2, creator, b"&" + reveal, [(5500, revealer.script), (10**6, creator.script)]))
    chain.mine(_tx(3, revealer, b"!" + b"." + nsid.encode(), [(10**6, revealer.script)]))


def test_v22_namespace_launch_and_name_lifecycle() -> None:
    """Each step is accepted once, and the final record reflects transfer + renewal."""
    creator, revealer, alice, bob = Wallet(1), Wallet(2), Wallet(3), Wallet(4)
    chain = Chain()
    chain.mine()  # first block, empty
    _launch(chain, creator, revealer)
    assert [len(chain.outcomes[h].accepted) for h in range(373602, 373605)] == [1, 1, 1]
    fqn = "alice.podcast"
    preorder = bytes.fromhex(hash_name(fqn, alice.script, alice.address)) + bytes.fromhex(chain.ch())
    chain.mine(_tx(4, alice, b"?" + preorder, [(10**6, alice.script), (400_000, BURN)]))
    out = chain.mine(_tx(5, alice, b":" + fqn.encode(), [(5500, alice.script), (10**6, alice.script)]))
    assert [a.opcode for a in out.accepted] == ["NAME_REGISTRATION"]
    update = bytes.fromhex(name_consensus_hash(fqn, chain.ch())) + b"\x11" * 20
    assert len(chain.mine(_tx(6, alice, b"+" + update, [(10**6, alice.script)])).accepted) == 1
    transfer = b">" + bytes.fromhex(name_hash128(fqn)) + bytes.fromhex(chain.ch())
    assert len(chain.mine(_tx(7, alice, b">" + transfer, [(5500, bob.script), (10**6, alice.script)])).accepted) == 1
    renew = [(5500, bob.script), (10**6, bob.script), (400_000, BURN)]
    out = chain.mine(_tx(8, bob, b":" + fqn.encode(), renew))
    assert [a.opcode for a in out.accepted] == ["NAME_RENEWAL"]
    assert [a.serialized.split(",")[10] for a in out.accepted] == ["2:::"]  # op field of a renewal
    record = chain.engine.store.get_name(fqn)
    assert record["sender"] == bob.script and record["last_renewed"] == chain.height
    assert record["value_hash"] == "11" * 20


def test_v22_underpaid_registration_is_rejected() -> None:
    """A preorder burning less than the price does not buy the name."""
    creator, revealer, carol = Wallet(1), Wallet(2), Wallet(5)
    chain = Chain()
    chain.mine()
    _launch(chain, creator, revealer)
    fqn = "carol.podcast"
    preorder = bytes.fromhex(hash_name(fqn, carol.script, carol.address)) + bytes.fromhex(chain.ch())
    chain.mine(_tx(9, carol, b"?" + preorder, [(10**6, carol.script), (399_999, BURN)]))
    out = chain.mine(_tx(10, carol, b":" + fqn.encode(), [(5500, carol.script), (10**6, carol.script)]))
    assert out.accepted == ()
    assert chain.engine.store.get_name(fqn) is None


def test_v22_preorder_must_burn_to_the_burn_address() -> None:
    """Under v1 (pay-to-burn) namespaces a fee paid elsewhere is no payment."""
    creator, revealer, dave = Wallet(1), Wallet(2), Wallet(6)
    chain = Chain()
    chain.mine()
    _launch(chain, creator, revealer)
    fqn = "dave.podcast"
    preorder = bytes.fromhex(hash_name(fqn, dave.script, dave.address)) + bytes.fromhex(chain.ch())
    chain.mine(_tx(11, dave, b"?" + preorder, [(10**6, dave.script), (10**7, creator.script)]))
    out = chain.mine(_tx(12, dave, b":" + fqn.encode(), [(5500, dave.script), (10**6, dave.script)]))
    assert out.accepted == ()
