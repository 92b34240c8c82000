"""The v22 STX ledger over the real genesis allocation: vesting, patches, airdrop, payments, transfers.

Expected values are worked out from the shipped allocation (which `test_genesis` pins to the
sdist's figures) and the reference's rules quoted in `bns/accounts.py`.
"""

from __future__ import annotations

import pytest

from bns_resolver.base58 import b58check_decode, b58check_encode
from bns_resolver.bns.accounts import (
    TOKEN_TRANSFER_FIELDS,
    LedgerError,
    TokenLedger,
    supply_at,
    token_transfer_values,
)
from bns_resolver.bns.consensus import serialize_op
from bns_resolver.bns.genesis import load_genesis
from bns_resolver.bns.ops import decode_tx
from bns_resolver.bns.networks import mainnet
from bns_resolver.chain.types import ChainTx, TxInput, TxOutput

STX = 1_000_000
FIRST = 373_601
FREEZE = 665_750
AIRDROP = 322_146 * 100 * STX


@pytest.fixture(scope="module")
def genesis():
    return load_genesis()


def _ledger(genesis, height: int = FIRST) -> TokenLedger:
    ledger = TokenLedger.at_genesis(genesis, FIRST)
    ledger.advance_to(height)
    return ledger


def _vesting_between(genesis, low: int, high: int) -> int:
    """Genesis-stage vesting unlocked at heights low..high inclusive."""
    return sum(a for row in genesis.rows for h, a in row.vesting if low <= h <= high)


def test_genesis_liquid_and_vesting(genesis) -> None:
    ledger = _ledger(genesis)
    assert ledger.liquid() == 453_172_121 * STX
    assert ledger.unvested() == 866_827_879 * STX


def test_vesting_unlocks_after_the_block_before(genesis) -> None:
    """Tokens vesting at h are credited by db_save of h-1, so usable in block h."""
    ledger = _ledger(genesis, 547_920)
    before = ledger.liquid()
    ledger.end_block(547_920)
    assert ledger.next_block == 547_921
    assert ledger.liquid() - before == _vesting_between(genesis, 547_921, 547_921) > 0


def _credited_by(genesis, height: int) -> int:
    """Every grant usable in block `height`, counted as (address, unlock height, µSTX) events:
    genesis rows, patch rows (their unlocks below the patch height land at the patch height),
    minus whatever an address held or would unlock once a patch deletes it."""
    events = [(r.address, FIRST, r.value) for r in genesis.rows]
    events += [(r.address, h, a) for r in genesis.rows for h, a in r.vesting]
    for merge, patch in sorted(genesis.patches.items()):
        if merge > height:
            break
        events = [e for e in events if e[0] not in patch.delete]
        for r in patch.add:
            events.append((r.address, merge, r.value))
            events += [(r.address, max(h, merge), a) for h, a in r.vesting]
    airdrop = sum((b.line_end - b.line_start) * b.value for h, b in genesis.airdrop_batches.items() if h <= height)
    return sum(a for _, h, a in events if h <= height) + airdrop


@pytest.mark.parametrize("height", [FIRST, 547_922, 599_865, 599_866, 613_249, 613_266, FREEZE])
def test_supply_follows_vesting_patches_and_airdrop(genesis, height: int) -> None:
    ledger = _ledger(genesis, height)
    assert ledger.liquid() == _credited_by(genesis, height)


def test_supply_at_the_freeze(genesis) -> None:
    ledger = _ledger(genesis, FREEZE)
    assert ledger.airdropped() == AIRDROP
    assert ledger.account("unallocated") is None
    assert ledger.liquid() + ledger.unvested() > 1_320_000_000 * STX - 453_172_121 * STX


def test_patch_row_vests_from_its_schedule(genesis) -> None:
    """SPMCBC19B... (patch 599865): value 0, 28,075,000 µSTX every 4,320 blocks from 599866."""
    address = b58check_encode(0, bytes.fromhex(_hash160_of(genesis, 599_865, 0)))
    ledger = _ledger(genesis, 599_865)
    assert ledger.balance(address) == 0
    ledger.end_block(599_865)
    assert ledger.balance(address) == 28_075_000
    ledger.advance_to(604_186)
    assert ledger.balance(address) == 2 * 28_075_000


def _hash160_of(genesis, height: int, index: int) -> str:
    return b58check_decode(genesis.patches[height].add[index].address)[1].hex()


def test_unallocated_is_removed_by_the_first_patch(genesis) -> None:
    ledger = _ledger(genesis, 599_864)
    assert ledger.account("unallocated") is not None
    ledger.end_block(599_864)
    assert ledger.account("unallocated") is None


def test_airdrop_accounts_can_pay_for_names_but_not_send(genesis) -> None:
    """100 STX from batch 1 at 613250, locked until 665845: preorders may spend it (no lock
    check), TOKEN_TRANSFER may not."""
    member = b58check_encode(0, genesis.airdrop_prefix(0) + b"\0" * 10)
    stranger = b58check_encode(0, b"\x42" * 20)
    ledger = _ledger(genesis, 613_249)
    assert ledger.account(member) is None  # not granted before its batch
    ledger.end_block(613_249)
    assert ledger.balance(member) == 100 * STX
    assert ledger.transfer_refusal(member, stranger, 1, 613_300) == "sender locked until 665845"
    assert ledger.can_pay(member, 100 * STX) and not ledger.can_pay(member, 100 * STX + 1)
    ledger.debit(member, 40 * STX)
    assert ledger.balance(member) == 60 * STX
    with pytest.raises(LedgerError):
        ledger.debit(member, 61 * STX)


