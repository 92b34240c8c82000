"""Keeping the gateway's answer store in step with the index, for `serve`.

At start the current store is used if it was compiled from the index as it is;
otherwise (and after every index change, until incremental updates exist) a new
one is compiled in a worker thread while the slow path answers, then swapped in.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool

from bns_resolver.answers.compile import CompileReport, compile_store
from bns_resolver.answers.respond import StoreAnswerer
from bns_resolver.answers.store import CompiledStore, index_state, open_fresh
from bns_resolver.errors import IndexUnavailable
from bns_resolver.index.lookup import IndexReader

log = logging.getLogger(__name__)

RETRY_SECONDS = 60.0  # after a failed compile (disk full, ...), before the next try


class StoreKeeper:
    def __init__(self, engine: Engine, root: Path, answerer: StoreAnswerer, reactor: Any) -> None:
        self.engine = engine
        self.root = root
        self.answerer = answerer
        self.reactor = reactor
        self.compiling: defer.Deferred[Any] | None = None
        self._retry_at = 0.0

    def open_existing(self) -> bool:
        """Attach the current store if it matches the index (a start-up without compiling)."""
        store = open_fresh(self.root, IndexReader(self.engine))
        if store is None:
            return False
        self.answerer.attach(store)
        log.info("answer store %s matches the index (generation %s)", store.path.name, store.meta["generation"])
        return True

    def check(self) -> defer.Deferred[Any] | None:
        """Compile when the store does not speak for the index and no compile is running."""
        if self.answerer.active or self.compiling is not None or self.reactor.seconds() < self._retry_at:
            return self.compiling
        if self.answerer.authority.not_ready():
            return None  # catching up with the chain: the store would not be used, and goes stale per block
        changes = self.answerer.changes
        self.compiling = deferToThreadPool(self.reactor, self.reactor.getThreadPool(), self._compile)
        self.compiling.addCallbacks(self._compiled, self._failed, callbackArgs=(changes,))
        return self.compiling

    def _compile(self) -> tuple[Path, CompileReport]:
        return compile_store(IndexReader(self.engine), self.root)  # a reader of its own: one per thread

    def _compiled(self, result: tuple[Path, CompileReport], changes: int) -> None:
        self.compiling = None
        path, report = result
        if self.answerer.changes != changes:
            log.info("the index changed while compiling; compiling again")
            return  # the next check() starts over
        store = CompiledStore(path)
        if not self._speaks_for_index(store):
            store.close()
            return
        previous = self.answerer.attach(store)
        if previous is not None:
            previous.close()
        log.info("answer store in use: %s", report.summary())

    def _speaks_for_index(self, store: CompiledStore) -> bool:
        """Whether the new store is the index's current state.

        If the database went away while compiling, the store still holds the index as it was when
        the compile began, with no change seen since: serving it beats the slow path, which cannot
        answer without the database; the index check drops it once the database is back, if the
        index moved on meanwhile.
        """
        try:
            return store.matches(index_state(IndexReader(self.engine)))
        except (IndexUnavailable, SQLAlchemyError) as exc:
            log.warning("the index database went away while compiling; serving the new answer store: %s",
                        str(exc).splitlines()[0])
            return True

    def _failed(self, failure: Any) -> None:
        self.compiling = None
        self._retry_at = self.reactor.seconds() + RETRY_SECONDS
        if failure.check(IndexUnavailable, SQLAlchemyError):
            log.error("compiling the answer store failed, the index database is unavailable (retrying in %d s): %s",
                      RETRY_SECONDS, str(failure.value).splitlines()[0])
            return
        log.error("compiling the answer store failed; the slow path answers meanwhile: %s", failure.getTraceback())

    def close(self) -> None:
        if self.answerer.store is not None:
            self.answerer.index_changed()
            self.answerer.store.close()
            self.answerer.store = None
