"""The UDP reader's fast path to the compiled store keeps every rule of the full path.

Real loopback sockets and a real compiled store; the reactor is stood in for (the test calls
doRead once the datagrams are waiting), as in test_rate_limit.py.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from bns_resolver.answers import native
from bns_resolver.dns.access import AccessList
from bns_resolver.dns.forward_shape import shared_key
from bns_resolver.dns.querylog import QueryLog
from bns_resolver.dns.ratelimit import ResponseRateLimiter
from bns_resolver.dns.server import FastUdpServer
from bns_resolver.dns.wire import parse_fast
from bns_resolver.errors import EDE_NOT_READY
from tests.answers.pair import Ask, GatewayPair
from tests.support.dns_fixtures import IndexSpec, NameSpec, make_index

ZONE = b'$ORIGIN alice.id\n@ A 192.0.2.1\n_http._tcp URI 10 1 "https://gaia.example/alice.json"\n'


class NoReactor:
    def addReader(self, _reader: object) -> None:  # noqa: N802
        pass

    def removeReader(self, _reader: object) -> None:  # noqa: N802
        pass


def _pair(tmp_path: Path, **kwargs: object) -> GatewayPair:
    engine = make_index(tmp_path / "index", IndexSpec(names=[NameSpec("alice.id", ZONE)]))
    return GatewayPair(engine, tmp_path / "answers", **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True, params=["native", "python"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with the C reader (answers/_native.c) and with the Python loop it stands in for."""
    if request.param == "python":
        monkeypatch.setattr(native, "_native", None)
    elif not native.available():
        pytest.skip("the C extension was not built here")
    return str(request.param)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[GatewayPair]:
    made = _pair(tmp_path)  # `id` is BNS-only here: NXDOMAIN comes from the store
    yield made
    made.close()


@pytest.fixture
def client() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.settimeout(0.5)
    yield sock
    sock.close()


def _exchange(server: FastUdpServer, client: socket.socket, packets: list[bytes]) -> list[bytes]:
    """Send the packets in rounds of 20, letting the server read each round; every reply, in order."""
    port, replies = server.getHost().port, []
    for start in range(0, len(packets), 20):
        for packet in packets[start:start + 20]:
            client.sendto(packet, ("127.0.0.1", port))
        server.doRead()
        while True:
            try:
                replies.append(client.recv(65535))
            except (TimeoutError, BlockingIOError):
                break
            client.settimeout(0.05)
        client.settimeout(0.5)
    return replies


def _random_names(count: int) -> list[bytes]:
    rng = random.Random(7)
    return [Ask(f"n{rng.getrandbits(32):x}.alice.id", "A").packet(n) for n in range(count)]


def _allowed(server: FastUdpServer) -> None:
    server.gateway.access.allows("127.0.0.1")  # decided once, as the first query of a client does


def test_store_answers_are_the_full_paths_bytes_and_go_into_the_replay_table(pair: GatewayPair,
                                                                             client: socket.socket) -> None:
    server = FastUdpServer(pair.fast, "127.0.0.1", 0, NoReactor())
    _allowed(server)
    asks = [Ask("_http._tcp.alice.id", "URI"), Ask("alice.id", "A", edns=1232, do=True), Ask("nobody.id", "TXT"),
            Ask("x.alice.id", "A", edns=4096)]
    packets = [ask.packet(0x4000 + n) for n, ask in enumerate(asks)]
    try:
        replies = _exchange(server, client, packets)
        assert replies == [pair.slow.handle(packet, "127.0.0.1", tcp=False) for packet in packets]
        assert pair.answerer.answered == len(asks)  # the store answered each: the fast path ran
        assert len(pair.fast.replay) == len(asks) and len(pair.fast.answers) == 0
        # The same questions with new IDs: the replay table answers, the store is not asked again.
        repeats = [bytes([0x7F, n]) + packet[2:] for n, packet in enumerate(packets)]
        assert [r[2:] for r in _exchange(server, client, repeats)] == [r[2:] for r in replies]
        assert pair.answerer.answered == len(asks)
    finally:
        server.stopListening()


