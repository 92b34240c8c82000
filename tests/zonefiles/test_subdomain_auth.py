from __future__ import annotations

import base64

import pytest
from bitcoin.base58 import CBase58Data
from bitcoin.core import Hash160

from bns_resolver.zonefiles.subdomain_auth import (
    AuthError,
    b58check_decode,
    make_multisig_redeem_script,
    p2pkh_address,
    p2sh_address,
    sign_multisig,
    sign_singlesig,
    verify_signature,
)
from tests.support.zonefile_subdomains import address, key


def test_addresses_match_python_bitcoinlib() -> None:
    """Our base58check p2pkh/p2sh encodings equal python-bitcoinlib's, and decode back.

    Uses bitcoinlib's network-independent base58 layer: other tests switch its global params.
    """
    pubkey = key(7).public_key.format()
    script = make_multisig_redeem_script(1, [pubkey])
    assert p2pkh_address(pubkey) == str(CBase58Data.from_bytes(Hash160(pubkey), 0))
    assert p2sh_address(script) == str(CBase58Data.from_bytes(Hash160(script), 5))
    reference = CBase58Data("16EMaNw3pkn3v6f2BgnSSs53zAKH4Q8YJg")
    assert b58check_decode("16EMaNw3pkn3v6f2BgnSSs53zAKH4Q8YJg") == (reference.nVersion, bytes(reference))


def test_bad_checksum_is_rejected() -> None:
    """A one-character change breaks the base58check checksum (check_address doc vector)."""
    with pytest.raises(AuthError, match="checksum"):
        b58check_decode("16EMaNw3pkn3v6f2BgnSSs53zAKH4Q8YJh")


def test_singlesig_round_trip_and_tamper() -> None:
    """A p2pkh signature verifies for its text and fails for any other text."""
    signer = key(11)
    sig = sign_singlesig(signer, "alice,owner=x,seqn=1,parts=0")
    verify_signature(address(signer), "alice,owner=x,seqn=1,parts=0", sig)
    with pytest.raises(AuthError, match="does not verify"):
        verify_signature(address(signer), "alice,owner=x,seqn=2,parts=0", sig)


def test_uncompressed_key_must_match_its_own_address() -> None:
    """An uncompressed pubkey hashes to a different address than the compressed one."""
    signer = key(12)
    sig = sign_singlesig(signer, "t", compressed=False)
    with pytest.raises(AuthError, match="does not hash"):
        verify_signature(address(signer), "t", sig)
    verify_signature(p2pkh_address(signer.public_key.format(compressed=False)), "t", sig)


def test_high_s_signature_is_accepted_like_blockstack_core() -> None:
    """python-cryptography accepted high-S signatures, so the flipped-S twin must verify too."""
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    signer = key(13)
    script = base64.b64decode(sign_singlesig(signer, "t"))
    r, s = script[1:33], int.from_bytes(script[33:65], "big")
    flipped = script[:1] + r + (order - s).to_bytes(32, "big") + script[65:]
    verify_signature(address(signer), "t", base64.b64encode(flipped).decode())


def test_multisig_two_of_three() -> None:
    """A 2-of-3 p2sh owner verifies with any two keys in script order, not with one."""
    keys = [key(21), key(22), key(23)]
    script = make_multisig_redeem_script(2, [k.public_key.format() for k in keys])
    owner = p2sh_address(script)
    verify_signature(owner, "t", sign_multisig([keys[0], keys[2]], script, "t"))
    one_sig = sign_multisig([keys[1]], script, "t")  # only one of the two required signatures
    with pytest.raises(AuthError, match="signatures"):
        verify_signature(owner, "t", one_sig)


def test_unknown_version_byte_is_rejected() -> None:
    """Owners must be mainnet p2pkh (0) or p2sh (5) addresses."""
    testnet = "mkkJsS22dnDJhD8duFkpGnHNr9uz3JEcWu"
    with pytest.raises(AuthError, match="version byte 111"):
        verify_signature(testnet, "t", sign_singlesig(key(1), "t"))


def test_missing_signature_is_rejected() -> None:
    """An update without `sig` cannot be authorised."""
    with pytest.raises(AuthError, match="no signature"):
        verify_signature(address(key(1)), "t", None)
