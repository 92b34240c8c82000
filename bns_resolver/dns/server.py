"""Twisted transports for the gateway: UDP and TCP (with pipelining) on one address."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from twisted.internet import defer, protocol
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import CannotListenError
from twisted.protocols.basic import Int16StringReceiver

from bns_resolver import descriptors
from bns_resolver.answers.native import NativeUdp
from bns_resolver.dns.gateway import Gateway
from bns_resolver.dns.loglimit import LogLimiter
from bns_resolver.dns.querylog import QueryLog
from bns_resolver.dns.ratelimit import DEFAULT_RATE, DEFAULT_SLIP, Bucket, ResponseRateLimiter, slip_reply

log = logging.getLogger(__name__)
limited_log = LogLimiter(log)

TCP_IDLE_TIMEOUT = 10.0
# Bytes we accept to queue for a client that has stopped reading, on top of the transport's
# own 64 KiB: past that, the client is cut off (its pipelined queries would pin memory).
TCP_WRITE_LIMIT = 256 * 1024
TCP_BACKLOG = 1024
_UNSEEN: Any = object()  # a client the rate limiter has not placed yet


def default_tcp_limits() -> tuple[int, int]:
    """Total and per-client TCP connection caps, kept below the descriptor limit.

    Every TCP client may need an upstream socket too, and the index, zone files and
    logs need descriptors: the caps leave half of what remains after a reserve.
    """
    total = max(8, min(1024, descriptors.share(descriptors.soft_limit())))
    return total, max(4, min(64, total // 8))


class FastUdpServer:
    """A UDP socket the reactor reads directly, answering repeats from the gateway's ReplayCache.

    Twisted's UDP port costs more per datagram than everything else on the cached
    path (its write() re-validates the address string each time). Here a repeated
    query (same bytes after the ID, from an allowed client) is answered by one
    dictionary lookup and one sendto; anything else goes through Gateway.handle.
    """

    MAX_BATCH = 512  # datagrams per wake-up, so TCP clients and timers still get turns

    def __init__(self, gateway: Gateway, host: str, port: int, reactor: Any,
                 rate_limiter: ResponseRateLimiter | None = None, query_log: QueryLog | None = None,
                 sock: socket.socket | None = None) -> None:
        self.sock = sock if sock is not None else _bound_udp(host, port)
        self.sock.setblocking(False)
        self.gateway = gateway
        self.reactor = reactor
        self.rrl = rate_limiter
        self.query_log = query_log
        self._native_for: object = None
        self._native: NativeUdp | None = None
        reactor.addReader(self)

    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:  # noqa: N802 - Twisted's interface name
        return "dns-udp"

    def doRead(self) -> None:  # noqa: N802
        if self.query_log is not None:
            self._read_logged(self.query_log)
            return
        native = self._native_udp()
        if native is not None:
            self._read_native(native)
            return
        # Locals, not attributes: this loop runs once per datagram.
        recvfrom, sendto = self.sock.recvfrom, self.sock.sendto
        replayed, allowed = self.gateway.replay.get, self.gateway.access.decided.get
        from_store = self.gateway.store_answer_udp
        buckets = self.rrl.by_client.get if self.rrl is not None else None
        now = time.monotonic()
        for _ in range(self.MAX_BATCH):
            try:
                data, addr = recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # e.g. an ICMP error queued on the socket
            entry = replayed(data[2:])
            if entry is not None and entry[1] > now and allowed(addr[0]):
                reply = data[:2] + entry[0]
            elif allowed(addr[0]):
                # A query new to the replay table, from a client known to be allowed: the store
                # answers most of these in one call; anything else takes the full path.
                try:
                    stored = from_store(data)
                except Exception:  # noqa: BLE001 - one bad packet must never stop the server
                    limited_log.error("udp-failure", "failed to answer a UDP query from %s", addr[0], exc_info=True)
                    continue
                if stored is None:
                    self._answer(data, addr)
                    continue
                reply = stored
            else:
                self._answer(data, addr)  # not decided yet, or refused: handle says so
                continue
            if buckets is not None:
                bucket = buckets(addr[0], _UNSEEN)
                if bucket is None:
                    pass  # not limited (loopback)
                elif bucket is not _UNSEEN and bucket.stamp == now and bucket.tokens >= 1.0:
                    bucket.tokens -= 1.0  # refilled already in this batch: spend inline, no call
                elif not self._admitted(bucket, data, addr, now):
                    continue
            try:
                sendto(reply, addr)
            except OSError:
                pass  # a full send buffer drops the reply, as UDP may

    def _native_udp(self) -> NativeUdp | None:
        """The gateway's native answerer (answers/_native.c), made once per store answerer it has."""
        store = self.gateway.store
        if store is not self._native_for:
            self._native_for, self._native = store, self.gateway.native_store_udp()
        return self._native

    def _read_native(self, native: NativeUdp) -> None:
        """doRead in C for what the replay table and the store settle for allowed clients outside the
        rate limiter (recvmmsg/sendmmsg, no interpreter per datagram); the rest is handed back here."""
        now = time.monotonic()
        buckets = self.rrl.by_client if self.rrl is not None else None
        try:
            handed, joined = native.read(self.sock.fileno(), self.gateway.access.decided, buckets, now,
                                         self.MAX_BATCH)
        except Exception:  # noqa: BLE001 - e.g. MemoryError: that batch is lost, the listener must stay
            limited_log.error("udp-failure", "the native UDP reader failed a batch", exc_info=True)
            return
        self.gateway.stats["queries"] += joined
        for data, addr, reply in handed:
            if reply is None:
                reply = self._settle(data, addr)
                if reply is None:
                    continue
            self._send_limited(reply, data, addr)

    def _settle(self, data: bytes, addr: Any) -> bytes | None:
        """A datagram the native reader left: the Python store path's reply for an allowed client, or
        None once the full path took it (it sends its own answer, now or when upstream replies)."""
        if self.gateway.access.decided.get(addr[0]):
            try:
                stored = self.gateway.store_answer_udp(data)
            except Exception:  # noqa: BLE001 - one bad packet must never stop the server
                limited_log.error("udp-failure", "failed to answer a UDP query from %s", addr[0], exc_info=True)
                return None
            if stored is not None:
                return stored
        self._answer(data, addr)
        return None

    def _read_logged(self, query_log: QueryLog) -> None:
        """doRead with one query-log line per datagram: the same decisions, timed and attributed."""
        for _ in range(self.MAX_BATCH):
            try:
                data, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            started = query_log.started()
            now = time.monotonic()
            entry = self.gateway.replay.get(data[2:])
            if entry is None or entry[1] <= now or not self.gateway.access.decided.get(addr[0]):
                self._answer(data, addr, query_log, started)
                continue
            reply = data[:2] + entry[0]
            if self.rrl is not None and not self._admitted(self.rrl.by_client.get(addr[0], _UNSEEN), data, addr, now):
                reply = b""
            else:
                self._send(reply, addr)
            query_log.record(addr[0], data, reply or None, "replay", started)

    def _admitted(self, bucket: Bucket | object, data: bytes, addr: Any, now: float) -> bool:
        """Spend a response token of this client's prefix; when there is none, slip or drop."""
        rrl = self.rrl
        if bucket is _UNSEEN and rrl is not None:
            bucket = rrl.bucket_for(addr[0], now)
        if not isinstance(bucket, Bucket) or rrl is None or bucket.admit(now):
            return True  # not limited (loopback), or a token was there
        self.gateway.stats["rate_limited"] += 1
        if rrl.slips(bucket):
            reply = slip_reply(data)
            if reply is not None:
                self._send(reply, addr)
        limited_log.info("rrl", "rate-limiting UDP responses to %s (over %g per second for its prefix)",
                         addr[0], rrl.rate)
        return False

    def _answer(self, data: bytes, addr: Any, query_log: QueryLog | None = None, started: float = 0.0) -> None:
        try:
            answer = self.gateway.handle(data, addr[0], tcp=False)
        except Exception:  # noqa: BLE001 - one bad packet must never stop the server
            limited_log.error("udp-failure", "failed to answer a UDP query from %s", addr[0], exc_info=True)
            return
        if isinstance(answer, defer.Deferred):
            source = self.gateway.last_source
            answer.addCallback(self._send_later, data, addr, query_log, source, started)
            answer.addErrback(_log_udp_failure, addr)
            return
        if answer:
            self._send_limited(answer, data, addr)
        if query_log is not None:
            query_log.record(addr[0], data, answer, self.gateway.last_source, started)

    def _send_later(self, answer: bytes | None, data: bytes, addr: Any, query_log: QueryLog | None = None,
                    source: str = "forward", started: float = 0.0) -> None:
        if answer:
            self._send_limited(answer, data, addr)
        if query_log is not None:
            query_log.record(addr[0], data, answer, source, started)

    def _send_limited(self, answer: bytes, data: bytes, addr: Any) -> None:
        if self.rrl is not None:
            now = time.monotonic()
            if not self._admitted(self.rrl.by_client.get(addr[0], _UNSEEN), data, addr, now):
                return
        self._send(answer, addr)

    def _send(self, answer: bytes, addr: Any) -> None:
        try:
            self.sock.sendto(answer, addr)
        except OSError as exc:  # a full send buffer drops the reply, as UDP may
            log.debug("could not send to %s: %s", addr[0], exc)

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
        self.sock.close()

    def getHost(self) -> Any:  # noqa: N802
        host, port = self.sock.getsockname()[:2]
        return IPv6Address("UDP", host, port) if self.sock.family == socket.AF_INET6 else IPv4Address("UDP", host, port)

    def stopListening(self) -> None:  # noqa: N802
        self.reactor.removeReader(self)
        self.sock.close()


