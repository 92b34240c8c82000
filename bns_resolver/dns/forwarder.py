"""Forwarding to upstream resolvers over UDP, with TCP when the reply is truncated.

Each attempt uses a fresh UDP socket (an OS-chosen ephemeral source port), connected
to the upstream so the kernel drops datagrams from anyone else, and a random ID; a
reply is accepted only if it repeats our ID and question. Within one deadline the
upstreams are asked in turn, round after round: a lost packet is retried, and an
attempt that timed out may still answer late. An upstream that answers REFUSED,
SERVFAIL, FORMERR or NOTIMP cannot help with this query: the next one is asked,
and if none can, the client gets SERVFAIL with an Extended DNS Error, never the
upstream's REFUSED (which would say that *we* refuse). Identical queries in flight
are merged.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import socket
import struct
import time
from typing import Any, cast

from twisted.internet import defer, protocol
from twisted.protocols.basic import Int16StringReceiver

from bns_resolver import descriptors
from bns_resolver.dns.cache import ttl_offsets
from bns_resolver.dns.loglimit import LogLimiter
from bns_resolver.dns.resolver import Query
from bns_resolver.dns.wire import skip_plain_name
from bns_resolver.errors import EDE_NETWORK_ERROR, EDE_NO_REACHABLE_AUTHORITY, GatewayError

log = logging.getLogger(__name__)
limited_log = LogLimiter(log)

Address = tuple[str, int]

# Rcodes that say "this server cannot help with this query", not "this is the answer".
FAILING_RCODES = {1: "FORMERR", 2: "SERVFAIL", 4: "NOTIMP", 5: "REFUSED"}
MAX_UDP_REPLY = 65535


class UpstreamError(GatewayError):
    """No upstream resolver gave a usable answer."""

    def __init__(self, message: str | None = None, *, ede_code: int = EDE_NO_REACHABLE_AUTHORITY) -> None:
        super().__init__(message)
        self.ede_code = ede_code


def matches_query(reply: bytes, query: bytes) -> bool:
    """Same ID, QR set, and the same question (names compared case-insensitively)."""
    if len(reply) < 12 or reply[0:2] != query[0:2] or not reply[2] & 0x80:
        return False
    name_end = skip_plain_name(query, 12)
    question_end = name_end + 4 if name_end >= 0 else -1
    if question_end < 0 or len(reply) < question_end or reply[4:6] != query[4:6]:
        return False
    return reply[12:question_end].lower() == query[12:question_end].lower()


def _well_formed(reply: bytes) -> bool:
    """Every record fits the packet (what we rewrite and cache must be walkable)."""
    try:
        ttl_offsets(reply)
    except ValueError:
        return False
    return True


class _UdpAttempt:
    """One UDP exchange with one upstream, read by the reactor directly.

    A plain socket rather than a Twisted UDP port: a port logs two lines per use
    ("starting on N", "UDP Port N Closed"), once per forwarded query, and reads at
    most 8,192 bytes, which would cut larger replies.
    """

    def __init__(self, exchange: _Exchange, upstream: Address, query: bytes) -> None:
        self.exchange = exchange
        self.upstream = upstream
        self.query = query
        family = socket.AF_INET6 if ":" in upstream[0] else socket.AF_INET
        self.sock: socket.socket | None = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            self.sock.connect(upstream)  # the kernel now drops datagrams from any other source
            self.sock.send(query)
        except OSError:
            self.sock.close()
            raise
        exchange.reactor.addReader(self)
        exchange.forwarder.open_sockets += 1

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def logPrefix(self) -> str:  # noqa: N802 - Twisted's interface name
        return "dns-upstream"

    def doRead(self) -> None:  # noqa: N802
        while self.sock is not None:
            try:
                data = self.sock.recv(MAX_UDP_REPLY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable: nobody listens there
                self.exchange.failed(self, exc)
                return
            if matches_query(data, self.query):
                self.exchange.answered(self, data)
                return
            limited_log.warning("mismatch", "ignored a reply from %s:%s whose ID or question does not match",
                                *self.upstream)

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
        # The reactor dropped the socket (an error condition on it): this upstream is unreachable.
        self.exchange.failed(self, OSError(f"socket error: {reason.getErrorMessage() if reason else 'lost'}"))
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.exchange.reactor.removeReader(self)
            self.sock.close()
            self.sock = None
            self.exchange.forwarder.open_sockets -= 1


class _TcpProtocol(Int16StringReceiver):

    @property
    def connection(self) -> Any:
        """The TCP transport. Typed Any: Twisted declares it through zope interfaces mypy cannot read."""
        return self.transport

    def __init__(self, attempt: _TcpAttempt) -> None:
        self.attempt = attempt

    def connectionMade(self) -> None:
        self.sendString(self.attempt.query)

    def stringReceived(self, data: bytes) -> None:
        self.connection.loseConnection()
        if matches_query(data, self.attempt.query):
            self.attempt.exchange.answered(self.attempt, data)
        else:
            self.attempt.exchange.failed(self.attempt, UpstreamError("a TCP reply did not match the query"))

    def connectionLost(self, reason: Any = None) -> None:
        self.attempt.exchange.failed(self.attempt, UpstreamError("TCP connection closed before an answer"))


class _TcpAttempt:
    """The same query again over TCP, after a truncated UDP reply."""

    def __init__(self, exchange: _Exchange, upstream: Address, query: bytes, timeout: float) -> None:
        self.exchange = exchange
        self.upstream = upstream
        self.query = query
        factory = protocol.ClientFactory.forProtocol(lambda: _TcpProtocol(self))
        factory.noisy = False
        # forProtocol builds a ClientFactory; its type says only Factory.
        cast(Any, factory).clientConnectionFailed = lambda _c, reason: exchange.failed(
            self, UpstreamError(f"TCP connect failed: {reason.getErrorMessage()}"))
        self.connector = exchange.reactor.connectTCP(upstream[0], upstream[1], factory, timeout=max(timeout, 0.1))

    def close(self) -> None:
        self.connector.disconnect()


class _Exchange:
    """One forwarded query: attempts to the upstreams in turn until one answers or the deadline passes."""

    def __init__(self, forwarder: Forwarder, query: bytes) -> None:
        self.forwarder = forwarder
        self.reactor = forwarder.reactor
        self.query = query
        self.result: defer.Deferred[bytes] = defer.Deferred()
        self.deadline = self.reactor.seconds() + forwarder.deadline
        self.open: list[_UdpAttempt | _TcpAttempt] = []
        self.failures: dict[Address, tuple[str, bool]] = {}  # upstream -> (why, a network error?)
        self.gave_up: set[Address] = set()  # answered "cannot help", or unreachable: not asked again
        self._order = itertools.cycle(forwarder.upstreams)
        self._timer: Any = None

    def start(self) -> defer.Deferred[bytes]:
        self._next_attempt()
        return self.result

    def answered(self, attempt: _UdpAttempt | _TcpAttempt, reply: bytes) -> None:
        if self.result.called:
            return
        rcode = reply[3] & 0x0F
        if rcode in FAILING_RCODES:
            self._give_up(attempt, f"answered {FAILING_RCODES[rcode]}", network=False)
        elif not _well_formed(reply):
            limited_log.warning("malformed", "ignored a malformed reply from %s:%s", *attempt.upstream)
            self._give_up(attempt, "sent a malformed reply", network=False)
        elif reply[2] & 0x02 and isinstance(attempt, _UdpAttempt):  # TC: the full answer needs TCP
            self._close(attempt)
            self._cancel_timer()
            timeout = self._attempt_timeout()
            self.open.append(_TcpAttempt(self, attempt.upstream, attempt.query, timeout))
            self._timer = self.reactor.callLater(timeout, self._timed_out, attempt.upstream)
        else:
            self._finish(reply)

    def failed(self, attempt: _UdpAttempt | _TcpAttempt, exc: Exception) -> None:
        if not self.result.called and attempt in self.open:
            self._give_up(attempt, str(exc), network=isinstance(exc, OSError))

    def _give_up(self, attempt: _UdpAttempt | _TcpAttempt, why: str, *, network: bool) -> None:
        self._close(attempt)
        self.failures[attempt.upstream] = (why, network)
        self.gave_up.add(attempt.upstream)
        self._next_attempt()

    def _timed_out(self, upstream: Address) -> None:
        self._timer = None
        self.failures.setdefault(upstream, (f"no answer within {self.forwarder.attempt_timeout:g} s", False))
        self._next_attempt()  # the attempt stays open: a late answer is still welcome

    def _next_attempt(self) -> None:
        self._cancel_timer()
        if self.result.called:
            return
        remaining = self.deadline - self.reactor.seconds()
        upstream = self._next_upstream()
        if remaining <= 0 or (upstream is None and not self.open):
            self._fail()
            return
        if upstream is None:  # everyone was asked; wait for the attempts still open
            self._timer = self.reactor.callLater(remaining, self._fail)
            return
        if not self._make_room():
            self.failures[upstream] = ("too many upstream queries in flight", False)
            self._fail()
            return
        fresh = secrets.randbits(16).to_bytes(2, "big") + self.query[2:]
        try:
            self.open.append(_UdpAttempt(self, upstream, fresh))
        except OSError as exc:  # no route, no descriptors left, ...
            self.failures[upstream] = (str(exc), True)
            self.gave_up.add(upstream)
            self._next_attempt()
            return
        self._timer = self.reactor.callLater(self._attempt_timeout(), self._timed_out, upstream)

    def _make_room(self) -> bool:
        """Stay under the forwarder's socket budget: give up our oldest open attempt, or say there is no room."""
        if self.forwarder.open_sockets < self.forwarder.max_sockets:
            return True
        oldest = next((a for a in self.open if isinstance(a, _UdpAttempt)), None)
        if oldest is None:
            return False
        self._close(oldest)
        return True

    def _next_upstream(self) -> Address | None:
        for _ in range(len(self.forwarder.upstreams)):
            upstream = next(self._order)
            if upstream not in self.gave_up:
                return upstream
        return None

    def _attempt_timeout(self) -> float:
        return max(min(self.forwarder.attempt_timeout, self.deadline - self.reactor.seconds()), 0.0)

    def _finish(self, reply: bytes) -> None:
        self._close_all()
        self.result.callback(reply)

    def _fail(self) -> None:
        self._close_all()
        if not self.forwarder.upstreams:
            self.result.errback(UpstreamError("no upstream resolver is configured"))
            return
        failures = self.failures or {u: ("deadline passed", False) for u in self.forwarder.upstreams}
        network_only = all(network for _why, network in failures.values())
        summary = "; ".join(f"{host}:{port}: {why}" for (host, port), (why, _n) in failures.items())
        self.result.errback(UpstreamError("upstream resolvers failed: " + summary,
                                          ede_code=EDE_NETWORK_ERROR if network_only else EDE_NO_REACHABLE_AUTHORITY))

    def _close(self, attempt: _UdpAttempt | _TcpAttempt) -> None:
        if attempt in self.open:
            self.open.remove(attempt)
            attempt.close()

    def _close_all(self) -> None:
        self._cancel_timer()
        while self.open:
            self.open.pop().close()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


