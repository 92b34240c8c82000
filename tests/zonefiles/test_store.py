from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bns_resolver.errors import VerificationError
from bns_resolver.hashing import hash160
from bns_resolver.index.schema import zonefile_wants, zonefiles
from bns_resolver.zonefiles.store import (
    MAX_ZONEFILE_BYTES,
    get_zonefile,
    held_hashes,
    store_verified,
    store_verified_stream,
)

# TV10: the first genesis zone file (0.id), byte for byte.
ZERO_ID = (
    b"$ORIGIN 0.id\n$TTL 3600\n_http._tcp\tIN\tURI\t10\t1\t"
    b"\"https://gaia.blockstack.org/hub/1A4aeTdM35rYtUoiCiV81jKwKyi1Egzb32/profile.json\"\n\n"
)
ZERO_ID_HASH = "c5f5b4197c94d4561f6332160f624d728b0da8bf"


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(zonefiles)).scalar_one())


def test_store_verified_writes_matching_file(engine: Engine) -> None:
    """Bytes that hash to the wanted value are stored with their source and time."""
    assert store_verified(engine, ZERO_ID_HASH, ZERO_ID, "dir:/x", now=123.0) is True
    with engine.connect() as conn:
        row = conn.execute(select(zonefiles)).one()
    assert (row.zonefile_hash, bytes(row.content), row.source, row.fetched_at) == (ZERO_ID_HASH, ZERO_ID, "dir:/x", 123.0)


def test_store_verified_rejects_mismatch_and_writes_nothing(engine: Engine) -> None:
    """One changed byte (an added newline) fails the hash check and leaves the table empty."""
    with pytest.raises(VerificationError, match=ZERO_ID_HASH):
        store_verified(engine, ZERO_ID_HASH, ZERO_ID + b"\n", "http://liar")
    assert _count(engine) == 0


def test_store_verified_enforces_size_limit(engine: Engine) -> None:
    """A file over 40,960 bytes is refused even when its hash matches."""
    content = b";" * (MAX_ZONEFILE_BYTES + 1)
    with pytest.raises(VerificationError, match="40960"):
        store_verified(engine, hash160(content).hex(), content, "dir:/x")
    assert _count(engine) == 0


def test_store_verified_accepts_exactly_the_limit(engine: Engine) -> None:
    """A file of exactly 40,960 bytes is still acceptable."""
    content = b";" * MAX_ZONEFILE_BYTES
    assert store_verified(engine, hash160(content).hex(), content, "dir:/x") is True


def test_the_bulk_stream_refuses_what_store_verified_refuses_with_the_same_reasons(engine: Engine) -> None:
    """An over-limit file whose hash matches, one changed byte, a claim that is not a hash: each refused
    with its own reason; an upper-case claim of the right hash is stored under the lower-case one."""
    big = b";" * (MAX_ZONEFILE_BYTES + 1)
    items = [(hash160(big).hex(), big), (ZERO_ID_HASH, ZERO_ID + b"\n"), ("not-a-hash", ZERO_ID),
             (ZERO_ID_HASH.upper(), ZERO_ID)]
    with engine.begin() as conn:
        failed = store_verified_stream(conn, items, "snapshot:x", now=1.0)
    reasons = {claimed: str(exc) for claimed, exc in failed}
    assert "40960" in reasons[hash160(big).hex()]
    assert reasons[ZERO_ID_HASH].startswith("zone file bytes hash to")
    assert "not a 40-hex" in reasons["not-a-hash"]
    assert len(failed) == 3 and get_zonefile(engine, ZERO_ID_HASH) == ZERO_ID and _count(engine) == 1


def test_store_verified_is_idempotent(engine: Engine) -> None:
    """Storing a held hash again returns False and keeps one row."""
    store_verified(engine, ZERO_ID_HASH, ZERO_ID, "a")
    assert store_verified(engine, ZERO_ID_HASH, ZERO_ID, "b") is False
    assert _count(engine) == 1


def test_store_verified_resets_backoff_but_keeps_inventory_position(engine: Engine) -> None:
    """Once stored, the want's backoff state is cleared; its inv_index (needed for ordering) stays."""
    with engine.begin() as conn:
        conn.execute(
            zonefile_wants.insert().values(
                zonefile_hash=ZERO_ID_HASH, inv_index=7, attempts=3, next_attempt_at=9e9, last_error="x"
            )
        )
    store_verified(engine, ZERO_ID_HASH, ZERO_ID, "a")
    with engine.connect() as conn:
        row = conn.execute(select(zonefile_wants)).one()
    assert (row.inv_index, row.attempts, row.next_attempt_at, row.last_error) == (7, 0, 0.0, None)


def test_store_verified_rejects_malformed_hash(engine: Engine) -> None:
    """A hash that is not 40 hex digits is refused before hashing."""
    with pytest.raises(VerificationError, match="40-hex"):
        store_verified(engine, "../../etc/passwd", ZERO_ID, "a")


def test_store_joins_caller_transaction(engine: Engine) -> None:
    """With a Connection, a rolled-back caller transaction leaves nothing behind."""
    with engine.connect() as conn:
        trans = conn.begin()
        store_verified(conn, ZERO_ID_HASH, ZERO_ID, "a")
        assert held_hashes(conn, [ZERO_ID_HASH, "0" * 40]) == {ZERO_ID_HASH}
        trans.rollback()
    assert get_zonefile(engine, ZERO_ID_HASH) is None


def test_all_genesis_zonefiles_verify(engine: Engine) -> None:
    """All 1,631 real genesis zone files pass verify-then-store and read back byte-identical."""
    from tests.support.zonefile_data import genesis_zonefiles

    files = genesis_zonefiles()
    assert len(files) == 1631
    with engine.begin() as conn:
        for zonefile_hash, content in files.items():
            store_verified(conn, zonefile_hash, content, "genesis")
    assert _count(engine) == 1631
    assert get_zonefile(engine, ZERO_ID_HASH) == ZERO_ID


def test_store_verified_many_splits_good_bad_and_held(engine: Engine) -> None:
    """The batch form stores new good files, reports bad ones, and skips held ones, in one transaction."""
    from bns_resolver.zonefiles.store import store_verified_many

    other = b"$ORIGIN 1.id\n"
    store_verified(engine, ZERO_ID_HASH, ZERO_ID, "a")
    items = [(ZERO_ID_HASH, ZERO_ID), (hash160(other).hex(), other), ("ab" * 20, b"lie")]
    with engine.begin() as conn:
        stored, failed = store_verified_many(conn, items, "batch", now=5.0)
    assert stored == [hash160(other).hex()]
    assert [(h, type(e)) for h, e in failed] == [("ab" * 20, VerificationError)]
    assert _count(engine) == 2 and get_zonefile(engine, "ab" * 20) is None