def _bound_udp(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CannotListenError(host, port, exc) from None
    return sock


def _log_udp_failure(failure: Any, addr: Any) -> None:
    limited_log.error("udp-failure", "failed to answer a UDP query from %s: %s", addr[0], failure.getTraceback())


class DnsTcpProtocol(Int16StringReceiver):
    """One client connection; answers may complete out of order (RFC 7766 pipelining).

    The protocol is the producer of its own transport's writes: while the client does not
    read, the transport pauses us and we stop reading its queries; answers that still come
    (forwarded ones) are counted, and past `write_limit` bytes the connection is aborted.
    """


    @property
    def connection(self) -> Any:
        """The TCP transport. Typed Any: Twisted declares it through zope interfaces mypy cannot read."""
        return self.transport

    def __init__(self, factory: DnsTcpFactory, client_ip: str) -> None:
        self.factory = factory
        self.gateway = factory.gateway
        self.reactor = factory.reactor
        self.client_ip = client_ip
        self._idle: Any = None
        self._queued_while_paused = 0

    def connectionMade(self) -> None:
        self.transport.registerProducer(self, True)  # type: ignore[union-attr]
        self._idle = self.reactor.callLater(TCP_IDLE_TIMEOUT, self._idle_timeout)

    def connectionLost(self, reason: Any = None) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        self.factory.released(self.client_ip)

    def pauseProducing(self) -> None:  # noqa: N802 - Twisted's interface name
        self._queued_while_paused = 0
        super().pauseProducing()

    def _idle_timeout(self) -> None:
        if self.paused:
            self.connection.abortConnection() # unread answers would hold it open
            return
        self.connection.loseConnection()
        # A close waits for unsent answers; a client that reads nothing must not hold it forever.
        self._idle = self.reactor.callLater(TCP_IDLE_TIMEOUT, self.connection.abortConnection)

    def stringReceived(self, data: bytes) -> None:
        self._idle.reset(TCP_IDLE_TIMEOUT)
        query_log = self.factory.query_log
        started = query_log.started() if query_log is not None else 0.0
        try:
            answer = self.gateway.handle(data, self.client_ip, tcp=True)
        except Exception:
            limited_log.error("tcp-failure", "failed to answer a TCP query from %s", self.client_ip, exc_info=True)
            self.connection.loseConnection()
            return
        if isinstance(answer, defer.Deferred):
            if query_log is not None:
                answer.addCallback(self._logged, query_log, data, self.gateway.last_source, started)
            answer.addCallback(self._send).addErrback(
                lambda f: limited_log.error("tcp-failure", "TCP answer failed: %s", f.getTraceback()))
        else:
            if query_log is not None:
                query_log.record(self.client_ip, data, answer, self.gateway.last_source, started)
            self._send(answer)
            if not self.gateway.access.allows(self.client_ip):
                self.connection.loseConnection()  # one REFUSED is all an outside client gets
                self.paused = True  # and no more of its queries are read

    def _logged(self, answer: bytes | None, query_log: QueryLog, query: bytes, source: str,
                started: float) -> bytes | None:
        query_log.record(self.client_ip, query, answer, source, started)
        return answer

    def _send(self, answer: bytes | None) -> None:
        if not answer or self.transport is None or not self.connected:
            return
        if self.paused:
            self._queued_while_paused += len(answer) + 2
            if self._queued_while_paused > self.factory.write_limit:
                limited_log.warning("tcp-unread", "closed the TCP connection of %s: it does not read its answers",
                                    self.client_ip)
                self.connection.abortConnection()
                return
        self.sendString(answer)


class TcpConnectionLimits:
    """Open TCP client connections, against a total and a per-client cap.

    Descriptors are a process-wide resource, so one instance is shared by every listener
    (see listen); over a cap, a new connection is closed at once.
    """

    def __init__(self, max_connections: int | None = None, max_per_client: int | None = None) -> None:
        default_total, default_per_client = default_tcp_limits()
        self.max_connections = max_connections or default_total
        self.max_per_client = max_per_client or default_per_client
        self.open_connections = 0
        self.per_client: dict[str, int] = {}

    def acquire(self, client_ip: str) -> bool:
        held = self.per_client.get(client_ip, 0)
        if self.open_connections >= self.max_connections or held >= self.max_per_client:
            limited_log.warning("tcp-cap", "closed a new TCP connection from %s: %d open in all, %d from it "
                                "(caps %d and %d)", client_ip, self.open_connections, held,
                                self.max_connections, self.max_per_client)
            return False
        self.open_connections += 1
        self.per_client[client_ip] = held + 1
        return True

    def release(self, client_ip: str) -> None:
        self.open_connections -= 1
        held = self.per_client.pop(client_ip, 1) - 1
        if held > 0:
            self.per_client[client_ip] = held


_process_tcp_limits: TcpConnectionLimits | None = None


def process_tcp_limits() -> TcpConnectionLimits:
    """The limits every listener shares unless given its own (created on first use)."""
    global _process_tcp_limits
    if _process_tcp_limits is None:
        _process_tcp_limits = TcpConnectionLimits()
    return _process_tcp_limits


class DnsTcpFactory(protocol.ServerFactory):
    """Builds client connections within the connection limits."""

    noisy = False

    def __init__(self, gateway: Gateway, reactor: Any, *, limits: TcpConnectionLimits | None = None,
                 write_limit: int = TCP_WRITE_LIMIT, query_log: QueryLog | None = None) -> None:
        self.gateway = gateway
        self.reactor = reactor
        self.query_log = query_log
        self.limits = limits or TcpConnectionLimits()
        self.write_limit = write_limit

    def buildProtocol(self, addr: Any) -> DnsTcpProtocol | None:  # noqa: N802
        if not self.limits.acquire(addr.host):
            return None
        return DnsTcpProtocol(self, addr.host)

    def released(self, client_ip: str) -> None:
        self.limits.release(client_ip)


def listen(gateway: Gateway, host: str, port: int, reactor: Any, *, tcp_limits: TcpConnectionLimits | None = None,
           tcp_backlog: int = TCP_BACKLOG, rrl_rate: float = DEFAULT_RATE,
           rrl_slip: int = DEFAULT_SLIP, query_log: QueryLog | None = None,
           bound: tuple[socket.socket, socket.socket] | None = None) -> tuple[Any, Any]:
    """Bind UDP and TCP on the same address; with port 0 both get the same free port.

    TCP connections count against `tcp_limits`, by default the process's shared limits (caps
    from the descriptor limit, see default_tcp_limits). UDP responses are rate-limited per
    client prefix at `rrl_rate` per second (0: off). With a `query_log`, every query gets a line.
    `bound` is a UDP socket and a listening TCP socket made elsewhere (SO_REUSEPORT copies shared
    with DNS worker processes, dns/reuseport.py): those are served instead, and the caller keeps
    and closes its TCP socket object (the reactor serves a duplicate of it).
    """
    limiter = ResponseRateLimiter(rate=rrl_rate, slip=rrl_slip) if rrl_rate > 0 else None
    udp = FastUdpServer(gateway, host, port, reactor, rate_limiter=limiter, query_log=query_log,
                        sock=bound[0] if bound is not None else None)
    factory = DnsTcpFactory(gateway, reactor, limits=tcp_limits or process_tcp_limits(), query_log=query_log)
    try:
        if bound is not None:
            return udp, reactor.adoptStreamPort(bound[1].fileno(), bound[1].family, factory)
        tcp = reactor.listenTCP(udp.getHost().port, factory, interface=host, backlog=tcp_backlog)
    except Exception:
        udp.stopListening()
        raise
    return udp, tcp
