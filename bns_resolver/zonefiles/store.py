"""Verify-then-store: the only way zone-file bytes enter the index.

Zone files come from untrusted places (mirrors, Atlas peers, other resolvers,
subdomain records). The chain commits to hash160 of the exact bytes, so the
check is a byte-for-byte hash comparison with no normalisation; anything that
fails it is refused before a single row is written.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from bns_resolver.errors import VerificationError
from bns_resolver.hashing import hash160
from bns_resolver.index.schema import zonefile_wants, zonefiles

# RPC_MAX_ZONEFILE_LEN since blockstack-core 0.18; larger files were never accepted by Atlas.
MAX_ZONEFILE_BYTES = 40960
ZERO_HASH = "0" * 40
_HASH_RE = re.compile(r"^[0-9a-f]{40}$")

# Longest `source` we keep; the column is String(256).
_SOURCE_MAX = 256


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
    zonefile_hash = zonefile_hash.lower()
    verify_zonefile(zonefile_hash, content)
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.begin() as conn:
            return _insert(conn, zonefile_hash, content, source, now)
    return _insert(engine_or_conn, zonefile_hash, content, source, now)


def store_verified_many(
    conn: Connection,
    items: Sequence[tuple[str, bytes]],
    source: str,
    *,
    now: float | None = None,
) -> tuple[list[str], list[tuple[str, VerificationError]]]:
    """Batch form of `store_verified` inside the caller's transaction.

    Returns (hashes newly stored, [(hash, error)] for bytes that failed
    verification). Failures never reach the table; held hashes are skipped.
    """
    good: dict[str, bytes] = {}
    failed: list[tuple[str, VerificationError]] = []
    for zonefile_hash, content in items:
        try:
            verify_zonefile(zonefile_hash.lower(), content)
        except VerificationError as exc:
            failed.append((zonefile_hash, exc))
            continue
        good.setdefault(zonefile_hash.lower(), content)
    held = held_hashes(conn, good)
    fresh = [h for h in good if h not in held]
    fetched_at = time.time() if now is None else now
    for start in range(0, len(fresh), 500):
        chunk = fresh[start : start + 500]
        rows = [{"zonefile_hash": h, "content": good[h], "source": source[:_SOURCE_MAX], "fetched_at": fetched_at} for h in chunk]
        conn.execute(zonefiles.insert(), rows)
        conn.execute(
            zonefile_wants.update()
            .where(zonefile_wants.c.zonefile_hash.in_(chunk))
            .values(attempts=0, next_attempt_at=0.0, last_error=None)
        )
    return fresh, failed


def _insert(conn: Connection, zonefile_hash: str, content: bytes, source: str, now: float | None) -> bool:
    if has_zonefile(conn, zonefile_hash):
        return False
    conn.execute(
        zonefiles.insert().values(
            zonefile_hash=zonefile_hash,
            content=content,
            source=source[:_SOURCE_MAX],
            fetched_at=time.time() if now is None else now,
        )
    )
    # Keep the want row: its first_block/inv_index order subdomain history. Only the
    # backoff state is stale now.
    conn.execute(
        zonefile_wants.update()
        .where(zonefile_wants.c.zonefile_hash == zonefile_hash)
        .values(attempts=0, next_attempt_at=0.0, last_error=None)
    )
    return True


def has_zonefile(conn: Connection, zonefile_hash: str) -> bool:
    query = select(zonefiles.c.zonefile_hash).where(zonefiles.c.zonefile_hash == zonefile_hash)
    return conn.execute(query).first() is not None


def get_zonefile(engine_or_conn: Engine | Connection, zonefile_hash: str) -> bytes | None:
    """The stored (already verified) bytes for `zonefile_hash`, or None."""
    query = select(zonefiles.c.content).where(zonefiles.c.zonefile_hash == zonefile_hash.lower())
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            row = conn.execute(query).first()
    else:
        row = engine_or_conn.execute(query).first()
    return None if row is None else bytes(row[0])


def held_hashes(conn: Connection, candidates: Iterable[str]) -> set[str]:
    """The subset of `candidates` already in the zonefiles table."""
    wanted = list(candidates)
    held: set[str] = set()
    for start in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
        chunk = wanted[start : start + 500]
        query = select(zonefiles.c.zonefile_hash).where(zonefiles.c.zonefile_hash.in_(chunk))
        held.update(row[0] for row in conn.execute(query))
    return held
