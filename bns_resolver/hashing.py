"""Hash functions used by BNS: hash160 for zone files and addresses, hash128, double-SHA256."""

from __future__ import annotations

import hashlib


def _ripemd160(data: bytes) -> bytes:
    try:
        return hashlib.new("ripemd160", data).digest()
    except ValueError:  # OpenSSL 3 builds may hide legacy digests.
        from Crypto.Hash import RIPEMD160  # type: ignore[import-not-found,unused-ignore]  # where not installed

        return RIPEMD160.new(data).digest()


def hash160(data: bytes) -> bytes:
    """RIPEMD160(SHA256(data)): the digest a value hash commits to."""
    return _ripemd160(hashlib.sha256(data).digest())


def hash160_hex(data: bytes) -> str:
    return hash160(data).hex()


def hash128(data: bytes) -> bytes:
    """First 16 bytes of a single SHA256 (BNS's name_hash128 and name consensus hash)."""
    return hashlib.sha256(data).digest()[:16]


def dsha256(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()
