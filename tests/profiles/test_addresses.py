from pathlib import Path

import pytest
from coincurve import PrivateKey

from bns_resolver.base58 import b58check_encode
from bns_resolver.hashing import hash160
from bns_resolver.profiles.addresses import c32check_decode, key_hashes, owner_hash160

CHAINSTATE = Path(__file__).resolve().parents[2] / "bns_resolver" / "data" / "chainstate.txt"


def _export_addresses() -> list[str]:
    rows = [line.split(",") for line in CHAINSTATE.read_text().splitlines()]
    return [row[1] for row in rows if len(row) > 2 and row[1].startswith("SP")]


def test_every_real_export_address_decodes_with_a_valid_checksum() -> None:
    addresses = _export_addresses()
    assert len(addresses) == 17  # 5 namespaces + 12 names
    for address in addresses:
        version, payload = c32check_decode(address)
        assert version == 22 and len(payload) == 20  # 22 = 'P', mainnet single-sig


def test_c32_and_base58_forms_of_one_hash_compare_equal() -> None:
    zone117x = "SP3R9402R2XB0WMG0BTEMZ5Q67QFJ7Y8YVJRQCJZN"
    digest = owner_hash160(zone117x)
    assert owner_hash160(b58check_encode(0, digest)) == digest


def test_a_corrupted_address_is_rejected() -> None:
    with pytest.raises(ValueError, match="checksum"):
        owner_hash160("SP3R9402R2XB0WMG0BTEMZ5Q67QFJ7Y8YVJRQCJZM")
    with pytest.raises(ValueError):
        owner_hash160("not-an-address")


def test_key_hashes_cover_both_key_encodings() -> None:
    key = PrivateKey()
    hashes = key_hashes(key.public_key.format(compressed=True))
    assert hash160(key.public_key.format(compressed=False)) in hashes
    assert hash160(key.public_key.format(compressed=True)) in hashes
