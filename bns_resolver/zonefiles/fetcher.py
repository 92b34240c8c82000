"""Fetch every zone file the index references but does not hold.

The core is `fetch_round`, a plain synchronous function: work out which hashes
are missing and due, ask the sources in order (in parallel batches, each request
with its own timeout), verify and store what comes back, and push the rest back
with exponential backoff in `zonefile_wants`. `FetchService` at the bottom is
the thin Twisted wrapper that runs rounds off the reactor thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from bns_resolver.index import zonefiles as zonefile_rows
from bns_resolver.index.db import Connection, Engine
from bns_resolver.zonefiles.sources import SourceUnavailable, ZoneFileSource, ZoneFileWant
from bns_resolver.zonefiles.store import is_zonefile_hash, store_verified_many

log = logging.getLogger(__name__)

OnStored = Callable[[str], None]
# Work done in the worker thread for each stored file (e.g. indexing its subdomains); its result is unused.
InThread = Callable[[str], object]


@dataclass(frozen=True)
class BackoffPolicy:
    """Delay before hash attempt n+1 after n failures: base·factor^(n-1), capped."""

    base: float = 60.0
    factor: float = 2.0
    cap: float = 6 * 3600.0

    def delay(self, attempts: int) -> float:
        return min(self.cap, self.base * self.factor ** max(0, attempts - 1))


@dataclass(frozen=True)
class FetchSettings:
    timeout: float = 10.0  # per request (per batch for Atlas)
    concurrency: int = 8  # requests in flight at once
    limit: int = 5000  # hashes considered per round
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)


@dataclass
class SourceHealth:
    """Running record of one source; `score` in (0, 1], 1 = fully trusted to be tried first."""

    label: str
    score: float = 1.0
    served: int = 0
    bad_files: int = 0
    failures: int = 0

    def good(self) -> None:
        self.served += 1
        self.score += (1.0 - self.score) * 0.1

    def failed(self) -> None:
        self.failures += 1
        self.score = max(0.01, self.score * 0.7)

    def lied(self) -> None:
        # A file that fails its hash is worse than silence: the source is either
        # corrupt or hostile, so it drops behind every healthy source at once.
        self.bad_files += 1
        self.score = max(0.01, self.score * 0.25)


class SourceHealthBook:
    """Health of every source across rounds; decides the order they are tried in."""

    DEMOTE_BELOW = 0.5

    def __init__(self) -> None:
        self._health: dict[str, SourceHealth] = {}

    def __getitem__(self, label: str) -> SourceHealth:
        return self._health.setdefault(label, SourceHealth(label))

    def order(self, sources: Sequence[ZoneFileSource]) -> list[ZoneFileSource]:
        """Configured order, except that demoted sources go last (still in configured order)."""
        return sorted(sources, key=lambda source: self[source.label].score < self.DEMOTE_BELOW)

    def snapshot(self) -> dict[str, SourceHealth]:
        return {label: SourceHealth(**vars(health)) for label, health in self._health.items()}


@dataclass(frozen=True)
class Rejection:
    source: str
    zonefile_hash: str
    reason: str


@dataclass(frozen=True)
class RoundReport:
    wanted: int
    stored: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    still_missing: tuple[str, ...]


def missing_zonefiles(conn: Connection, *, now: float, limit: int) -> list[ZoneFileWant]:
    """Hashes referenced by `names.value_hash` or `zonefile_wants`, not held, and due for a try."""
    wants: dict[str, str | None] = {}
    for zonefile_hash, fqn in zonefile_rows.due_wants(conn, now=now, limit=limit):
        key = (zonefile_hash or "").lower()
        if is_zonefile_hash(key) and wants.get(key) is None:
            wants[key] = fqn
    nameless = [h for h, n in wants.items() if n is None]
    wants.update(zonefile_rows.names_in_history(conn, nameless))
    return [ZoneFileWant(h, n) for h, n in list(wants.items())[:limit]]


def fetch_round(
    engine: Engine,
    sources: Sequence[ZoneFileSource],
    *,
    settings: FetchSettings | None = None,
    health: SourceHealthBook | None = None,
    on_stored: OnStored | None = None,
    now: float | None = None,
) -> RoundReport:
    """One pass over every due, missing zone file; returns what happened."""
    settings = settings or FetchSettings()
    health = health if health is not None else SourceHealthBook()
    now = time.time() if now is None else now
    with engine.connect() as conn:
        wants = missing_zonefiles(conn, now=now, limit=settings.limit)
    state = _RoundState(engine, health, on_stored, now, {w.zonefile_hash: w for w in wants})
    with ThreadPoolExecutor(max_workers=max(1, settings.concurrency), thread_name_prefix="zonefile-fetch") as pool:
        for source in health.order(sources):
            if not state.remaining:
                break
            _ask_source(pool, source, state, settings.timeout)
    _record_failures(engine, state, settings.backoff)
    return RoundReport(
        wanted=len(wants),
        stored=tuple(state.stored),
        rejected=tuple(state.rejected),
        still_missing=tuple(sorted(state.remaining)),
    )


@dataclass
class _RoundState:
    engine: Engine
    health: SourceHealthBook
    on_stored: OnStored | None
    now: float
    remaining: dict[str, ZoneFileWant]
    stored: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


# A source whose first batches of a round all fail is skipped for the rest of the
# round: a blackholed mirror would otherwise cost one full timeout per batch.
_TRIP_AFTER_FAILURES = 2


def _ask_source(pool: ThreadPoolExecutor, source: ZoneFileSource, state: _RoundState, timeout: float) -> None:
    wants = list(state.remaining.values())
    size = max(1, source.batch_size)
    futures: dict[Future[dict[str, bytes]], list[ZoneFileWant]] = {
        pool.submit(source.fetch, wants[i : i + size], timeout=timeout): wants[i : i + size]
        for i in range(0, len(wants), size)
    }
    pending: list[tuple[str, bytes]] = []
    failures = successes = 0
    for future in as_completed(futures):
        batch = futures[future]
        if future.cancelled():
            continue
        found = _batch_result(source, future, batch, state)
        if found is None:
            failures += 1
            if failures >= _TRIP_AFTER_FAILURES and not successes:
                _trip(source, futures, state)
            continue
        successes += 1
        for want in batch:
            if want.zonefile_hash in found:
                pending.append((want.zonefile_hash, found[want.zonefile_hash]))
            else:
                state.errors.setdefault(want.zonefile_hash, f"{source.label}: not found")
        if len(pending) >= 256:
            _store_batch(source, pending, state)
            pending = []
    _store_batch(source, pending, state)


def _batch_result(
    source: ZoneFileSource, future: Future[dict[str, bytes]], batch: list[ZoneFileWant], state: _RoundState
) -> dict[str, bytes] | None:
    """The batch's files, or None (logged, counted against the source) if the source failed."""
    try:
        return future.result()
    except SourceUnavailable as exc:
        log.warning("zone-file source %s failed for %d hashes: %s", source.label, len(batch), exc)
        error = str(exc)
    except Exception as exc:  # a bug in one source must not end the round for the others
        log.exception("zone-file source %s crashed on %d hashes", source.label, len(batch))
        error = f"{source.label}: {exc!r}"
    state.health[source.label].failed()
    state.errors.update((w.zonefile_hash, error) for w in batch)
    return None


