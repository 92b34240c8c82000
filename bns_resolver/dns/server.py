"""Twisted transports for the gateway: UDP and TCP (with pipelining) on one address."""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer, protocol
from twisted.protocols.basic import Int16StringReceiver

from bns_resolver.dns.gateway import Gateway

log = logging.getLogger(__name__)

TCP_IDLE_TIMEOUT = 10.0


class DnsUdpProtocol(protocol.DatagramProtocol):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            answer = self.gateway.handle(data, addr[0], tcp=False)
        except Exception:
            log.exception("failed to answer a UDP query from %s", addr[0])
            return
        if isinstance(answer, defer.Deferred):
            answer.addCallback(self._send, addr).addErrback(self._log_failure, addr)
        elif answer:
            self.transport.write(answer, addr)  # type: ignore[union-attr]

    def _send(self, answer: bytes | None, addr: Any) -> None:
        if answer:
            self.transport.write(answer, addr)  # type: ignore[union-attr]

    @staticmethod
    def _log_failure(failure: Any, addr: Any) -> None:
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
    udp = reactor.listenUDP(port, DnsUdpProtocol(gateway), interface=host)
    bound = udp.getHost().port
    try:
        tcp = reactor.listenTCP(bound, DnsTcpFactory(gateway, reactor), interface=host)
    except Exception:
        udp.stopListening()
        raise
    return udp, tcp
