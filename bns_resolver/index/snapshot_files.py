"""Reading the published final-state export of BNS v1 (the Stacks 2.0 genesis data) as streams.

The export is four text files, loose or inside `export-data.tar.gz`:
  chainstate.txt           sections NAMESPACES and NAMES (plus STX data we ignore)
  name_zonefiles.txt       pairs of lines: hash160, zone file with newlines escaped as \\n
  subdomains.csv           one row per subdomain
  subdomain_zonefiles.txt  same pair format as name_zonefiles.txt
Each may have a `<file>.sha256` beside it. This module finds the files (a folder, a tarball
read in one pass, or memory), counts and hashes their bytes as they are read, and parses
their formats into rows; `snapshot.py` loads those rows into the index.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tarfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from bns_resolver.errors import SnapshotError

PRODUCTION_DIGESTS = {
    "chainstate.txt": "74237aa39aa50a83de11a4f53e9d3bb7d43461d1de9873f402e5453ae60bc59b",
    "name_zonefiles.txt": "a256860023e6e5a17e07cc647cb01fe75605ecd70a648d9608be3f635874be0e",
}
EXPORT_FILES = ("chainstate.txt", "name_zonefiles.txt", "subdomains.csv", "subdomain_zonefiles.txt")
EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "data"
CHUNK = 1 << 20
_DIGEST_MAX = 4096  # a .sha256 companion is one line


class ExportFiles:
    """The export's files by canonical name, from a folder, a tarball or memory, read as streams."""

    portable = False  # whether another process can read the same files from a pickled copy

    def __init__(self, contents: Mapping[str, bytes], origin: str) -> None:
        self._members: Callable[[], Iterator[tuple[str, IO[bytes]]]] = lambda: (
            (name, io.BytesIO(contents[name])) for name in _in_order(contents)
        )
        self.origin = origin
        self.size = sum(len(content) for content in contents.values())

    @classmethod
    def open(cls, path: Path) -> ExportFiles:
        if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
            return _TarballExport(path)
        if path.is_dir():
            return _FolderExport(path)
        raise SnapshotError(f"{path} is neither a folder nor a .tar.gz export")

    def members(self, on_bytes: Callable[[int], None] | None = None) -> Iterator[tuple[str, IO[bytes]]]:
        """(canonical name, binary stream) of each export file, each stream valid until the next is taken."""
        for name, stream in self._members():
            yield name, _counting(stream, on_bytes) if on_bytes else stream


class _FolderExport(ExportFiles):
    portable = True

    def __init__(self, folder: Path) -> None:
        found: dict[str, Path] = {}
        for path in sorted(folder.iterdir()):
            canonical = _canonical(path.name)
            # A production file wins over a '-test' variant if both are present.
            if canonical and path.is_file() and (canonical not in found or "-test" not in path.name):
                found[canonical] = path
        self.origin = str(folder)
        self.size = sum(path.stat().st_size for path in found.values())
        self._paths = found

    def members(self, on_bytes: Callable[[int], None] | None = None) -> Iterator[tuple[str, IO[bytes]]]:
        for name in _in_order(self._paths):
            try:
                handle: IO[bytes] = self._paths[name].open("rb")
            except OSError as exc:
                raise SnapshotError(f"cannot read {self._paths[name]}: {exc.strerror}") from None
            with handle:
                yield name, _counting(handle, on_bytes) if on_bytes else handle


class _TarballExport(ExportFiles):
    """Members in archive order, decompressed in one pass; progress counts the compressed bytes."""

    portable = True

    def __init__(self, path: Path) -> None:
        self.origin = str(path)
        self.size = path.stat().st_size
        self._path = path

    def members(self, on_bytes: Callable[[int], None] | None = None) -> Iterator[tuple[str, IO[bytes]]]:
        try:
            with self._path.open("rb") as raw, \
                    tarfile.open(fileobj=_counting(raw, on_bytes) if on_bytes else raw, mode="r|*") as tar:
                for member in tar:
                    canonical = _canonical(member.name)
                    extracted = tar.extractfile(member) if member.isfile() else None
                    if canonical and extracted is not None:
                        yield canonical, extracted
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            raise SnapshotError(f"cannot read {self._path}: {exc or 'truncated archive'}") from None
        except OSError as exc:
            raise SnapshotError(f"cannot read {self._path}: {exc.strerror or exc}") from None


def _in_order(available: Iterable[str]) -> list[str]:
    """Companions first (they are tiny), then the files in the export's own order."""
    present = set(available)
    names = [name + ".sha256" for name in EXPORT_FILES] + list(EXPORT_FILES)
    return [name for name in names if name in present]


def _canonical(name: str) -> str | None:
    """Map file names (incl. the '-test' variants of the public repo) to export names."""
    base = name.rsplit("/", 1)[-1]
    digest = base.endswith(".sha256")
    stem = base[: -len(".sha256")] if digest else base
    stem = stem.replace("-test.", ".")
    if stem not in EXPORT_FILES:
        return None
    return stem + (".sha256" if digest else "")


class _Counting(io.RawIOBase):
    """A read-only stream that reports how many bytes passed through it."""

    def __init__(self, inner: IO[bytes], on_bytes: Callable[[int], None]) -> None:
        self._inner, self._on_bytes = inner, on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self._on_bytes(len(data))
        return len(data)


