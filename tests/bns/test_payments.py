"""Tests for bns.payments: v22 payment rules per namespace version."""

from bns_resolver.bns.payments import BURN_ADDRESS_HASH, Payment, check_payment, stacks_price
from bns_resolver.bns.networks import mainnet

BASE = {"namespace_id": "id", "coeff": 250, "base": 4, "buckets": [6, 5, 4, 3, 2, 1] + [0] * 10,
        "nonalpha_discount": 4, "no_vowel_discount": 4, "reveal_block": 500000, "address_hash": "ab" * 20}


def test_pay_to_burn_needs_burn_address_and_price() -> None:
    """v1: 100000 sat to the burn address buys muneeb.id in epoch 1; elsewhere it does not."""
    ns = dict(BASE, version=1)
    profile = mainnet()
    assert check_payment("muneeb.id", ns, Payment(100000, BURN_ADDRESS_HASH), 400000, 400001, profile)
    assert not check_payment("muneeb.id", ns, Payment(99999, BURN_ADDRESS_HASH), 400000, 400001, profile)
    assert not check_payment("muneeb.id", ns, Payment(100000, "ab" * 20), 400000, 400001, profile)


def test_pay_to_creator_for_a_year_then_burn() -> None:
    """v2 (epoch 3+): fees go to the creator within a year of the reveal, then to the burn address."""
    ns = dict(BASE, version=2)
    profile = mainnet()
    assert check_payment("muneeb.id", ns, Payment(10000, "ab" * 20), 500100, 500100, profile)
    assert not check_payment("muneeb.id", ns, Payment(10000, BURN_ADDRESS_HASH), 500100, 500100, profile)
    late = 500000 + 52595 + 1
    assert check_payment("muneeb.id", ns, Payment(10000, BURN_ADDRESS_HASH), late, late, profile)
    assert not check_payment("muneeb.id", ns, Payment(10000, "ab" * 20), 450000, 450000, profile)


def test_stacks_price_conversion() -> None:
    """BTC-priced names cost floor(sats · 650 / 15) µSTX."""
    assert stacks_price(10000, {"version": 1}) == 433333
    assert stacks_price(1733, {"version": 3}) == 1733
