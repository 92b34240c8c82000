"""The streaming import on generated exports (bench/synth_export.py): every row, folder = tarball,
and a bad digest, a pinned digest or a truncated archive leaves the old index as it was. Each test
runs twice: the export read in the importer's process, and read in a process of its own (as a
big export is, index/snapshot_reader.py)."""

from __future__ import annotations

import csv
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Engine, func, inspect, select

from bns_resolver.errors import SnapshotError
from bns_resolver.hashing import hash160
from bns_resolver.index.db import open_index
from bns_resolver.index.lookup import IndexReader
from bns_resolver.index import snapshot_reader
from bns_resolver.index.schema import names, subdomain_history, subdomains, zonefiles
from bns_resolver.index.snapshot import EMBEDDED_DIR, ExportFiles, import_export
from bns_resolver.zonefiles.store import get_zonefile
from tests.support.postgres import shared_postgres_url

ROOT = Path(__file__).resolve().parents[2]
NAMES, SUBDOMAINS = 30, 3000


def _synth() -> ModuleType:
    spec = importlib.util.spec_from_file_location("synth_export", ROOT / "bench" / "synth_export.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


synth = _synth()


@pytest.fixture(autouse=True, params=["in-process", "separate-process"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where the export is read: a separate process for every file-based export, or never."""
    separate = request.param == "separate-process"
    monkeypatch.setattr(snapshot_reader, "OFFLOAD_MIN_BYTES", 0 if separate else 1 << 62)
    return str(request.param)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synth") / "export"
    synth.generate(folder, synth.Sizes(NAMES, SUBDOMAINS, 7))
    synth.write_tarball(folder)
    return folder


def _engine(path: Path) -> Engine:
    return open_index(f"sqlite:///{path / 'index.sqlite'}")


def _pairs(path: Path) -> dict[str, bytes]:
    lines = path.read_bytes().splitlines()
    return {lines[i].decode(): lines[i + 1].replace(b"\\n", b"\n") for i in range(0, len(lines), 2)}


def _dump(engine: Engine) -> dict[str, Any]:
    """The imported rows, ids left out (they number rows, they are not data)."""
    history = [c for c in subdomain_history.c if c.name != "id"]
    with engine.connect() as conn:
        return {
            "names": sorted(tuple(row) for row in conn.execute(select(names))),
            "subdomains": sorted(tuple(row) for row in conn.execute(select(subdomains))),
            "history": sorted(tuple(row) for row in conn.execute(select(*history))),
            "zonefiles": sorted((h, bytes(c)) for h, c in conn.execute(select(zonefiles.c.zonefile_hash,
                                                                              zonefiles.c.content))),
        }


def test_generated_export_imports_every_row(export: Path, tmp_path: Path) -> None:
    """Each subdomain of subdomains.csv becomes its row and one history row; every zone file is held as written."""
    engine = _engine(tmp_path)
    report = import_export(engine, ExportFiles.open(export))
    listed = _pairs(export / "name_zonefiles.txt") | _pairs(export / "subdomain_zonefiles.txt")
    assert (report.names, report.subdomains, report.zonefiles) == (NAMES, SUBDOMAINS, len(listed))
    assert not report.rejected and len(report.verified_digests) == 4
    dump = _dump(engine)
    assert {h for h, _c in dump["zonefiles"]} == set(listed)
    assert all(hash160(content).hex() == h and listed[h] == content for h, content in dump["zonefiles"])
    with (export / "subdomains.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    current = {row[0]: row for row in dump["subdomains"]}
    assert len(rows) == len(current) == len(dump["history"]) == SUBDOMAINS
    for row in rows:
        fqn = row["fully_qualified_subdomain"]
        got = current[fqn]
        assert got == (fqn, fqn.split(".", 1)[1], row["owner"], 0, row["zonefile_hash"], row["parent_zonefile_hash"],
                       int(row["parent_zonefile_index"]), int(row["block_height"]), row["resolver"], None)
    reader = IndexReader(engine)
    sample = rows[SUBDOMAINS // 2]
    found = reader.subdomain(sample["fully_qualified_subdomain"])
    assert found is not None and get_zonefile(engine, sample["zonefile_hash"]) == listed[sample["zonefile_hash"]]
    assert reader.indexed_height() == 665750


def test_tarball_and_folder_give_the_same_index(export: Path, tmp_path: Path) -> None:
    """export-data.tar.gz, read in one streamed pass in archive order, loads what the loose files load."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    from_folder, from_tar = _engine(tmp_path / "a"), _engine(tmp_path / "b")
    import_export(from_folder, ExportFiles.open(export))
    report = import_export(from_tar, ExportFiles.open(export / "export-data.tar.gz"))
    assert report.subdomains == SUBDOMAINS and len(report.verified_digests) == 4
    assert _dump(from_folder) == _dump(from_tar)


def test_generator_is_deterministic_and_its_digests_hold(export: Path, tmp_path: Path) -> None:
    """The same seed writes the same bytes, and each .sha256 companion is the file's digest."""
    again = tmp_path / "again"
    synth.generate(again, synth.Sizes(NAMES, SUBDOMAINS, 7))
    for name in synth.FILES:
        assert (again / name).read_bytes() == (export / name).read_bytes()
        assert (again / f"{name}.sha256").read_text() == (export / f"{name}.sha256").read_text()


def _imported_embedded(tmp_path: Path) -> Engine:
    engine = _engine(tmp_path)
    import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    return engine


def _unchanged(engine: Engine) -> None:
    """Still the embedded export, with the secondary indexes the import drops and rebuilds."""
    counts = IndexReader(engine).counts()
    assert (counts.names, counts.zonefiles) == (12, 1681)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subdomains)).scalar_one() == 50
        indexes = {index["name"] for table in ("subdomains", "subdomain_history")
                   for index in inspect(conn).get_indexes(table)}
    assert {"ix_subdomains_domain", "ix_subdomain_history_fqn"} <= indexes


def test_bad_digest_of_the_last_file_loads_nothing(export: Path, tmp_path: Path) -> None:
    """A mismatch found only at the end of a streamed file still rolls everything back."""
    engine = _imported_embedded(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(export, broken)
    with (broken / "subdomain_zonefiles.txt").open("ab") as handle:
        handle.write(b"0" * 40 + b"\n$ORIGIN x.id\\n\n")
    with pytest.raises(SnapshotError, match="subdomain_zonefiles.txt: sha256 [0-9a-f]{64} does not match") as raised:
        import_export(engine, ExportFiles.open(broken))
    assert "\n" not in str(raised.value)
    _unchanged(engine)


def test_truncated_tarball_loads_nothing(export: Path, tmp_path: Path) -> None:
    """An archive cut short (a partial download) is a one-line error, and the old index stays."""
    engine = _imported_embedded(tmp_path)
    whole = (export / "export-data.tar.gz").read_bytes()
    cut = tmp_path / "export-data.tar.gz"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(SnapshotError, match="cannot read .*export-data.tar.gz") as raised:
        import_export(engine, ExportFiles.open(cut))
    assert "\n" not in str(raised.value)
    _unchanged(engine)


def test_pinned_digest_must_match(export: Path, tmp_path: Path) -> None:
    """A URL's export is held to the production digests: a different chainstate.txt loads nothing."""
    engine = _imported_embedded(tmp_path)
    with pytest.raises(SnapshotError, match="chainstate.txt: sha256 .* does not match the pinned"):
        import_export(engine, ExportFiles.open(export), pinned={"chainstate.txt": "ab" * 32})
    _unchanged(engine)


def test_embedded_export_matches_its_production_pins(tmp_path: Path) -> None:
    """The embedded name_zonefiles.txt is the production file (its chainstate.txt is cut down): that pin passes."""
    from bns_resolver.index.snapshot import PRODUCTION_DIGESTS

    pinned = {"name_zonefiles.txt": PRODUCTION_DIGESTS["name_zonefiles.txt"]}
    report = import_export(_engine(tmp_path), ExportFiles.open(EMBEDDED_DIR), pinned=pinned)
    assert "name_zonefiles.txt (production export)" in report.verified_digests


@pytest.fixture
def postgres_url() -> str:
    return shared_postgres_url("set BNS_TEST_POSTGRES_URL to run against PostgreSQL")


@pytest.mark.postgres
def test_postgresql_streams_the_same_index(export: Path, tmp_path: Path, postgres_url: str) -> None:
    """The streamed load (staging table, bulk inserts, rebuilt indexes) gives PostgreSQL the same rows."""
    on_sqlite, on_postgres = _engine(tmp_path), open_index(postgres_url)
    import_export(on_sqlite, ExportFiles.open(export))
    report = import_export(on_postgres, ExportFiles.open(export / "export-data.tar.gz"))
    assert report.subdomains == SUBDOMAINS
    assert _dump(on_postgres) == _dump(on_sqlite)
    import_export(on_postgres, ExportFiles.open(export))  # a second import replaces the first
    assert _dump(on_postgres) == _dump(on_sqlite)


class _DyingExport(ExportFiles):
    """An export whose reading process dies (a kill, the OOM killer) before it sends anything."""

    portable = True

    def __init__(self) -> None:
        self.origin, self.size = "a dying reader", 1

    def members(self, on_bytes: Any = None) -> Any:
        import os

        os._exit(7)


def test_a_reading_process_that_dies_fails_the_import_in_one_line(tmp_path: Path, reading: str) -> None:
    if reading == "in-process":
        pytest.skip("only a separate reading process can die apart from the import")
    engine = _imported_embedded(tmp_path)
    with pytest.raises(SnapshotError, match=r"the process reading a dying reader exited \(code 7\)"):
        import_export(engine, _DyingExport())
    _unchanged(engine)


def test_progress_counts_every_byte_of_the_export(export: Path) -> None:
    """The progress bar's byte count, which a reading process sends along with its events."""
    for files in (ExportFiles.open(export), ExportFiles.open(export / "export-data.tar.gz")):
        counted: list[int] = []
        events = list(snapshot_reader.export_events(files, on_bytes=counted.append))
        assert sum(counted) == files.size
        assert [event[1] for event in events if event[0] == "end"] == list(synth.FILES)


def test_a_failed_write_stops_the_reading_process_at_once(export: Path, tmp_path: Path, reading: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    from bns_resolver.index import snapshot

    loaded: list[str] = []

    def load_one_then_fail(conn: object, name: str, member: object, origin: str, report: object) -> None:
        loaded.append(name)
        if len(loaded) == 2:
            raise OSError(28, "No space left on device")

    engine = _imported_embedded(tmp_path)
    monkeypatch.setattr(snapshot, "_load_member", load_one_then_fail)
    with pytest.raises(Exception, match="No space left") as raised:
        import_export(engine, ExportFiles.open(export))
    assert raised.value is not None and loaded == ["chainstate.txt", "name_zonefiles.txt"]
    assert not [child for child in multiprocessing.active_children() if child.name == "bns-import-reader"]
    _unchanged(engine)
