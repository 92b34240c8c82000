"""Opening the index database and keeping its schema at the current revision.

SQLite (the default, one file in the data directory) and PostgreSQL are both
supported through any SQLAlchemy URL. Alembic is imported only when the
database is not already at the head revision, so a normal start stays cheap.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, insert, inspect, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from bns_resolver.errors import IndexDamagedError, IndexStoreError

log = logging.getLogger(__name__)

__all__ = ["Connection", "Engine", "HEAD_REVISION", "bulk_insert", "current_revision", "index_error",
           "mapped_reads", "open_index", "reported", "scan_mmap_bytes", "sqlite_url"]

HEAD_REVISION = "0003"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# SQLite's primary result codes for a file that is not (or no longer) a whole database.
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
# A whole-index scan maps at most this much of the file (SQLite's own build cap is usually 2 GiB), and
# never more than a quarter of a limited address space: the rest is read through the page cache as before.
_SCAN_MMAP_MAX = 8 << 30


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'index.sqlite'}"


def open_index(url: str, *, migrate: bool = True) -> Engine:
    """Connect to the index at `url` and bring its schema to the head revision."""
    # A server (PostgreSQL) may restart under us: check a pooled connection before use, so the
    # first query after a restart reconnects instead of failing.
    engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        if migrate and current_revision(engine) != HEAD_REVISION:
            _upgrade(engine)
    except SQLAlchemyError as exc:
        raise index_error(engine, "open", exc) from exc
    return engine


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return _revision(conn)


def _revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as conn, _ddl_transaction(conn):
        # Another process may have created the schema while we waited for the write lock.
        if _revision(conn) == HEAD_REVISION:
            return
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    log.info("index at %s migrated to revision %s", _safe_url(engine), HEAD_REVISION)


@contextmanager
def _ddl_transaction(conn: Connection) -> Iterator[None]:
    """One transaction that really covers DDL, so a kill or a full disk mid-migration leaves
    the schema as it was.  PostgreSQL's DDL is transactional as it is; Python's sqlite3 runs
    CREATE/ALTER outside any transaction (it only opens one before INSERT/UPDATE/DELETE), so
    for SQLite the driver's implicit transactions are switched off and BEGIN is ours."""
    if conn.dialect.name != "sqlite":
        with conn.begin():
            yield
        return
    driver = conn.connection.driver_connection
    saved = driver.isolation_level  # type: ignore[union-attr]
    driver.isolation_level = None  # type: ignore[union-attr]
    try:
        with conn.begin():
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield
    finally:
        driver.isolation_level = saved  # type: ignore[union-attr]


@contextmanager
def reported(engine: Engine, doing: str, *, outcome: str = "") -> Iterator[None]:
    """Turn a database failure (a full disk, a lost server) into one IndexStoreError that names
    the index, what was being done and what state it was left in."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise index_error(engine, doing, exc, outcome=outcome) from exc


def index_error(engine: Engine, doing: str, exc: SQLAlchemyError, *, outcome: str = "") -> IndexStoreError:
    """One line that names the index and the failure; for a damaged SQLite file, also what to do,
    since no retry or restart will make it readable again."""
    reason = getattr(exc, "orig", None) or exc
    if _is_damaged(engine, reason):
        path = engine.url.database
        return IndexDamagedError(
            f"the index file {path} is damaged ({reason}); stop bns-resolver, move {Path(str(path)).name} and "
            f"its -wal and -shm files out of {Path(str(path)).parent}, then start it again: serve re-imports the "
            f"embedded snapshot into a new file, and sync rebuilds a chain index from bitcoind")
    return IndexStoreError(f"cannot {doing} the index at {_safe_url(engine)}: {reason}"
                           + (f"; {outcome}" if outcome else ""))


def _is_damaged(engine: Engine, reason: object) -> bool:
    if engine.dialect.name != "sqlite" or not engine.url.database or engine.url.database == ":memory:":
        return False
    code = getattr(reason, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def bulk_insert(conn: Connection, table: Table, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]],
                *, skip_existing: bool = False) -> None:
    """Insert a stream of value tuples inside the caller's transaction, without a Python object per
    row where the driver allows it (SQLite's executemany pulls from the iterator); `skip_existing`
    leaves rows whose primary key is already there alone. Driver errors surface as SQLAlchemy's."""
    if conn.dialect.name == "sqlite":
        verb = "INSERT OR IGNORE" if skip_existing else "INSERT"
        statement = f"{verb} INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        driver: Any = conn.connection.driver_connection
        try:
            driver.executemany(statement, rows)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(statement, None, exc, conn.dialect.loaded_dbapi.Error) from exc
        return
    query = pg_insert(table).on_conflict_do_nothing() if skip_existing else insert(table)
    source = iter(rows)
    while batch := [dict(zip(columns, row)) for row in islice(source, 5000)]:
        conn.execute(query, batch)


def scan_mmap_bytes(file_bytes: int, *, maxsize: int = sys.maxsize,
                    address_space: int | None = None) -> int:
    """How much of an index file of `file_bytes` a whole-index scan may map: nothing on a 32-bit build
    (its 2-4 GiB of address space also holds the heap and the answer store's map), the file up to
    _SCAN_MMAP_MAX otherwise, and at most a quarter of `address_space` (RLIMIT_AS) when that is limited."""
    if maxsize <= 2**32:
        return 0
    limit = min(file_bytes, _SCAN_MMAP_MAX)
    if address_space is not None:
        limit = min(limit, address_space // 4)
    return max(limit, 0)


def _address_space_limit() -> int | None:
    try:
        import resource
    except ImportError:  # not a POSIX system: no limit we can read
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


@contextmanager
def mapped_reads(conn: Connection) -> Iterator[None]:
    """Read a SQLite index through mmap for the life of the block, then go back to reads through the
    1 MiB page cache. A scan that joins every subdomain to its zone file touches the whole file in
    random order; through the small cache that is one pread system call per page (11-12 s of system
    time for a compile of the 2.2 M-name export), mapped it is a page fault at most. Only scans take
    this: point lookups stay within the cache, and a long-lived server keeps no mapping of the index.
    PostgreSQL (another process's memory) is left alone."""
    if conn.dialect.name != "sqlite":
        yield
        return

    def pragma(statement: str) -> int:
        return int(conn.exec_driver_sql(f"PRAGMA {statement}").scalar_one())

    saved = pragma("mmap_size")
    wanted = scan_mmap_bytes(pragma("page_size") * pragma("page_count"), address_space=_address_space_limit())
    pragma(f"mmap_size={wanted}")
    try:
        yield
    finally:
        pragma(f"mmap_size={saved}")  # the connection goes back to the pool as it came


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets the DNS server read while the sync or fetcher writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    # The index is read by point lookups; a small page cache keeps a router's memory low.
    cursor.execute("PRAGMA cache_size=-1024")
    cursor.close()


def _safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
