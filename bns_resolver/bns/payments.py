"""v22 name payment checks (blockstack-core v22.2.0.0 `operations/register.py: check_payment`).

Only used under the mainnet ("v22") rules; the 2016–17 corpus code compared the
preorder's burn-output value with the price and nothing else.

STX payments (epoch 4+) are checked here against the price only; whether the
payer's account holds the tokens is the ledger's question (rules_v22 asks
bns/ledger.py, which debits the account when the op commits).
"""

from __future__ import annotations

from dataclasses import dataclass

from bns_resolver.bns.names import split_name
from bns_resolver.bns.pricing import price_name
from bns_resolver.bns.networks import BLOCKS_PER_YEAR, FEATURE_PAY_TO_CREATOR, FEATURE_TOKENS, NetworkProfile
from bns_resolver.bns.state import Record

BURN_ADDRESS_HASH = "00" * 20
PAY_TO_BURN, PAY_TO_CREATOR, PAY_WITH_STACKS = 1, 2, 3
BTC_TO_USTX = (650, 15)


@dataclass(frozen=True)
class Payment:
    """What an op paid: `btc_fee` sats to `burn_hash` (hash160 of the fee output), plus tokens."""

    btc_fee: int | None
    burn_hash: str | None
    token_fee: int = 0
    token_units: str = "BTC"


def stacks_price(btc_price: float | int, namespace: Record) -> int:
    """STX price of a name in a BTC-priced namespace: floor(int(btc) · 650 / 15)."""
    if namespace.get("version") == PAY_WITH_STACKS:
        return int(btc_price)
    return int(btc_price) * BTC_TO_USTX[0] // BTC_TO_USTX[1]


def check_payment(
    fqn: str, namespace: Record, payment: Payment, fee_block: int, block: int, profile: NetworkProfile
) -> bool:
    """Does `payment` (made at `fee_block`) buy `fqn` at `block`?"""
    label = split_name(fqn)[0]
    version = namespace.get("version")
    tokens_ok = profile.has_feature(block, FEATURE_TOKENS)
    paid_in_stacks = payment.token_units == "STACKS" and payment.token_fee > 0
    if version == PAY_TO_BURN:
        expected_burn, stx_allowed = BURN_ADDRESS_HASH, tokens_ok
    elif version == PAY_TO_CREATOR:
        if not profile.has_feature(block, FEATURE_PAY_TO_CREATOR):
            return False
        # NAMESPACE_RECEIVE_FEES_PERIOD (epoch 3+): the creator collects fees for a year
        # after the reveal; afterwards they are burnt.
        if namespace["reveal_block"] + BLOCKS_PER_YEAR >= block:
            # A namespace without a recorded creator hash matches no payment (None != any hash).
            expected_burn, stx_allowed = namespace.get("address_hash") or "", False
        else:
            expected_burn, stx_allowed = BURN_ADDRESS_HASH, tokens_ok
    elif version == PAY_WITH_STACKS:
        if not tokens_ok or payment.burn_hash != BURN_ADDRESS_HASH or not paid_in_stacks:
            return False
        return payment.token_fee >= price_name(label, namespace, fee_block, profile)
    else:
        return False
    if payment.burn_hash != expected_burn:
        return False
    price = price_name(label, namespace, fee_block, profile)
    if paid_in_stacks:
        return stx_allowed and payment.token_fee >= stacks_price(price, namespace)
    return payment.btc_fee is not None and payment.btc_fee >= price
