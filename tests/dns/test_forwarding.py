"""Forwarding through a real server process to stub upstreams that misbehave on purpose."""

from __future__ import annotations

import time
from pathlib import Path

import dns.edns
import dns.flags
import dns.rcode

from tests.support.dns_fixtures import ServerProcess
from tests.support.upstream_stub import StubUpstream, start_stub

RECORDS = {
    ("example.com", "A"): ["example.com. 300 IN A 93.184.216.34"],
    ("wide.example.com", "TXT"): [f'wide.example.com. 300 IN TXT "{"y" * 200}-{i}"' for i in range(8)],
}


def _stub(**behaviour: object) -> StubUpstream:
    return start_stub(RECORDS, **behaviour)



def _serve(tmp_path: Path, *upstreams: StubUpstream) -> ServerProcess:
    return ServerProcess(tmp_path / "data", upstreams=[u.address for u in upstreams]).start()


def test_positive_answers_are_cached(tmp_path: Path, stubs: list[StubUpstream]) -> None:
    """The second identical query is answered from the cache, with a TTL no larger than the first."""
    stubs.append(_stub())
    server = _serve(tmp_path, stubs[0])
    try:
        first = server.query("example.com", "A")
        second = server.query("EXAMPLE.com", "A")
        assert stubs[0].count("example.com") == 1
        assert second.answer[0].ttl <= first.answer[0].ttl
        assert second.question[0].name.to_text() == "EXAMPLE.com."
    finally:
        server.stop()


def test_negative_answers_are_cached(tmp_path: Path, stubs: list[StubUpstream]) -> None:
    """NXDOMAIN with an SOA is cached for the SOA's negative TTL (RFC 2308)."""
    stubs.append(_stub())
    server = _serve(tmp_path, stubs[0])
    try:
        assert server.query("nothing.example.com", "A").rcode() == dns.rcode.NXDOMAIN
        assert server.query("nothing.example.com", "A").rcode() == dns.rcode.NXDOMAIN
        assert stubs[0].count("nothing.example.com") == 1
    finally:
        server.stop()


def test_dead_upstream_gives_servfail_within_the_deadline(tmp_path: Path, stubs: list[StubUpstream]) -> None:
    """A silent upstream costs at most the forwarding deadline, then SERVFAIL with an EDE."""
    stubs.append(_stub(silent=True))
    server = _serve(tmp_path, stubs[0])
    try:
        started = time.monotonic()
        reply = server.query("example.com", "A", timeout=6, use_edns=0)
        elapsed = time.monotonic() - started
        assert reply.rcode() == dns.rcode.SERVFAIL
        assert any(o.otype == dns.edns.EDE for o in reply.options)
        assert elapsed < 3.5
        assert server.alive()
    finally:
        server.stop()


def test_failover_to_the_next_upstream(tmp_path: Path, stubs: list[StubUpstream]) -> None:
    """When the first upstream is silent, the second one answers."""
    stubs.extend([_stub(silent=True), _stub()])
    server = _serve(tmp_path, *stubs)
    try:
        reply = server.query("example.com", "A", timeout=5)
        assert "93.184.216.34" in reply.answer[0].to_text()
        assert stubs[0].count("example.com") == 1 and stubs[1].count("example.com") == 1
    finally:
        server.stop()


def test_forged_reply_with_wrong_id_is_ignored(tmp_path: Path, stubs: list[StubUpstream]) -> None:
    """A reply whose ID does not match is dropped; the genuine one that follows is used."""
    stubs.append(_stub(forge_first=True))
    server = _serve(tmp_path, stubs[0])
    try:
        reply = server.query("example.com", "A")
        assert "93.184.216.34" in reply.answer[0].to_text()
        assert "6.6.6.6" not in reply.to_text()
        assert "does not match" in server.log()
    finally:
        server.stop()


def test_truncated_upstream_reply_is_retried_over_tcp(tmp_path: Path, stubs: list[StubUpstream]) -> None:
    """TC from upstream makes the gateway ask again over TCP and return the whole answer."""
    stubs.append(_stub(truncate_udp=True))
    server = _serve(tmp_path, stubs[0])
    try:
        reply = server.query("wide.example.com", "TXT", tcp=True)
        assert len(reply.answer[0]) == 8
        transports = {t for t, n, _ in stubs[0].queries if n == "wide.example.com"}
        assert transports == {"udp", "tcp"}
        over_udp = server.query("wide.example.com", "TXT")
        assert over_udp.flags & dns.flags.TC
    finally:
        server.stop()


def test_udp_clients_never_get_more_than_their_payload(tmp_path: Path, stubs: list[StubUpstream]) -> None:
    """An answer fetched whole over TCP for a UDP client is not replayed to later UDP clients."""
    stubs.append(_stub(truncate_udp=True))
    server = _serve(tmp_path, stubs[0])
    try:
        for _ in range(3):
            reply = server.query("wide.example.com", "TXT")
            assert reply.flags & dns.flags.TC and not reply.answer
        assert len(server.query("wide.example.com", "TXT", tcp=True).answer[0]) == 8
    finally:
        server.stop()
