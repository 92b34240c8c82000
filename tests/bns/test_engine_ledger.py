"""The STX ledger inside the engine (v22, epoch 4+), on a chain built block by block.

The profile is mainnet's with its epochs scaled down (first block 100; epoch 4 = 121..140,
epoch 5 = 141..150) and a small genesis allocation shaped like the real one (rows with
vesting, a patch, an airdrop batch).  Every expected balance is worked out in the comments
from the reference (blockstack-core v22.2.0.0): `operations/preorder.py` check (account
balance >= token_fee, debited at commit), `register.py` check_payment (token_fee >= the
STX price, int(btc price) * 650 // 15), `tokentransfer.py` check (send lock, balance,
consensus hash; all-zero hash only from epoch 5), and `virtualchain_hooks.db_save` (after
block h: the genesis patch of h+1, then the unlocks of h+1).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bns_resolver.base58 import b58check_decode
from bns_resolver.bns.genesis import AirdropBatch, GenesisAllocation, GenesisPatch, GenesisRow
from bns_resolver.bns.names import hash_name
from bns_resolver.bns.networks import mainnet
from bns_resolver.bns.state import MemoryStateStore
from bns_resolver.bns.engine import BnsEngine
from bns_resolver.bns.expiry import expiry_rule
from bns_resolver.chain.types import ChainBlock
from bns_resolver.chain.virtualchain import apply_block
from bns_resolver.index.chainstore import SqlStateStore
from bns_resolver.index.db import open_index
from tests.bns.test_engine_v22 import BURN, Wallet, _tx

ALICE, BOB, CAROL, DAVE, CREATOR, REVEALER = (Wallet(s) for s in (21, 22, 23, 24, 25, 26))


def _allocation() -> GenesisAllocation:
    rows = (
        GenesisRow(ALICE.address, 20_000_000, 0, True, "", ((125, 5_000_000),)),
        GenesisRow(BOB.address, 0, 135, True, "", ((130, 2_000_000),)),
        GenesisRow("unallocated", 999, 0, True, "", ((132, 1),)),
    )
    # Patch 128 (like 599865): dave's row merges at 128 with its unlocks below 128 paid at once.
    patch = GenesisPatch((GenesisRow(DAVE.address, 1_000_000, 0, True, "", ((127, 300), (132, 700))),),
                         ("unallocated",))
    carol_prefix = b58check_decode(CAROL.address)[1][:4]
    return GenesisAllocation(source={}, stages=(), rows=rows, patches={128: patch},
                             airdrop_batches={133: AirdropBatch(0, 1, 100, 0, True, "")},
                             airdrop_prefixes=carol_prefix, prefix_bytes=4)


ALLOCATION = _allocation()


def _profile():
    base = mainnet()
    epochs = tuple(replace(e, end_block=end) for e, end in zip(base.epochs, (110, 115, 120, 140, 150, None)))
    return replace(base, first_block=100, epochs=epochs, freeze_height=None, genesis=lambda: ALLOCATION)


class Chain:
    def __init__(self, store=None) -> None:
        self.profile = _profile()
        self.store = store if store is not None else MemoryStateStore()
        self.engine = BnsEngine(self.profile, self.store)
        self.height = 99
        self.n = 0

    def mine(self, *txs):
        self.height += 1
        block = ChainBlock(self.height, f"{self.height:064x}", "00" * 32, tuple(txs))
        outcome = apply_block(self.store, self.engine, block)
        self.store.flush()  # the SQL store commits here, as a sync does at its flush points
        return outcome

    def mine_to(self, height: int) -> None:
        while self.height < height:
            self.mine()

    def tx(self, sender: Wallet, payload: bytes, outputs: list[tuple[int, str]]):
        self.n += 1
        return _tx(self.n, sender, payload, outputs)

    def ch(self) -> str:
        return self.store.get_consensus_hash(self.height)

    def balance(self, wallet_or_label) -> int | None:
        key = getattr(wallet_or_label, "address", wallet_or_label)
        record = self.store.get_account(key)
        return None if record is None else record["credit"] - record["debit"]

    def stx_preorder(self, sender: Wallet, fqn: str, token_fee: int):
        body = (bytes.fromhex(hash_name(fqn, sender.script, sender.address) + self.ch())
                + token_fee.to_bytes(8, "big") + b"STACKS".ljust(19, b"\0"))
        return self.tx(sender, b"?" + body, [(10**6, sender.script), (5500, BURN)])

    def register(self, sender: Wallet, fqn: str):
        return self.tx(sender, b":" + fqn.encode(), [(5500, sender.script), (10**6, sender.script)])

    def token_transfer(self, sender: Wallet, to: Wallet, amount: int, ch: str | None = None):
        body = bytes.fromhex(ch or self.ch()) + b"STACKS".ljust(19, b"\0") + amount.to_bytes(8, "big") + b"memo"
        return self.tx(sender, b"$" + body, [(5500, to.script), (10**6, sender.script)])


def _launch_podcast(chain: Chain) -> None:
    """A pay-to-burn (version 1) namespace launched in epoch 1 with BTC, like test_engine_v22."""
    nsid = "podcast"
    preorder = bytes.fromhex(hash_name(nsid, CREATOR.script, REVEALER.address) + chain.ch())
    chain.mine(chain.tx(CREATOR, b"*" + preorder, [(10**6, CREATOR.script), (400_000_000, BURN)]))
    reveal = bytes.fromhex("0000cd73" "fa" "04" "6543210000000000" "44" "0001") + nsid.encode()
    chain.mine(chain.tx(CREATOR, b"&" + reveal, [(5500, REVEALER.script), (10**6, CREATOR.script)]))
    out = chain.mine(chain.tx(REVEALER, b"!" + b"." + nsid.encode(), [(10**6, REVEALER.script)]))
    assert [a.opcode for a in out.accepted] == ["NAMESPACE_READY"]


def _opcodes(outcome) -> list[str]:
    return [a.opcode for a in outcome.accepted]


def _sql_store(folder: Path) -> SqlStateStore:
    return SqlStateStore(open_index(f"sqlite:///{folder / 'index.sqlite'}"), expiry=expiry_rule(_profile()))


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_stx_ledger_through_epoch_4_and_5(kind: str, tmp_path: Path) -> None:
    chain = Chain(_sql_store(tmp_path) if kind == "sqlite" else None)
    chain.mine()  # block 100: genesis accounts open
    assert (chain.balance(ALICE), chain.balance(BOB), chain.balance("unallocated")) == (20_000_000, 0, 999)
    _launch_podcast(chain)
    chain.mine_to(120)

    # Epoch 3 (block 121 is epoch 4): a 63-byte STX preorder does not even decode yet.
    # alice.podcast: 5 letters, bucket 2 -> 250 * 4**2 * 100 = 400,000 sat; in STX
    # 400,000 * 650 // 15 = 17,333,333 µSTX.  Alice holds 20,000,000: funded.
    out = chain.mine(chain.stx_preorder(ALICE, "alice.podcast", 17_333_333))  # 121
    assert _opcodes(out) == ["NAME_PREORDER"]
    assert chain.balance(ALICE) == 20_000_000 - 17_333_333 == 2_666_667  # debited at commit
    out = chain.mine(chain.register(ALICE, "alice.podcast"))  # 122
    assert _opcodes(out) == ["NAME_REGISTRATION"]
    assert chain.store.get_name("alice.podcast")["sender"] == ALICE.script

    # alicia.podcast: 6 letters, bucket 1 -> 100,000 sat -> 4,333,333 µSTX; alice has only
    # 2,666,667 before her unlock at 125: the preorder is refused and nothing is debited.
    out = chain.mine(chain.stx_preorder(ALICE, "alicia.podcast", 4_333_333))  # 123
    assert out.accepted == () and chain.balance(ALICE) == 2_666_667
    # A funded preorder that burns less than the price is accepted (and debited: preorder.check
    # only asks for the balance) but buys nothing: register.check_payment refuses 1 < 4,333,333.
    out = chain.mine(chain.stx_preorder(ALICE, "alicio.podcast", 1))  # 124
    # 2,666,667 - 1, then (db_save of 124) the 5,000,000 unlock of 125.
    assert _opcodes(out) == ["NAME_PREORDER"] and chain.balance(ALICE) == 2_666_666 + 5_000_000
    out = chain.mine(chain.register(ALICE, "alicio.podcast"))  # 125
    assert out.accepted == () and chain.store.get_name("alicio.podcast") is None

    assert chain.balance(ALICE) == 2_666_666 + 5_000_000 == 7_666_666
    out = chain.mine(chain.stx_preorder(ALICE, "alicia.podcast", 4_333_333))  # 126
    assert _opcodes(out) == ["NAME_PREORDER"] and chain.balance(ALICE) == 7_666_666 - 4_333_333
    out = chain.mine(chain.register(ALICE, "alicia.podcast"))  # 127
    assert _opcodes(out) == ["NAME_REGISTRATION"]

    # Patch 128, applied after block 127: dave gets 1,000,000 + his unlock at 127 (below the
    # merge height) = 1,000,300 at once, 700 more at 132; "unallocated" and its unlock go away.
    assert chain.balance(DAVE) == 1_000_300 and chain.balance("unallocated") is None
    assert chain.store.get_vesting(132) == {DAVE.address: 700}
    chain.mine_to(130)
    # Bob's 2,000,000 unlocks at 130 but he may not send before 135 (lock_send).
    assert chain.balance(BOB) == 2_000_000
    out = chain.mine(chain.token_transfer(BOB, CAROL, 1_500_000))  # 131
    assert out.accepted == ()
    chain.mine_to(132)
    assert chain.balance(DAVE) == 1_000_300 + 700

    # Carol's airdrop (batch 133: 100 µSTX) opens the first time her account is looked up.
    chain.mine_to(135)
    ch = chain.ch()
    transfer = chain.token_transfer(BOB, CAROL, 1_500_000, ch)
    out = chain.mine(transfer)  # 136
    assert _opcodes(out) == ["TOKEN_TRANSFER"]
    assert (chain.balance(BOB), chain.balance(CAROL)) == (500_000, 1_500_000 + 100)
    # The ops hash takes tokentransfer.FIELDS in order, token_fee as a decimal string, each
    # value as a netstring after "$:".
    values = [BOB.script, BOB.address, CAROL.script, CAROL.address, "STACKS", "1500000", "136", "$",
              transfer.txid, "1", ch, b"memo".hex()]
    assert out.accepted[0].serialized == "$:" + ",".join(f"{len(v)}:{v}" for v in values)
    # More than the balance, and (in epoch 4) an all-zero consensus hash, are refused.
    assert chain.mine(chain.token_transfer(BOB, CAROL, 500_001)).accepted == ()  # 137
    assert chain.mine(chain.token_transfer(BOB, CAROL, 1, "00" * 16)).accepted == ()  # 138
    chain.mine_to(140)
    out = chain.mine(chain.token_transfer(BOB, CAROL, 1, "00" * 16))  # 141: epoch 5 allows it
    assert _opcodes(out) == ["TOKEN_TRANSFER"] and chain.balance(BOB) == 499_999
    if kind == "sqlite":  # the accounts are in the index: a new store on the same file sees them
        reopened = _sql_store(tmp_path)
        assert reopened.get_account(CAROL.address)["credit"] == 1_500_101


def test_ledger_changes_undo_with_their_block() -> None:
    """A reorg undoes a block's debits, credits and unlocks with its name records."""
    chain = Chain()
    chain.mine()
    _launch_podcast(chain)
    chain.mine_to(120)
    chain.mine(chain.stx_preorder(ALICE, "alice.podcast", 17_333_333))  # 121
    chain.mine_to(124)
    assert chain.balance(ALICE) == 2_666_667 + 5_000_000  # unlock of 125 applied after 124
    chain.store.undo_block(124)
    chain.store.undo_block(123)
    chain.store.undo_block(122)
    chain.store.undo_block(121)
    assert chain.balance(ALICE) == 20_000_000
