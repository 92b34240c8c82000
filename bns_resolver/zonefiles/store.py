"""Verify-then-store: the only way zone-file bytes enter the index.

Zone files come from untrusted places (mirrors, Atlas peers, other resolvers,
subdomain records). The chain commits to hash160 of the exact bytes, so the
check is a byte-for-byte hash comparison with no normalisation; anything that
fails it is refused before a single row is written.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence

from bns_resolver.errors import VerificationError
from bns_resolver.hashing import hash160, hash160_hex
from bns_resolver.index import zonefiles as rows
from bns_resolver.index.db import Connection, Engine
from bns_resolver.index.zonefiles import ZERO_HASH, get_zonefile, has_zonefile, held_hashes

__all__ = ["MAX_ZONEFILE_BYTES", "ZERO_HASH", "get_zonefile", "has_zonefile", "held_hashes", "is_zonefile_hash",
           "store_verified", "store_verified_many", "store_verified_stream", "verifies", "verify_zonefile"]

# RPC_MAX_ZONEFILE_LEN since blockstack-core 0.18; larger files were never accepted by Atlas.
MAX_ZONEFILE_BYTES = 40960
_HASH_RE = re.compile(r"^[0-9a-f]{40}$")


def is_zonefile_hash(value: str) -> bool:
    """True for a 40-character lower-case hex hash160."""
    return bool(_HASH_RE.match(value))


def verify_zonefile(zonefile_hash: str, content: bytes) -> None:
    """Raise VerificationError unless `content` is a storable zone file for `zonefile_hash`."""
    if not is_zonefile_hash(zonefile_hash):
        raise VerificationError(f"{zonefile_hash!r} is not a 40-hex zone-file hash")
    if len(content) > MAX_ZONEFILE_BYTES:
        raise VerificationError(
            f"zone file {zonefile_hash} is {len(content)} bytes, over the {MAX_ZONEFILE_BYTES}-byte limit"
        )
    actual = hash160(content).hex()
    if actual != zonefile_hash:
        raise VerificationError(f"zone file bytes hash to {actual}, not {zonefile_hash}")


def verifies(zonefile_hash: str, content: bytes) -> bool:
    """verify_zonefile's verdict without its reason, in one comparison: a hex digest that equals the
    claim is a well-formed lower-case hash (for the bulk paths: an import, a compile)."""
    return len(content) <= MAX_ZONEFILE_BYTES and hash160_hex(content) == zonefile_hash


def store_verified(
    engine_or_conn: Engine | Connection,
    zonefile_hash: str,
    content: bytes,
    source: str,
    *,
    now: float | None = None,
) -> bool:
    """Check `content` against `zonefile_hash`, then store it.

    Returns True if the row was written, False if we already held this hash.
    Raises VerificationError (and writes nothing) if the bytes do not match.
    With a Connection, the write joins the caller's transaction.
    """
    verify_zonefile(zonefile_hash.lower(), content)
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.begin() as conn:
            stored, _failed = store_verified_many(conn, [(zonefile_hash, content)], source, now=now)
    else:
        stored, _failed = store_verified_many(engine_or_conn, [(zonefile_hash, content)], source, now=now)
    return bool(stored)


def store_verified_many(
    conn: Connection,
    items: Sequence[tuple[str, bytes]],
    source: str,
    *,
    now: float | None = None,
) -> tuple[list[str], list[tuple[str, VerificationError]]]:
    """Verify each (hash, bytes) pair, then store the good ones inside the caller's transaction.

    Returns (hashes newly stored, [(hash, error)] for bytes that failed
    verification). Failures never reach the table; held hashes are skipped.
    """
    good: dict[str, bytes] = {}
    failed: list[tuple[str, VerificationError]] = []
    for zonefile_hash, content in _verified(items, failed):
        good.setdefault(zonefile_hash, content)
    held = held_hashes(conn, good)
    fresh = {h: content for h, content in good.items() if h not in held}
    rows.insert_verified(conn, fresh, source, time.time() if now is None else now)
    return list(fresh), failed


def store_verified_stream(
    conn: Connection,
    items: Iterable[tuple[str, bytes]],
    source: str,
    *,
    now: float | None = None,
) -> list[tuple[str, VerificationError]]:
    """store_verified_many for a bulk load (the export's millions of files): each pair is verified
    as it is pulled from `items` and the good ones go to one streamed insert that skips held
    hashes, inside the caller's transaction. Returns [(hash, error)] for the failures."""
    failed: list[tuple[str, VerificationError]] = []
    rows.insert_verified_stream(conn, _verified(items, failed), source, time.time() if now is None else now)
    return failed


def _verified(items: Iterable[tuple[str, bytes]],
              failed: list[tuple[str, VerificationError]]) -> Iterator[tuple[str, bytes]]:
    """The pairs whose bytes hash to their (lower-cased) hash; the others are noted in `failed`."""
    for zonefile_hash, content in items:
        claimed = zonefile_hash.lower()
        if verifies(claimed, content):
            yield claimed, content
        else:
            failed.append((zonefile_hash, _refusal(claimed, content)))


def _refusal(zonefile_hash: str, content: bytes) -> VerificationError:
    """The error verify_zonefile gives for bytes that failed the check in _verified."""
    try:
        verify_zonefile(zonefile_hash, content)
    except VerificationError as exc:
        return exc
    return VerificationError(f"zone file {zonefile_hash} does not verify")  # the two checks disagree: refuse
