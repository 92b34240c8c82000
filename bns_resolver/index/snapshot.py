"""Import of the published final-state export of BNS v1 into the index (`snapshot_files.py`
reads and parses the export's files).

Every zone file enters through the one verify-then-store path (`zonefiles.store`: hash160
of the exact bytes, 40 KiB limit); failures are reported and skipped, and a subdomain whose
zone file did not verify is reported and not imported. Subdomains get a history row
too, like those the subdomain indexer decides, so both paths leave the same shape.
This is the only importer of the export.

The real export holds 2.2 million subdomains, so every file is streamed (a tarball's
members in the order they come, in one pass) and nothing is held per row: each file's
SHA-256 is computed as it is read, subdomains whose zone file is missing are found by
one query after the load, and the history rows are copied in SQL. It all happens in one
transaction that commits only after every digest matched.
"""

from __future__ import annotations

import logging
import tarfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    false,
    func,
    insert,
    literal,
    select,
    true,
)
from sqlalchemy.exc import OperationalError

from bns_resolver.errors import SnapshotError
from bns_resolver.index import schema
from bns_resolver.index.changes import ALL_NAMES, record_changes
from bns_resolver.index.db import bulk_insert, reported
from bns_resolver.index.progress import ByteProgress
from bns_resolver.index.snapshot_files import EMBEDDED_DIR, EXPORT_FILES, PRODUCTION_DIGESTS, ExportFiles, iter_sections
from bns_resolver.index.snapshot_reader import Event, export_events
from bns_resolver.index.sync_state import bump_generation, write_sync_state
from bns_resolver.zonefiles.store import store_stream_verified_by

# Callers of the importer also name the export it reads.
__all__ = ["EMBEDDED_DIR", "PRODUCTION_DIGESTS", "ExportFiles", "ImportReport", "import_export", "iter_sections"]

log = logging.getLogger(__name__)

# BNS v1 froze here; the export is the state after the last block that could change it.
FROZEN_HEIGHT = 665750
_ROW_BATCH = 5000  # rows per executemany where the driver needs lists
_SQLITE_CACHE_KIB = 40 * 1024
_HISTORY_REASON = "v1 export (no seqn recorded)"


@dataclass
class ImportReport:
    namespaces: int = 0
    names: int = 0
    zonefiles: int = 0
    subdomains: int = 0
    verified_digests: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.namespaces} namespaces, {self.names} names, {self.subdomains} subdomains, "
            f"{self.zonefiles} zone files; digests checked: {', '.join(self.verified_digests) or 'none'}; "
            f"{len(self.rejected)} rejected"
        )


def import_export(engine: Engine, files: ExportFiles, *, pinned: Mapping[str, str] | None = None,
                  progress: bool = False) -> ImportReport:
    """Replace the index's contents with the export, in one transaction: on any failure (a digest
    that does not match, a truncated archive, a full disk) the index stays exactly as it was.
    `pinned` names files that must be present with exactly these SHA-256 digests."""
    report = ImportReport()
    meter = ByteProgress(f"import {files.origin}", files.size) if progress else None
    with reported(engine, f"import {files.origin} into", outcome="the index was left as it was"), \
            engine.connect() as conn, _rollback_journal(conn), conn.begin():
        with _bulk_load(conn):
            digests = _load_all_checked(conn, files, report, meter.advance if meter else None)
        _check_digests(digests, report, pinned or {})
        if "chainstate.txt" not in digests.actual:
            raise SnapshotError(f"{files.origin} has no chainstate.txt")
        write_sync_state(conn, {
            "source": "snapshot", "network": "mainnet", "height": str(FROZEN_HEIGHT),
            "snapshot_origin": files.origin, "imported_at": str(int(time.time())),
            "snapshot_sha256": digests.actual["chainstate.txt"],
        })
        bump_generation(conn)
        record_changes(conn, [ALL_NAMES])
        if meter:
            meter.close()
        committing = time.monotonic()
    log.info("import: committed in %.1f s", time.monotonic() - committing)
    for line in report.rejected:
        log.warning("snapshot import rejected %s", line)
    return report