def test_rate_limiting_still_limits_store_answers(pair: GatewayPair, client: socket.socket) -> None:
    """Distinct random names (never a replay hit) at 10 responses/s, burst 20: about 20 answers."""
    limiter = ResponseRateLimiter(rate=10, burst=20, slip=0, exempt=())
    server = FastUdpServer(pair.fast, "127.0.0.1", 0, NoReactor(), rate_limiter=limiter)
    _allowed(server)
    try:
        replies = _exchange(server, client, _random_names(200))
    finally:
        server.stopListening()
    assert 20 <= len(replies) < 60, len(replies)
    assert all(dns.message.from_wire(r).rcode() == dns.rcode.NXDOMAIN for r in replies)
    assert pair.fast.stats["rate_limited"] == 200 - len(replies)


def test_a_refused_client_is_still_refused(pair: GatewayPair, client: socket.socket) -> None:
    pair.fast.access = AccessList(["192.0.2.0/24"])  # loopback not allowed
    server = FastUdpServer(pair.fast, "127.0.0.1", 0, NoReactor())
    try:
        replies = _exchange(server, client, [Ask("alice.id", "A").packet(n) for n in range(3)])
    finally:
        server.stopListening()
    assert [dns.message.from_wire(r).rcode() for r in replies] == [dns.rcode.REFUSED] * 3
    assert pair.answerer.answered == 0 and len(pair.fast.replay) == 0


