"""Import of the BNS v1 final-state export: digests, zone-file hashes, rows."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from bns_resolver.errors import IndexStoreError, SnapshotError
from bns_resolver.index.db import open_index
from bns_resolver.index.lookup import IndexReader
from bns_resolver.hashing import hash160
from bns_resolver.index.schema import names, subdomain_history, subdomains
from bns_resolver.index.snapshot import EMBEDDED_DIR, ExportFiles, import_export, iter_sections
from bns_resolver.zonefiles.store import MAX_ZONEFILE_BYTES, get_zonefile
from tests.support.zonefile_data import read_csv


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_index(f"sqlite:///{tmp_path / 'index.sqlite'}")


def test_embedded_snapshot_loads_real_names(engine: Engine) -> None:
    """The bundled export: 5 namespaces, 12 names, 50 subdomains, 1,681 verified zone files."""
    report = import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    assert (report.namespaces, report.names, report.subdomains, report.zonefiles) == (5, 12, 50, 1681)
    assert not report.rejected
    assert "name_zonefiles.txt (production export)" in report.verified_digests
    reader = IndexReader(engine)
    record = reader.name("zone117x.id")
    assert record is not None and record.value_hash == "578ed433dabeb24952c892d5f3fc0cd7b9844bb8"
    assert reader.subdomain("mymansgotabeefy1.id.blockstack") is not None
    assert reader.indexed_height() == 665750


def test_api_test_set_rejects_the_hand_edited_zone_file(engine: Engine, genesis_dir: Path) -> None:
    """The API's test export has one zone file edited after hashing: it is reported and not loaded."""
    report = import_export(engine, ExportFiles.open(genesis_dir / "stacks-blockchain-api-bns-test"))
    assert len(report.rejected) == 1 and report.rejected[0].startswith("zone file c5f5b4197c94")
    assert IndexReader(engine).zonefile("c5f5b4197c94d4561f6332160f624d728b0da8bf") is None
    assert report.zonefiles == 11 + 50


def test_digest_mismatch_aborts_and_keeps_the_old_index(engine: Engine, tmp_path: Path) -> None:
    """A file that fails its .sha256 stops the import before anything is replaced."""
    import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    broken = tmp_path / "broken"
    shutil.copytree(EMBEDDED_DIR, broken)
    (broken / "chainstate.txt").chmod(0o644)
    with (broken / "chainstate.txt").open("a") as handle:
        handle.write("\n")
    with pytest.raises(SnapshotError, match="chainstate.txt: sha256"):
        import_export(engine, ExportFiles.open(broken))
    assert IndexReader(engine).counts().names == 12


def test_tarball_export_is_read(engine: Engine, tmp_path: Path) -> None:
    """export-data.tar.gz with the files in a folder inside loads like the loose files."""
    archive = tmp_path / "export-data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in EMBEDDED_DIR.iterdir():
            tar.add(path, arcname=f"export-data/{path.name}")
    report = import_export(engine, ExportFiles.open(archive))
    assert report.names == 12 and report.zonefiles == 1681


def test_unclosed_section_is_an_error() -> None:
    """A truncated chainstate.txt is reported, not half-read."""
    with pytest.raises(SnapshotError, match="not closed"):
        list(iter_sections("-----BEGIN NAMES-----\nname,address,zonefile_hash\na.id,SP1,00\n"))


def _export_copy(genesis_dir: Path, tmp_path: Path) -> Path:
    """The API's test export, without its .sha256 companions (so a test may edit the files)."""
    folder = tmp_path / "export"
    shutil.copytree(genesis_dir / "stacks-blockchain-api-bns-test", folder)
    for digest in folder.glob("*.sha256"):
        digest.unlink()
    return folder