def _trip(source: ZoneFileSource, futures: dict[Future[dict[str, bytes]], list[ZoneFileWant]], state: _RoundState) -> None:
    skipped = [batch for future, batch in futures.items() if future.cancel()]
    if skipped:
        log.warning("zone-file source %s keeps failing; skipping %d batches this round", source.label, len(skipped))
    for batch in skipped:
        state.errors.update((w.zonefile_hash, f"{source.label}: skipped, source failing") for w in batch)


def _store_batch(source: ZoneFileSource, found: list[tuple[str, bytes]], state: _RoundState) -> None:
    """Verify and store in one transaction; hooks run after it commits."""
    if not found:
        return
    with state.engine.begin() as conn:
        new, failed = store_verified_many(conn, found, source.label, now=state.now)
    health = state.health[source.label]
    addressed_by_hash = getattr(source, "by_hash", True)
    for zonefile_hash, exc in failed:
        if addressed_by_hash:
            health.lied()
            log.warning("zone-file source %s served a bad file for %s: %s", source.label, zonefile_hash, exc)
        state.rejected.append(Rejection(source.label, zonefile_hash, str(exc)))
        state.errors[zonefile_hash] = f"{source.label}: {exc}"
    bad = {zonefile_hash for zonefile_hash, _ in failed}
    for zonefile_hash, _ in found:
        if zonefile_hash not in bad:
            health.good()
            state.remaining.pop(zonefile_hash, None)
    state.stored.extend(new)
    for zonefile_hash in new:
        _run_hook(state.on_stored, zonefile_hash)


