"""Gaia profile tokens: decode, check the ES256K signature, and bind the signer to the owner.

A `profile.json` is a JSON list of token records, each `{"token": "<JWT>", ...}`.
The JWT's payload is `{jti, iat, exp, subject: {publicKey}, issuer: {publicKey}, claim}`
(in real tokens `iat`/`exp` are ISO-8601 strings) and its signature is the 64-byte
r‖s in base64url over `header.payload`. The decoded copy some records carry beside
the token is never trusted: only the signed bytes are read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from coincurve import PublicKey

from bns_resolver.profiles.addresses import key_hashes

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SIGNATURE_BYTES = 64
MAX_TOKENS = 16  # a profile.json lists one token in practice; more is waste or an attack


class TokenError(ValueError):
    """A profile token is malformed or its signature does not check."""


@dataclass(frozen=True)
class ProfileVerdict:
    verified: bool
    reason: str
    claim: dict[str, Any] | None = None
    issuer_public_key: str | None = None
    issued_at: str | None = None
    expires_at: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"verified": self.verified, "reason": self.reason, "claim": self.claim,
                "issuer_public_key": self.issuer_public_key, "issued_at": self.issued_at,
                "expires_at": self.expires_at}


@dataclass(frozen=True)
class DecodedToken:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def verify_profile_document(body: bytes, owner_hash: bytes) -> ProfileVerdict:
    """The verdict on a fetched profile.json for a name whose owner hashes to owner_hash."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return ProfileVerdict(False, f"profile is not JSON: {exc}")
    tokens = _token_strings(document)
    if not tokens:
        claim = document if isinstance(document, dict) else None
        return ProfileVerdict(False, "profile is not signed (no profile token)", claim=claim)
    failures = []
    for token in tokens[:MAX_TOKENS]:
        try:
            return _verified(decode_token(token), owner_hash)
        except TokenError as exc:
            failures.append(str(exc))
    return ProfileVerdict(False, "; ".join(dict.fromkeys(failures)), claim=_unverified_claim(tokens[0]))


def _token_strings(document: Any) -> list[str]:
    records = document if isinstance(document, list) else [document]
    return [r["token"] for r in records if isinstance(r, dict) and isinstance(r.get("token"), str)]


def _unverified_claim(token: str) -> dict[str, Any] | None:
    try:
        claim = decode_token(token).payload.get("claim")
    except TokenError:
        return None
    return claim if isinstance(claim, dict) else None


def _verified(token: DecodedToken, owner_hash: bytes) -> ProfileVerdict:
    payload = token.payload
    issuer_key = _public_key(payload, "issuer")
    _public_key(payload, "subject")
    claim = payload.get("claim")
    if not isinstance(claim, dict):
        raise TokenError("token has no claim object")
    if token.header.get("alg") != "ES256K":
        raise TokenError(f"token algorithm {token.header.get('alg')!r} is not ES256K")
    if not verify_es256k(token.signing_input, token.signature, issuer_key):
        raise TokenError("token signature does not verify against its issuer key")
    if owner_hash not in key_hashes(issuer_key):
        raise TokenError("token is signed by a key that does not own the name")
    return ProfileVerdict(True, "signed by the name's owner", claim=claim, issuer_public_key=issuer_key.hex(),
                          issued_at=_text(payload.get("iat")), expires_at=_text(payload.get("exp")))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _public_key(payload: dict[str, Any], role: str) -> bytes:
    holder = payload.get(role)
    key_hex = holder.get("publicKey") if isinstance(holder, dict) else None
    if not isinstance(key_hex, str):
        raise TokenError(f"token has no {role} public key")
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        raise TokenError(f"token's {role} public key is not hex") from None
    if len(key) not in (33, 65):
        raise TokenError(f"token's {role} public key has {len(key)} bytes")
    return key


def decode_token(token: str) -> DecodedToken:
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise TokenError("token is not a compact JWT (three dot-separated parts)")
    header, payload = (_json_part(part, what) for part, what in zip(parts[:2], ("header", "payload")))
    signature = _b64url(parts[2], "signature")
    if len(signature) != SIGNATURE_BYTES:
        raise TokenError(f"token signature has {len(signature)} bytes, not {SIGNATURE_BYTES} (r‖s)")
    return DecodedToken(header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def _json_part(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url(part, what))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TokenError(f"token {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenError(f"token {what} is not a JSON object")
    return value


def _b64url(part: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise TokenError(f"token {what} is not base64url") from None


def verify_es256k(message: bytes, signature: bytes, public_key: bytes) -> bool:
    """ECDSA over secp256k1 with SHA-256, signature as r‖s; high-S accepted (ECDSA allows it)."""
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (0 < r < SECP256K1_ORDER and 0 < s < SECP256K1_ORDER):
        return False
    # libsecp256k1 accepts only low-S; (r, n-s) is the same signature's other form.
    s = min(s, SECP256K1_ORDER - s)
    try:
        key = PublicKey(public_key)
        return bool(key.verify(_der(r, s), hashlib.sha256(message).digest(), hasher=None))
    except ValueError:
        return False


def _der(r: int, s: int) -> bytes:
    def integer(value: int) -> bytes:
        raw = value.to_bytes(32, "big").lstrip(b"\0") or b"\0"
        if raw[0] & 0x80:
            raw = b"\0" + raw
        return b"\x02" + bytes([len(raw)]) + raw

    body = integer(r) + integer(s)
    return b"\x30" + bytes([len(body)]) + body
