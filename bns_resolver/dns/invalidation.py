"""What each published step of the index drops from a gateway's answer caches.

serve and its DNS workers follow the same change feed; this one subscriber decides, for both,
which remembered answers a step makes wrong: everything after an import, the touched names'
answers after a block or a zone file, and every BNS answer when the index's readiness flips
(a name answered while the index was current must turn into SERVFAIL once it lags, and a
SERVFAIL must not outlive the lag).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Protocol

from bns_resolver.answers.update import affected_bindings
from bns_resolver.index.changes import IndexUpdate

log = logging.getLogger(__name__)


class AnswerCaches(Protocol):
    """The gateway's side: what it can forget."""

    def index_changed(self) -> None: ...

    def names_changed(self, names: Collection[str], *, height_moved: bool) -> None: ...

    def readiness_changed(self) -> None: ...


class CacheInvalidation:
    """Maps index updates to the gateway's caches; remembers the readiness verdict it last saw."""

    def __init__(self, caches: AnswerCaches, not_ready: str | None) -> None:
        self.caches = caches
        self.not_ready = not_ready

    def apply(self, update: IndexUpdate, not_ready: str | None) -> None:
        """Forget what `update` changed; `not_ready` is the verdict that holds from now on."""
        changes, height_moved = update.changes, update.height != update.previous_height
        flipped, self.not_ready = not_ready != self.not_ready, not_ready
        if not changes.complete:
            self.caches.index_changed()
            log.info("index changed as a whole (change %s): answer caches dropped", changes.seq)
            return
        if changes.names or height_moved:
            self.caches.names_changed(affected_bindings(changes.names), height_moved=height_moved)
            log.debug("index change %s: %d names, height %s", changes.seq, len(changes.names), update.height)
        if flipped:
            self.caches.readiness_changed()
            log.info("index readiness changed (%s): BNS answers dropped", not_ready or "ready")
