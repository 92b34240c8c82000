"""Upstreams that refuse, fail, lose packets, send huge replies or absurd TTLs, through a real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
from dnslib import RCODE

from tests.support.dns_fixtures import ServerProcess
from tests.support.upstream_stub import StubUpstream, start_stub

RECORDS = {
    ("example.com", "A"): ["example.com. 300 IN A 93.184.216.34"],
    ("huge.example.com", "TXT"): [f'huge.example.com. 300 IN TXT "{"z" * 240}-{i}"' for i in range(48)],
}
for _i in range(8):
    RECORDS[(f"host{_i}.example.com", "A")] = [f"host{_i}.example.com. 300 IN A 192.0.2.{_i + 1}"]


def _stub(**behaviour: object) -> StubUpstream:
    return start_stub(RECORDS, **behaviour)


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def _serve(tmp_path: Path, servers: list[ServerProcess], *upstreams: StubUpstream,
           addresses: tuple[str, ...] = (), config: str | None = None) -> ServerProcess:
    server = ServerProcess(tmp_path / "data", upstreams=[u.address for u in upstreams] + list(addresses),
                           config=config)
    servers.append(server)
    return server.start()


def _ede_codes(reply: dns.message.Message) -> list[int]:
    return [o.code for o in reply.options if o.otype == dns.edns.EDE]


@pytest.mark.parametrize("rcode", [RCODE.REFUSED, RCODE.SERVFAIL, RCODE.FORMERR, RCODE.NOTIMP])
def test_failing_upstream_rcode_becomes_servfail_with_ede(tmp_path: Path, stubs: list[StubUpstream],
                                                          servers: list[ServerProcess], rcode: int) -> None:
    """An upstream's REFUSED (or SERVFAIL, FORMERR, NOTIMP) is not relayed: SERVFAIL + EDE 22, asked once."""
    stubs.append(_stub(rcode=rcode))
    server = _serve(tmp_path, servers, stubs[0])
    reply = server.query("example.com", "A", use_edns=0)
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert _ede_codes(reply) == [22]
    assert stubs[0].count("example.com") == 1  # an upstream that cannot help is not asked again


def test_refusing_upstream_is_skipped_for_the_next(tmp_path: Path, stubs: list[StubUpstream],
                                                   servers: list[ServerProcess]) -> None:
    """REFUSED from the first upstream makes the gateway ask the second one, whose answer the client gets."""
    stubs.extend([_stub(rcode=RCODE.REFUSED), _stub()])
    server = _serve(tmp_path, servers, *stubs)
    reply = server.query("example.com", "A")
    assert reply.rcode() == dns.rcode.NOERROR
    assert "93.184.216.34" in reply.answer[0].to_text()
    assert stubs[0].count("example.com") == 1 and stubs[1].count("example.com") == 1


