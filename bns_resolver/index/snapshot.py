"""Import of the published final-state export of BNS v1 (the Stacks 2.0 genesis data).

The export is four text files, loose or inside `export-data.tar.gz`:
  chainstate.txt           sections NAMESPACES and NAMES (plus STX data we ignore)
  name_zonefiles.txt       pairs of lines: hash160, zone file with newlines escaped as \\n
  subdomains.csv           one row per subdomain
  subdomain_zonefiles.txt  same pair format as name_zonefiles.txt
Each may have a `<file>.sha256` beside it; when present it must match. Every zone
file enters through the one verify-then-store path (`zonefiles.store`: hash160 of the
exact bytes, 40 KiB limit); failures are reported and skipped, and a subdomain whose
zone file did not verify is reported and not imported. Subdomains get a history row
too, like those the subdomain indexer decides, so both paths leave the same shape.
This is the only importer of the export.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert

from bns_resolver.errors import SnapshotError
from bns_resolver.index import schema
from bns_resolver.index import subdomains as subdomain_rows
from bns_resolver.index.db import reported
from bns_resolver.index.changes import ALL_NAMES, record_changes
from bns_resolver.index.sync_state import bump_generation, write_sync_state
from bns_resolver.zonefiles.store import store_verified_many

log = logging.getLogger(__name__)

# BNS v1 froze here; the export is the state after the last block that could change it.
FROZEN_HEIGHT = 665750
PRODUCTION_DIGESTS = {
    "chainstate.txt": "74237aa39aa50a83de11a4f53e9d3bb7d43461d1de9873f402e5453ae60bc59b",
    "name_zonefiles.txt": "a256860023e6e5a17e07cc647cb01fe75605ecd70a648d9608be3f635874be0e",
}
EXPORT_FILES = ("chainstate.txt", "name_zonefiles.txt", "subdomains.csv", "subdomain_zonefiles.txt")
EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "data"


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


class ExportFiles:
    """The export's files by canonical name, read from a folder or a tarball."""

    def __init__(self, contents: dict[str, bytes], origin: str) -> None:
        self.contents = contents
        self.origin = origin

    @classmethod
    def open(cls, path: Path) -> ExportFiles:
        if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
            return cls(_read_tarball(path), str(path))
        if path.is_dir():
            return cls(_read_folder(path), str(path))
        raise SnapshotError(f"{path} is neither a folder nor a .tar.gz export")

    def get(self, name: str) -> bytes | None:
        return self.contents.get(name)


def _canonical(name: str) -> str | None:
    """Map file names (incl. the '-test' variants of the public repo) to export names."""
    base = name.rsplit("/", 1)[-1]
    digest = base.endswith(".sha256")
    stem = base[: -len(".sha256")] if digest else base
    stem = stem.replace("-test.", ".")
    if stem not in EXPORT_FILES:
        return None
    return stem + (".sha256" if digest else "")


