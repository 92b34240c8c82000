"""Forwarding to upstream resolvers over UDP, with TCP when the reply is truncated.

Each attempt uses a fresh UDP socket (an OS-chosen ephemeral source port) and a
random ID; a reply is accepted only if it comes from the upstream's address and
port and repeats our ID and question. Upstreams are tried in order within one
deadline, and identical queries in flight are merged.
"""

from __future__ import annotations

import logging
import secrets
import struct
from typing import Any

from twisted.internet import defer, protocol
from twisted.protocols.basic import Int16StringReceiver

from bns_resolver.dns.wire import skip_plain_name
from bns_resolver.errors import GatewayError

log = logging.getLogger(__name__)

Address = tuple[str, int]


class UpstreamError(GatewayError):
    """No upstream resolver gave a usable answer."""


class _Attempt(protocol.DatagramProtocol):
    """One UDP exchange with one upstream."""

    noisy = False  # one of these per forwarded query: keep Twisted's start/stop lines out of the log

    def __init__(self, upstream: Address, query: bytes, done: defer.Deferred[bytes]) -> None:
        self.upstream = upstream
        self.query = query
        self.done = done

    def startProtocol(self) -> None:
        self.transport.write(self.query, self.upstream)  # type: ignore[union-attr]

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        if self.done.called:
            return
        if (addr[0], addr[1]) != self.upstream:
            log.warning("ignored a reply from %s:%s, which is not upstream %s:%s", addr[0], addr[1], *self.upstream)
            return
        if not matches_query(data, self.query):
            log.warning("ignored a reply from %s:%s whose ID or question does not match", *self.upstream)
            return
        self.done.callback(data)


class _TcpAttempt(Int16StringReceiver):
    def __init__(self, query: bytes, done: defer.Deferred[bytes]) -> None:
        self.query = query
        self.done = done

    def connectionMade(self) -> None:
        self.sendString(self.query)

    def stringReceived(self, data: bytes) -> None:
        if not self.done.called and matches_query(data, self.query):
            self.done.callback(data)
        self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Any = None) -> None:
        if not self.done.called:
            self.done.errback(UpstreamError("TCP connection closed before an answer"))


def matches_query(reply: bytes, query: bytes) -> bool:
    """Same ID, QR set, and the same question (names compared case-insensitively)."""
    if len(reply) < 12 or reply[0:2] != query[0:2] or not reply[2] & 0x80:
        return False
    name_end = skip_plain_name(query, 12)
    question_end = name_end + 4 if name_end >= 0 else -1
    if question_end < 0 or len(reply) < question_end or reply[4:6] != query[4:6]:
        return False
    return reply[12:question_end].lower() == query[12:question_end].lower()


class Forwarder:
    def __init__(self, upstreams: list[Address], *, reactor: Any = None, attempt_timeout: float = 1.0,
                 deadline: float = 2.5) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.upstreams = list(upstreams)
        self._reactor = reactor
        self._attempt_timeout = attempt_timeout
        self._deadline = deadline
        self._in_flight: dict[bytes, list[defer.Deferred[bytes]]] = {}

    def forward(self, query: bytes) -> defer.Deferred[bytes]:
        """Resolve `query` upstream; the reply carries the query's own ID."""
        key = query[2:]
        waiting: defer.Deferred[bytes] = defer.Deferred()
        if key in self._in_flight:
            self._in_flight[key].append(waiting)
        else:
            self._in_flight[key] = [waiting]
            defer.ensureDeferred(self._resolve(query)).addBoth(self._deliver, key, query[0:2])
        return waiting

    def _deliver(self, result: Any, key: bytes, original_id: bytes) -> None:
        for waiting in self._in_flight.pop(key, []):
            if isinstance(result, bytes):
                waiting.callback(original_id + result[2:])
            else:
                waiting.errback(result)

    async def _resolve(self, query: bytes) -> bytes:
        if not self.upstreams:
            raise UpstreamError("no upstream resolver is configured")
        started = self._reactor.seconds()
        errors: list[str] = []
        for upstream in self.upstreams:
            remaining = self._deadline - (self._reactor.seconds() - started)
            if remaining <= 0:
                break
            try:
                return await self._ask(upstream, query, min(self._attempt_timeout, remaining))
            except defer.TimeoutError:
                errors.append(f"{upstream[0]}:{upstream[1]}: no answer within {self._attempt_timeout:g} s")
            except (UpstreamError, OSError) as exc:
                errors.append(f"{upstream[0]}:{upstream[1]}: {exc}")
        raise UpstreamError("upstream resolvers failed: " + "; ".join(errors or ["deadline passed"]))

    async def _ask(self, upstream: Address, query: bytes, timeout: float) -> bytes:
        fresh = secrets.randbits(16).to_bytes(2, "big") + query[2:]
        reply = await self._udp(upstream, fresh, timeout)
        if reply[2] & 0x02:  # TC: the full answer needs TCP
            reply = await self._tcp(upstream, fresh, timeout)
        return reply

    async def _udp(self, upstream: Address, query: bytes, timeout: float) -> bytes:
        done: defer.Deferred[bytes] = defer.Deferred()
        interface = "::" if ":" in upstream[0] else "0.0.0.0"
        port = self._reactor.listenUDP(0, _Attempt(upstream, query, done), interface=interface)
        done.addTimeout(timeout, self._reactor)
        try:
            return await done
        finally:
            port.stopListening()

    async def _tcp(self, upstream: Address, query: bytes, timeout: float) -> bytes:
        done: defer.Deferred[bytes] = defer.Deferred()
        factory = protocol.ClientFactory.forProtocol(lambda: _TcpAttempt(query, done))
        factory.noisy = False
        factory.clientConnectionFailed = lambda _c, reason: done.called or done.errback(  # type: ignore[method-assign]
            UpstreamError(f"TCP connect failed: {reason.getErrorMessage()}"))
        connector = self._reactor.connectTCP(upstream[0], upstream[1], factory, timeout=timeout)
        done.addTimeout(timeout, self._reactor)
        try:
            return await done
        finally:
            connector.disconnect()


def build_query(qname: str, qtype: int) -> bytes:
    """A plain recursive query, for probes the gateway makes itself."""
    labels = b"".join(bytes([len(p)]) + p.encode("ascii") for p in qname.strip(".").split(".") if p)
    header = struct.pack("!HHHHHH", secrets.randbits(16), 0x0100, 1, 0, 0, 0)
    return header + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def reply_rcode(reply: bytes) -> int:
    return reply[3] & 0x0F

