"""One DNS worker process of `[dns] workers = N` (started by `serve`, see workers.py).

It answers DNS on the socket copies it inherited with the same gateway `serve` runs (answer
store, forwarder with its own cache, namespace policies and their TLD probes, rate limits,
access list, query log), and nothing else: no chain sync, no zone-file fetching, no web
gateway, no status endpoint, no writes to the index. It follows the index through the change
feed as a fleet member does, and `serve`'s answer store read-only (answers/follower.py).

While a bitcoind is configured, whether names may be answered yet is `serve`'s verdict: the
sync runs there, and `serve` records its verdict in the index's sync state (`NOT_READY_KEY`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from sqlalchemy import Engine

from bns_resolver.answers.follower import StoreFollower
from bns_resolver.answers.respond import StoreAnswerer
from bns_resolver.answers.store import store_root
from bns_resolver.config import Settings
from bns_resolver.dns.authority import BnsAuthority
from bns_resolver.dns.invalidation import CacheInvalidation
from bns_resolver.dns.querylog import QueryLog
from bns_resolver.dns.reuseport import adopt
from bns_resolver.dns.server import listen
from bns_resolver.dns.zones import ZoneCache
from bns_resolver.index.changes import IndexEvents, IndexUpdate
from bns_resolver.index.lookup import IndexReader
from bns_resolver.periodic import every
from bns_resolver.service import INDEX_POLL_SECONDS, NOT_READY_KEY, build_gateway, build_policy, process_tcp_caps
from bns_resolver.tld_probe import TldProber
from bns_resolver.workers import WorkerBrief

log = logging.getLogger(__name__)

CATCHING_UP = "the index has not caught up with the chain yet"


class DnsWorker:
    def __init__(self, settings: Settings, reactor: Any, engine: Engine, brief: WorkerBrief) -> None:
        self.settings, self.reactor, self.engine, self.brief = settings, reactor, engine, brief
        reader = IndexReader(engine)
        self.events = IndexEvents(engine)
        self.not_ready: str | None = self._serve_verdict()
        authority = BnsAuthority(reader, ZoneCache(reader), ready=lambda: self.not_ready)
        policy = build_policy(settings)
        answerer = StoreAnswerer(authority, policy) if settings.answer_store else None
        self.gateway = build_gateway(settings, reactor, authority, policy, answerer)
        self.follower = None if answerer is None else StoreFollower(
            store_root(settings.data_dir), answerer, engine, all_changed=self.gateway.index_changed,
            names_changed=lambda names, moved: self.gateway.names_changed(names, height_moved=moved))
        self.prober = TldProber(self.gateway, reactor, on_round=lambda: None)
        self.ports: list[Any] = []
        self.invalidation = CacheInvalidation(self.gateway, self.not_ready)
        self.events.subscribe(self._index_moved)

    def _serve_verdict(self) -> str | None:
        if not self.settings.chain.bitcoind:
            return None
        recorded = IndexReader(self.engine).sync_state().get(NOT_READY_KEY)
        return CATCHING_UP if recorded is None else recorded or None

    def start(self) -> None:
        query_log = QueryLog(self.settings.query_log_lines_per_second) if self.settings.query_log else None
        tcp_limits, limits = process_tcp_caps(self.settings), self.settings.limits
        for listener in self.brief.listeners:
            copy = adopt(listener.host, listener.port, listener.udp_fd, listener.tcp_fd)
            view = self.gateway.view_with_web_address(listener.web_address)
            self.ports.extend(listen(view, copy.host, copy.port, self.reactor, query_log=query_log,
                                     tcp_limits=tcp_limits, rrl_rate=limits.responses_per_second,
                                     rrl_slip=limits.slip, bound=(copy.udp, copy.tcp)))
            copy.tcp.close()  # the reactor serves its own duplicate
        self.follow()
        every(INDEX_POLL_SECONDS, self.follow, self.reactor)
        every(self.settings.tld_probe_interval, self.prober.probe_namespaces, self.reactor)
        log.info("DNS worker %d of %d (pid %d) serving %s", self.brief.number, self.brief.count - 1, os.getpid(),
                 ", ".join(f"{listener.host}:{listener.port}" for listener in self.brief.listeners))

    def follow(self) -> None:
        """The index's change feed, then serve's answer store (which follows the same feed there)."""
        self.events.poll()
        if self.follower is not None:
            self.follower.poll()

    def _index_moved(self, update: IndexUpdate) -> None:
        """serve's verdict as it recorded it (workers do not sync), then the caches and the store."""
        self.not_ready = self._serve_verdict()
        self.invalidation.apply(update, self.not_ready)
        if not update.changes.complete and self.follower is not None:
            self.follower.require(update.changes.seq)  # no store older than this import is served

    def stop(self) -> Any:
        from twisted.internet import defer

        if self.follower is not None:
            self.follower.close()
        return defer.gatherResults([defer.maybeDeferred(port.stopListening) for port in self.ports])


def watch_parent(reactor: Any, fd: int = 0) -> None:
    """Stop when serve's end of the brief pipe closes: serve has exited, however it ended."""

    class ParentPipe:
        def fileno(self) -> int:
            return fd

        def logPrefix(self) -> str:  # noqa: N802 - Twisted's interface name
            return "serve-pipe"

        def doRead(self) -> None:  # noqa: N802
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                reactor.removeReader(self)
                self.connectionLost()

        def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
            # epoll reports a closed pipe as a hang-up, which the reactor turns into this call.
            log.info("serve has exited: this DNS worker stops too")
            reactor.stop()

    os.set_blocking(fd, False)
    reactor.addReader(ParentPipe())
