"""The `subdomains` (current state) and `subdomain_history` (every decision) tables, and the
name/zone-file lookups the subdomain indexer needs to find a domain's parent zone files.

The subdomain rules live in `bns_resolver.zonefiles.subdomains`; this module only reads
and writes rows for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, select

from bns_resolver.index.changes import record_changes
from bns_resolver.index.schema import name_history, names, subdomain_history, subdomains, zonefiles


def owners_of_value_hash(conn: Connection, zonefile_hash: str) -> set[str]:
    """Names whose current or past value hash is `zonefile_hash`."""
    owners = {row[0] for row in conn.execute(select(names.c.fqn).where(names.c.value_hash == zonefile_hash))}
    history = select(name_history.c.fqn).where(name_history.c.value_hash == zonefile_hash)
    owners.update(row[0] for row in conn.execute(history))
    return owners


def value_hash_history(conn: Connection, domain: str) -> list[tuple[str, int]]:
    """(value hash, block height) of every op of `domain` that set one, in chain order."""
    query = (
        select(name_history.c.value_hash, name_history.c.block_height)
        .where(name_history.c.fqn == domain, name_history.c.value_hash.is_not(None))
        .order_by(name_history.c.block_height, name_history.c.vtxindex)
    )
    return [(value_hash, height) for value_hash, height in conn.execute(query)]


def current_value_hash(conn: Connection, domain: str) -> str | None:
    return conn.execute(select(names.c.value_hash).where(names.c.fqn == domain)).scalar()


def names_with_content(conn: Connection) -> Iterable[tuple[str, bytes]]:
    """(name, held zone file) for every current and past value hash of every name."""
    for table in (names, name_history):
        query = select(table.c.fqn, zonefiles.c.content).join(zonefiles, zonefiles.c.zonefile_hash == table.c.value_hash)
        for fqn, content in conn.execute(query):
            yield fqn, bytes(content)


def history_places(conn: Connection, fqn: str) -> list[tuple[str | None, int | None, int | None]]:
    """(parent zone-file hash, block height, inventory index) of every recorded decision on `fqn`."""
    query = select(
        subdomain_history.c.parent_zonefile_hash,
        subdomain_history.c.block_height,
        subdomain_history.c.parent_zonefile_index,
    ).where(subdomain_history.c.fqn == fqn)
    return [(parent, height, index) for parent, height, index in conn.execute(query)]


def delete_history(conn: Connection, fqn: str, parent_hashes: Iterable[str] | None = None) -> None:
    """Forget the decisions on `fqn` (only those from `parent_hashes`, if given)."""
    where = [subdomain_history.c.fqn == fqn]
    if parent_hashes is not None:
        where.append(subdomain_history.c.parent_zonefile_hash.in_(list(parent_hashes)))
    conn.execute(subdomain_history.delete().where(*where))


def add_history(conn: Connection, **row: Any) -> None:
    """One decision: fqn, sequence, owner_address, zonefile_hash, parent place, accepted, reason."""
    conn.execute(subdomain_history.insert().values(**row))


def put_current(conn: Connection, fqn: str, values: Mapping[str, Any]) -> None:
    """Insert or replace the current state of `fqn`."""
    exists = conn.execute(select(subdomains.c.fqn).where(subdomains.c.fqn == fqn)).first()
    if exists:
        conn.execute(subdomains.update().where(subdomains.c.fqn == fqn).values(**values))
    else:
        conn.execute(subdomains.insert().values(fqn=fqn, **values))
    record_changes(conn, [fqn])


def delete_current(conn: Connection, fqn: str, parent_hashes: Iterable[str]) -> bool:
    """Remove `fqn`'s current row if one of `parent_hashes` set it; True if a row went."""
    gone = subdomains.delete().where(subdomains.c.fqn == fqn,
                                     subdomains.c.parent_zonefile_hash.in_(list(parent_hashes)))
    if not conn.execute(gone).rowcount:
        return False
    record_changes(conn, [fqn])
    return True


def insert_imported(conn: Connection, current: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
    """Bulk-insert rows of a bulk import into emptied tables (current state and its history)."""
    if current:
        conn.execute(subdomains.insert(), current)
    if history:
        conn.execute(subdomain_history.insert(), history)