def test_token_transfer_rules(genesis) -> None:
    ledger = _ledger(genesis, 600_000)
    sender = next(r.address for r in genesis.rows
                  if r.address[0] == "1" and r.lock_send <= 600_000 and ledger.balance(r.address))
    newcomer = b58check_encode(0, b"\x07" * 20)
    assert ledger.transfer_refusal(sender, sender, 5, 600_000) == "transfer to itself"
    assert ledger.transfer_refusal(sender, newcomer, 0, 600_000) == "zero-value transfer"
    assert ledger.transfer_refusal(newcomer, sender, 5, 600_000) == "no sender account"
    assert ledger.transfer_refusal(sender, newcomer, ledger.balance(sender) + 1, 600_000) == "insufficient balance"
    assert ledger.transfer_refusal(sender, newcomer, 5 * STX, 600_000) is None
    before = ledger.balance(sender)
    ledger.transfer(sender, newcomer, 5 * STX)
    assert (ledger.balance(sender), ledger.balance(newcomer)) == (before - 5 * STX, 5 * STX)
    ledger.accounts[newcomer].receive_whitelisted = False  # as genesis rows may say
    assert ledger.transfer_refusal(sender, newcomer, 1, 600_000) == "recipient not whitelisted"


def test_locked_genesis_account_unlocks_at_its_height(genesis) -> None:
    row = next(r for r in genesis.rows if r.address[0] == "1" and r.vesting and r.lock_send > r.vesting[0][0])
    ledger = _ledger(genesis, row.lock_send - 1)
    assert ledger.balance(row.address) > 0
    other = b58check_encode(0, b"\x09" * 20)
    assert ledger.transfer_refusal(row.address, other, 1, row.lock_send - 1).startswith("sender locked")
    ledger.end_block(row.lock_send - 1)
    assert ledger.transfer_refusal(row.address, other, 1, row.lock_send) is None


def _token_transfer_tx(sender_hash160: bytes, recipient_hash160: bytes, amount: int, ch: str,
                       units: bytes = b"STACKS") -> ChainTx:
    payload = b"id$" + bytes.fromhex(ch) + units.ljust(19, b"\0") + amount.to_bytes(8, "big") + b"memo"
    op_return = "6a" + f"{len(payload):02x}" + payload.hex()
    sender = "76a914" + sender_hash160.hex() + "88ac"
    recipient = "76a914" + recipient_hash160.hex() + "88ac"
    txin = TxInput("11" * 32, 0, "00", TxOutput(10_000, sender))
    return ChainTx("22" * 32, 5, (txin,), (TxOutput(0, op_return), TxOutput(5_500, recipient)))


def test_token_transfer_serialization_and_checks(genesis) -> None:
    """tokentransfer.py: FIELDS order, token_fee as a decimal string, op '$', epoch-5 zero hash."""
    height = 600_000
    ledger = _ledger(genesis, height)
    sender = next(r.address for r in genesis.rows
                  if r.address[0] == "1" and r.lock_send <= height and ledger.balance(r.address))
    sender_hash = b58check_decode(sender)[1]
    to_hash = b"\x05" * 20
    profile = mainnet()
    ch = "ab" * 16

    def values(tx: ChainTx, ch_ok: bool = True, zero_ok: bool = True) -> tuple | None:
        op = decode_tx(tx, height, profile)
        assert op is not None and op.opchar == "$"
        return token_transfer_values(ledger, op, height, lambda _: ch_ok, zero_ok)

    got = values(_token_transfer_tx(sender_hash, to_hash, 7 * STX, ch))
    assert got is not None
    assert dict(zip(TOKEN_TRANSFER_FIELDS, got)) == {
        "sender": "76a914" + sender_hash.hex() + "88ac", "address": sender,
        "recipient": "76a914" + to_hash.hex() + "88ac", "recipient_address": b58check_encode(0, to_hash),
        "token_units": "STACKS", "token_fee": str(7 * STX), "block_id": height, "op": "$",
        "txid": "22" * 32, "vtxindex": 5, "consensus_hash": ch, "scratch_area": b"memo".hex()}
    assert serialize_op("$", got).startswith("$:50:76a914")
    assert values(_token_transfer_tx(sender_hash, to_hash, 7 * STX, ch), ch_ok=False) is None
    assert values(_token_transfer_tx(sender_hash, to_hash, 7 * STX, "00" * 16), ch_ok=False) is not None
    assert values(_token_transfer_tx(sender_hash, to_hash, 7 * STX, "00" * 16), False, False) is None
    assert values(_token_transfer_tx(sender_hash, to_hash, 0, ch)) is None
    assert values(_token_transfer_tx(sender_hash, sender_hash, 1, ch)) is None
    assert values(_token_transfer_tx(sender_hash, to_hash, 1, ch, units=b"BTC")) is None
    assert values(_token_transfer_tx(sender_hash, to_hash, ledger.balance(sender) + 1, ch)) is None


def test_supply_at_for_status(genesis) -> None:
    at_start = supply_at(genesis, FIRST, FIRST)
    assert (at_start.liquid, at_start.unvested) == (453_172_121 * STX, 866_827_879 * STX)
    frozen = supply_at(genesis, FIRST, FREEZE)
    assert frozen.liquid == _credited_by(genesis, FREEZE) and frozen.height == FREEZE
