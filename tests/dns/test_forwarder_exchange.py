"""The forwarder's attempts, driven step by step: a stand-in clock, real UDP sockets on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import dns.message
import dns.rcode
import pytest
from twisted.internet import defer
from twisted.internet.task import Clock

from bns_resolver.dns.forwarder import Forwarder, UpstreamError, build_query


class SteppedReactor(Clock):
    """Timers advance by hand; sockets are read by the test calling `deliver`."""

    def __init__(self) -> None:
        super().__init__()
        self.readers: set[object] = set()

    def addReader(self, reader: object) -> None:  # noqa: N802
        self.readers.add(reader)

    def removeReader(self, reader: object) -> None:  # noqa: N802
        self.readers.discard(reader)

    def deliver(self) -> None:
        for reader in list(self.readers):
            reader.doRead()  # type: ignore[attr-defined]


@pytest.fixture
def upstream() -> Iterator[socket.socket]:
    """An upstream that answers only when the test says so."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


def _answer(upstream: socket.socket, query: bytes, source: tuple[str, int]) -> None:
    reply = dns.message.make_response(dns.message.from_wire(query))
    upstream.sendto(reply.to_wire(), source)


def _result(deferred: defer.Deferred[bytes]) -> object:
    box: list[object] = []
    deferred.addBoth(box.append)
    return box[0] if box else None


def test_late_answer_to_the_first_attempt_still_counts(upstream: socket.socket) -> None:
    """After a timeout the query is sent again, and the first attempt's late answer is accepted."""
    reactor = SteppedReactor()
    forwarder = Forwarder([upstream.getsockname()], reactor=reactor, attempt_timeout=0.8, deadline=2.5)
    deferred = forwarder.forward(build_query("example.com", 1))
    first, first_source = upstream.recvfrom(512)
    reactor.advance(0.8)
    second, second_source = upstream.recvfrom(512)
    assert second[12:] == first[12:] and second_source != first_source  # the same question from a new port
    assert forwarder.open_sockets == 2
    _answer(upstream, first, first_source)
    reactor.deliver()
    reply = _result(deferred)
    assert isinstance(reply, bytes) and reply[3] & 0x0F == dns.rcode.NOERROR
    assert forwarder.open_sockets == 0


def test_upstream_sockets_stay_within_the_budget(upstream: socket.socket) -> None:
    """With room for two sockets, a third query in flight fails at once; retries reuse their own slot."""
    reactor = SteppedReactor()
    forwarder = Forwarder([upstream.getsockname()], reactor=reactor, max_sockets=2)
    pending = [forwarder.forward(build_query(f"n{i}.example.com", 1)) for i in range(3)]
    assert forwarder.open_sockets == 2
    failure = _result(pending[2])
    assert failure is not None and failure.check(UpstreamError)  # type: ignore[attr-defined]
    assert "too many upstream queries" in failure.getErrorMessage()  # type: ignore[attr-defined]
    reactor.advance(0.8)
    assert forwarder.open_sockets == 2
    reactor.advance(3)
    for deferred in pending[:2]:
        failure = _result(deferred)
        assert failure is not None and failure.check(UpstreamError)  # type: ignore[attr-defined]
    assert forwarder.open_sockets == 0 and not reactor.readers
