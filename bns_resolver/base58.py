"""Base58check, the encoding of Bitcoin addresses (used by the BNS rules and by subdomain owners)."""

from __future__ import annotations

from bns_resolver.hashing import dsha256

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: index for index, char in enumerate(_ALPHABET)}


def b58check_encode(version: int, payload: bytes) -> str:
    raw = bytes([version]) + payload
    raw += dsha256(raw)[:4]
    number = int.from_bytes(raw, "big")
    encoded = ""
    while number:
        number, digit = divmod(number, 58)
        encoded = _ALPHABET[digit] + encoded
    leading_zeros = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * leading_zeros + encoded


def b58check_decode(address: str) -> tuple[int, bytes]:
    """(version byte, payload); ValueError if not base58 or the checksum fails."""
    number = 0
    for char in address:
        if char not in _INDEX:
            raise ValueError(f"address {address!r} is not base58")
        number = number * 58 + _INDEX[char]
    leading_zeros = len(address) - len(address.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    raw = b"\0" * leading_zeros + body
    if len(raw) < 5 or dsha256(raw[:-4])[:4] != raw[-4:]:
        raise ValueError(f"address {address!r} fails its base58check checksum")
    return raw[0], raw[1:-4]
