"""Verify-then-store: the only way zone-file bytes enter the index.

Zone files come from untrusted places (mirrors, Atlas peers, other resolvers,
subdomain records). The chain commits to hash160 of the exact bytes, so the
check is a byte-for-byte hash comparison with no normalisation; anything that
fails it is refused before a single row is written.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from bns_resolver.errors import VerificationError
from bns_resolver.index import zonefiles as rows
from bns_resolver.index.db import Connection, Engine
from bns_resolver.index.zonefiles import ZERO_HASH, get_zonefile, has_zonefile, held_hashes
from bns_resolver.zonefiles.verify import (
    MAX_ZONEFILE_BYTES,
    is_zonefile_hash,
    verified_stream,
    verifies,
    verify_zonefile,
)

__all__ = ["MAX_ZONEFILE_BYTES", "ZERO_HASH", "get_zonefile", "has_zonefile", "held_hashes", "is_zonefile_hash",
           "store_verified", "store_verified_many", "store_verified_stream", "verifies", "verify_zonefile"]

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
    for zonefile_hash, content in verified_stream(items, failed):
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
    store_stream_verified_by(conn, verified_stream(items, failed), source, now=now)
    return failed


def store_stream_verified_by(conn: Connection, pairs: Iterable[tuple[str, bytes]], source: str, *,
                             now: float | None = None) -> None:
    """The second half of store_verified_stream, for pairs that came out of `verified_stream` in
    another process (the importer reads and checks the export beside the process writing it)."""
    rows.insert_verified_stream(conn, pairs, source, time.time() if now is None else now)