def test_all_50_export_subdomains_with_history(engine: Engine, genesis_dir: Path) -> None:
    """The export's 50 subdomains import with verified zone files matching their rows, and a history row each."""
    export = genesis_dir / "stacks-blockchain-api-bns-test"
    report = import_export(engine, ExportFiles.open(export))
    assert report.subdomains == 50 and not [r for r in report.rejected if r.startswith("subdomain")]
    with engine.connect() as conn:
        current = {row.fqn: row for row in conn.execute(select(subdomains))}
        history = {row.fqn: row for row in conn.execute(select(subdomain_history))}
    for row in read_csv(next(export.glob("subdomains*.csv"))):
        got = current[row["fully_qualified_subdomain"]]
        assert (got.zonefile_hash, got.owner_address, got.parent_zonefile_hash) == (
            row["zonefile_hash"], row["owner"], row["parent_zonefile_hash"],
        )
        assert (got.domain, got.resolver, got.block_height) == ("id.blockstack", row["resolver"], 665577)
        assert got.parent_zonefile_index == int(row["parent_zonefile_index"])
        assert hash160(get_zonefile(engine, got.zonefile_hash) or b"").hex() == row["zonefile_hash"]
        past = history[got.fqn]
        assert past.accepted and past.zonefile_hash == got.zonefile_hash and past.sequence == 0


def test_tampered_subdomain_zonefile_is_rejected_with_its_row(engine: Engine, genesis_dir: Path,
                                                              tmp_path: Path) -> None:
    """A subdomain zone file edited after hashing fails verification: neither the file nor its row is stored."""
    folder = _export_copy(genesis_dir, tmp_path)
    listing = next(folder.glob("subdomain_zonefiles*.txt"))
    lines = listing.read_bytes().splitlines()
    lines[1] = lines[1].replace(b"$TTL 3600", b"$TTL 3601")
    listing.write_bytes(b"\n".join(lines))
    report = import_export(engine, ExportFiles.open(folder))
    bad_hash = lines[0].decode()
    assert report.subdomains == 49 and get_zonefile(engine, bad_hash) is None
    assert any(r.startswith(f"zone file {bad_hash}") for r in report.rejected)
    assert any(r.startswith("subdomain ") and bad_hash in r for r in report.rejected)
    with engine.connect() as conn:
        assert bad_hash not in {row.zonefile_hash for row in conn.execute(select(subdomains))}


