"""A compile's entries written into LMDB in key order, through sorted runs on disk.

The index hands out bindings in its own order (subdomains by name text), and each binding's
owner names land all over the store's key space (a wire key starts with its first label's
length). Put in that order, LMDB splits pages everywhere, leaves a tree of half-full pages
and writes most of them again at each commit: at 2.2 M subdomains that was about 11 s of
system time. Appended in key order (MDB_APPEND), each page is filled once and written once.

Entries are sorted in memory a run at a time, each run spilled to a file in chunks, and
the runs merged. The merge moves a whole stretch of one run per step (found by bisection),
so input that is already in order within runs (as the index's is) costs a few steps per
run and key family, not one per entry. A key given twice keeps the value given last, as
plain puts in the given order would.
"""

from __future__ import annotations

import heapq
import marshal
import shutil
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import lmdb

Item = tuple[bytes, bytes]  # store key, store value
Chunk = tuple[list[bytes], list[bytes]]  # keys in order, their values

RUN_ENTRIES = 250_000  # sorted in memory at once: about 80 MB of entries at 2.2 M subdomains
CHUNK_ENTRIES = 8_192  # read back per run at a time while merging
TXN_ENTRIES = 500_000  # appended pages are written once, so large transactions cost no rewrites


class KeyOrderError(RuntimeError):
    """LMDB refused an append: the merge produced keys out of order (a bug, never bad input)."""


def write_in_key_order(env: lmdb.Environment, bindings: Iterable[list[Item]], spill_dir: Path,
                       run_entries: int | None = None) -> None:
    """Every binding's entries appended to an empty `env` in key order; `spill_dir` holds the runs
    while they are merged and is removed after."""
    spill_dir.mkdir()
    try:
        runs = _spill_runs(bindings, spill_dir, run_entries or RUN_ENTRIES)
        _append(env, _merged(runs))
    finally:
        shutil.rmtree(spill_dir, ignore_errors=True)


def _spill_runs(bindings: Iterable[list[Item]], spill_dir: Path, run_entries: int) -> list[Path]:
    runs: list[Path] = []
    batch: list[Item] = []
    for items in bindings:
        batch += items
        if len(batch) >= run_entries:
            runs.append(_write_run(batch, spill_dir / f"run-{len(runs)}"))
            batch = []
    if batch or not runs:
        runs.append(_write_run(batch, spill_dir / f"run-{len(runs)}"))
    return runs


def _write_run(batch: list[Item], path: Path) -> Path:
    ordered = sorted(dict(batch).items())  # dict: the last value of a key given twice; keys unique
    with path.open("wb") as out:
        for start in range(0, len(ordered), CHUNK_ENTRIES):
            part = ordered[start:start + CHUNK_ENTRIES]
            marshal.dump(([key for key, _ in part], [value for _, value in part]), out)
    return path


def _chunks(path: Path) -> Iterator[Chunk]:
    with path.open("rb") as run:
        while chunk := _next_chunk(run):
            yield chunk


def _next_chunk(run: BinaryIO) -> Chunk | None:
    try:
        keys, values = marshal.load(run)
    except EOFError:
        return None
    return keys, values


class _Cursor:
    """A position in one run: its current chunk and the index of its next entry there."""

    def __init__(self, rank: int, chunks: Iterator[Chunk]) -> None:
        self.rank, self._chunks = rank, chunks
        self.keys: list[bytes] = []
        self.values: list[bytes] = []
        self.at = 0

    def advance(self) -> bool:
        """Moves onto the next chunk if this one is used up; False once the run is."""
        while self.at >= len(self.keys):
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            (self.keys, self.values), self.at = chunk, 0
        return True


def _merged(runs: list[Path]) -> Iterator[Iterable[Item]]:
    """Stretches of entries in key order; of equal keys only the latest run's."""
    # Heap order: key, then later runs first, so a key in several runs is taken from the latest.
    heap: list[tuple[bytes, int, _Cursor]] = []
    for rank, path in enumerate(runs):
        cursor = _Cursor(rank, _chunks(path))
        if cursor.advance():
            heap.append((cursor.keys[0], -rank, cursor))
    heapq.heapify(heap)
    last: bytes | None = None
    while heap:
        _, _, cursor = heapq.heappop(heap)
        start = cursor.at
        if cursor.keys[start] == last:
            start += 1  # an earlier run's value of a key already written
        else:
            bound = heap[0][0] if heap else None
            end = len(cursor.keys) if bound is None else max(bisect_left(cursor.keys, bound, start), start + 1)
            yield zip(cursor.keys[start:end], cursor.values[start:end])
            last, start = cursor.keys[end - 1], end
        cursor.at = start
        if cursor.advance():
            heapq.heappush(heap, (cursor.keys[cursor.at], -cursor.rank, cursor))


def _append(env: lmdb.Environment, stretches: Iterator[Iterable[Item]]) -> None:
    txn = env.begin(write=True)
    try:
        cursor, pending = txn.cursor(), 0
        for stretch in stretches:
            consumed, added = cursor.putmulti(stretch, append=True)
            if consumed != added:
                raise KeyOrderError("answer store entries reached LMDB out of key order")
            pending += added
            if pending >= TXN_ENTRIES:
                txn.commit()
                txn = env.begin(write=True)
                cursor, pending = txn.cursor(), 0
        txn.commit()
    except BaseException:
        txn.abort()
        raise
