"""Keeping the gateway's answer store in step with the index, for `serve`.

At start the current store is used if it speaks for the index as it is; a store a few
changes behind is caught up first. After that, each change the feed publishes is applied
to the store in a worker thread (`update.py`: only the bindings it touched), while the
serving thread keeps answering from the store as it was; then the serving thread renews
its read transaction and drops the cached answers of those names (`on_applied`). The
store is compiled whole only when it is missing, of another format, or further behind
than the change log reaches (and then the slow path answers until the new one is in).
One job runs at a time; a change that arrives meanwhile is picked up right after.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool

from bns_resolver.answers.compile import CompileCancelled, CompileReport, compile_store
from bns_resolver.answers.parallel import CompileWorkerError
from bns_resolver.answers.respond import StoreAnswerer
from bns_resolver.answers.store import CompiledStore, index_state, open_current
from bns_resolver.answers.update import UpdateResult, update_store
from bns_resolver.errors import IndexUnavailable
from bns_resolver.index.lookup import IndexReader

log = logging.getLogger(__name__)

RETRY_SECONDS = 60.0  # after a failed compile or update (disk full, ...), before the next try

Applied = Callable[[frozenset[str]], None]  # names whose store entries were rewritten


class StoreKeeper:
    def __init__(self, engine: Engine, root: Path, answerer: StoreAnswerer, reactor: Any,
                 on_applied: Applied | None = None, compile_processes: int = 1) -> None:
        self.engine = engine
        self.compile_processes = compile_processes  # a full compile's producers (answers/parallel.py)
        self._stopping = threading.Event()  # set by stop(): a compile under way ends early
        self.root = root
        self.answerer = answerer
        self.reactor = reactor
        self.on_applied = on_applied
        self.store: CompiledStore | None = None  # the store this server owns, attached or catching up
        self.busy: defer.Deferred[Any] | None = None
        self._again = False
        self._retry_at = 0.0
        self._behind = False  # an update failed: retried by the periodic check, not only on a change

    def open_existing(self) -> bool:
        """Take the current store; serve from it at once if it speaks for the index as it is."""
        store = open_current(self.root)
        if store is None:
            return False
        if store.state() is None:
            store.close()  # another format: compiled again on the first check
            return False
        self.store = store
        if not store.matches(index_state(IndexReader(self.engine))):
            log.info("answer store %s is behind the index (change %s): catching up", store.path.name, store.meta["seq"])
            return False
        self.answerer.attach(store)
        log.info("answer store %s matches the index (change %s)", store.path.name, store.meta["seq"])
        return True

    @property
    def needs_work(self) -> bool:
        """Whether a compile, a catch-up or a retry is due without any new change."""
        return self.store is None or not self.answerer.active or self._behind

    def check(self) -> defer.Deferred[Any] | None:
        """Bring the store up to the index (an update, or a compile when it must); one job at a time."""
        if self.busy is not None:
            self._again = True
            return self.busy
        if self._stopping.is_set():
            return None
        if self.reactor.seconds() < self._retry_at or self.answerer.authority.not_ready():
            return None  # catching up with the chain: the store would not be used, and goes stale per block
        self._again = False
        if self.store is None:
            return self._start(self._compile, self._compiled)
        return self._start(self._update, self._updated)

    def _start(self, job: Callable[[], Any], done: Callable[[Any], None]) -> defer.Deferred[Any]:
        self.busy = deferToThreadPool(self.reactor, self.reactor.getThreadPool(), job)
        self.busy.addCallbacks(done, self._failed)
        self.busy.addBoth(self._finished)
        return self.busy

    def _finished(self, result: Any) -> Any:
        self.busy = None
        if self._again:
            self.check()
        return result

    def _update(self) -> UpdateResult:
        assert self.store is not None
        return update_store(IndexReader(self.engine), self.store)  # a reader of its own: one per thread

    def _updated(self, result: UpdateResult) -> None:
        store = self.store
        assert store is not None
        if result.full_reason:
            log.info("answer store compiled again: %s", result.full_reason)
            self.answerer.index_changed()  # the old store no longer speaks for the index
            store.close()
            self.store = None
            self._again = True
            return
        self._behind = False
        if result.state is not None:
            store.renew()
        self.answerer.attach(store)  # its `get` is the renewed transaction's
        if result.bindings and self.on_applied is not None:
            self.on_applied(result.bindings)  # answers cached from the old entries meanwhile

    def _compile(self) -> tuple[Path, CompileReport]:
        try:
            return compile_store(IndexReader(self.engine), self.root, processes=self.compile_processes,
                                 cancelled=self._stopping.is_set)
        except (CompileCancelled, CompileWorkerError) as exc:
            # A service manager's SIGTERM reaches the producers too: their deaths are the stop's.
            if not (isinstance(exc, CompileCancelled) or self._stopping.is_set()):
                raise
            # Said here, in the compile's thread: the reactor may be gone before it hears of it.
            log.info("answer store compile stopped: the server is stopping")
            raise CompileCancelled("the server is stopping") from None

    def _compiled(self, result: tuple[Path, CompileReport]) -> None:
        # Attached even if the index moved on meanwhile (or the database went away since): it is
        # the index as the compile began, and the update that follows brings it up to date.
        path, report = result
        store = CompiledStore(path)
        previous = self.answerer.attach(store)
        if previous is not None:
            previous.close()
        self.store = store
        self._again = True  # whatever changed during the compile is applied next
        if self.on_applied is not None:
            self.on_applied(frozenset())
        log.info("answer store in use: %s", report.summary())

    def stop(self) -> None:
        """The server is stopping: a compile under way gives up (its build is removed; the thread
        pool's shutdown does not wait for a whole compile), and no new job starts."""
        self._stopping.set()

    def _failed(self, failure: Any) -> None:
        if failure.check(CompileCancelled):
            return  # logged by _compile
        # The store keeps serving what it held (e.g. while the database is away); the periodic
        # check tries again after the pause.
        self._behind = True
        self._retry_at = self.reactor.seconds() + RETRY_SECONDS
        if failure.check(IndexUnavailable, SQLAlchemyError):
            log.error("updating the answer store failed, the index database is unavailable (retrying in %d s): %s",
                      RETRY_SECONDS, str(failure.value).splitlines()[0])
            return
        log.error("updating the answer store failed; the slow path answers meanwhile: %s", failure.getTraceback())

    def close(self) -> None:
        if self.answerer.store is not None:
            self.answerer.index_changed()
            self.answerer.store = None
        if self.store is not None:
            self.store.close()
            self.store = None
