"""The one narrow read interface the DNS gateway uses.

Plain SQL over one long-lived connection, tuples in, frozen records out: no ORM
sessions on the query path. Results are cached above this layer (wire answers),
so this runs only on a cache miss.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select, text

from bns_resolver.index import schema
from bns_resolver.index.state import read_sync_state


@dataclass(frozen=True)
class NameRecord:
    fqn: str
    namespace_id: str
    owner_address: str | None
    value_hash: str | None
    revoked: bool
    expire_block: int | None


@dataclass(frozen=True)
class SubdomainRecord:
    fqn: str
    domain: str
    owner_address: str
    sequence: int
    zonefile_hash: str


@dataclass(frozen=True)
class IndexCounts:
    namespaces: int
    names: int
    subdomains: int
    zonefiles: int


_NAME_SQL = text(
    "SELECT fqn, namespace_id, owner_address, value_hash, revoked, expire_block FROM names WHERE fqn = :fqn"
)
_SUBDOMAIN_SQL = text(
    "SELECT fqn, domain, owner_address, sequence, zonefile_hash FROM subdomains WHERE fqn = :fqn"
)
_ZONEFILE_SQL = text("SELECT content FROM zonefiles WHERE zonefile_hash = :h")


class IndexReader:
    """Read-only queries against the index, shared by the DNS server and the CLI."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def name(self, fqn: str) -> NameRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(_NAME_SQL, {"fqn": fqn}).first()
        return NameRecord(row[0], row[1], row[2], row[3], bool(row[4]), row[5]) if row else None

    def subdomain(self, fqn: str) -> SubdomainRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(_SUBDOMAIN_SQL, {"fqn": fqn}).first()
        return SubdomainRecord(*row) if row else None

    def zonefile(self, zonefile_hash: str) -> bytes | None:
        with self._engine.connect() as conn:
            row = conn.execute(_ZONEFILE_SQL, {"h": zonefile_hash}).first()
        return bytes(row[0]) if row else None

    def namespace_ids(self) -> frozenset[str]:
        """Namespaces that are ready (names in them can resolve)."""
        query = select(schema.namespaces.c.namespace_id).where(schema.namespaces.c.ready.is_(True))
        with self._engine.connect() as conn:
            return frozenset(row[0] for row in conn.execute(query))

    def sync_state(self) -> dict[str, str]:
        with self._engine.connect() as conn:
            return read_sync_state(conn)

    def indexed_height(self) -> int | None:
        value = self.sync_state().get("height")
        return int(value) if value else None

    def counts(self) -> IndexCounts:
        with self._engine.connect() as conn:
            def count(table: object) -> int:
                return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)

            return IndexCounts(
                namespaces=count(schema.namespaces), names=count(schema.names),
                subdomains=count(schema.subdomains), zonefiles=count(schema.zonefiles),
            )

    def is_empty(self) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(schema.names.c.fqn).limit(1)).first() is None and \
                conn.execute(select(schema.namespaces.c.namespace_id).limit(1)).first() is None