@contextmanager
def _rollback_journal(conn: Connection) -> Iterator[None]:
    """On SQLite, when no other connection has the index open: the import in a rollback journal, and
    WAL again after. In WAL mode the whole new index (1.9 GB at 2.2 M subdomains) is written to the
    WAL and then copied into the file by the checkpoint at commit; a rollback journal only keeps the
    pages that held old rows, so a fresh index is written once. Leaving WAL needs the file to itself:
    when a server has it open the switch fails and the import stays in WAL, where that server keeps
    reading the old index until the commit."""
    switched = conn.dialect.name == "sqlite" and _journal_mode(conn, "DELETE") == "delete"
    try:
        yield
    finally:
        if switched:
            _journal_mode(conn, "WAL")  # if refused, the next connection's set-up asks again (db.py)


def _journal_mode(conn: Connection, mode: str) -> str | None:
    try:
        switched = str(conn.exec_driver_sql(f"PRAGMA journal_mode={mode}").scalar_one()).lower()
        conn.commit()  # ends SQLAlchemy's autobegun transaction around the pragma
        return switched
    except OperationalError as exc:
        conn.rollback()
        log.info("import: journal mode stays as it is (%s)", exc.orig)
        return None


@dataclass
class _Digests:
    actual: dict[str, str] = field(default_factory=dict)
    expected: dict[str, str] = field(default_factory=dict)


def _check_digests(digests: _Digests, report: ImportReport, pinned: Mapping[str, str]) -> None:
    """Every file against its .sha256 companion and against the pinned digests; a mismatch aborts."""
    for name in EXPORT_FILES:
        actual = digests.actual.get(name)
        for expected, what in ((digests.expected.get(name), "the expected"), (pinned.get(name), "the pinned")):
            if expected is None:
                continue
            if actual is None:
                raise SnapshotError(f"the export has no {name}, which has {what} digest {expected}")
            if actual != expected.lower():
                raise SnapshotError(f"{name}: sha256 {actual} does not match {what} {expected.lower()}")
        if actual is not None and (name in digests.expected or name in pinned):
            note = " (production export)" if PRODUCTION_DIGESTS.get(name) == actual else ""
            report.verified_digests.append(f"{name}{note}")


def _load_all_checked(conn: Connection, files: ExportFiles, report: ImportReport,
                      on_bytes: Callable[[int], None] | None) -> _Digests:
    """_load_all with a malformed export (a number that is not one, an unreadable CSV) reported as such."""
    try:
        return _load_all(conn, files, report, on_bytes)
    except (tarfile.TarError, EOFError, zlib.error) as exc:  # a member cut short, read while it is parsed
        raise SnapshotError(f"cannot read {files.origin}: {exc or 'truncated archive'}") from None
    except (ValueError, OverflowError) as exc:  # OverflowError: a number past the database's integers
        if isinstance(exc, UnicodeDecodeError):
            raise SnapshotError(f"{files.origin} holds text that is not UTF-8") from None
        raise SnapshotError(f"{files.origin} holds a malformed value: {exc}") from None


def _load_all(conn: Connection, files: ExportFiles, report: ImportReport,
              on_bytes: Callable[[int], None] | None) -> _Digests:
    _clear(conn)
    _SUBDOMAIN_STAGE.create(conn)
    digests = _Digests()
    with closing(export_events(files, on_bytes=on_bytes)) as events:  # a failed write stops the reader now
        _load_events(conn, events, files, digests, report)
    started = time.monotonic()
    report.zonefiles = conn.execute(select(func.count()).select_from(schema.zonefiles)).scalar_one()
    report.subdomains = _settle_subdomains(conn, report)
    log.info("import: subdomains checked and their history written in %.1f s", time.monotonic() - started)
    return digests


def _load_events(conn: Connection, events: Iterator[Event], files: ExportFiles, digests: _Digests,
                 report: ImportReport) -> None:
    for event in events:
        if event[0] == "expected":
            digests.expected[event[1]] = event[2]
        elif event[0] == "begin":
            started, member = time.monotonic(), _MemberRows(events, report)
            _load_member(conn, event[1], member, files.origin, report)
            digests.actual[event[1]] = member.finish()
            log.info("import: %s loaded in %.1f s", event[1], time.monotonic() - started)


