"""hash160 against digests computed independently (OpenSSL's RIPEMD-160 over SHA-256, by name)."""

from __future__ import annotations

import hashlib

from bns_resolver.hashing import hash160, hash160_hex


def test_hash160_of_known_inputs() -> None:
    assert hash160_hex(b"") == "b472a266d0bd89c13706a4132ccfb16f7c3b9fcb"
    assert hash160_hex(b"abc") == "bb1be98c142444d7a56aa3981c3942a978e4dc33"


def test_each_hash160_starts_from_a_fresh_state() -> None:
    """The RIPEMD-160 object is copied from one template: a call must not see an earlier call's bytes."""
    inputs = [b"abc", b"x" * 5000, b"", b"abc"]
    expected = [hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest() for data in inputs]
    assert [hash160(data) for data in inputs] == expected