def test_unreachable_upstream_is_a_network_error(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """Nothing listening at the upstream's port (ICMP unreachable): SERVFAIL with EDE 23 Network Error."""
    server = _serve(tmp_path, servers)  # upstream 127.0.0.1:9, where nothing listens
    reply = server.query("example.com", "A", use_edns=0)
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert _ede_codes(reply) == [23]


def test_lost_packets_are_retried_within_the_deadline(tmp_path: Path, stubs: list[StubUpstream],
                                                      servers: list[ServerProcess]) -> None:
    """An upstream that drops every other query still answers every name, on the retry."""
    stubs.append(_stub(drop_every=2))
    server = _serve(tmp_path, servers, stubs[0])
    for i in range(8):
        reply = server.query(f"host{i}.example.com", "A", timeout=5)
        assert reply.rcode() == dns.rcode.NOERROR, reply
        assert f"192.0.2.{i + 1}" in reply.answer[0].to_text()
    assert any(stubs[0].count(f"host{i}.example.com") == 2 for i in range(8))


def test_udp_reply_over_8k_is_read_whole(tmp_path: Path, stubs: list[StubUpstream],
                                         servers: list[ServerProcess]) -> None:
    """A 12 KB reply over UDP arrives whole (not cut at 8,192 bytes) and reaches a TCP client intact."""
    stubs.append(_stub())
    server = _serve(tmp_path, servers, stubs[0])
    reply = server.query("huge.example.com", "TXT", tcp=True)
    assert reply.rcode() == dns.rcode.NOERROR
    assert len(reply.answer[0]) == 48
    assert {t for t, n, _ in stubs[0].queries if n == "huge.example.com"} == {"udp"}


def test_ttl_with_top_bit_set_is_zero_and_not_cached(tmp_path: Path, stubs: list[StubUpstream],
                                                     servers: list[ServerProcess]) -> None:
    """RFC 2181 §8: a TTL of 2**31 + 5 is treated as 0, so the answer is relayed with TTL 0 and not cached."""
    stubs.append(_stub(ttl=2**31 + 5))
    server = _serve(tmp_path, servers, stubs[0])
    for _ in range(2):
        reply = server.query("example.com", "A")
        assert reply.answer[0].ttl == 0
    assert stubs[0].count("example.com") == 2


def test_long_ttls_are_capped(tmp_path: Path, stubs: list[StubUpstream], servers: list[ServerProcess]) -> None:
    """A week-long TTL is given out and cached for at most a day."""
    stubs.append(_stub(ttl=7 * 86400))
    server = _serve(tmp_path, servers, stubs[0])
    assert server.query("example.com", "A").answer[0].ttl == 86400
    assert server.query("example.com", "A").answer[0].ttl <= 86400
    assert stubs[0].count("example.com") == 1


def test_forwarding_logs_no_line_per_query(tmp_path: Path, stubs: list[StubUpstream],
                                           servers: list[ServerProcess]) -> None:
    """Forwarded queries leave no Twisted port lines ("starting on N", "UDP Port N Closed") in the log."""
    stubs.append(_stub())
    server = _serve(tmp_path, servers, stubs[0])
    for i in range(8):
        assert server.query(f"host{i}.example.com", "A").rcode() == dns.rcode.NOERROR
    log = server.log()
    assert "Attempt starting on" not in log
    assert "UDP Port" not in log


def test_checking_disabled_answers_are_not_served_to_validating_clients(
        tmp_path: Path, stubs: list[StubUpstream], servers: list[ServerProcess]) -> None:
    """An answer fetched with CD=1 is cached apart: a CD=0 client gets a fresh upstream answer."""
    stubs.append(_stub())
    server = _serve(tmp_path, servers, stubs[0])
    unchecked = dns.message.make_query("example.com", "A")
    unchecked.flags |= dns.flags.CD
    for _ in range(2):
        reply = dns.query.udp(unchecked, "127.0.0.1", port=server.port, timeout=3)
        assert reply.flags & dns.flags.CD
    assert stubs[0].count("example.com") == 1  # CD=1 clients share their cache entry
    for _ in range(2):
        reply = server.query("example.com", "A")
        assert not reply.flags & dns.flags.CD
    assert stubs[0].count("example.com") == 2


def test_expired_answer_is_served_stale_when_every_upstream_fails(
        tmp_path: Path, stubs: list[StubUpstream], servers: list[ServerProcess]) -> None:
    """RFC 8767: once the upstream refuses everything, the expired answer comes back with TTL 30 and EDE 3."""
    stubs.append(_stub(ttl=1))
    server = _serve(tmp_path, servers, stubs[0])
    for tcp in (False, True):  # answers are cached per transport
        assert server.query("example.com", "A", use_edns=0, tcp=tcp).answer[0].ttl == 1
    stubs[0].behaviour.rcode = RCODE.REFUSED
    time.sleep(1.2)  # let the one-second TTL run out
    for tcp in (False, True):
        reply = server.query("EXAMPLE.com", "A", use_edns=0, tcp=tcp)
        assert reply.rcode() == dns.rcode.NOERROR
        assert "93.184.216.34" in reply.answer[0].to_text() and reply.answer[0].ttl == 30
        assert reply.question[0].name.to_text() == "EXAMPLE.com."
        assert _ede_codes(reply) == [3]
    assert server.query("other.example.com", "A", use_edns=0).rcode() == dns.rcode.SERVFAIL  # nothing stale


def test_serve_stale_can_be_turned_off(
        tmp_path: Path, stubs: list[StubUpstream], servers: list[ServerProcess]) -> None:
    """`[limits] serve_stale_for = 0`: an expired answer is not served once the upstream fails."""
    stubs.append(_stub(ttl=1))
    server = _serve(tmp_path, servers, stubs[0], config="[limits]\nserve_stale_for = 0\n")
    assert server.query("example.com", "A", use_edns=0).answer[0].ttl == 1
    stubs[0].behaviour.rcode = RCODE.REFUSED
    time.sleep(1.2)  # let the one-second TTL run out
    reply = server.query("example.com", "A", use_edns=0)
    assert reply.rcode() == dns.rcode.SERVFAIL and not reply.answer


def test_cached_ttl_is_capped_by_max_cache_ttl(
        tmp_path: Path, stubs: list[StubUpstream], servers: list[ServerProcess]) -> None:
    """`[limits] max_cache_ttl = 1`: an hour-long answer is handed out with TTL 1 and fetched again after it."""
    stubs.append(_stub(ttl=3600))
    server = _serve(tmp_path, servers, stubs[0], config="[limits]\nmax_cache_ttl = 1\n")
    assert server.query("example.com", "A", use_edns=0).answer[0].ttl <= 1
    assert stubs[0].count("example.com") == 1
    time.sleep(1.2)  # past the capped lifetime
    assert server.query("example.com", "A", use_edns=0).rcode() == dns.rcode.NOERROR
    assert stubs[0].count("example.com") == 2


def test_upstream_deadline_is_configurable(
        tmp_path: Path, stubs: list[StubUpstream], servers: list[ServerProcess]) -> None:
    """An upstream that never answers: SERVFAIL after `[limits] upstream_deadline`, not the 2.5 s default."""
    stubs.append(_stub(silent=True))
    server = _serve(tmp_path, servers, stubs[0],
                    config="[limits]\nupstream_attempt_timeout = 0.2\nupstream_deadline = 0.5\n")
    started = time.monotonic()
    reply = server.query("example.com", "A", use_edns=0, timeout=5)
    waited = time.monotonic() - started
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert waited < 2.0, waited  # the default deadline would hold the answer for 2.5 s
    assert stubs[0].count("example.com") >= 2  # the attempt timeout led to a retry within the deadline


@pytest.mark.parametrize("lie", ["wrong_question_first", "wrong_source_first"])
def test_lying_replies_are_ignored(tmp_path: Path, stubs: list[StubUpstream], servers: list[ServerProcess],
                                   lie: str) -> None:
    """A reply with the right ID for another question, or with the right ID and question from a port
    that is not the upstream's, arrives first; the client gets the upstream's real answer."""
    stubs.append(_stub(**{lie: True}))
    server = _serve(tmp_path, servers, stubs[0])
    reply = server.query("example.com", "A")
    assert reply.rcode() == dns.rcode.NOERROR
    assert [rr.to_text() for rr in reply.answer[0]] == ["93.184.216.34"]
    assert reply.question[0].name.to_text() == "example.com."


def test_ttl_zero_answers_are_relayed_and_not_cached(tmp_path: Path, stubs: list[StubUpstream],
                                                     servers: list[ServerProcess]) -> None:
    """TTL 0 means use once (RFC 1035 §3.2.1): relayed as is, and the next query asks again."""
    stubs.append(_stub(ttl=0))
    server = _serve(tmp_path, servers, stubs[0])
    first = server.query("example.com", "A")
    second = server.query("example.com", "A")
    assert first.answer[0].ttl == 0 and second.answer[0].ttl == 0
    assert stubs[0].count("example.com") == 2