def _run_hook(on_stored: InThread | None, zonefile_hash: str) -> None:
    if on_stored is None:
        return
    try:
        on_stored(zonefile_hash)
    except Exception:  # a faulty hook must not lose the rest of the round
        log.exception("on_stored hook failed for zone file %s", zonefile_hash)


def _record_failures(engine: Engine, state: _RoundState, backoff: BackoffPolicy) -> None:
    if not state.remaining:
        return
    failures = {h: state.errors.get(h, "no source has it") for h in state.remaining}
    with engine.begin() as conn:
        zonefile_rows.record_failures(conn, failures, now=state.now, delay=backoff.delay)


class ZoneFileFetcher:
    """The fetcher's long-lived state: engine, sources in order, health, settings."""

    def __init__(
        self,
        engine: Engine,
        sources: Sequence[ZoneFileSource],
        *,
        settings: FetchSettings | None = None,
    ) -> None:
        self.engine = engine
        self.sources = list(sources)
        self.settings = settings or FetchSettings()
        self.health = SourceHealthBook()

    def run_round(self, *, on_stored: OnStored | None = None, now: float | None = None) -> RoundReport:
        return fetch_round(
            self.engine, self.sources, settings=self.settings, health=self.health, on_stored=on_stored, now=now
        )


class FetchService:
    """Runs `ZoneFileFetcher.run_round` every `interval` seconds in a worker thread.

    For each stored hash, `in_thread` runs first in the worker thread (slow
    index work such as `subdomain_index.process_stored_zonefile`), then
    `on_stored` runs in the reactor thread, so it may touch the DNS cache.
    A round never overlaps the previous one (LoopingCall waits for its Deferred).
    """

    def __init__(
        self,
        fetcher: ZoneFileFetcher,
        *,
        on_stored: OnStored | None = None,
        in_thread: InThread | None = None,
        interval: float = 30.0,
        reactor: Any = None,
    ) -> None:
        from twisted.internet.task import LoopingCall

        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.fetcher = fetcher
        self.interval = interval
        self.last_report: RoundReport | None = None
        self._reactor = reactor
        self._on_stored = on_stored
        self._in_thread = in_thread
        self._round: Any = None  # the Deferred of the round under way, if any
        self._loop = LoopingCall(self._tick)
        self._loop.clock = reactor

    def start(self) -> Any:
        """Start rounds now and every `interval` s; returns the LoopingCall's Deferred."""
        return self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def run_soon(self) -> None:
        """Start a round now (say, a sync just wrote new names) unless one is under way."""
        if self._loop.running and self._round is None:
            self._tick()

    def _tick(self) -> Any:
        from twisted.internet.threads import deferToThreadPool

        if self._round is not None:
            return self._round  # never two rounds at once
        deferred = deferToThreadPool(
            self._reactor, self._reactor.getThreadPool(), self.fetcher.run_round, on_stored=self._worker_hook
        )
        self._round = deferred  # before the callbacks: with an inline pool they run at once
        deferred.addCallback(self._done)
        deferred.addErrback(self._failed)
        deferred.addBoth(self._round_over)
        return deferred

    def _round_over(self, result: Any) -> Any:
        self._round = None
        return result

    def _worker_hook(self, zonefile_hash: str) -> None:
        # Runs in the worker thread: in_thread here, on_stored handed to the reactor.
        _run_hook(self._in_thread, zonefile_hash)
        if self._on_stored is not None:
            self._reactor.callFromThread(self._on_stored, zonefile_hash)

    def _done(self, report: RoundReport) -> None:
        self.last_report = report
        if report.wanted:
            log.info(
                "zone-file round: %d wanted, %d stored, %d rejected, %d still missing",
                report.wanted, len(report.stored), len(report.rejected), len(report.still_missing),
            )

    def _failed(self, failure: Any) -> None:
        # Keep the loop alive: a database hiccup should cost one round, not the service.
        log.error("zone-file round failed: %s", failure.getTraceback())
