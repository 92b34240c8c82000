"""Who may change a subdomain: base58check owner addresses and the `sig=` scriptSig.

A subdomain update is authorised the Bitcoin way (blockstack-core
`lib/subdomains.py: verify`): the previous owner's address says which key or
script controls it, and `sig` is a base64 scriptSig over SHA256 of the record's
signed text.

- version byte 0 (p2pkh): `<64-byte r||s> <pubkey>`, hash160(pubkey) == address hash.
- version byte 5 (p2sh multisig): `OP_0 <r||s>… <redeem script>`,
  hash160(redeem script) == address hash, m signatures matched to the
  script's keys in order (OP_CHECKMULTISIG style).

Signatures are raw 64-byte r||s, not DER. blockstack-core verified them with
python-cryptography, which accepts high-S values, so we normalise to low-S
before handing them to libsecp256k1 (which would refuse them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from coincurve import PrivateKey, PublicKey
from coincurve.ecdsa import cdata_to_der, deserialize_compact, signature_normalize

from bns_resolver import base58
from bns_resolver.base58 import b58check_encode
from bns_resolver.hashing import hash160

P2PKH_VERSION = 0
P2SH_VERSION = 5
_OP_0 = 0x00
_OP_PUSHDATA1, _OP_PUSHDATA2, _OP_PUSHDATA4 = 0x4C, 0x4D, 0x4E
_OP_1, _OP_16 = 0x51, 0x60
_OP_CHECKMULTISIG = 0xAE


class AuthError(ValueError):
    """A subdomain signature or owner address is malformed or does not verify."""


def b58check_decode(address: str) -> tuple[int, bytes]:
    """(version byte, 20-byte hash) of a base58check address; AuthError if malformed."""
    try:
        version, payload = base58.b58check_decode(address)
    except ValueError as exc:
        raise AuthError(str(exc)) from None
    if len(payload) != 20:
        raise AuthError(f"address {address!r} does not hold a 20-byte hash")
    return version, payload


def p2pkh_address(pubkey: bytes) -> str:
    return b58check_encode(P2PKH_VERSION, hash160(pubkey))


def p2sh_address(redeem_script: bytes) -> str:
    return b58check_encode(P2SH_VERSION, hash160(redeem_script))


def verify_signature(owner_address: str, signed_text: str, sig_b64: str | None) -> None:
    """Return if `sig_b64` is `owner_address`'s signature over `signed_text`; else raise AuthError."""
    if not sig_b64:
        raise AuthError("update carries no signature")
    try:
        script = base64.b64decode(sig_b64, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise AuthError(f"signature is not base64: {exc}") from None
    digest = hashlib.sha256(signed_text.encode("utf-8")).digest()
    version, address_hash = b58check_decode(owner_address)
    if version == P2PKH_VERSION:
        _verify_singlesig(address_hash, digest, _script_pushes(script))
    elif version == P2SH_VERSION:
        _verify_multisig(address_hash, digest, _script_pushes(script))
    else:
        raise AuthError(f"owner address version byte {version} is neither p2pkh (0) nor p2sh (5)")


def _verify_singlesig(address_hash: bytes, digest: bytes, pushes: list[bytes]) -> None:
    if len(pushes) != 2:
        raise AuthError(f"single-sig script has {len(pushes)} items, expected signature and public key")
    raw_sig, pubkey = pushes
    if hash160(pubkey) != address_hash:
        raise AuthError("public key in the signature does not hash to the previous owner's address")
    if not _ecdsa_ok(pubkey, raw_sig, digest):
        raise AuthError("signature does not verify against the previous owner's key")


def _verify_multisig(address_hash: bytes, digest: bytes, pushes: list[bytes]) -> None:
    if len(pushes) < 2:
        raise AuthError("multisig script has no signatures")
    redeem_script, sigs = pushes[-1], pushes[1:-1]
    if hash160(redeem_script) != address_hash:
        raise AuthError("redeem script does not hash to the previous owner's p2sh address")
    required, pubkeys = parse_multisig_redeem_script(redeem_script)
    if len(sigs) != required:
        raise AuthError(f"multisig has {len(sigs)} signatures, {required} required")
    keys = iter(pubkeys)
    for raw_sig in sigs:  # like OP_CHECKMULTISIG: each signature matches a later key than the last
        if not any(_ecdsa_ok(pubkey, raw_sig, digest) for pubkey in keys):
            raise AuthError("multisig signatures do not verify in key order")


def _ecdsa_ok(pubkey: bytes, raw_sig: bytes, digest: bytes) -> bool:
    if len(raw_sig) != 64:
        return False
    try:
        _, normalized = signature_normalize(deserialize_compact(raw_sig))
        return bool(PublicKey(pubkey).verify(cdata_to_der(normalized), digest, hasher=None))
    except (ValueError, TypeError):
        return False


def _script_pushes(script: bytes) -> list[bytes]:
    """The data pushes of a push-only script (OP_0 pushes b'')."""
    pushes: list[bytes] = []
    at = 0
    while at < len(script):
        opcode = script[at]
        at += 1
        if opcode == _OP_0:
            pushes.append(b"")
            continue
        size, at = _push_size(script, opcode, at)
        if at + size > len(script):
            raise AuthError("signature script is truncated")
        pushes.append(script[at : at + size])
        at += size
    return pushes


def _push_size(script: bytes, opcode: int, at: int) -> tuple[int, int]:
    if opcode < _OP_PUSHDATA1:
        return opcode, at
    width = {_OP_PUSHDATA1: 1, _OP_PUSHDATA2: 2, _OP_PUSHDATA4: 4}.get(opcode)
    if width is None or at + width > len(script):
        raise AuthError(f"signature script has non-push opcode 0x{opcode:02x}")
    return int.from_bytes(script[at : at + width], "little"), at + width


def parse_multisig_redeem_script(script: bytes) -> tuple[int, list[bytes]]:
    """(m, public keys) of `OP_m <key>… OP_n OP_CHECKMULTISIG`; AuthError otherwise."""
    if len(script) < 3 or script[-1] != _OP_CHECKMULTISIG:
        raise AuthError("redeem script is not a multisig script")
    if not (_OP_1 <= script[0] <= _OP_16 and _OP_1 <= script[-2] <= _OP_16):
        raise AuthError("redeem script lacks OP_m/OP_n")
    required, total = script[0] - _OP_1 + 1, script[-2] - _OP_1 + 1
    pubkeys = _script_pushes(script[1:-2])
    if len(pubkeys) != total or not 0 < required <= total:
        raise AuthError(f"redeem script is {required}-of-{total} with {len(pubkeys)} keys")
    return required, pubkeys


# --- signing: used by tests and by anyone building subdomain records ---------------------------


def sign_singlesig(private_key: PrivateKey, signed_text: str, *, compressed: bool = True) -> str:
    """base64 scriptSig `<r||s> <pubkey>` for `signed_text`, as blockstack-core's sign_singlesig."""
    digest = hashlib.sha256(signed_text.encode("utf-8")).digest()
    raw_sig = private_key.sign_recoverable(digest, hasher=None)[:64]
    pubkey = private_key.public_key.format(compressed=compressed)
    return base64.b64encode(_push(raw_sig) + _push(pubkey)).decode("ascii")


def sign_multisig(private_keys: list[PrivateKey], redeem_script: bytes, signed_text: str) -> str:
    """base64 scriptSig `OP_0 <r||s>… <redeem script>`, signatures in the script's key order."""
    digest = hashlib.sha256(signed_text.encode("utf-8")).digest()
    required, pubkeys = parse_multisig_redeem_script(redeem_script)
    formats = {key.public_key.format(compressed=c): key for key in private_keys for c in (True, False)}
    signers = [formats[pk] for pk in pubkeys if pk in formats][:required]
    sigs = [key.sign_recoverable(digest, hasher=None)[:64] for key in signers]
    return base64.b64encode(bytes([_OP_0]) + b"".join(_push(s) for s in sigs) + _push(redeem_script)).decode()


def make_multisig_redeem_script(required: int, pubkeys: list[bytes]) -> bytes:
    body = b"".join(_push(pk) for pk in pubkeys)
    return bytes([_OP_1 + required - 1]) + body + bytes([_OP_1 + len(pubkeys) - 1, _OP_CHECKMULTISIG])


def _push(data: bytes) -> bytes:
    if len(data) < _OP_PUSHDATA1:
        return bytes([len(data)]) + data
    return bytes([_OP_PUSHDATA1, len(data)]) + data
