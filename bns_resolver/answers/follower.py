"""Following an answer store another process keeps: a DNS worker reads `serve`'s store.

`serve` owns the store (keeper.py): it compiles it, points `current` at it and updates it in
place. A worker opens the same LMDB environment read-only. A committed update is visible to a
read transaction begun after it, so each poll reads the store's metadata in a short transaction
of its own and, when the sequence number moved, renews the serving transaction and drops the
cached answers of the names changed in between (the index's change log says which). A compile
replaces the store whole: `current` then points elsewhere, and the worker opens the new one and
drops every cached BNS answer. Polls are cheap: a symlink read and one key lookup.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import lmdb
from sqlalchemy import Engine

from bns_resolver.answers.format import META_KEY
from bns_resolver.answers.respond import StoreAnswerer
from bns_resolver.answers.store import CURRENT, CompiledStore
from bns_resolver.answers.update import affected_bindings
from bns_resolver.index.changes import changes_since

log = logging.getLogger(__name__)

NamesChanged = Callable[[set[str], bool], None]  # bindings whose entries changed; whether the height moved


class StoreFollower:
    def __init__(self, root: Path, answerer: StoreAnswerer, engine: Engine, *,
                 names_changed: NamesChanged, all_changed: Callable[[], None]) -> None:
        self.root = root
        self.answerer = answerer
        self.engine = engine
        self.names_changed = names_changed
        self.all_changed = all_changed
        self.store: CompiledStore | None = None
        self.wanted_seq = 0  # the store is served once it speaks for at least this change

    def require(self, seq: int) -> None:
        """The index changed as a whole up to `seq`: serve no store older than that."""
        self.wanted_seq = max(self.wanted_seq, seq)

    def poll(self) -> None:
        target = self._current()
        if target is None:
            return  # none compiled yet: the slow path answers
        if self.store is None or target != self.store.path:
            self._switch(target)
        elif self._stored_seq(self.store) != self.store.meta.get("seq"):
            self._renew(self.store)
        self._attach_when_current()

    def _current(self) -> Path | None:
        link = self.root / CURRENT
        try:
            return link.resolve(strict=True)
        except OSError:
            return None

    def _switch(self, target: Path) -> None:
        """A compile replaced the store: every cached BNS answer may be stale."""
        try:
            store = CompiledStore(target, readonly=True)
        except (lmdb.Error, OSError, ValueError) as exc:
            log.warning("answer store at %s cannot be read yet (%s)", target, exc)
            return
        if store.state() is None:
            store.close()  # another format: `serve` compiles it again
            return
        self.answerer.index_changed()  # nothing answers from the old one once it is closed below
        self.all_changed()
        previous, self.store = self.store, store
        if previous is not None:
            if self.answerer.store is previous:
                self.answerer.store = None
            previous.close()
        log.info("following answer store %s (change %s)", target.name, store.meta["seq"])

    @staticmethod
    def _stored_seq(store: CompiledStore) -> object:
        with store.env.begin() as txn:
            raw = txn.get(META_KEY)
        return json.loads(raw).get("seq") if raw is not None else None

    def _renew(self, store: CompiledStore) -> None:
        before = store.meta
        store.renew()
        after = store.meta
        with self.engine.connect() as conn:
            changes = changes_since(conn, int(before["seq"]), until=int(after["seq"]))
        if changes is not None and not changes.complete:
            self.all_changed()
        elif changes is not None:
            self.names_changed(affected_bindings(changes.names), before.get("height") != after.get("height"))
        if self.answerer.store is store and self.answerer.active:
            self.answerer.attach(store)  # the renewed transaction's `get`

    def _attach_when_current(self) -> None:
        store = self.store
        if store is None or self.answerer.active or int(store.meta["seq"]) < self.wanted_seq:
            return
        self.answerer.attach(store)

    def close(self) -> None:
        self.answerer.index_changed()
        self.answerer.store = None
        if self.store is not None:
            self.store.close()
            self.store = None
