"""A compile whose subdomains are built by several processes writes the one-process store, byte for byte.

Real processes (spawned), a real SQLite index of the embedded export (12 names, 50 subdomains of
id.blockstack) and real LMDB stores compared entry by entry.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest

from bns_resolver.answers import compile as compile_module
from bns_resolver.answers import parallel
from bns_resolver.answers.compile import CompileReport, compile_store
from bns_resolver.answers.format import META_KEY
from bns_resolver.answers.store import index_state
from bns_resolver.index.db import open_index
from bns_resolver.index.lookup import IndexReader
from bns_resolver.index.snapshot import EMBEDDED_DIR, ExportFiles, import_export
from tests.support.helper_targets import exited_helper


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> IndexReader:
    folder = tmp_path_factory.mktemp("parallel")
    engine = open_index(f"sqlite:///{folder / 'index.sqlite'}")
    import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    return IndexReader(engine)


def _entries(store: Path) -> dict[bytes, bytes]:
    env = lmdb.open(str(store), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            return {bytes(key): bytes(value) for key, value in txn.cursor() if key != META_KEY}
    finally:
        env.close()


def test_split_points_cut_the_subdomains_into_ranges_that_cover_each_once(reader: IndexReader) -> None:
    points = reader.subdomain_split_points(3)
    assert len(points) == 2 and points == sorted(points)
    bounds = list(zip([None, *points], [*points, None], strict=True))
    seen = [record.fqn for low, high in bounds for record, _ in reader.subdomains_with_zonefiles(low, high)]
    assert len(seen) == 50 and sorted(seen) == sorted(r.fqn for r, _ in reader.subdomains_with_zonefiles())
    assert all(15 <= len(list(reader.subdomains_with_zonefiles(low, high))) <= 18 for low, high in bounds)


def test_three_processes_write_the_same_store_as_one(reader: IndexReader, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    single, single_report = compile_store(reader, tmp_path / "one")
    monkeypatch.setattr(compile_module, "PARALLEL_MIN_SUBDOMAINS", 0)  # 50 subdomains: split them anyway
    split, split_report = compile_store(reader, tmp_path / "three", processes=3)
    assert split_report.subdomains == single_report.subdomains == 50
    assert (split_report.names, split_report.nodes, split_report.deferred, split_report.servfail,
            split_report.skipped) == (single_report.names, single_report.nodes, single_report.deferred,
                                      single_report.servfail, single_report.skipped)
    single_entries = _entries(single)
    assert len(single_entries) > 100
    assert _entries(split) == single_entries


class _Unreachable(IndexReader):
    def url(self) -> str:
        return "sqlite:////nonexistent-folder/of/the/index.sqlite"


def test_a_producer_that_cannot_read_the_index_fails_the_compile_in_one_line(reader: IndexReader) -> None:
    broken = _Unreachable(reader._engine)
    with pytest.raises(parallel.CompileWorkerError, match=r"compile process \d failed: .*unable to open"):
        list(parallel.subdomain_items(broken, index_state(reader), reader.subdomain_domains(), CompileReport(), 2))


def test_a_compile_with_a_failing_producer_keeps_the_previous_store(reader: IndexReader, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = compile_store(reader, tmp_path / "answers")
    monkeypatch.setattr(compile_module, "PARALLEL_MIN_SUBDOMAINS", 0)
    with pytest.raises(parallel.CompileWorkerError):
        compile_store(_Unreachable(reader._engine), tmp_path / "answers", processes=2)
    assert (tmp_path / "answers" / "current").resolve() == first
    assert not list((tmp_path / "answers").glob("build-*"))


def test_a_producer_that_dies_is_noticed() -> None:
    channel, dead = exited_helper(3)
    with pytest.raises(parallel.CompileWorkerError, match=r"compile process 0 exited \(code 3\)"):
        list(parallel._collect(channel, [dead], CompileReport()))


def test_a_writer_that_fails_stops_the_producers_at_once(reader: IndexReader, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The failure propagates with its traceback kept (as pytest keeps it): the producers must not
    wait for it to be freed, holding their read transactions meanwhile."""
    def write_one_then_fail(_env: object, bindings: Iterator[list[object]], _cancelled: object) -> None:
        while not [child for child in multiprocessing.active_children() if child.name.startswith("bns-compile")]:
            next(bindings)  # the names' entries, then the first batch from a producer
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(compile_module, "PARALLEL_MIN_SUBDOMAINS", 0)
    monkeypatch.setattr(compile_module, "_write", write_one_then_fail)
    with pytest.raises(OSError, match="No space left") as raised:
        compile_store(reader, tmp_path / "answers", processes=2)
    assert raised.value is not None
    assert not [child for child in multiprocessing.active_children() if child.name.startswith("bns-compile")]
    assert not list((tmp_path / "answers").glob("build-*"))