class _MemberRows:
    """One file's row batches, (kind, rows), from the event stream up to the file's end; zone files
    refused on the way are reported."""

    def __init__(self, events: Iterator[Event], report: ImportReport) -> None:
        self._events, self._report = events, report
        self._digest: str | None = None

    def __iter__(self) -> Iterator[tuple[str, list[Any]]]:
        if self._digest is not None:
            return  # the file has ended
        for event in self._events:
            if event[0] == "rows":
                yield event[1], event[2]
            elif event[0] == "refused":
                self._report.rejected += [f"zone file {claimed}: {why}" for claimed, why in event[1]]
            elif event[0] == "end":
                self._digest = event[2]
                return
        raise SnapshotError("the export ended inside a file")  # read_events always ends what it begins

    def finish(self) -> str:
        """The file's digest, once whatever the loader left unread is passed over."""
        for _ in self:
            pass
        assert self._digest is not None
        return self._digest

    def rows(self) -> Iterator[Any]:
        return (row for _, batch in self for row in batch)


def _load_member(conn: Connection, name: str, member: _MemberRows, origin: str, report: ImportReport) -> None:
    if name == "chainstate.txt":
        for kind, rows in member:
            if kind == "namespaces":
                report.namespaces += _load_namespaces(conn, rows)
            elif kind == "names":
                report.names += _load_names(conn, rows)
    elif name == "subdomains.csv":
        _load_subdomains(conn, member.rows())
    else:
        store_stream_verified_by(conn, member.rows(), f"snapshot:{origin}")


def _clear(conn: Connection) -> None:
    for table in (schema.subdomains, schema.subdomain_history, schema.zonefiles, schema.names, schema.namespaces,
                  schema.blocks):
        conn.execute(delete(table))


_BULK_INDEXES = (schema.subdomains, schema.subdomain_history)


@contextmanager
def _bulk_load(conn: Connection) -> Iterator[None]:
    """Load into tables without their secondary indexes and build those once at the end (a sort
    instead of millions of B-tree inserts); on SQLite, with a page cache that fits the load.
    The DDL joins the import's transaction: `_clear` has opened it (Python's sqlite3 begins one
    before the first DELETE), so a failure restores the indexes with everything else."""
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        saved = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
        # The page cache, and as much again for each sort (SQLite sizes its sorter by the cache):
        # both within the import's 200 MiB budget.
        conn.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
        # The stage tables (temporary) are written once, sorted and read back: 64 KiB pages make that
        # 6 % faster at 2.2 M subdomains than 4 KiB ones (before the first temporary table only).
        conn.exec_driver_sql("PRAGMA temp.page_size=65536")
    conn.execute(delete(schema.subdomains).where(false()))  # opens the transaction before any DDL
    indexes = [index for table in _BULK_INDEXES for index in table.indexes]
    for index in indexes:
        index.drop(conn)
    try:
        yield
        started = time.monotonic()
        for index in indexes:
            index.create(conn)
        log.info("import: %d indexes built in %.1f s", len(indexes), time.monotonic() - started)
    finally:
        if sqlite:
            conn.exec_driver_sql(f"PRAGMA cache_size={saved}")


def _batches(rows: Iterable[dict[str, Any]], size: int = _ROW_BATCH) -> Iterator[list[dict[str, Any]]]:
    source = iter(rows)
    while batch := list(islice(source, size)):
        yield batch


def _load_namespaces(conn: Connection, rows: Iterable[dict[str, str]]) -> int:
    count = 0
    records = ({
        "namespace_id": row["namespace_id"], "version": 1, "lifetime": int(row["lifetime"]),
        "coeff": int(row["coeff"]), "base": int(row["base"]), "buckets": row["buckets"].replace(";", ","),
        "nonalpha_discount": int(row["nonalpha_discount"]),
        "no_vowel_discount": int(row["no_vowel_discount"]),
        "address": row["address"], "ready": True, "ready_block": None, "reveal_block": None,
    } for row in rows)
    for batch in _batches(records):
        conn.execute(insert(schema.namespaces), batch)
        count += len(batch)
    return count


