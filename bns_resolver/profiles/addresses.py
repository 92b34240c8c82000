"""Owner addresses to the hash160 behind them, whatever their encoding.

On-chain BNS v1 owners are Bitcoin base58check addresses; the Stacks 2.0 export
re-encodes the same hash160 as a c32check address (`SP…`). Keys are compared
with owners by that hash160, never by the address strings.
"""

from __future__ import annotations

from coincurve import PublicKey

from bns_resolver.base58 import b58check_decode
from bns_resolver.hashing import dsha256, hash160

C32_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_C32_INDEX = {char: index for index, char in enumerate(C32_ALPHABET)}
# Crockford-style look-alikes the c32 decoder accepts (as the Stacks libraries do).
_C32_ALIASES = str.maketrans({"O": "0", "L": "1", "I": "1"})
HASH160_BYTES = 20


def owner_hash160(address: str) -> bytes:
    """The 20-byte hash behind a base58check or c32check address; ValueError otherwise."""
    address = address.strip()
    if address[:1] == "S" and len(address) > 2 and address[1] in "PMTN":
        return c32check_decode(address)[1]
    _version, payload = b58check_decode(address)
    if len(payload) != HASH160_BYTES:
        raise ValueError(f"address {address!r} does not carry a 20-byte hash")
    return payload


def c32check_decode(address: str) -> tuple[int, bytes]:
    """'S' + version digit + c32(hash160 ‖ checksum) → (version, hash160)."""
    text = address.upper().translate(_C32_ALIASES)
    if not text.startswith("S") or len(text) < 3:
        raise ValueError(f"address {address!r} is not a c32check address")
    version = _c32_digit(text[1], address)
    raw = _c32_decode(text[2:], address)
    if len(raw) != HASH160_BYTES + 4:
        raise ValueError(f"address {address!r} does not carry a 20-byte hash")
    payload, checksum = raw[:HASH160_BYTES], raw[HASH160_BYTES:]
    if dsha256(bytes([version]) + payload)[:4] != checksum:
        raise ValueError(f"address {address!r} fails its c32check checksum")
    return version, payload


def _c32_digit(char: str, address: str) -> int:
    try:
        return _C32_INDEX[char]
    except KeyError:
        raise ValueError(f"address {address!r} is not c32 (bad character {char!r})") from None


def _c32_decode(text: str, address: str) -> bytes:
    # Each leading '0' stands for one leading zero byte; the rest is a base-32 number.
    leading_zeros = len(text) - len(text.lstrip("0"))
    number = 0
    for char in text:
        number = number * 32 + _c32_digit(char, address)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * leading_zeros + body


def key_hashes(public_key: bytes) -> set[bytes]:
    """hash160 of a secp256k1 public key in both its compressed and uncompressed forms."""
    key = PublicKey(public_key)
    return {hash160(key.format(compressed=True)), hash160(key.format(compressed=False))}
