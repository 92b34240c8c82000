import json

from coincurve import PrivateKey

from bns_resolver.hashing import hash160
from bns_resolver.profiles.tokens import SECP256K1_ORDER, decode_token, verify_es256k, verify_profile_document
from tests.support.profiles import PERSON, b64url, profile_document, sign_profile_token


def _owner(key: PrivateKey) -> bytes:
    return hash160(key.public_key.format(compressed=True))


def test_a_profile_signed_by_the_owner_verifies() -> None:
    key = PrivateKey()
    verdict = verify_profile_document(profile_document(sign_profile_token(PERSON, key)), _owner(key))
    assert verdict.verified, verdict.reason
    assert verdict.claim == PERSON
    assert verdict.issued_at and "T" in verdict.issued_at  # ISO-8601 strings, as real tokens carry


def test_the_uncompressed_key_hash_also_owns_the_name() -> None:
    key = PrivateKey()
    owner = hash160(key.public_key.format(compressed=False))
    assert verify_profile_document(profile_document(sign_profile_token(PERSON, key)), owner).verified


def test_a_profile_signed_by_another_key_is_not_verified() -> None:
    owner, stranger = PrivateKey(), PrivateKey()
    verdict = verify_profile_document(profile_document(sign_profile_token(PERSON, stranger)), _owner(owner))
    assert not verdict.verified
    assert "does not own the name" in verdict.reason
    assert verdict.claim == PERSON  # shown, but as unverified


def test_a_token_claiming_the_owner_key_but_signed_by_another_fails_the_signature() -> None:
    owner, forger = PrivateKey(), PrivateKey()
    token = sign_profile_token(PERSON, forger, issuer_key=owner.public_key.format(compressed=True))
    verdict = verify_profile_document(profile_document(token), _owner(owner))
    assert not verdict.verified and "signature does not verify" in verdict.reason


def test_a_tampered_claim_breaks_the_signature() -> None:
    key = PrivateKey()
    header, payload, signature = sign_profile_token(PERSON, key).split(".")
    decoded = decode_token(f"{header}.{payload}.{signature}").payload
    decoded["claim"]["name"] = "Mallory"
    forged = f"{header}.{b64url(json.dumps(decoded).encode())}.{signature}"
    assert not verify_profile_document(profile_document(forged), _owner(key)).verified


def test_high_s_signatures_verify_like_their_low_s_twin() -> None:
    key = PrivateKey()
    token = sign_profile_token(PERSON, key)
    decoded = decode_token(token)
    r, s = decoded.signature[:32], int.from_bytes(decoded.signature[32:], "big")
    high = r + (SECP256K1_ORDER - s).to_bytes(32, "big")
    assert verify_es256k(decoded.signing_input, high, key.public_key.format())


def test_unsigned_and_malformed_profiles_say_why() -> None:
    owner = _owner(PrivateKey())
    assert "not JSON" in verify_profile_document(b"<html>", owner).reason
    legacy = verify_profile_document(json.dumps({"name": "legacy"}).encode(), owner)
    assert not legacy.verified and "not signed" in legacy.reason
    garbage = verify_profile_document(json.dumps([{"token": "a.b"}]).encode(), owner)
    assert not garbage.verified and "compact JWT" in garbage.reason
