"""The one narrow read interface the DNS gateway uses.

Plain SQL over one long-lived connection, tuples in, frozen records out: no ORM
sessions on the query path. Results are cached above this layer (wire answers),
so this runs only on a cache miss.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from bns_resolver.errors import IndexDamagedError, IndexUnavailable
from bns_resolver.index import schema
from bns_resolver.index.changes import ChangeSet, changes_since, latest_seq, names_expiring_between
from bns_resolver.index.db import index_error, mapped_reads
from bns_resolver.index.sync_state import read_sync_state


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
# Whole-index scans for compiling the answer store: each row with the zone file it names, if held.
_ALL_NAMES_SQL = text(
    "SELECT n.fqn, n.namespace_id, n.owner_address, n.value_hash, n.revoked, n.expire_block, z.content "
    "FROM names n LEFT JOIN zonefiles z ON z.zonefile_hash = n.value_hash"
)
_ALL_SUBDOMAINS_SQL = text(
    "SELECT s.fqn, s.domain, s.owner_address, s.sequence, s.zonefile_hash, z.content "
    "FROM subdomains s LEFT JOIN zonefiles z ON z.zonefile_hash = s.zonefile_hash"
)
SCAN_BATCH = 2000


class IndexReader:
    """Read-only queries against the index, shared by the DNS server and the CLI.

    Point lookups reuse one autocommit connection (each SELECT sees the latest
    committed block, and no read transaction is held open between queries);
    it is reopened after an error. Use one reader per thread.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def _first(self, statement: Any, params: dict[str, str]) -> Any:
        """One row; IndexUnavailable (one line, no SQL) when the database cannot answer."""
        try:
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            return self._conn.execute(statement, params).first()
        except SQLAlchemyError as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            error = index_error(self._engine, "read", exc)
            if isinstance(error, IndexDamagedError):
                raise error from exc
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise IndexUnavailable(f"the index database is unavailable: {reason}") from exc

    def name(self, fqn: str) -> NameRecord | None:
        row = self._first(_NAME_SQL, {"fqn": fqn})
        return NameRecord(row[0], row[1], row[2], row[3], bool(row[4]), row[5]) if row else None

    def subdomain(self, fqn: str) -> SubdomainRecord | None:
        row = self._first(_SUBDOMAIN_SQL, {"fqn": fqn})
        return SubdomainRecord(*row) if row else None

    def zonefile(self, zonefile_hash: str) -> bytes | None:
        row = self._first(_ZONEFILE_SQL, {"h": zonefile_hash})
        return bytes(row[0]) if row else None

    def names_with_zonefiles(self) -> Iterator[tuple[NameRecord, bytes | None]]:
        """Every name with the bytes of the zone file its value hash names (None if not held), streamed."""
        for row in self._scan(_ALL_NAMES_SQL):
            yield NameRecord(row[0], row[1], row[2], row[3], bool(row[4]), row[5]), _content(row[6])

    def subdomains_with_zonefiles(self, low: str | None = None,
                                  high: str | None = None) -> Iterator[tuple[SubdomainRecord, bytes | None]]:
        """Every subdomain (with `low` <= fqn < `high`, where given) with the bytes of its zone file
        (None if not held), streamed."""
        bounds = [clause for clause, bound in (("s.fqn >= :low", low), ("s.fqn < :high", high)) if bound is not None]
        statement = _ALL_SUBDOMAINS_SQL if not bounds else \
            text(f"{_ALL_SUBDOMAINS_SQL.text} WHERE {' AND '.join(bounds)}").bindparams(
                **{key: value for key, value in (("low", low), ("high", high)) if value is not None})
        for row in self._scan(statement):
            yield SubdomainRecord(row[0], row[1], row[2], row[3], row[4]), _content(row[5])

    def subdomain_count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.subdomains)).scalar() or 0)

    def subdomain_split_points(self, parts: int) -> list[str]:
        """Up to `parts - 1` subdomain names splitting them, in fqn order, into about equal ranges.
        The database's order, not Python's: the ranges are compared in its collation."""
        fqn = schema.subdomains.c.fqn
        total = self.subdomain_count()
        with self._engine.connect() as conn:
            points = [conn.execute(select(fqn).order_by(fqn).limit(1).offset(total * part // parts)).scalar()
                      for part in range(1, parts)] if total >= parts else []
        return list(dict.fromkeys(point for point in points if point is not None))

    def _scan(self, statement: Any) -> Iterator[Any]:
        try:
            with self._engine.connect() as conn, mapped_reads(conn):
                with conn.execution_options(stream_results=True).execute(statement) as result:
                    while rows := result.fetchmany(SCAN_BATCH):
                        yield from rows
        except SQLAlchemyError as exc:
            raise index_error(self._engine, "read", exc) from exc

    def url(self) -> str:
        """The index's URL, password included: for another process to open the same index."""
        return self._engine.url.render_as_string(hide_password=False)

    def subdomain_domains(self) -> frozenset[str]:
        with self._engine.connect() as conn:
            return frozenset(row[0] for row in conn.execute(select(schema.subdomains.c.domain).distinct()))

    def namespace_ids(self) -> frozenset[str]:
        """Namespaces that are ready (names in them can resolve)."""
        query = select(schema.namespaces.c.namespace_id).where(schema.namespaces.c.ready.is_(True))
        with self._engine.connect() as conn:
            return frozenset(row[0] for row in conn.execute(query))

    def names_in(self, namespace_id: str) -> list[str]:
        """Every name registered in a namespace, sorted (for resolver snippets, not the query path)."""
        query = select(schema.names.c.fqn).where(schema.names.c.namespace_id == namespace_id).order_by(
            schema.names.c.fqn)
        with self._engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]

    def sync_state(self) -> dict[str, str]:
        with self._engine.connect() as conn:
            return read_sync_state(conn)

    def change_seq(self) -> int:
        """The change feed's newest sequence number (index/changes.py)."""
        with self._engine.connect() as conn:
            return latest_seq(conn)

    def changes_since(self, since: int, *, until: int | None = None) -> ChangeSet | None:
        with self._engine.connect() as conn:
            return changes_since(conn, since, until=until)

    def names_expiring_between(self, low: int | None, high: int | None) -> set[str]:
        with self._engine.connect() as conn:
            return names_expiring_between(conn, low, high)

    def has_subdomains(self, domain: str) -> bool:
        query = select(schema.subdomains.c.fqn).where(schema.subdomains.c.domain == domain).limit(1)
        with self._engine.connect() as conn:
            return conn.execute(query).first() is not None

    def indexed_height(self) -> int | None:
        value = self.sync_state().get("height")
        return int(value) if value else None

    def counts(self) -> IndexCounts:
        with self._engine.connect() as conn:
            def count(table: Table) -> int:
                return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)

            return IndexCounts(
                namespaces=count(schema.namespaces), names=count(schema.names),
                subdomains=count(schema.subdomains), zonefiles=count(schema.zonefiles),
            )

    def is_empty(self) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(schema.names.c.fqn).limit(1)).first() is None and \
                conn.execute(select(schema.namespaces.c.namespace_id).limit(1)).first() is None


def _content(value: Any) -> bytes | None:
    return bytes(value) if value is not None else None