def test_export_zonefile_over_the_size_limit_is_rejected(engine: Engine, genesis_dir: Path, tmp_path: Path) -> None:
    """The export's zone files pass the same 40 KiB limit as fetched ones, even with a matching hash."""
    folder = _export_copy(genesis_dir, tmp_path)
    big = b"$ORIGIN big.id\n" + b"; padding\n" * (MAX_ZONEFILE_BYTES // 10)
    big_hash = hash160(big).hex()
    listing = next(folder.glob("name_zonefiles*.txt"))
    listing.write_bytes(listing.read_bytes().rstrip(b"\n") + b"\n" + big_hash.encode() + b"\n"
                        + big.replace(b"\n", b"\\n") + b"\n")
    report = import_export(engine, ExportFiles.open(folder))
    assert any(r.startswith(f"zone file {big_hash}") and "limit" in r for r in report.rejected)
    assert get_zonefile(engine, big_hash) is None


def _larger_export(tmp_path: Path) -> Path:
    """The embedded export plus 400 extra (valid) 2 KB zone files: it needs more pages than it."""
    folder = tmp_path / "larger"
    shutil.copytree(EMBEDDED_DIR, folder)
    (folder / "name_zonefiles.txt.sha256").unlink()
    listing = folder / "name_zonefiles.txt"
    listing.chmod(0o644)
    extra = [b"$ORIGIN extra%d.id\\n" % n + b"; filler\\n" * 200 for n in range(400)]
    pairs = b"".join(hash160(z.replace(b"\\n", b"\n")).hex().encode() + b"\n" + z + b"\n" for z in extra)
    listing.write_bytes(listing.read_bytes().rstrip(b"\n") + b"\n" + pairs)
    return folder


def test_full_disk_during_import_keeps_the_old_index(engine: Engine, tmp_path: Path) -> None:
    """SQLite reports a full disk (here: a page cap) mid-import: a one-line error, and the old index stays."""
    import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    before = IndexReader(engine).sync_state()

    @event.listens_for(engine, "begin")
    def full_disk(conn: Any) -> None:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")

    with pytest.raises(IndexStoreError, match="disk is full; the index was left as it was"):
        import_export(engine, ExportFiles.open(_larger_export(tmp_path)))
    event.remove(engine, "begin", full_disk)
    reader = IndexReader(engine)
    assert reader.sync_state() == before and reader.counts().names == 12 and reader.counts().zonefiles == 1681


_NAMES_HEADER = b"-----BEGIN NAMES-----\nname,address,zonefile_hash\n"


@pytest.mark.parametrize(("files", "message"), [
    ({"chainstate.txt": b"\xcb\xff"}, "chainstate.txt is not UTF-8 text"),
    ({"chainstate.txt": b"", "chainstate.txt.sha256": b"  \n"}, "chainstate.txt.sha256 is empty"),
    ({"chainstate.txt": _NAMES_HEADER + b"alice.id\n-----END NAMES-----\n"}, "NAMES row 1 has no address"),
    ({"chainstate.txt": b"-----BEGIN NAMESPACES-----\nnamespace_id,lifetime,coeff,base,buckets,"
      b"nonalpha_discount,no_vowel_discount,address\nid,x,1,1,1,1,1,a\n-----END NAMESPACES-----\n"},
     "malformed value"),
    ({"chainstate.txt": b"-----BEGIN NAMESPACES-----\nnamespace_id,lifetime,coeff,base,buckets,"
      b"nonalpha_discount,no_vowel_discount,address\nid,1" + b"0" * 30 + b",1,1,1,1,1,a\n-----END NAMESPACES-----\n"},
     "malformed value: Python int too large"),
    ({"chainstate.txt": b"", "subdomains.csv": b"fully_qualified_subdomain\nbob\n"},
     "subdomains.csv row 1 has no owner"),
])
def test_malformed_exports_are_one_line_errors(engine: Engine, files: dict[str, bytes], message: str) -> None:
    """Found by fuzzing the import: each was a KeyError, IndexError or UnicodeDecodeError; the index stays as it was."""
    import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    before = _name_count(engine)
    with pytest.raises(SnapshotError, match=message) as raised:
        import_export(engine, ExportFiles(files, "fuzz"))
    assert "\n" not in str(raised.value)
    assert _name_count(engine) == before > 0


def _name_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(names)).scalar_one())


def _journal_mode_during_import(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from bns_resolver.index import snapshot
    seen: list[str] = []
    original = snapshot.write_sync_state

    def recording(conn: Any, values: dict[str, str]) -> None:
        seen.append(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one())
        original(conn, values)

    monkeypatch.setattr(snapshot, "write_sync_state", recording)
    import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    return seen


def _journal_mode(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one())


def test_an_import_alone_uses_a_rollback_journal_and_leaves_wal(engine: Engine,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert _journal_mode_during_import(engine, monkeypatch) == ["delete"]
    assert _journal_mode(engine) == "wal"
    assert _journal_mode(open_index(str(engine.url))) == "wal"


def test_an_import_beside_a_reader_stays_in_wal_and_the_reader_sees_the_old_index(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    reader_engine = open_index(str(engine.url))
    with reader_engine.connect() as reader:
        reader.exec_driver_sql("BEGIN")
        before = reader.execute(select(func.count()).select_from(names)).scalar_one()
        assert _journal_mode_during_import(engine, monkeypatch) == ["wal"]
        assert reader.execute(select(func.count()).select_from(names)).scalar_one() == before == 12
        reader.exec_driver_sql("COMMIT")
    assert _journal_mode(engine) == "wal"
