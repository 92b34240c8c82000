"""The importer's reading side: the export's files in order, their SHA-256 digests, parsed rows in
batches and zone files checked against their hash160, as a stream of events.

Reading, parsing and checking are Python work about as large as writing the rows into the index
(at 2.2 million subdomains, some 19 s of CPU each side), so for a big export the events are made
in a process of its own (`spawn`, a bounded queue) while the importer's process only writes:
the two halves then share the machine's cores. The importer sees the same events either way,
and an exception raised while reading is raised again on its side, unchanged.

Events (plain tuples, cheap to pickle):
    ("expected", file, digest)     a .sha256 companion's digest
    ("begin", file)                a file's rows follow
    ("rows", kind, [row, ...])     kind: namespaces, names (dicts), subdomains (column_rows tuples),
                                   zonefiles (verified (hash, bytes) pairs)
    ("refused", [(hash, why)])     zone files that failed the check
    ("end", file, digest)          the file's SHA-256, read to its end
"""

from __future__ import annotations

import io
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import islice
from typing import IO, Any

from bns_resolver import spawned
from bns_resolver.errors import SnapshotError, VerificationError
from bns_resolver.index.snapshot_files import (
    CHUNK,
    Digesting,
    ExportFiles,
    column_rows,
    dict_rows,
    digest_line,
    iter_section_lines,
    iter_zonefile_pairs,
    text_lines,
)
from bns_resolver.zonefiles.verify import verified_stream

Event = tuple[Any, ...]
BATCH = 2000  # rows per event
BATCH_BYTES = 1 << 20  # and zone-file bytes per event
QUEUED_EVENTS = 4  # bounded: a few MB of rows in flight whatever the export's size
# Below this size a second process costs more (its start-up, about half a second) than it saves.
OFFLOAD_MIN_BYTES = 32 << 20

SUBDOMAIN_COLUMNS = ("fully_qualified_subdomain", "owner", "zonefile_hash", "parent_zonefile_hash",
                     "parent_zonefile_index", "block_height")
NAMESPACE_COLUMNS = ("namespace_id", "lifetime", "coeff", "base", "buckets", "nonalpha_discount",
                     "no_vowel_discount", "address")
NAME_COLUMNS = ("name", "address", "zonefile_hash")


def export_events(files: ExportFiles, *, on_bytes: Callable[[int], None] | None = None,
                  separate_process: bool | None = None) -> Generator[Event, None, None]:
    """The export's events (see the module's docstring). `separate_process`: read in a process of
    its own (None: when the export is big and can be reopened there)."""
    if separate_process is None:
        separate_process = files.portable and files.size >= OFFLOAD_MIN_BYTES
    if not separate_process:
        return read_events(files, on_bytes)
    return _from_process(files, on_bytes)


def read_events(files: ExportFiles, on_bytes: Callable[[int], None] | None = None) -> Generator[Event, None, None]:
    """The events, read in this process."""
    for name, stream in files.members(on_bytes):
        if name.endswith(".sha256"):
            yield "expected", name[: -len(".sha256")], digest_line(stream, name)
            continue
        yield "begin", name
        reader = Digesting(stream)
        yield from _member_events(name, io.BufferedReader(reader, CHUNK))
        yield "end", name, reader.finish()


def _member_events(name: str, stream: IO[bytes]) -> Iterator[Event]:
    if name == "chainstate.txt":
        for section, body in iter_section_lines(text_lines(stream, name)):
            what = f"chainstate.txt {section}"
            if section == "NAMESPACES":
                yield from _batched("namespaces", dict_rows(body, what, NAMESPACE_COLUMNS))
            elif section == "NAMES":
                yield from _batched("names", dict_rows(body, what, NAME_COLUMNS))
    elif name == "subdomains.csv":
        # The rows as read: the importer turns them into stage rows (_subdomain_tuple) itself, as it
        # waits for this process here otherwise (parsing the CSV is the larger half of the work).
        rows = column_rows(text_lines(stream, name), name, SUBDOMAIN_COLUMNS, ("resolver",))
        yield from _batched("subdomains", rows)
    else:
        failed: list[tuple[str, VerificationError]] = []
        for event in _batched_files(verified_stream(iter_zonefile_pairs(stream), failed)):
            yield event
            if failed:
                yield "refused", [(claimed, str(exc)) for claimed, exc in failed]
                failed.clear()
        if failed:
            yield "refused", [(claimed, str(exc)) for claimed, exc in failed]


def _batched(kind: str, rows: Iterable[Any]) -> Iterator[Event]:
    source = iter(rows)
    while batch := list(islice(source, BATCH)):
        yield "rows", kind, batch


def _batched_files(pairs: Iterable[tuple[str, bytes]]) -> Iterator[Event]:
    """Zone files in batches of at most BATCH files or BATCH_BYTES bytes: a name's zone file may be
    40 KiB (registrars list their subdomains in them), and a batch is held whole, twice, in flight."""
    batch: list[tuple[str, bytes]] = []
    size = 0
    for pair in pairs:
        batch.append(pair)
        size += len(pair[1])
        if len(batch) >= BATCH or size >= BATCH_BYTES:
            yield "rows", "zonefiles", batch
            batch, size = [], 0
    if batch:
        yield "rows", "zonefiles", batch


def _from_process(files: ExportFiles, on_bytes: Callable[[int], None] | None) -> Generator[Event, None, None]:
    channel, (reader,) = spawned.start(_read_into, [(files, on_bytes is not None)], ["bns-import-reader"],
                                       QUEUED_EVENTS)
    finished: set[int] = set()
    try:
        for kind, payload, read_bytes in spawned.receive(channel, [reader], finished):
            if read_bytes and on_bytes is not None:
                on_bytes(read_bytes)
            if kind == "event":
                yield payload
            elif kind == "error":
                raise payload
            else:  # "done"
                finished.add(0)
    except spawned.HelperDied as died:
        raise SnapshotError(f"the process reading {files.origin} exited (code {died.exitcode}) "
                            "before the end of the export") from None
    finally:
        spawned.stop([reader], channel)


def _read_into(files: ExportFiles, count_bytes: bool, channel: Any, parent: int) -> None:
    """The reading process: every event into `channel`, with the bytes read since the last one."""
    spawned.become_helper(parent)
    pending = [0]

    def counted(size: int) -> None:
        pending[0] += size

    def send(kind: str, payload: object) -> None:
        spawned.send(channel, (kind, payload, pending[0]))
        pending[0] = 0

    try:
        for event in read_events(files, counted if count_bytes else None):
            send("event", event)
    except Exception as exc:  # noqa: BLE001 - raised again in the importer's process
        send("error", _portable(exc))
        return
    send("done", None)


def _portable(exc: Exception) -> Exception:
    """`exc` if it survives pickling (as the queue will do), else a SnapshotError saying the same."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any failure to round-trip
        return SnapshotError(str(exc))
    return exc
