"""Hash functions used by BNS: hash160 for zone files and addresses, hash128, double-SHA256."""

from __future__ import annotations

import hashlib


def _openssl_ripemd160() -> "hashlib._Hash | None":
    try:
        return hashlib.new("ripemd160")
    except ValueError:  # OpenSSL 3 builds may hide legacy digests.
        return None


# Copying a fresh object costs about a third of what hashlib.new's look-up by name does, and an
# import hashes millions of zone files (2.2 M: 3.0 -> 1.9 us a hash160).
_RIPEMD160 = _openssl_ripemd160()


def _ripemd160(data: bytes) -> bytes:
    if _RIPEMD160 is None:
        from Crypto.Hash import RIPEMD160  # type: ignore[import-not-found,unused-ignore]  # where not installed

        return RIPEMD160.new(data).digest()  # type: ignore[no-any-return,unused-ignore]
    digest = _RIPEMD160.copy()
    digest.update(data)
    return digest.digest()


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
