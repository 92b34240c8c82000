"""Fetching profiles from storage (Gaia hubs or mirrors): bounded in time, size and concurrency.

Storage is untrusted and so are the URLs: they come from zone files anyone can
write. Only http(s) is fetched, literal loopback/private/link-local hosts are
refused (a zone file must not make the gateway probe the user's LAN), and a
configured mirror prefix is rewritten first (mirrors are the user's own choice,
so they may point anywhere, a local Gaia copy included).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from twisted.internet import defer, protocol
from twisted.web.client import Agent, BrowserLikeRedirectAgent, ResponseDone, ResponseFailed
from twisted.web.http_headers import Headers

log = logging.getLogger(__name__)

FAILURE_TTL = 30.0  # seconds a failed fetch is remembered, so a dead hub is not hammered
MAX_CACHED = 2048
REDIRECT_LIMIT = 3


class FetchError(Exception):
    """A profile could not be fetched; the message says why, for the page."""


@dataclass(frozen=True)
class Fetched:
    url: str  # the URL asked for (before mirror rewriting)
    body: bytes | None
    error: str | None
    at: float  # wall-clock time of the fetch

    @property
    def ok(self) -> bool:
        return self.body is not None


class _CappedBody(protocol.Protocol):
    def __init__(self, finished: defer.Deferred[bytes], limit: int) -> None:
        self.finished = finished
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's name
        self.size += len(data)
        if self.size > self.limit:
            self.transport.stopProducing()  # type: ignore[union-attr]
            if not self.finished.called:
                self.finished.errback(FetchError(f"profile is larger than {self.limit} bytes"))
            return
        self.parts.append(data)

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
        if self.finished.called:
            return
        if reason is None or reason.check(ResponseDone):
            self.finished.callback(b"".join(self.parts))
        else:
            self.finished.errback(FetchError(f"connection lost while reading: {reason.getErrorMessage()}"))


class ProfileFetcher:
    def __init__(self, reactor: Any, *, timeout: float = 5.0, max_bytes: int = 512 * 1024,
                 cache_ttl: float = 600.0, concurrency: int = 8, mirrors: Mapping[str, str] | None = None,
                 agent: Any = None) -> None:
        self._reactor = reactor
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._cache_ttl = cache_ttl
        self._mirrors = sorted((mirrors or {}).items(), key=lambda item: -len(item[0]))
        # cast: Agent provides IAgent through zope.interface, which mypy cannot see.
        self._agent = agent or BrowserLikeRedirectAgent(cast(Any, Agent(reactor, connectTimeout=timeout)),
                                                        REDIRECT_LIMIT)
        self._slots = defer.DeferredSemaphore(concurrency)
        self._cache: OrderedDict[str, Fetched] = OrderedDict()
        self._in_flight: dict[str, list[defer.Deferred[Fetched]]] = {}
        self.stats = {"fetches": 0, "cache_hits": 0, "failures": 0}

    def cached(self, url: str) -> Fetched | None:
        entry = self._cache.get(url)
        if entry is None:
            return None
        ttl = self._cache_ttl if entry.ok else min(FAILURE_TTL, self._cache_ttl)
        if time.time() - entry.at > ttl:
            del self._cache[url]
            return None
        return entry

    def fetch(self, url: str) -> defer.Deferred[Fetched]:
        """The profile bytes (or why not); never fails, so callers can always render a page."""
        entry = self.cached(url)
        if entry is not None:
            self.stats["cache_hits"] += 1
            return defer.succeed(entry)
        waiter: defer.Deferred[Fetched] = defer.Deferred()
        waiters = self._in_flight.setdefault(url, [])
        waiters.append(waiter)
        if len(waiters) == 1:
            self._slots.run(self._fetch_now, url).addBoth(self._done, url)
        return waiter

    def _fetch_now(self, url: str) -> defer.Deferred[bytes]:
        self.stats["fetches"] += 1
        target = self.rewrite(url)
        check_fetchable(target, mirrored=target != url)
        request = self._agent.request(b"GET", target.encode("ascii"),
                                      Headers({b"Accept": [b"application/json"],
                                               b"User-Agent": [b"bns-resolver web gateway"]}))
        request.addCallback(self._read_body)
        return request.addTimeout(self._timeout, self._reactor)

    def _read_body(self, response: Any) -> defer.Deferred[bytes]:
        if response.code != 200:
            response.deliverBody(_Discard())
            raise FetchError(f"storage answered HTTP {response.code}")
        if response.length is not None and response.length != -1 and response.length > self._max_bytes:
            response.deliverBody(_Discard())
            raise FetchError(f"profile is larger than {self._max_bytes} bytes")
        finished: defer.Deferred[bytes] = defer.Deferred()
        response.deliverBody(_CappedBody(finished, self._max_bytes))
        return finished

    def _done(self, outcome: Any, url: str) -> None:
        if isinstance(outcome, bytes):
            entry = Fetched(url, outcome, None, time.time())
        else:
            self.stats["failures"] += 1
            entry = Fetched(url, None, _describe(outcome), time.time())
            log.info("profile %s not fetched: %s", url, entry.error)
        self._remember(url, entry)
        for waiter in self._in_flight.pop(url, []):
            waiter.callback(entry)

    def _remember(self, url: str, entry: Fetched) -> None:
        self._cache[url] = entry
        self._cache.move_to_end(url)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)

    def rewrite(self, url: str) -> str:
        for prefix, replacement in self._mirrors:
            if url.startswith(prefix):
                return replacement + url[len(prefix):]
        return url


def check_fetchable(url: str, *, mirrored: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"not an http(s) URL: {url[:200]}")
    if mirrored:
        return
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        raise FetchError("refusing to fetch a profile from this machine (localhost)")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if not address.is_global:
        raise FetchError(f"refusing to fetch a profile from a non-public address ({host})")


def _describe(failure: Any) -> str:
    if failure.check(FetchError):
        return str(failure.value)
    if failure.check(defer.TimeoutError, defer.CancelledError) or _cancelled_inside(failure):
        return "storage did not answer in time"
    return f"storage unreachable: {failure.getErrorMessage()}"


def _cancelled_inside(failure: Any) -> bool:
    """The Agent reports a request cancelled by our timeout as a ResponseFailed wrapping CancelledError."""
    if not failure.check(ResponseFailed):
        return False
    return any(reason.check(defer.CancelledError) for reason in failure.value.reasons)


class _Discard(protocol.Protocol):
    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
        pass
