"""The index database: migrations match the schema; SQLite and PostgreSQL both work."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, text

from bns_resolver.index.db import HEAD_REVISION, current_revision, mapped_reads, open_index, scan_mmap_bytes
from bns_resolver.index.lookup import IndexReader
from bns_resolver.index.schema import metadata
from bns_resolver.index.snapshot import EMBEDDED_DIR, ExportFiles, import_export
from tests.support.postgres import shared_postgres_url


def test_migrations_produce_exactly_the_declared_schema(tmp_path: Path) -> None:
    """Alembic's head revision and schema.py agree, column for column."""
    engine = open_index(f"sqlite:///{tmp_path / 'index.sqlite'}")
    assert current_revision(engine) == HEAD_REVISION
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    """A second open finds the head revision and leaves the data alone."""
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    import_export(open_index(url), ExportFiles.open(EMBEDDED_DIR))
    assert IndexReader(open_index(url)).counts().names == 12


def test_sqlite_uses_write_ahead_logging(tmp_path: Path) -> None:
    """WAL lets the DNS server read while sync writes."""
    engine = open_index(f"sqlite:///{tmp_path / 'index.sqlite'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_a_whole_index_scan_reads_through_mmap_and_leaves_the_connection_as_it_was(tmp_path: Path) -> None:
    """The compile's scans map the file while they run; point lookups after them read through the cache."""
    engine = open_index(f"sqlite:///{tmp_path / 'index.sqlite'}")
    import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    seen: list[int] = []

    def note_mmap(conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("SELECT s.fqn"):
            seen.append(conn.connection.driver_connection.execute("PRAGMA mmap_size").fetchone()[0])

    event.listen(engine, "before_cursor_execute", note_mmap)
    rows = list(IndexReader(engine).subdomains_with_zonefiles())
    assert rows and len(seen) == 1 and seen[0] > 0
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA mmap_size")).scalar() == 0


def test_mapped_reads_restores_a_connection_s_own_setting(tmp_path: Path) -> None:
    engine = open_index(f"sqlite:///{tmp_path / 'index.sqlite'}")
    with engine.connect() as conn:
        conn.execute(text("PRAGMA mmap_size=4096"))
        with mapped_reads(conn):
            assert conn.execute(text("PRAGMA mmap_size")).scalar() != 4096
        assert conn.execute(text("PRAGMA mmap_size")).scalar() == 4096


def test_the_scan_maps_nothing_on_32_bit_and_little_of_a_limited_address_space() -> None:
    gib = 1 << 30
    assert scan_mmap_bytes(2 * gib, maxsize=2**31 - 1) == 0
    assert scan_mmap_bytes(2 * gib) == 2 * gib
    assert scan_mmap_bytes(100 * gib) == 8 * gib
    assert scan_mmap_bytes(2 * gib, address_space=4 * gib) == gib


@pytest.fixture
def postgres_url() -> str:
    return shared_postgres_url("set BNS_TEST_POSTGRES_URL to run against PostgreSQL")


@pytest.mark.postgres
def test_postgresql_index_imports_and_reads(postgres_url: str) -> None:
    """The same migrations, import and read path work on a real PostgreSQL server."""
    engine = open_index(postgres_url)
    report = import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    assert report.zonefiles == 1681
    reader = IndexReader(engine)
    record = reader.name("zone117x.id")
    assert record is not None and reader.zonefile(record.value_hash or "") is not None
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
