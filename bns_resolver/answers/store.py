"""Opening a compiled answer store for reading, and telling whether it matches the index.

A store is an LMDB environment written whole by a compile and then kept current by
incremental updates (`update.py`) from a worker thread of the one server that owns it.
The serving thread keeps one read transaction open, so a lookup is one `get` on
memory-mapped pages; after each update it renews that transaction (`renew`) to see the
new entries. LMDB's reader table (its lock file) is what keeps an update from reusing
pages the open read transaction still looks at.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb

from bns_resolver.answers.format import FORMAT_VERSION, META_KEY
from bns_resolver.index.lookup import IndexReader

log = logging.getLogger(__name__)

STORE_DIR = "answers"  # under the data dir
CURRENT = "current"  # symlink to the store in use
STORE_MAP_SIZE = (1 << 38) if sys.maxsize > 2**32 else (1 << 30)  # address space, not memory


@dataclass(frozen=True)
class IndexState:
    """What a store was compiled from; the store is stale once the index says otherwise."""

    seq: int  # the change feed's number the store speaks for (index/changes.py)
    height: int | None
    namespaces: tuple[str, ...]


def index_state(reader: IndexReader) -> IndexState:
    return IndexState(reader.change_seq(), reader.indexed_height(), tuple(sorted(reader.namespace_ids())))


class CompiledStore:
    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        if not (path / "data.mdb").exists():
            raise lmdb.Error(f"{path} has no data.mdb: not an answer store")
        # Address space only (the file grows as updates need); writable, for update.py's thread,
        # unless another process owns the updates (a DNS worker follows `serve`'s store).
        self.env = lmdb.open(str(path), readahead=False, map_size=STORE_MAP_SIZE, readonly=readonly)
        self._txn = self.env.begin()
        self.get = self._txn.get  # the hot path calls this directly
        self.meta: dict[str, Any] = {}
        self._read_meta()

    def _read_meta(self) -> None:
        raw = self.get(META_KEY)
        if raw is None:
            self.close()
            raise lmdb.Error(f"{self.path} has no metadata: not a finished answer store")
        self.meta = json.loads(raw)

    def renew(self) -> None:
        """See what updates committed since (from the serving thread; re-read `get` after)."""
        self._txn.abort()
        self._txn = self.env.begin()
        self.get = self._txn.get
        self._read_meta()

    def state(self) -> IndexState | None:
        if self.meta.get("format") != FORMAT_VERSION:
            return None
        return IndexState(self.meta["seq"], self.meta["height"], tuple(self.meta["namespaces"]))

    def matches(self, state: IndexState) -> bool:
        return self.state() == state

    def close(self) -> None:
        self._txn.abort()
        self.env.close()


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