def default_max_sockets() -> int:
    """Upstream UDP sockets open at once: the descriptor share (descriptors.py)."""
    return max(16, min(4096, descriptors.share(descriptors.soft_limit())))


class Forwarder:
    """Forwards queries; `max_sockets` bounds the UDP sockets open at once (default: by RLIMIT_NOFILE)."""

    def __init__(self, upstreams: list[Address], *, reactor: Any = None, attempt_timeout: float = 0.8,
                 deadline: float = 2.5, max_sockets: int | None = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.upstreams = list(upstreams)
        self.reactor = reactor
        self.attempt_timeout = attempt_timeout
        self.deadline = deadline
        self.max_sockets = max_sockets or default_max_sockets()
        self.open_sockets = 0
        self._in_flight: dict[bytes, list[defer.Deferred[bytes]]] = {}
        # Read by /metrics: upstream exchanges (one per distinct query in flight), how many found no
        # answer, and the seconds they took in all (latency = seconds / exchanges).
        self.stats: dict[str, float] = {"exchanges": 0, "failures": 0, "seconds": 0.0}

    def resolve(self, query: Query) -> defer.Deferred[bytes]:
        """The Resolver interface (dns/resolver.py): the upstreams' reply to the query's wire form."""
        return self.forward(query.wire)

    def forward(self, query: bytes) -> defer.Deferred[bytes]:
        """Resolve `query` upstream; the reply carries the query's own ID.

        Fails with UpstreamError (carrying the EDE code to report) when no upstream can answer.
        """
        key = query[2:]
        waiting: defer.Deferred[bytes] = defer.Deferred()
        if key in self._in_flight:
            self._in_flight[key].append(waiting)
        else:
            self._in_flight[key] = [waiting]
            started = time.monotonic()
            _Exchange(self, query).start().addBoth(self._deliver, key, query[0:2], started)
        return waiting

    def _deliver(self, result: Any, key: bytes, original_id: bytes, started: float) -> None:
        stats = self.stats
        stats["exchanges"] += 1
        stats["seconds"] += time.monotonic() - started
        if not isinstance(result, bytes):
            stats["failures"] += 1
        for waiting in self._in_flight.pop(key, []):
            if isinstance(result, bytes):
                waiting.callback(original_id + result[2:])
            else:
                waiting.errback(result)


def build_query(qname: str, qtype: int) -> bytes:
    """A plain recursive query, for probes the gateway makes itself."""
    labels = b"".join(bytes([len(p)]) + p.encode("ascii") for p in qname.strip(".").split(".") if p)
    header = struct.pack("!HHHHHH", secrets.randbits(16), 0x0100, 1, 0, 0, 0)
    return header + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def reply_rcode(reply: bytes) -> int:
    return reply[3] & 0x0F