def test_the_query_log_still_logs_store_answers(pair: GatewayPair, client: socket.socket,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    server = FastUdpServer(pair.fast, "127.0.0.1", 0, NoReactor(), query_log=QueryLog())
    _allowed(server)
    with caplog.at_level(logging.INFO, logger="bns_resolver.queries"):
        try:
            replies = _exchange(server, client, [Ask("alice.id", "A").packet(1), Ask("nobody.id", "A").packet(2)])
        finally:
            server.stopListening()
    assert len(replies) == 2
    lines = [r.getMessage() for r in caplog.records if r.name == "bns_resolver.queries"]
    assert len(lines) == 2 and all("source=store" in line for line in lines)
    assert "rcode=NOERROR" in lines[0] and "rcode=NXDOMAIN" in lines[1]


def test_a_namespace_not_ready_still_servfails(tmp_path: Path, client: socket.socket) -> None:
    reason = ["the index is 12 blocks behind"]
    pair = _pair(tmp_path, ready=lambda: reason[0])
    server = FastUdpServer(pair.fast, "127.0.0.1", 0, NoReactor())
    _allowed(server)
    try:
        (reply,) = _exchange(server, client, [Ask("nobody.id", "A", edns=1232).packet(1)])
        message = dns.message.from_wire(reply)
        assert message.rcode() == dns.rcode.SERVFAIL
        assert [(option.otype, option.code) for option in message.options] == [(15, EDE_NOT_READY)]  # EDE
        assert len(pair.fast.replay) == 0  # never replayed
        reason[0] = None  # type: ignore[call-overload]
        (reply,) = _exchange(server, client, [Ask("nobody.id", "A", edns=1232).packet(2)])
        assert dns.message.from_wire(reply).rcode() == dns.rcode.NXDOMAIN
    finally:
        server.stopListening()
        pair.close()


def test_a_cached_upstream_answer_under_the_namespace_comes_first(pair: GatewayPair) -> None:
    """handle probes the forward cache before the store; the fast path declines where it may hold one."""
    packet = Ask("nobody.id", "A").packet(1)
    assert pair.fast.store_answer_udp(packet) is not None
    fast = parse_fast(packet)
    assert fast is not None
    upstream = dns.message.make_response(dns.message.from_wire(packet))
    upstream.answer.append(dns.rrset.from_text("nobody.id.", 300, "IN", "A", "198.51.100.7"))
    pair.fast.forwarded.put(shared_key(fast), upstream.to_wire())
    assert "id" in pair.fast.forwarded.namespaces
    assert pair.fast.store_answer_udp(packet) is None  # the full path decides
    answer = pair.fast.handle(packet, "127.0.0.1", tcp=False)
    assert isinstance(answer, bytes) and b"\xc6\x33\x64\x07" in answer  # the upstream's address


def test_a_name_the_store_sends_upstream_takes_the_full_path(tmp_path: Path) -> None:
    pair = _pair(tmp_path, shared=True)  # bns-first: unknown names go upstream
    try:
        assert pair.fast.store_answer_udp(Ask("nobody.id", "A").packet(1)) is None
        assert pair.fast.store_answer_udp(Ask("alice.id", "A").packet(1)) is not None
    finally:
        pair.close()


def test_a_full_batch_with_garbage_between_gets_every_answer(pair: GatewayPair, client: socket.socket) -> None:
    """More datagrams than one recvmmsg takes, junk and cut packets among them: each query answered
    as the full path answers it, the junk dropped or answered FORMERR, nothing stops the reader."""
    server = FastUdpServer(pair.fast, "127.0.0.1", 0, NoReactor())
    _allowed(server)
    rng = random.Random(11)
    queries = [Ask(f"n{n}.alice.id" if n % 3 else "_http._tcp.alice.id", "URI" if n % 3 == 0 else "A").packet(n)
               for n in range(90)]
    # IDs no query uses, so each reply is told apart by its ID.
    junk = [b"", b"\x00", b"\xee\xef" + bytes(rng.getrandbits(8) for _ in range(40)), b"\xee\xee" + queries[1][2:15]]
    port = server.getHost().port
    try:
        for n, packet in enumerate(queries):
            client.sendto(packet, ("127.0.0.1", port))
            if n % 30 == 0:
                for piece in junk:
                    client.sendto(piece, ("127.0.0.1", port))
        server.doRead()
        replies = {}
        while True:
            try:
                reply = client.recv(65535)
            except (TimeoutError, BlockingIOError):
                break
            client.settimeout(0.05)
            replies.setdefault(reply[:2], reply)
    finally:
        server.stopListening()
    for packet in queries:
        assert replies.pop(packet[:2]) == pair.slow.handle(packet, "127.0.0.1", tcp=False)
    assert all(dns.message.from_wire(r).rcode() == dns.rcode.FORMERR for r in replies.values())


def test_an_ipv6_client_is_answered_at_its_own_address(pair: GatewayPair) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    server = FastUdpServer(pair.fast, "::1", 0, NoReactor())
    pair.fast.access.allows("::1")
    client6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    client6.settimeout(0.5)
    packet = Ask("_http._tcp.alice.id", "URI").packet(0x6666)
    try:
        client6.sendto(packet, ("::1", server.getHost().port))
        server.doRead()
        assert client6.recv(65535) == pair.slow.handle(packet, "::1", tcp=False)
    finally:
        client6.close()
        server.stopListening()


def test_an_icmp_error_on_the_socket_does_not_stop_reading(pair: GatewayPair, client: socket.socket) -> None:
    """A reply to a client that has gone queues ECONNREFUSED on the server's socket (Linux): the
    next read meets it first, and the queries behind it are still answered."""
    server = FastUdpServer(pair.fast, "127.0.0.1", 0, NoReactor())
    _allowed(server)
    gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    port = server.getHost().port
    try:
        gone.sendto(Ask("alice.id", "A").packet(1), ("127.0.0.1", port))
        gone.close()
        server.doRead()  # its reply meets a closed port: an ICMP port unreachable comes back
        packet = Ask("_http._tcp.alice.id", "URI").packet(2)
        client.sendto(packet, ("127.0.0.1", port))
        server.doRead()
        assert client.recv(65535) == pair.slow.handle(packet, "127.0.0.1", tcp=False)
    finally:
        server.stopListening()
