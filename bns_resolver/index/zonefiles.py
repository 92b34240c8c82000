"""The `zonefiles` and `zonefile_wants` tables: held zone-file bytes and the fetcher's backlog.

Rows reach `zonefiles` only through `insert_verified`, which the data plane's
verify-then-store path (`bns_resolver.zonefiles.store`) calls after it checked each
file's hash160 and size; nothing else in the package writes this table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Column, Connection, Engine, LargeBinary, MetaData, String, Table, or_, select

from bns_resolver.index.db import bulk_insert

from bns_resolver.index.changes import record_changes
from bns_resolver.index.schema import name_history, names, zonefile_wants, zonefiles

ZERO_HASH = "0" * 40
_SOURCE_MAX = 256  # the `source` column is String(256)
_CHUNK = 500  # stay under SQLite's bound-parameter limit


def _chunks(items: Iterable[str]) -> Iterable[list[str]]:
    values = list(items)
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def get_zonefile(engine_or_conn: Engine | Connection, zonefile_hash: str) -> bytes | None:
    """The stored (already verified) bytes for `zonefile_hash`, or None."""
    query = select(zonefiles.c.content).where(zonefiles.c.zonefile_hash == zonefile_hash.lower())
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            row = conn.execute(query).first()
    else:
        row = engine_or_conn.execute(query).first()
    return None if row is None else bytes(row[0])


def has_zonefile(conn: Connection, zonefile_hash: str) -> bool:
    query = select(zonefiles.c.zonefile_hash).where(zonefiles.c.zonefile_hash == zonefile_hash)
    return conn.execute(query).first() is not None


def held_hashes(conn: Connection, candidates: Iterable[str]) -> set[str]:
    """The subset of `candidates` already in the zonefiles table."""
    held: set[str] = set()
    for chunk in _chunks(candidates):
        query = select(zonefiles.c.zonefile_hash).where(zonefiles.c.zonefile_hash.in_(chunk))
        held.update(row[0] for row in conn.execute(query))
    return held


def insert_verified(conn: Connection, files: Mapping[str, bytes], source: str, fetched_at: float) -> None:
    """Write already-verified files that are not held yet (see zonefiles.store) and clear their backoff.

    The want rows stay: their first_block/inv_index order subdomain history; only the
    backoff state is stale now. Names whose value hash a file is change now (they had no zone
    file); a subdomain's file is stored by the subdomain indexer with its row, which logs it.
    """
    changed: set[str] = set()
    for chunk in _chunks(files):
        rows = [{"zonefile_hash": h, "content": files[h], "source": source[:_SOURCE_MAX], "fetched_at": fetched_at}
                for h in chunk]
        conn.execute(zonefiles.insert(), rows)
        conn.execute(zonefile_wants.update().where(zonefile_wants.c.zonefile_hash.in_(chunk))
                     .values(attempts=0, next_attempt_at=0.0, last_error=None))
        changed.update(row[0] for row in conn.execute(select(names.c.fqn).where(names.c.value_hash.in_(chunk))))
    if changed:
        record_changes(conn, changed)


def insert_verified_stream(conn: Connection, files: Iterable[tuple[str, bytes]], source: str,
                           fetched_at: float) -> None:
    """insert_verified for a bulk load: (hash, bytes) pulled one at a time, held hashes skipped by
    the database itself (no lookup per batch), then the backoff of every now-held want cleared."""
    source = source[:_SOURCE_MAX]
    if conn.dialect.name != "sqlite":
        values = ((h, content, source, fetched_at) for h, content in files)
        bulk_insert(conn, zonefiles, ("zonefile_hash", "content", "source", "fetched_at"), values, skip_existing=True)
    else:
        # Millions of random hashes inserted one by one into the primary-key B-tree thrash any page
        # cache once it outgrows it; appending to an unindexed temporary table and copying it over
        # in hash order turns that into a sort and an append. The stage holds only what differs per
        # row: every byte of it is written, sorted and read back.
        # (A failure rolls the caller's transaction back, and the temporary table with it.)
        _STAGE.create(conn)
        bulk_insert(conn, _STAGE, ("zonefile_hash", "content"), files)
        conn.exec_driver_sql(f"INSERT OR IGNORE INTO zonefiles (zonefile_hash, content, source, fetched_at) "
                             f"SELECT zonefile_hash, content, ?, ? FROM temp.{_STAGE.name} ORDER BY zonefile_hash",
                             (source, fetched_at))
        _STAGE.drop(conn)
    held = select(zonefiles.c.zonefile_hash)
    conn.execute(zonefile_wants.update().where(zonefile_wants.c.zonefile_hash.in_(held), zonefile_wants.c.attempts != 0)
                 .values(attempts=0, next_attempt_at=0.0, last_error=None))


_STAGE = Table("zonefile_stage", MetaData(), Column("zonefile_hash", String), Column("content", LargeBinary),
               prefixes=["TEMPORARY"])


def due_wants(conn: Connection, *, now: float, limit: int) -> list[tuple[str, str | None]]:
    """(hash, a name using it) for hashes referenced by `names.value_hash` or `zonefile_wants`,
    not held and due for a try: the wants table first (fewest attempts, inventory order)."""
    due = or_(zonefile_wants.c.next_attempt_at.is_(None), zonefile_wants.c.next_attempt_at <= now)
    from_names = (
        select(names.c.value_hash, names.c.fqn)
        .outerjoin(zonefiles, zonefiles.c.zonefile_hash == names.c.value_hash)
        .outerjoin(zonefile_wants, zonefile_wants.c.zonefile_hash == names.c.value_hash)
        .where(names.c.value_hash.is_not(None), names.c.value_hash != ZERO_HASH)
        .where(zonefiles.c.zonefile_hash.is_(None), due)
        .limit(limit)
    )
    from_wants = (
        select(zonefile_wants.c.zonefile_hash, names.c.fqn)
        .outerjoin(zonefiles, zonefiles.c.zonefile_hash == zonefile_wants.c.zonefile_hash)
        .outerjoin(names, names.c.value_hash == zonefile_wants.c.zonefile_hash)
        .where(zonefiles.c.zonefile_hash.is_(None), zonefile_wants.c.next_attempt_at <= now)
        .where(zonefile_wants.c.zonefile_hash != ZERO_HASH)
        .order_by(zonefile_wants.c.attempts, zonefile_wants.c.inv_index)
        .limit(limit)
    )
    return [(h, fqn) for query in (from_wants, from_names) for h, fqn in conn.execute(query)]


def names_in_history(conn: Connection, hashes: Iterable[str]) -> dict[str, str]:
    """A name whose history used each hash (older value hashes no longer sit in `names`)."""
    found: dict[str, str] = {}
    for chunk in _chunks(hashes):
        query = select(name_history.c.value_hash, name_history.c.fqn).where(name_history.c.value_hash.in_(chunk))
        for zonefile_hash, fqn in conn.execute(query):
            found.setdefault(zonefile_hash, fqn)
    return found


def record_failures(conn: Connection, failures: Mapping[str, str], *, now: float, delay: Any) -> None:
    """Count one more failed try per hash and schedule the next one `delay(attempts)` seconds on."""
    attempts = _current_attempts(conn, failures)
    for zonefile_hash, error in failures.items():
        tries = attempts.get(zonefile_hash, 0) + 1
        values = {"attempts": tries, "next_attempt_at": now + delay(tries), "last_error": error[:1000]}
        if zonefile_hash in attempts:
            where = zonefile_wants.c.zonefile_hash == zonefile_hash
            conn.execute(zonefile_wants.update().where(where).values(**values))
        else:
            conn.execute(zonefile_wants.insert().values(zonefile_hash=zonefile_hash, **values))


def _current_attempts(conn: Connection, hashes: Iterable[str]) -> dict[str, int]:
    attempts: dict[str, int] = {}
    for chunk in _chunks(hashes):
        query = select(zonefile_wants.c.zonefile_hash, zonefile_wants.c.attempts).where(
            zonefile_wants.c.zonefile_hash.in_(chunk)
        )
        attempts.update((h, a or 0) for h, a in conn.execute(query))
    return attempts


def want_position(conn: Connection, zonefile_hash: str) -> tuple[int | None, int | None] | None:
    """(first_block, inv_index) of a wanted hash, None if it was never wanted."""
    row = conn.execute(select(zonefile_wants.c.first_block, zonefile_wants.c.inv_index)
                       .where(zonefile_wants.c.zonefile_hash == zonefile_hash)).first()
    return None if row is None else (row[0], row[1])