def _counting(stream: IO[bytes], on_bytes: Callable[[int], None] | None) -> IO[bytes]:
    if on_bytes is None:
        return stream
    return io.BufferedReader(_Counting(stream, on_bytes), CHUNK)


class Digesting(io.RawIOBase):
    """A read-only stream that hashes what passes through it, so a file is hashed as it is parsed."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        self.sha.update(data)
        buffer[: len(data)] = data
        return len(data)

    def finish(self) -> str:
        """Hash whatever the parser left unread, and return the file's digest."""
        while self._inner.read(CHUNK):
            pass
        return self.sha.hexdigest()


def digest_line(stream: IO[bytes], name: str) -> str:
    words = stream.read(_DIGEST_MAX).decode("ascii", "replace").split()
    if not words:
        raise SnapshotError(f"{name} is empty")
    return words[0].lower()


def text_lines(stream: IO[bytes], name: str) -> Iterator[str]:
    """UTF-8 lines (universal newlines), with an undecodable file named in a one-line error."""
    try:
        yield from io.TextIOWrapper(stream, encoding="utf-8", newline=None)
    except UnicodeDecodeError as exc:
        raise SnapshotError(f"{name} is not UTF-8 text (byte {exc.start})") from None


def _csv_records(lines: Iterable[str], what: str) -> Iterator[list[str]]:
    try:
        yield from csv.reader(lines)
    except csv.Error as exc:
        raise SnapshotError(f"{what} is not readable CSV: {exc}") from None


def dict_rows(lines: Iterable[str], what: str, columns: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """Rows as dicts, each checked for `columns` (a short row or an absent column is one clear error)."""
    records = _csv_records(lines, what)
    header = next(records, None)
    if header is None:
        return
    for number, record in enumerate(records, start=1):
        if record:  # csv.DictReader skips blank lines too
            yield _checked_row(header, record, columns, what, number)


def _checked_row(header: list[str], record: list[str], columns: tuple[str, ...], what: str,
                 number: int) -> dict[str, str]:
    row = dict(zip(header, record))
    missing = [column for column in columns if column not in row]
    if missing:
        raise SnapshotError(f"{what} row {number} has no {', '.join(missing)}")
    return row


def column_rows(lines: Iterable[str], what: str, columns: tuple[str, ...],
                optional: tuple[str, ...] = ()) -> Iterator[tuple[str | None, ...]]:
    """The values of `columns`, then of `optional` (None where absent), of each row: what `dict_rows`
    checks and gives, without a dict per row (subdomains.csv has millions). A row that is short or
    lacks a column takes `dict_rows`' own check, so the errors are the same."""
    records = _csv_records(lines, what)
    header = next(records, None)
    if header is None:
        return
    position = {name: at for at, name in enumerate(header)}  # a repeated name: its last, as dict(zip())
    slots = [position.get(name) for name in columns + optional]
    complete = max((at for at in slots if at is not None), default=-1) + 1
    pick = _picker(slots)
    for number, record in enumerate(records, start=1):
        if not record:
            continue
        if len(record) < complete or None in slots[:len(columns)]:
            row = _checked_row(header, record, columns, what, number)
            yield tuple(row[name] for name in columns) + tuple(row.get(name) for name in optional)
        else:
            yield pick(record)


def _picker(slots: list[int | None]) -> Callable[[list[str]], tuple[str | None, ...]]:
    present = [at for at in slots if at is not None]
    if len(present) == len(slots) > 1:
        return itemgetter(*present)  # more than one item: it returns a tuple
    return lambda record: tuple(None if at is None else record[at] for at in slots)


def iter_section_lines(lines: Iterable[str]) -> Iterator[tuple[str, Iterator[str]]]:
    """Yield (section name, its lines) from chainstate.txt's BEGIN/END blocks, one at a time."""
    source = iter(lines)
    for line in source:
        line = line.rstrip("\r\n")
        if line.startswith("-----BEGIN ") and line.endswith("-----"):
            section = line[len("-----BEGIN "):-5]
            body = _section_body(source, section)
            yield section, body
            deque(body, 0)  # whatever the caller did not read


def _section_body(source: Iterator[str], section: str) -> Iterator[str]:
    for line in source:
        if line.startswith("-----END "):
            return
        yield line
    raise SnapshotError(f"chainstate section {section} is not closed")


def iter_sections(text: str) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """Yield (section name, CSV rows) from chainstate.txt's text (small exports, benchmarks)."""
    for section, body in iter_section_lines(text.splitlines()):
        yield section, list(dict_rows(body, f"chainstate section {section}", ()))


def iter_zonefile_pairs(lines: Iterable[bytes]) -> Iterator[tuple[str, bytes]]:
    """Yield (claimed hash, exact zone-file bytes) from the escaped pair format's lines."""
    source = iter(lines)
    for hash_line in source:
        content = next(source, None)
        if content is None:
            raise SnapshotError("zone-file list has an odd number of lines")
        yield hash_line.strip().decode("ascii", "replace").lower(), content.rstrip(b"\r\n").replace(b"\\n", b"\n")
