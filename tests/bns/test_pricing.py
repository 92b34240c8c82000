"""Tests for bns.pricing against the .id examples of bns-v1.md §3.7."""

from bns_resolver.bns.pricing import price_name, price_namespace
from bns_resolver.bns.networks import mainnet

ID = {
    "namespace_id": "id", "version": 1, "coeff": 250, "base": 4,
    "buckets": [6, 5, 4, 3, 2, 1] + [0] * 10, "nonalpha_discount": 4, "no_vowel_discount": 4,
}


def test_id_prices_per_epoch() -> None:
    """muneeb 100000 sat (epoch 1), patrickstanley 25000 (epoch 2), ×0.1 in epoch 3, ÷10 integer in 4."""
    profile = mainnet()
    assert price_name("muneeb", ID, 373700, profile) == 100000.0
    assert price_name("patrickstanley", ID, 445838, profile) == 25000.0
    assert abs(price_name("muneeb", ID, 500000, profile) - 10000.0) < 1e-6
    assert price_name("muneeb", ID, 560000, profile) == 10000
    assert isinstance(price_name("muneeb", ID, 560000, profile), int)


def test_discounts_take_the_max_not_the_product() -> None:
    """A 7+-char label with a digit costs 6250 sat in epoch 1."""
    assert price_name("abcdefg1", ID, 373700, mainnet()) == 6250.0


def test_namespace_prices() -> None:
    """Table A in epochs 1–2, ÷10 in epoch 3, STX table from epoch 4."""
    profile = mainnet()
    assert price_namespace("x", 400000, profile) == 40_000_000_000
    assert price_namespace("id", 400000, profile) == 4_000_000_000
    assert price_namespace("test", 500000, profile) == 40_000_000
    assert price_namespace("podcast2", 560000, profile) == 640_000_000
