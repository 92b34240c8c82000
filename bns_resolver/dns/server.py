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

from bns_resolver.dns.gateway import Gateway

log = logging.getLogger(__name__)

TCP_IDLE_TIMEOUT = 10.0


class FastUdpServer:
    """A UDP socket the reactor reads directly, answering repeats from `Gateway.replay`.

    Twisted's UDP port costs more per datagram than everything else on the cached
    path (its write() re-validates the address string each time). Here a repeated
    query (same bytes after the ID, from an allowed client) is answered by one
    dictionary lookup and one sendto; anything else goes through Gateway.handle.
    """

    MAX_BATCH = 512  # datagrams per wake-up, so TCP clients and timers still get turns

    def __init__(self, gateway: Gateway, host: str, port: int, reactor: Any) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise CannotListenError(host, port, exc) from None
        self.gateway = gateway
        self.reactor = reactor
        reactor.addReader(self)

    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:  # noqa: N802 - Twisted's interface name
        return "dns-udp"

    def doRead(self) -> None:  # noqa: N802
        # Locals, not attributes: this loop runs once per datagram.
        recvfrom, sendto = self.sock.recvfrom, self.sock.sendto
        replayed, allowed = self.gateway.replay.get, self.gateway.access.decided.get
        now = time.monotonic()
        for _ in range(self.MAX_BATCH):
            try:
                data, addr = recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # e.g. an ICMP error queued on the socket
            entry = replayed(data[2:])
            if entry is None or entry[1] <= now or not allowed(addr[0]):
                self._answer(data, addr)
                continue
            try:
                sendto(data[:2] + entry[0], addr)
            except OSError:
                pass  # a full send buffer drops the reply, as UDP may

    def _answer(self, data: bytes, addr: Any) -> None:
        try:
            answer = self.gateway.handle(data, addr[0], tcp=False)
        except Exception:  # noqa: BLE001 - one bad packet must never stop the server
            log.exception("failed to answer a UDP query from %s", addr[0])
            return
        if isinstance(answer, defer.Deferred):
            answer.addCallback(self._send_later, addr).addErrback(_log_udp_failure, addr)
        elif answer:
            self._send(answer, addr)

    def _send_later(self, answer: bytes | None, addr: Any) -> None:
        if answer:
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


def _log_udp_failure(failure: Any, addr: Any) -> None:
    log.error("failed to answer a UDP query from %s: %s", addr[0], failure.getTraceback())


class DnsTcpProtocol(Int16StringReceiver):
    """One client connection; answers may complete out of order (RFC 7766 pipelining)."""

    def __init__(self, gateway: Gateway, reactor: Any) -> None:
        self.gateway = gateway
        self.reactor = reactor
        self._idle: Any = None

    def connectionMade(self) -> None:
        self._idle = self.reactor.callLater(TCP_IDLE_TIMEOUT, self.transport.loseConnection)

    def connectionLost(self, reason: Any = None) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.cancel()

    def stringReceived(self, data: bytes) -> None:
        self._idle.reset(TCP_IDLE_TIMEOUT)
        peer = self.transport.getPeer()
        try:
            answer = self.gateway.handle(data, peer.host, tcp=True)
        except Exception:
            log.exception("failed to answer a TCP query from %s", peer.host)
            self.transport.loseConnection()
            return
        if isinstance(answer, defer.Deferred):
            answer.addCallback(self._send).addErrback(lambda f: log.error("TCP answer failed: %s", f))
        else:
            self._send(answer)

    def _send(self, answer: bytes | None) -> None:
        if answer and self.transport is not None and self.connected:
            self.sendString(answer)


class DnsTcpFactory(protocol.ServerFactory):
    def __init__(self, gateway: Gateway, reactor: Any) -> None:
        self.gateway = gateway
        self.reactor = reactor

    def buildProtocol(self, addr: Any) -> DnsTcpProtocol:
        return DnsTcpProtocol(self.gateway, self.reactor)


def listen(gateway: Gateway, host: str, port: int, reactor: Any) -> tuple[Any, Any]:
    """Bind UDP and TCP on the same address; with port 0 both get the same free port."""
    udp = FastUdpServer(gateway, host, port, reactor)
    bound = udp.getHost().port
    try:
        tcp = reactor.listenTCP(bound, DnsTcpFactory(gateway, reactor), interface=host)
    except Exception:
        udp.stopListening()
        raise
    return udp, tcp
