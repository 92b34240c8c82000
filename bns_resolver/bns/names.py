"""Name and namespace syntax, base-40 encoding, name hashes and expiry deadlines.

Rules from blockstack-core `lib/scripts.py`, `lib/b40.py`, `lib/hashing.py`
(bns-v1.md §1.3, §3.3, §3.5).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping

from bns_resolver.hashing import hash128, hash160

if TYPE_CHECKING:
    from bns_resolver.bns.networks import NetworkProfile

B40_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz-_.+"
LIFETIME_INFINITE = 0xFFFFFFFF
MAX_NAME_LENGTH = 37
MAX_NAMESPACE_LENGTH = 19

_LABEL = re.compile(r"^[a-z0-9\-_]+$")
_NAMESPACE = re.compile(r"^[a-z0-9\-_]{1,19}$")


def b40_to_bytes(text: str) -> bytes:
    """Interpret `text` as a base-40 number and return its big-endian bytes (hex-padded)."""
    value = 0
    for char in text:
        value = value * 40 + B40_ALPHABET.index(char)
    hex_text = "%x" % value
    if len(hex_text) % 2:
        hex_text = "0" + hex_text
    return bytes.fromhex(hex_text)


def is_b40(text: str) -> bool:
    return bool(text) and all(c in B40_ALPHABET for c in text)


def is_namespace_id_valid(namespace_id: str) -> bool:
    return bool(_NAMESPACE.match(namespace_id))


def is_name_valid(fqn: str) -> bool:
    """`label.ns`: exactly one dot, total ≤ 37 chars, both parts in [a-z0-9-_]."""
    if len(fqn) > MAX_NAME_LENGTH or fqn.count(".") != 1:
        return False
    label, namespace_id = fqn.split(".")
    return bool(_LABEL.match(label)) and is_namespace_id_valid(namespace_id)


def split_name(fqn: str) -> tuple[str, str]:
    """('label', 'namespace_id') of a fully-qualified name."""
    label, _, namespace_id = fqn.rpartition(".")
    return label, namespace_id


def hash_name(name: str, script_hex: str, address: str) -> str:
    """Preorder hash: hash160(b40(name) ‖ script bytes ‖ ASCII address), as hex."""
    return hash160(b40_to_bytes(name) + bytes.fromhex(script_hex) + address.encode("ascii")).hex()


def name_hash128(fqn: str) -> str:
    return hash128(fqn.encode("ascii")).hex()


def name_consensus_hash(fqn: str, consensus_hash: str) -> str:
    """NAME_UPDATE's payload hash: hash128(fqn ‖ consensus hash hex)."""
    return hash128((fqn + consensus_hash).encode("ascii")).hex()


def name_expire_block(
    name: Mapping[str, Any], namespace: Mapping[str, Any], profile: "NetworkProfile", block: int
) -> int | None:
    """First block at which the name is expired (grace starts), judged with block's epoch."""
    lifetime = namespace["lifetime"]
    if lifetime == LIFETIME_INFINITE:
        return None
    mult = profile.lifetime_multiplier(block, namespace["namespace_id"])
    return max(namespace["ready_block"], name["last_renewed"]) + lifetime * mult


def is_name_registered_at(
    name: Mapping[str, Any], namespace: Mapping[str, Any], profile: "NetworkProfile", block: int
) -> bool:
    """The reference's 'unexpired' SQL predicate (db.py namedb_select_where_unexpired_names)."""
    if name["first_registered"] > block:
        return False
    if namespace.get("ready_block") is not None and namespace.get("ready"):
        lifetime = namespace["lifetime"]
        if lifetime == LIFETIME_INFINITE:
            return True
        span = lifetime * profile.lifetime_multiplier(block, namespace["namespace_id"])
        span += profile.grace_period(block)
        return namespace["ready_block"] + span > block or name["last_renewed"] + span >= block
    reveal = namespace["reveal_block"]
    return reveal <= block < reveal + profile.namespace_reveal_expire


def in_grace_period(
    name: Mapping[str, Any], namespace: Mapping[str, Any], profile: "NetworkProfile", block: int
) -> bool:
    """Epoch 3+: the renewal-only window between expire_block and expire_block + grace."""
    grace = profile.grace_period(block)
    expire = name_expire_block(name, namespace, profile, block)
    if not grace or expire is None or not namespace.get("ready"):
        return False
    return expire <= block < expire + grace


def resolvable_until(
    name: Mapping[str, Any], namespace: Mapping[str, Any], profile: "NetworkProfile"
) -> int | None:
    """Last block at which the name still resolves (None = never expires).

    Judged with the epoch in force at the name's expiry; after the freeze height
    nothing renews, so the answer is final for frozen chains.  A revoked name
    resolves nowhere, which we report as the block before its last renewal.
    """
    if name.get("revoked"):
        return name["last_renewed"] - 1
    if not namespace.get("ready"):
        return namespace["reveal_block"] + profile.namespace_reveal_expire - 1
    if namespace["lifetime"] == LIFETIME_INFINITE:
        return None
    base = max(namespace["ready_block"], name["last_renewed"])
    guess = base + namespace["lifetime"]
    expire = name_expire_block(name, namespace, profile, guess)
    assert expire is not None
    return expire - 1