def _load_names(conn: Connection, rows: Iterable[dict[str, str]]) -> int:
    # The export lists live names only; after the freeze nothing renews or expires them here.
    count = 0
    records = ({
        "fqn": row["name"].lower(), "namespace_id": row["name"].rsplit(".", 1)[-1].lower(),
        "owner_address": row["address"], "value_hash": row["zonefile_hash"].lower() or None,
        "revoked": False, "expire_block": None,
    } for row in rows)
    for batch in _batches(records):
        conn.execute(insert(schema.names), batch)
        count += len(batch)
    return count


def _subdomain_tuple(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A subdomains.csv row as snapshot_reader reads it (its SUBDOMAIN_COLUMNS, then the resolver),
    as _SUBDOMAIN_FIELDS."""
    name, owner, zonefile_hash, parent_zonefile_hash, parent_zonefile_index, block_height, resolver = row
    fqn = name.lower()
    if "." not in fqn:
        raise SnapshotError(f"subdomains.csv: {fqn!r} is not a subdomain of a name")
    return (fqn, fqn.split(".", 1)[1], owner, 0, zonefile_hash.lower(), parent_zonefile_hash.lower(),
            int(parent_zonefile_index or 0), int(block_height or 0), resolver or None)


_SUBDOMAIN_FIELDS = ("fqn", "domain", "owner_address", "sequence", "zonefile_hash", "parent_zonefile_hash",
                     "parent_zonefile_index", "block_height", "resolver")


def _load_subdomains(conn: Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Every row of subdomains.csv, as it comes, into a temporary table; `_settle_subdomains` moves
    the good ones over."""
    bulk_insert(conn, _SUBDOMAIN_STAGE, _SUBDOMAIN_FIELDS, map(_subdomain_tuple, rows))


_SUBDOMAIN_STAGE = Table("subdomain_stage", MetaData(), *(Column(name, String) for name in _SUBDOMAIN_FIELDS[:3]),
                         Column("sequence", Integer), Column("zonefile_hash", String),
                         Column("parent_zonefile_hash", String), Column("parent_zonefile_index", BigInteger),
                         Column("block_height", BigInteger), Column("resolver", String), prefixes=["TEMPORARY"])
_MISSING = Table("subdomain_missing", MetaData(), Column("zonefile_hash", String), prefixes=["TEMPORARY"])


def _settle_subdomains(conn: Connection, report: ImportReport) -> int:
    """Report and drop subdomains whose zone file is not held, copy the rest in name order (an append
    to the primary key, not millions of random inserts), give each its history row; the count.
    The missing hashes come from one pass over the stage probing the zone files' primary key
    (half the time of an EXCEPT, which sorts both sides); only when some are missing is the stage
    filtered before the copy."""
    stage, sub = _SUBDOMAIN_STAGE, schema.subdomains
    fields = [stage.c[name] for name in _SUBDOMAIN_FIELDS]
    _MISSING.create(conn)
    held = select(schema.zonefiles.c.zonefile_hash).where(schema.zonefiles.c.zonefile_hash == stage.c.zonefile_hash)
    unheld = conn.execute(select(stage.c.fqn, stage.c.zonefile_hash).where(~held.exists())).all()
    for fqn, zonefile_hash in unheld:
        report.rejected.append(f"subdomain {fqn}: zone file {zonefile_hash} missing from the export or rejected")
    if unheld:
        conn.execute(insert(_MISSING), [{"zonefile_hash": h} for h in {h for _, h in unheld}])
        conn.execute(delete(stage).where(stage.c.zonefile_hash.in_(select(_MISSING.c.zonefile_hash))))
    conn.execute(insert(sub).from_select(list(_SUBDOMAIN_FIELDS), select(*fields).order_by(stage.c.fqn)))
    _MISSING.drop(conn)
    _SUBDOMAIN_STAGE.drop(conn)
    history = schema.subdomain_history
    # The export carries no sequence numbers or signatures: its rows are the final accepted state.
    copied = ("fqn", "sequence", "owner_address", "zonefile_hash", "parent_zonefile_hash",
              "parent_zonefile_index", "block_height")
    conn.execute(insert(history).from_select(
        [*copied, "accepted", "reason"],
        select(*(sub.c[column] for column in copied), true(), literal(_HISTORY_REASON)),
    ))
    return int(conn.execute(select(func.count()).select_from(sub)).scalar_one())