def _read_folder(folder: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for path in sorted(folder.iterdir()):
        canonical = _canonical(path.name)
        # A production file wins over a '-test' variant if both are present.
        if canonical and (canonical not in found or "-test" not in path.name):
            found[canonical] = path.read_bytes()
    return found


def _read_tarball(path: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                canonical = _canonical(member.name)
                extracted = tar.extractfile(member) if member.isfile() else None
                if canonical and extracted is not None:
                    found[canonical] = extracted.read()
    except (tarfile.TarError, OSError) as exc:
        raise SnapshotError(f"cannot read {path}: {exc}") from exc
    return found


def verify_digests(files: ExportFiles, report: ImportReport) -> None:
    """Check each file against its .sha256 companion; a mismatch aborts the import."""
    for name in EXPORT_FILES:
        content = files.get(name)
        expected_raw = files.get(name + ".sha256")
        if content is None or expected_raw is None:
            continue
        words = expected_raw.decode("ascii", "replace").split()
        if not words:
            raise SnapshotError(f"{name}.sha256 is empty")
        expected = words[0].lower()
        actual = hashlib.sha256(content).hexdigest()
        if actual != expected:
            raise SnapshotError(f"{name}: sha256 {actual} does not match the expected {expected}")
        note = " (production export)" if PRODUCTION_DIGESTS.get(name) == actual else ""
        report.verified_digests.append(f"{name}{note}")


def _text(content: bytes, name: str) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SnapshotError(f"{name} is not UTF-8 text (byte {exc.start})") from None


def _csv_rows(text: str, what: str) -> list[dict[str, str]]:
    try:
        return list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise SnapshotError(f"{what} is not readable CSV: {exc}") from None


def iter_sections(text: str) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """Yield (section name, CSV rows) from chainstate.txt's BEGIN/END blocks."""
    section: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("-----BEGIN ") and line.endswith("-----"):
            section, lines = line[len("-----BEGIN "):-5], []
        elif line.startswith("-----END ") and section is not None:
            yield section, _csv_rows("\n".join(lines), f"chainstate section {section}")
            section = None
        elif section is not None:
            lines.append(line)
    if section is not None:
        raise SnapshotError(f"chainstate section {section} is not closed")


def iter_zonefile_pairs(content: bytes) -> Iterator[tuple[str, bytes]]:
    """Yield (claimed hash, exact zone-file bytes) from the escaped pair format."""
    lines = content.splitlines()
    if len(lines) % 2:
        raise SnapshotError("zone-file list has an odd number of lines")
    for index in range(0, len(lines), 2):
        claimed = lines[index].strip().decode("ascii", "replace").lower()
        yield claimed, lines[index + 1].replace(b"\\n", b"\n")


def import_export(engine: Engine, files: ExportFiles) -> ImportReport:
    """Replace the index's contents with the export, in one transaction: on any failure
    (a full disk included) the index stays exactly as it was."""
    report = ImportReport()
    verify_digests(files, report)
    chainstate = files.get("chainstate.txt")
    if chainstate is None:
        raise SnapshotError(f"{files.origin} has no chainstate.txt")
    sections = dict(iter_sections(_text(chainstate, "chainstate.txt")))
    with reported(engine, f"import {files.origin} into", outcome="the index was left as it was"), \
            engine.begin() as conn:
        _load_all_checked(conn, files, sections, report)
        write_sync_state(conn, {
            "source": "snapshot", "network": "mainnet", "height": str(FROZEN_HEIGHT),
            "snapshot_origin": files.origin, "imported_at": str(int(time.time())),
            "snapshot_sha256": hashlib.sha256(chainstate).hexdigest(),
        })
        bump_generation(conn)
        record_changes(conn, [ALL_NAMES])
    for line in report.rejected:
        log.warning("snapshot import rejected %s", line)
    return report


def _load_all(conn: Connection, files: ExportFiles, sections: dict[str, list[dict[str, str]]],
              report: ImportReport) -> None:
    _clear(conn)
    report.namespaces = _load_namespaces(conn, sections.get("NAMESPACES", []))
    report.names = _load_names(conn, sections.get("NAMES", []))
    verified: set[str] = set()
    for name in ("name_zonefiles.txt", "subdomain_zonefiles.txt"):
        verified |= _load_zonefiles(conn, files.get(name), files.origin, report)
    report.zonefiles = len(verified)
    report.subdomains = _load_subdomains(conn, files.get("subdomains.csv"), verified, report)


def _load_all_checked(conn: Connection, files: ExportFiles, sections: dict[str, list[dict[str, str]]],
                      report: ImportReport) -> None:
    """_load_all with a malformed export (a number that is not one, an unreadable CSV) reported as such."""
    try:
        _load_all(conn, files, sections, report)
    except (ValueError, OverflowError) as exc:  # OverflowError: a number past the database's integers
        raise SnapshotError(f"{files.origin} holds a malformed value: {exc}") from None


def _require(rows: list[dict[str, str]], columns: tuple[str, ...], what: str) -> None:
    # csv.DictReader leaves absent columns out, or None in a short row: say which row lacks what.
    for number, row in enumerate(rows, start=1):
        missing = [column for column in columns if not isinstance(row.get(column), str)]
        if missing:
            raise SnapshotError(f"{what} row {number} has no {', '.join(missing)}")


def _clear(conn: Connection) -> None:
    for table in (schema.subdomains, schema.subdomain_history, schema.zonefiles, schema.names, schema.namespaces,
                  schema.blocks):
        conn.execute(delete(table))


def _load_namespaces(conn: Connection, rows: list[dict[str, str]]) -> int:
    _require(rows, ("namespace_id", "lifetime", "coeff", "base", "buckets", "nonalpha_discount",
                    "no_vowel_discount", "address"), "chainstate.txt NAMESPACES")
    records = [
        {
            "namespace_id": row["namespace_id"], "version": 1, "lifetime": int(row["lifetime"]),
            "coeff": int(row["coeff"]), "base": int(row["base"]), "buckets": row["buckets"].replace(";", ","),
            "nonalpha_discount": int(row["nonalpha_discount"]),
            "no_vowel_discount": int(row["no_vowel_discount"]),
            "address": row["address"], "ready": True, "ready_block": None, "reveal_block": None,
        }
        for row in rows
    ]
    if records:
        conn.execute(insert(schema.namespaces), records)
    return len(records)


def _load_names(conn: Connection, rows: list[dict[str, str]]) -> int:
    # The export lists live names only; after the freeze nothing renews or expires them here.
    _require(rows, ("name", "address", "zonefile_hash"), "chainstate.txt NAMES")
    records = [
        {
            "fqn": row["name"].lower(), "namespace_id": row["name"].rsplit(".", 1)[-1].lower(),
            "owner_address": row["address"], "value_hash": row["zonefile_hash"].lower() or None,
            "revoked": False, "expire_block": None,
        }
        for row in rows
    ]
    if records:
        conn.execute(insert(schema.names), records)
    return len(records)


def _load_zonefiles(conn: Connection, content: bytes | None, origin: str, report: ImportReport) -> set[str]:
    """Verify and store one of the export's zone-file lists; the hashes now held from it."""
    if content is None:
        return set()
    pairs = list(iter_zonefile_pairs(content))
    stored, failed = store_verified_many(conn, pairs, f"snapshot:{origin}")
    report.rejected += [f"zone file {claimed}: {exc}" for claimed, exc in failed]
    bad = {claimed for claimed, _exc in failed}
    return set(stored) | {claimed for claimed, _z in pairs if claimed not in bad}


def _load_subdomains(conn: Connection, content: bytes | None, verified: set[str], report: ImportReport) -> int:
    if content is None:
        return 0
    current, history = [], []
    rows = _csv_rows(_text(content, "subdomains.csv"), "subdomains.csv")
    _require(rows, ("fully_qualified_subdomain", "owner", "zonefile_hash", "parent_zonefile_hash",
                    "parent_zonefile_index", "block_height"), "subdomains.csv")
    for row in rows:
        values = _subdomain_values(row)
        if values["zonefile_hash"] not in verified:
            report.rejected.append(f"subdomain {values['fqn']}: zone file {values['zonefile_hash']} "
                                   "missing from the export or rejected")
            continue
        current.append(values)
        # The export carries no sequence numbers or signatures: its rows are the final accepted state.
        history.append({**{k: v for k, v in values.items() if k not in ("domain", "resolver")},
                        "accepted": True, "reason": "v1 export (no seqn recorded)"})
    subdomain_rows.insert_imported(conn, current, history)
    return len(current)


def _subdomain_values(row: dict[str, str]) -> dict[str, Any]:
    fqn = row["fully_qualified_subdomain"].lower()
    if "." not in fqn:
        raise SnapshotError(f"subdomains.csv: {fqn!r} is not a subdomain of a name")
    return {
        "fqn": fqn, "domain": fqn.split(".", 1)[1], "owner_address": row["owner"],
        "zonefile_hash": row["zonefile_hash"].lower(), "sequence": 0,
        "parent_zonefile_hash": row["parent_zonefile_hash"].lower(),
        "parent_zonefile_index": int(row["parent_zonefile_index"] or 0),
        "block_height": int(row["block_height"] or 0), "resolver": row.get("resolver") or None,
    }
