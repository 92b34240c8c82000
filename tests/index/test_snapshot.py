"""Import of the BNS v1 final-state export: digests, zone-file hashes, rows."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bns_resolver.errors import SnapshotError
from bns_resolver.index.db import open_index
from bns_resolver.index.lookup import IndexReader
from bns_resolver.index.snapshot import EMBEDDED_DIR, ExportFiles, import_export, iter_sections


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
