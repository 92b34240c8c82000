"""Real signed Gaia profile tokens for tests: ES256K JWTs made with a real secp256k1 key."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from coincurve import PrivateKey

from bns_resolver.base58 import b58check_encode
from bns_resolver.hashing import hash160


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def owner_address(key: PrivateKey, *, compressed: bool = True, version: int = 0) -> str:
    """The Bitcoin (base58check P2PKH) address of a key, as BNS v1 owners are written."""
    return b58check_encode(version, hash160(key.public_key.format(compressed=compressed)))


def sign_profile_token(claim: dict[str, Any], key: PrivateKey, *, issuer_key: bytes | None = None) -> str:
    """A profile token shaped like stacks.js's signProfileToken (ISO-8601 iat/exp, r‖s signature)."""
    public_hex = (issuer_key or key.public_key.format(compressed=True)).hex()
    now = datetime.now(timezone.utc)
    payload = {
        "jti": str(uuid.uuid4()), "iat": now.isoformat(), "exp": (now + timedelta(days=365)).isoformat(),
        "subject": {"publicKey": public_hex}, "issuer": {"publicKey": public_hex}, "claim": claim,
    }
    header = {"typ": "JWT", "alg": "ES256K"}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    compact = key.sign_recoverable(hashlib.sha256(signing_input.encode()).digest(), hasher=None)
    return f"{signing_input}.{b64url(compact[:64])}"


def profile_document(token: str) -> bytes:
    """A profile.json as Gaia stores it: a list of token records."""
    return json.dumps([{"token": token, "decodedToken": {"note": "never trusted"}}]).encode()


PERSON = {
    "@type": "Person", "name": "Alice <b>Example</b>", "description": "I own this name.",
    "image": [{"@type": "ImageObject", "name": "avatar", "contentUrl": "https://example.org/a.png"}],
    "website": [{"@type": "WebSite", "url": "https://alice.example.org/"}],
    "account": [{"@type": "Account", "service": "github", "identifier": "alice"}],
}
