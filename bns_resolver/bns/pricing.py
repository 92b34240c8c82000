"""Name and namespace prices (blockstack-core `lib/scripts.py`, bns-v1.md §3.7).

Epochs 1–3 priced in floats (the price multiplier is a float); epoch 4+ switched
to integer arithmetic.  STX prices are implemented for completeness; checking a
STX payment needs account balances this project cannot rebuild (see state.py).
"""

from __future__ import annotations

from typing import Any, Mapping

from bns_resolver.bns.networks import NetworkProfile

NAME_COST_UNIT_SATS = 100
NAME_COST_UNIT_USTX = 1733
VOWELS = set("aeiouy")
NONALPHA = set("0123456789-_")


def _discount(label: str, namespace: Mapping[str, Any]) -> int:
    discount = 1
    if not any(c in VOWELS for c in label):
        discount = max(discount, namespace["no_vowel_discount"])
    if any(c in NONALPHA for c in label):
        discount = max(discount, namespace["nonalpha_discount"])
    return discount


def price_name(label: str, namespace: Mapping[str, Any], block: int, profile: NetworkProfile) -> float | int:
    """Price of `label` (without `.ns`) in the namespace's units, at fee block `block`."""
    buckets = namespace["buckets"]
    exponent = buckets[min(len(label), len(buckets)) - 1]
    coeff, base = namespace["coeff"], namespace["base"]
    unit = NAME_COST_UNIT_USTX if namespace.get("version") == 3 else NAME_COST_UNIT_SATS
    discount = _discount(label, namespace)
    epoch = profile.epoch(block)
    if epoch.integer_prices:
        price = (coeff * base**exponent * unit) // discount
        price = max(price, unit)
        divisor = 1 if namespace.get("version") == 3 else 10
        return price // divisor
    fprice = float(coeff * base**exponent) / discount * unit
    fprice = max(fprice, float(unit))
    return fprice * profile.price_multiplier(block, namespace["namespace_id"])


def price_namespace(namespace_id: str, block: int, profile: NetworkProfile) -> int:
    """Namespace price in satoshis (epochs 1–3) or µSTX (epoch 4+) by id length."""
    length = len(namespace_id)
    epoch = profile.epoch(block)
    if epoch.integer_prices and epoch.namespace_price_divisor == 1 and "stacks_tokens" in epoch.features:
        table = (640_000_000_000, 64_000_000_000, 6_400_000_000, 640_000_000)
    else:
        table = (profile.namespace_1char_cost, 4_000_000_000, 400_000_000, 40_000_000)
    if length == 1:
        price = table[0]
    elif length <= 3:
        price = table[1]
    elif length <= 7:
        price = table[2]
    else:
        price = table[3]
    return price // epoch.namespace_price_divisor
