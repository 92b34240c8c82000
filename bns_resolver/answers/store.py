"""Opening a compiled answer store for reading, and telling whether it matches the index.

A store is a finished LMDB environment that nothing writes to again (a newer compile
writes a new one), so it is opened read-only without LMDB's lock file, and one read
transaction is kept for its lifetime: a lookup is one `get` on memory-mapped pages.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb

from bns_resolver.answers.format import FORMAT_VERSION, META_KEY
from bns_resolver.index.lookup import IndexReader

log = logging.getLogger(__name__)

STORE_DIR = "answers"  # under the data dir
CURRENT = "current"  # symlink to the store in use


@dataclass(frozen=True)
class IndexState:
    """What a store was compiled from; the store is stale once the index says otherwise."""

    generation: str
    height: int | None
    namespaces: tuple[str, ...]


def index_state(reader: IndexReader) -> IndexState:
    generation = reader.sync_state().get("generation", "")
    return IndexState(generation, reader.indexed_height(), tuple(sorted(reader.namespace_ids())))


class CompiledStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        data = path / "data.mdb"
        self._env = lmdb.open(str(path), readonly=True, lock=False, readahead=False,
                              map_size=max(os.path.getsize(data), 1 << 20))
        self._txn = self._env.begin()
        self.get = self._txn.get  # the hot path calls this directly
        raw = self.get(META_KEY)
        if raw is None:
            self.close()
            raise lmdb.Error(f"{path} has no metadata: not a finished answer store")
        self.meta: dict[str, Any] = json.loads(raw)

    def state(self) -> IndexState | None:
        if self.meta.get("format") != FORMAT_VERSION:
            return None
        return IndexState(self.meta["generation"], self.meta["height"], tuple(self.meta["namespaces"]))

    def matches(self, state: IndexState) -> bool:
        return self.state() == state

    def close(self) -> None:
        self._txn.abort()
        self._env.close()


def store_root(data_dir: Path) -> Path:
    return data_dir / STORE_DIR


def open_current(root: Path) -> CompiledStore | None:
    """The store `current` points at, or None when there is none (or it cannot be read)."""
    link = root / CURRENT
    if not link.exists():
        return None
    try:
        return CompiledStore(link.resolve())
    except (lmdb.Error, OSError, ValueError) as exc:
        log.warning("answer store at %s cannot be read (%s); it will be compiled again", link, exc)
        return None


def open_fresh(root: Path, reader: IndexReader) -> CompiledStore | None:
    """The current store if it was compiled from the index as it is now, else None."""
    store = open_current(root)
    if store is not None and not store.matches(index_state(reader)):
        store.close()
        return None
    return store
