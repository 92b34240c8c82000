"""Response rate limiting on the UDP server, over real loopback sockets (the reactor is stood in for)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import pytest

from bns_resolver.dns.authority import BnsAuthority
from bns_resolver.dns.forwarder import Forwarder
from bns_resolver.dns.gateway import Gateway
from bns_resolver.dns.ratelimit import Bucket, ResponseRateLimiter, slip_reply
from bns_resolver.dns.server import FastUdpServer
from bns_resolver.dns.zones import ZoneCache
from bns_resolver.index.lookup import IndexReader
from tests.support.dns_fixtures import IndexSpec, NameSpec, make_index


class NoReactor:
    """FastUdpServer only registers itself; the test calls doRead when datagrams are waiting."""

    def addReader(self, _reader: object) -> None:  # noqa: N802
        pass

    def removeReader(self, _reader: object) -> None:  # noqa: N802
        pass


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    engine = make_index(tmp_path, IndexSpec(names=[NameSpec("alice.id", b"$ORIGIN alice.id\n@ A 192.0.2.1\n")]))
    reader = IndexReader(engine)
    gw = Gateway(BnsAuthority(reader, ZoneCache(reader)), Forwarder([]))
    gw.policy.configured_shared["id"] = False
    return gw


@pytest.fixture
def client() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.settimeout(0.5)
    yield sock
    sock.close()


def _flood(server: FastUdpServer, client: socket.socket, count: int) -> list[dns.message.Message]:
    """Send `count` queries in rounds of 20, letting the server read each round; return every reply."""
    port = server.getHost().port
    replies = []
    for start in range(0, count, 20):
        for _ in range(min(20, count - start)):
            client.sendto(dns.message.make_query("alice.id", "A").to_wire(), ("127.0.0.1", port))
        server.doRead()
        while True:
            try:
                replies.append(dns.message.from_wire(client.recv(65535)))
            except (TimeoutError, BlockingIOError):
                break
            client.settimeout(0.05)
        client.settimeout(0.5)
    return replies


def test_flood_from_one_prefix_is_limited_with_slipped_tc_replies(gateway: Gateway, client: socket.socket) -> None:
    """At 10 responses/s (burst 20), 200 queries get about 20 answers; every 2nd held-back one is TC=1."""
    limiter = ResponseRateLimiter(rate=10, burst=20, slip=2, exempt=())  # loopback limited, for the test
    server = FastUdpServer(gateway, "127.0.0.1", 0, NoReactor(), rate_limiter=limiter)
    try:
        replies = _flood(server, client, 200)
    finally:
        server.stopListening()
    answers = [r for r in replies if r.answer]
    slipped = [r for r in replies if r.flags & dns.flags.TC]
    assert 20 <= len(answers) < 60, len(answers)  # the burst, plus 10 per second the test takes
    assert all(not r.answer and r.rcode() == dns.rcode.NOERROR and r.question for r in slipped)
    assert abs(len(slipped) - (200 - len(answers)) / 2) <= 1
    assert len(replies) == len(answers) + len(slipped)
    assert gateway.stats["rate_limited"] == 200 - len(answers)  # what /metrics reports as rate-limited


def test_loopback_clients_are_not_limited_by_default(gateway: Gateway, client: socket.socket) -> None:
    """The default limiter leaves loopback alone: 200 queries, 200 answers."""
    server = FastUdpServer(gateway, "127.0.0.1", 0, NoReactor(), rate_limiter=ResponseRateLimiter(rate=10))
    try:
        replies = _flood(server, client, 200)
    finally:
        server.stopListening()
    assert len([r for r in replies if r.answer]) == 200


def test_prefixes_share_a_bucket() -> None:
    """IPv4 /24 and IPv6 /56 neighbours spend from one bucket; other prefixes have their own."""
    limiter = ResponseRateLimiter(rate=1, burst=1)
    first = limiter.bucket_for("192.0.2.7", 0.0)
    assert isinstance(first, Bucket)
    assert limiter.bucket_for("192.0.2.200", 0.0) is first
    assert limiter.bucket_for("::ffff:192.0.2.9", 0.0) is first
    assert limiter.bucket_for("198.51.100.1", 0.0) is not first
    assert limiter.bucket_for("2001:db8:0:ff::1", 0.0) is limiter.bucket_for("2001:db8:0:1::2", 0.0)
    assert limiter.bucket_for("2001:db8:0:100::1", 0.0) is not limiter.bucket_for("2001:db8::1", 0.0)
    assert limiter.bucket_for("127.0.0.1", 0.0) is None and limiter.bucket_for("::1", 0.0) is None
    assert first.admit(0.0) and not first.admit(0.5) and first.admit(1.6)


def test_slip_reply_is_a_tc_header_with_the_question() -> None:
    query = dns.message.make_query("Alice.id", "A", use_edns=0)
    reply = dns.message.from_wire(slip_reply(query.to_wire()))  # type: ignore[arg-type]
    assert reply.id == query.id and reply.flags & dns.flags.TC and reply.flags & dns.flags.QR
    assert reply.question[0].name.to_text() == "Alice.id." and not reply.answer
    assert slip_reply(b"\x00" * 5) is None
