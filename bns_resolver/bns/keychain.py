"""NAME_IMPORT keyring: BIP32 public children of the revealer's key.

keychain-manager-py `PublicKeychain.from_public_key(P)`: an xpub with depth 0,
zero fingerprint and a chain code of 32 zero bytes; children 0..n-1 are
non-hardened CKDpub derivations, used as compressed p2pkh addresses.  The
revealer's own address (as its key was given) is appended (namedb.py
`build_import_keychain`).
"""

from __future__ import annotations

import hashlib
import hmac

from coincurve import PublicKey

from bns_resolver.bns.senders import b58check_encode
from bns_resolver.hashing import hash160


def child_public_keys(pubkey_hex: str, count: int) -> list[bytes]:
    """Compressed public keys of non-hardened children 0..count-1 (chain code = 0^32)."""
    parent = PublicKey(bytes.fromhex(pubkey_hex))
    parent_ser = parent.format(compressed=True)
    chain_code = b"\0" * 32
    children = []
    for index in range(count):
        digest = hmac.new(chain_code, parent_ser + index.to_bytes(4, "big"), hashlib.sha512).digest()
        child = parent.add(digest[:32])
        children.append(child.format(compressed=True))
    return children


def import_keychain(pubkey_hex: str, count: int, p2pkh_version: int) -> list[str]:
    """Addresses allowed to import into a namespace revealed by `pubkey_hex`."""
    addresses = [b58check_encode(p2pkh_version, hash160(key)) for key in child_public_keys(pubkey_hex, count)]
    addresses.append(b58check_encode(p2pkh_version, hash160(bytes.fromhex(pubkey_hex))))
    return addresses
