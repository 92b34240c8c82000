"""Wiring for `serve`: index, authority, forwarder and gateway, plus the periodic jobs."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from twisted.internet import defer, task

from bns_resolver.answers.keeper import StoreKeeper
from bns_resolver.answers.respond import StoreAnswerer
from bns_resolver.answers.store import store_root
from bns_resolver.config import Settings, effective_upstreams
from bns_resolver.dns.access import AccessList
from bns_resolver.dns.authority import BnsAuthority
from bns_resolver.dns.forwarder import Forwarder
from bns_resolver.dns.gateway import Gateway
from bns_resolver.dns.invalidation import CacheInvalidation
from bns_resolver.dns.policy import Mode, NamespacePolicy
from bns_resolver.dns.querylog import QueryLog
from bns_resolver.dns.reuseport import ListenCopy, bind_copies
from bns_resolver.dns.server import TcpConnectionLimits, listen
from bns_resolver.dns.zones import ZoneCache
from bns_resolver.index.changes import IndexEvents, IndexUpdate, save_state_noted
from bns_resolver.index.db import open_index
from bns_resolver.index.lookup import IndexReader
from bns_resolver.index.snapshot import EMBEDDED_DIR, ExportFiles, import_export
from bns_resolver.index.sync_state import save_state
from bns_resolver.periodic import every
from bns_resolver.runtime import remove_runtime, write_runtime
from bns_resolver.tld_probe import TldProber
from bns_resolver.web.listeners import bind_web, web_address_for, web_listen_addresses
from bns_resolver.web.metrics import MetricsSource
from bns_resolver.workers import WorkerPool

if TYPE_CHECKING:  # imported at run time only when a chain or zone-file sources are configured
    from twisted.python.failure import Failure

    from bns_resolver.chain.virtualchain import SyncResult
    from bns_resolver.chainsync import ChainSync
    from bns_resolver.zonefiles.fetcher import FetchService

log = logging.getLogger(__name__)

# With DNS workers and a chain: serve's verdict on whether names may be answered yet, for the
# workers (which do not sync). "" is ready; a missing key is "not caught up yet".
NOT_READY_KEY = "dns_not_ready"
# How often the change feed is read: one indexed query, so a fleet of servers on one database
# follows a commit within about this long.
INDEX_POLL_SECONDS = 0.5


def open_data(settings: Settings) -> Engine:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_index(settings.database_url)


def ensure_embedded_snapshot(engine: Engine, settings: Settings) -> bool:
    """Load the bundled real snapshot into an empty index that has no chain to sync from."""
    if settings.chain.bitcoind or not IndexReader(engine).is_empty():
        return False
    report = import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    log.info("empty index: loaded the embedded snapshot (%s)", report.summary())
    return True


def build_policy(settings: Settings) -> NamespacePolicy:
    modes = {ns: Mode(mode.value) for ns, mode in settings.namespace_modes.items()}
    return NamespacePolicy(default_mode=Mode(settings.default_mode.value), modes=modes,
                           configured_shared=dict(settings.icann_tlds))


def build_gateway(settings: Settings, reactor: Any, authority: BnsAuthority, policy: NamespacePolicy,
                  answerer: StoreAnswerer | None, *,
                  known_namespaces: Callable[[], frozenset[str]] = frozenset) -> Gateway:
    """The DNS gateway as `serve` and each of its DNS workers run it: store, forwarder, policies, limits."""
    limits = settings.limits
    forwarder = Forwarder(list(effective_upstreams(settings)), reactor=reactor,
                          attempt_timeout=limits.upstream_attempt_timeout, deadline=limits.upstream_deadline)
    return Gateway(authority, forwarder, policy=policy, access=AccessList(settings.allow),
                   cache_entries=settings.cache_entries, doh_canary=settings.doh_canary,
                   bns_namespaces=known_namespaces, store=answerer, max_cache_ttl=limits.max_cache_ttl,
                   stale_for=limits.serve_stale_for, unknown_name_fetch_rate=limits.unknown_name_fetches_per_second)


def process_tcp_caps(settings: Settings) -> TcpConnectionLimits:
    """One set of TCP caps for every listener of a process (descriptors are per process)."""
    return TcpConnectionLimits(settings.limits.tcp_connections, settings.limits.tcp_connections_per_client)


@dataclass
class GatewayService:
    settings: Settings
    reactor: Any
    engine: Engine
    gateway: Gateway = field(init=False)
    ports: list[Any] = field(default_factory=list)  # Twisted listening ports (zope-typed, opaque to mypy)
    events: IndexEvents = field(init=False)  # the index's change feed: height, tip, readiness, names
    _loops: list[task.LoopingCall] = field(default_factory=list)
    _stopped: bool = False  # stop() ran: the listeners are closed
    chain_sync: ChainSync | None = None  # when a bitcoind is configured
    fetch_service: FetchService | None = None  # when zone-file sources are configured
    http_port: Any = None
    web_ports: list[Any] = field(default_factory=list)
    handed_out: dict[str, str | None] = field(default_factory=dict)  # DNS listener -> synthesized address
    store_keeper: StoreKeeper | None = None  # the compiled answer store's upkeep, when it is on
    ops_ports: list[Any] = field(default_factory=list)  # [metrics] listen: /metrics, /healthz, /status.json
    started_at: float = field(default_factory=time.time)
    last_probe_at: float | None = None
    _published_verdict: str | None = None  # the readiness last recorded for the workers
    _profile_stats: Callable[[], dict[str, int]] = dict  # the web gateway's profile fetcher, once it runs
    worker_pool: WorkerPool | None = None  # [dns] workers > 1: the DNS worker processes

    def __post_init__(self) -> None:
        reader = IndexReader(self.engine)
        self.events = IndexEvents(self.engine)
        if self.settings.chain.bitcoind:
            from bns_resolver.chainsync import ChainSync

            self.chain_sync = ChainSync(self.engine, self.settings.chain)
            self.events.not_ready = "the index has not caught up with the chain yet"
        authority = BnsAuthority(reader, ZoneCache(reader), ready=lambda: self.events.not_ready)
        policy = build_policy(self.settings)
        answerer = self._answer_store(authority, policy)
        self.gateway = build_gateway(self.settings, self.reactor, authority, policy, answerer,
                                     known_namespaces=self._known_namespaces)
        self.prober = TldProber(self.gateway, self.reactor, on_round=self._record_policy)
        self.tcp_limits = process_tcp_caps(self.settings)
        self.invalidation = CacheInvalidation(self.gateway, self.events.not_ready)
        self.events.subscribe(self._index_moved)

    def _known_namespaces(self) -> frozenset[str]:
        """Namespaces the chain profile knows, for names a fresh sync has not reached yet."""
        return self.chain_sync.profile.known_namespaces if self.chain_sync is not None else frozenset()

    def _answer_store(self, authority: BnsAuthority, policy: NamespacePolicy) -> StoreAnswerer | None:
        """The compiled answer store, opened now if it matches the index (else compiled after start)."""
        if not self.settings.answer_store:
            return None
        answerer = StoreAnswerer(authority, policy)
        # Answers cached from a store entry an update then rewrote are dropped once it is in.
        # A first compile of a big index builds subdomains in one process per core: the store serves
        # sooner, and this process (the reactor's) only writes (bench/first_compile.py).
        self.store_keeper = StoreKeeper(self.engine, store_root(self.settings.data_dir), answerer, self.reactor,
                                        on_applied=lambda names: self.gateway.names_changed(names, height_moved=False),
                                        compile_processes=self.settings.store_compile_processes)
        self.store_keeper.open_existing()
        return answerer

    def start(self) -> None:
        bound_web_hosts = self._start_web() if self.settings.web.enabled else set()
        query_log = QueryLog(self.settings.query_log_lines_per_second) if self.settings.query_log else None
        processes = self.settings.dns_processes
        for host, port in self.settings.listen:
            web_address = web_address_for(host, bound_web_hosts, self.settings.web.address)
            self.handed_out[f"{host}:{port}"] = web_address
            own = self._bind_for_workers(host, port, web_address, processes) if processes > 1 else None
            self.ports.extend(listen(self.gateway.view_with_web_address(web_address), host, port, self.reactor,
                                     query_log=query_log, tcp_limits=self.tcp_limits,
                                     rrl_rate=self.settings.limits.responses_per_second,
                                     rrl_slip=self.settings.limits.slip,
                                     bound=None if own is None else (own.udp, own.tcp)))
            if own is not None:
                own.tcp.close()  # the reactor serves its own duplicate
        self._start_ops()
        self._every(INDEX_POLL_SECONDS, self.check_index)
        self._every(self.settings.tld_probe_interval, self.probe_namespaces)
        if self.chain_sync is not None:
            self._every(self.settings.chain.poll_interval, self.sync_round)
        if self.settings.zonefile_sources:
            self._start_fetching()
        if self.settings.zonefile_http:
            self._serve_zonefiles(self.settings.zonefile_http)
        self._log_startup_summary()

    def _log_startup_summary(self) -> None:
        """Log what this start serves once the index's counts are read, off the reactor's thread:
        counting 2.2 M subdomains takes a few hundred milliseconds, and DNS answers meanwhile."""
        from twisted.internet.threads import deferToThreadPool

        from bns_resolver.lookup_report import index_status

        deferred = deferToThreadPool(self.reactor, self.reactor.getThreadPool(), index_status, self.engine,
                                     self.settings, with_supply=False)
        deferred.addCallbacks(self._log_summary_lines, lambda failure: log.warning(
            "could not read the index for the start-up summary: %s", failure.getErrorMessage()))

    def _bind_for_workers(self, host: str, port: int, web_address: str | None, processes: int) -> ListenCopy:
        """SO_REUSEPORT copies of one listen address, one per DNS process; returns serve's own."""
        copies = bind_copies(host, port, processes)
        if self.worker_pool is None:
            from bns_resolver.config_render import render_settings

            self.worker_pool = WorkerPool(self.reactor, render_settings(self.settings),
                                          {n: [] for n in range(1, processes)}, [], on_exit=self._worker_exited)
        for number, copy in enumerate(copies[1:], start=1):
            self.worker_pool.copies[number].append(copy)
        self.worker_pool.web_addresses.append(web_address)
        return copies[0]

    def start_workers(self) -> None:
        """Start the DNS workers (after serve dropped its privileges: they inherit the user)."""
        if self.worker_pool is None:
            return
        if self.chain_sync is not None:
            self._published_verdict = self.events.not_ready
            self._publish_verdict(self.events.not_ready)
        self.worker_pool.start()

    def _worker_exited(self) -> None:
        # A killed worker leaves its slot in the store's reader table: free it, or updates
        # could not reuse the pages its last read transaction held.
        keeper = self.store_keeper
        if keeper is not None and keeper.store is not None:
            keeper.store.env.reader_check()

    def _publish_verdict(self, not_ready: str | None) -> None:
        """serve's readiness, where its workers read it (they do not sync)."""
        save_state_noted(self.engine, {NOT_READY_KEY: not_ready or ""})

    def _log_summary_lines(self, status: dict[str, Any]) -> None:
        if self._stopped:
            return  # the count finished after a quick stop (a forwarding loop found): its sockets are closed
        for line in self.startup_summary(status):
            log.info("%s", line)

    def startup_summary(self, status: dict[str, Any]) -> list[str]:
        """What this start serves, in a few log lines: the index (`status`, lookup_report.index_status),
        the namespaces, addresses, upstreams."""
        where = ("an imported snapshot of the BNS v1 final state (block 665750)" if status["source"] == "snapshot"
                 else f"built from {status['network']}, at block {status['height']} (chain tip {status['tip']}, "
                 f"consensus hash {status['consensus_hash']})" if status["source"] == "chain"
                 else "empty (syncing from bitcoind)" if self.chain_sync is not None else "empty")
        policy = self.gateway.policy
        namespaces = ", ".join(f"{ns} ({policy.effective_mode(ns).value}, {policy.status(ns).value})"
                               for ns in sorted(self.gateway.authority.namespaces)) or "none"
        upstreams = ", ".join(f"{h}:{p}" for h, p in self.gateway.forwarder.upstreams)
        return [
            f"index {status['database']}: {where}; {status['names']} names, {status['namespaces']} namespaces, "
            f"{status['subdomains']} subdomains, {status['zonefiles']} zone files",
            f"namespaces: {namespaces}",
            f"serving DNS on {', '.join(self.addresses())}{self._workers_summary()}; upstreams "
            + (upstreams or "none: BNS only, no forwarding ([dns] upstreams = [])")
            + ("; query log on" if self.settings.query_log else ""),
            self._web_summary(),
            f"status endpoint: {', '.join(self.ops_endpoints()) or 'off ([metrics] listen = [])'}",
        ]

    def _workers_summary(self) -> str:
        processes = self.settings.dns_processes
        return f" in {processes} processes (serve and {processes - 1} DNS workers)" if processes > 1 else ""

    def _web_summary(self) -> str:
        if not self.settings.web.enabled:
            return "web gateway off ([web] enabled = false): address-less BNS names get no address"
        if not self.web_ports:
            return "web gateway not listening: address-less BNS names get no address"
        handed = ", ".join(f"{address or 'none'} (asked on {listener})" for listener, address in self.handed_out.items())
        return f"web gateway on {', '.join(self.web_addresses())}; address-less BNS names answer {handed}"

    def _start_web(self) -> set[str]:
        """Bind the web gateway; the hosts it got decide where DNS may hand out its address."""
        from bns_resolver.profiles.fetch import ProfileFetcher
        from bns_resolver.profiles.judge import ProfileJudge
        from bns_resolver.web.names import NameDirectory
        from bns_resolver.web.site import PAGE_CACHE_SECONDS, make_gateway_site

        web = self.settings.web
        fetcher = ProfileFetcher(self.reactor, timeout=web.profile_timeout, max_bytes=web.profile_max_bytes,
                                 cache_ttl=web.profile_cache_ttl, concurrency=web.profile_concurrency,
                                 mirrors=web.profile_mirrors)
        authority = self.gateway.authority
        self._profile_stats = lambda: dict(fetcher.stats)
        site = make_gateway_site(NameDirectory(authority, IndexReader(self.engine)), ProfileJudge(fetcher),
                                 authority, access=self.gateway.access, metrics=self.metrics_source(),
                                 redirect_to_website=web.redirect_to_website,
                                 # a page never outlives the profile copy it shows
                                 page_cache_seconds=min(PAGE_CACHE_SECONDS, web.profile_cache_ttl))
        self.web_ports = bind_web(site, web_listen_addresses(self.settings), self.reactor)
        for port in self.web_ports:
            log.info("web gateway on http://%s:%s/", port.getHost().host, port.getHost().port)
        return {port.getHost().host for port in self.web_ports}

    def metrics_source(self) -> MetricsSource:
        """What /metrics, /healthz and /status.json read, at request time."""
        authority = self.gateway.authority
        return MetricsSource(dns_stats=lambda: dict(self.gateway.stats), cache_sizes=self._cache_sizes,
                             index_height=lambda: authority.height, not_ready=authority.not_ready,
                             profile_stats=lambda: self._profile_stats(), started_at=self.started_at,
                             upstream_stats=lambda: dict(self.gateway.forwarder.stats),
                             server_status=self.server_status)

    def _start_ops(self) -> None:
        """The operations endpoint on [metrics] listen, and the runtime file that lets `status` find it."""
        from bns_resolver.web.ops import make_ops_site

        site = make_ops_site(self.metrics_source(), self.gateway.access)
        for host, port in self.settings.metrics_listen:
            try:
                self.ops_ports.append(self.reactor.listenTCP(port, site, interface=host))
            except Exception as exc:  # noqa: BLE001 - Twisted's CannotListenError; DNS must still start
                log.warning("status endpoint: cannot listen on %s:%s (%s); `bns-resolver status` will only report "
                            "the database", host, port, getattr(exc, "socketError", exc))
        write_runtime(self.settings.data_dir, self.ops_endpoints())

    def ops_endpoints(self) -> list[str]:
        urls = []
        for port in self.ops_ports:
            host = port.getHost()
            urls.append(f"http://[{host.host}]:{host.port}" if ":" in host.host else f"http://{host.host}:{host.port}")
        return urls

    def server_status(self) -> dict[str, Any]:
        """The running server as `bns-resolver status` shows it (GET /status.json)."""
        from bns_resolver import __version__

        authority, policy = self.gateway.authority, self.gateway.policy
        return {
            "pid": os.getpid(), "version": __version__, "started_at": round(self.started_at, 3),
            "uptime_seconds": round(time.time() - self.started_at, 1),
            "dns": self.addresses(), "web": self.web_addresses(), "status_endpoint": self.ops_endpoints(),
            "upstreams": [f"{h}:{p}" for h, p in self.gateway.forwarder.upstreams],
            "height": authority.height, "ready": not authority.not_ready(), "not_ready": authority.not_ready(),
            "last_probe_at": self.last_probe_at,
            "namespaces": policy.describe(self.gateway.authority.namespaces),
            "queries": dict(self.gateway.stats), "query_log": self.settings.query_log,
            "dns_workers": self.worker_pool.pids() if self.worker_pool is not None else [],
        }

    def _cache_sizes(self) -> dict[str, int]:
        views = self.gateway.views()
        return {"answers": sum(len(g.answers) for g in views), "forwarded": len(self.gateway.forwarded),
                "replay": sum(len(g.replay) for g in views)}

    def web_addresses(self) -> list[str]:
        return [f"{p.getHost().host}:{p.getHost().port}" for p in self.web_ports]

    def addresses(self) -> list[str]:
        return [f"{p.getHost().host}:{p.getHost().port}" for p in self.ports[::2]]

    def stop(self) -> defer.Deferred[Any]:
        self._stopped = True
        if self.store_keeper is not None:
            self.store_keeper.stop()  # a compile under way ends at its next binding
        if self.chain_sync is not None:
            self.chain_sync.stop()  # the sync thread flushes after its current block (the shutdown flush point)
        if self.fetch_service is not None:
            self.fetch_service.stop()
        if self.http_port is not None:
            self.ports.append(self.http_port)
        self.ports.extend(self.web_ports + self.ops_ports)
        self.web_ports, self.ops_ports = [], []
        remove_runtime(self.settings.data_dir)
        if self.worker_pool is not None:
            self.worker_pool.stop()
        for loop in self._loops:
            if loop.running:
                loop.stop()
        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in self.ports])

    def _every(self, seconds: float, job: Callable[[], object]) -> None:
        self._loops.append(every(seconds, job, self.reactor))

    def check_index(self) -> None:
        """Read the change feed (a timer, and nudges from the sync and the fetcher); start the store's
        compile when it does not serve yet."""
        self.events.poll()
        if self.store_keeper is not None and self.store_keeper.needs_work:
            self.store_keeper.check()

    def _index_moved(self, update: IndexUpdate) -> None:
        """The feed's subscriber: tell the workers a new verdict, drop what changed, update the store."""
        if update.not_ready != self._published_verdict and self.worker_pool is not None and self.chain_sync:
            self._published_verdict = update.not_ready
            self._publish_verdict(update.not_ready)
        self.invalidation.apply(update, update.not_ready)
        if self.store_keeper is not None:
            self.store_keeper.check()

    def sync_round(self) -> defer.Deferred[Any]:
        """One catch-up with bitcoind in a worker thread; DNS keeps answering meanwhile."""
        from twisted.internet.threads import deferToThreadPool

        def block_done(_block: Any) -> None:
            self.reactor.callFromThread(self.check_index)  # read the feed now: answers switch per flush

        chain_sync = self.chain_sync
        if chain_sync is None:  # only scheduled when a bitcoind is configured
            return defer.succeed(None)
        chain_sync.on_block = block_done
        deferred = deferToThreadPool(self.reactor, self.reactor.getThreadPool(), chain_sync.sync)
        deferred.addCallbacks(self._synced, self._sync_failed, callbackArgs=(chain_sync,))
        return deferred

    def _synced(self, result: SyncResult, chain_sync: ChainSync) -> None:
        if result.processed and self.fetch_service is not None:
            self.fetch_service.run_soon()  # new value hashes: fetch their zone files now
        self.events.poll()  # the sync recorded the node's tip in the index: no second RPC for it
        tip, height = self.events.tip, result.last_block
        lag = tip - height if height is not None and tip is not None else None
        if result.reached_end or (lag is not None and lag <= self.settings.chain.max_lag):
            self.events.set_not_ready(None)
        else:
            self.events.set_not_ready(f"the index is at block {height}, {lag} blocks behind the chain tip {tip}")
        self.check_index()

    def _sync_failed(self, failure: Failure) -> None:
        # Keep serving what we have; a lagging index turns into SERVFAIL, never a false NXDOMAIN.
        log.error("chain sync failed (will retry): %s", failure.getErrorMessage())

    def _start_fetching(self) -> None:
        from bns_resolver.zonefiles.fetcher import FetchService, ZoneFileFetcher
        from bns_resolver.zonefiles.sources import build_sources
        from bns_resolver.zonefiles.subdomain_index import process_stored_zonefile

        first_block = subdomain_first_block(self.chain_sync)
        fetcher = ZoneFileFetcher(self.engine, build_sources(self.settings.zonefile_sources))
        self.fetch_service = FetchService(
            fetcher, reactor=self.reactor, on_stored=lambda _hash: self.check_index(),
            in_thread=lambda zonefile_hash: process_stored_zonefile(self.engine, zonefile_hash,
                                                                    first_block=first_block))
        self.fetch_service.start().addErrback(lambda f: log.error("zone-file fetching stopped: %s", f))

    def _serve_zonefiles(self, address: tuple[str, int]) -> None:
        """Feed other resolvers: verified zone files over HTTP at /v1/zonefiles/<hash>."""
        from bns_resolver.web.zonefile_server import make_zonefile_site

        host, port = address
        site = make_zonefile_site(self.engine)
        site.noisy = False
        self.http_port = self.reactor.listenTCP(port, site, interface=host)
        log.info("serving verified zone files on http://%s:%s/v1/zonefiles/<hash>", host,
                 self.http_port.getHost().port)

    def probe_namespaces(self) -> defer.Deferred[Any]:
        return self.prober.probe_namespaces()

    def _record_policy(self) -> None:
        """Leave the probe results where `bns-resolver status` can read them."""
        self.last_probe_at = round(time.time(), 3)
        described = self.gateway.policy.describe(self.gateway.authority.namespaces)
        save_state(self.engine, {"namespace_policy": json.dumps(described, sort_keys=True)})


def subdomain_first_block(chain_sync: ChainSync | None) -> int:
    """Mainnet indexes subdomains from block 478872 as the reference did; test chains from the start."""
    from bns_resolver.zonefiles.subdomains import SUBDOMAINS_FIRST_BLOCK

    if chain_sync is None or chain_sync.profile.name == "mainnet":
        return SUBDOMAINS_FIRST_BLOCK
    return 0


def drop_privileges(user: str | None, data_dir: Path) -> None:
    """After binding port 53 as root, continue as an unprivileged user who owns the data dir."""
    if not user or os.getuid() != 0:
        return
    import pwd

    entry = pwd.getpwnam(user)
    # The index (and SQLite's -wal/-shm files) were created as root; the sync and the
    # zone-file fetcher must still write them after the drop.
    for path in [data_dir, *data_dir.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    become_user(user)


def become_user(user: str | None) -> None:
    """Continue as `user` when running as root (a DNS worker: serve already owns the data dir to it)."""
    if not user or os.getuid() != 0:
        return
    import pwd

    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    log.info("dropped privileges to %s", user)
