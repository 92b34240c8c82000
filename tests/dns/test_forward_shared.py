"""One upstream fetch per question, whatever shape clients ask it in (issue 10 item 4).

A real server process forwards to a stub upstream on loopback that counts what it is
asked; clients are dnspython over UDP and TCP, with and without EDNS.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rrset
import pytest

from bns_resolver.dns.forward_shape import client_reply, core_reply, shared_key, upstream_query
from bns_resolver.dns.wire import parse_fast
from tests.support.dns_fixtures import ServerProcess
from tests.support.upstream_stub import StubUpstream, start_stub

RECORDS = {
    ("example.com", "A"): ["example.com. 300 IN A 93.184.216.34"],
    ("wide.example.com", "TXT"): [f'wide.example.com. 300 IN TXT "{"y" * 200}-{i}"' for i in range(8)],
}


@pytest.fixture
def served(tmp_path: Path, stubs: list[StubUpstream]) -> Iterator[tuple[ServerProcess, StubUpstream]]:
    stubs.append(start_stub(RECORDS))
    server = ServerProcess(tmp_path / "data", upstreams=[stubs[0].address]).start()
    yield server, stubs[0]
    server.stop()


def test_clients_of_every_shape_share_one_upstream_fetch(served: tuple[ServerProcess, StubUpstream]) -> None:
    """No EDNS, EDNS 1232, EDNS 4096 with DO=0, TCP, and another letter case: one upstream query."""
    server, upstream = served
    plain = server.query("example.com", "A", use_edns=False)
    small = server.query("example.com", "A", use_edns=0, payload=1232)
    large = server.query("Example.COM", "A", use_edns=0, payload=4096)
    over_tcp = server.query("EXAMPLE.com", "A", tcp=True)
    assert upstream.count("example.com") == 1
    for reply in (plain, small, large, over_tcp):
        assert reply.rcode() == dns.rcode.NOERROR
        assert "93.184.216.34" in reply.answer[0].to_text()
    assert plain.edns == -1 and small.edns == 0 and large.edns == 0  # OPT only for clients that sent one
    assert large.question[0].name.to_text() == "Example.COM."  # each client sees its own 0x20 case
    assert over_tcp.question[0].name.to_text() == "EXAMPLE.com."


def test_forwarded_answers_say_recursion_available_and_not_authoritative(
        served: tuple[ServerProcess, StubUpstream]) -> None:
    """The stub sets AA (dnslib's reply() does); we are not the authority for example.com."""
    server, _upstream = served
    for reply in (server.query("example.com", "A"), server.query("example.com", "A")):  # fetched, then cached
        assert reply.flags & dns.flags.RA
        assert not reply.flags & dns.flags.AA
        assert reply.flags & dns.flags.RD  # copied from the query


def test_a_large_answer_truncates_for_small_udp_and_is_whole_over_tcp(
        served: tuple[ServerProcess, StubUpstream]) -> None:
    """Over 512 bytes: a client without EDNS gets TC and no records, then its TCP retry is answered
    from the same cached fetch, and an EDNS 4096 client gets it whole over UDP."""
    server, upstream = served
    truncated = server.query("wide.example.com", "TXT", use_edns=False)
    assert truncated.flags & dns.flags.TC and not truncated.answer
    whole_tcp = server.query("wide.example.com", "TXT", tcp=True)
    whole_udp = server.query("wide.example.com", "TXT", use_edns=0, payload=4096)
    assert len(whole_tcp.answer[0]) == 8 and len(whole_udp.answer[0]) == 8
    assert not whole_udp.flags & dns.flags.TC
    assert upstream.count("wide.example.com") == 1


def test_checking_disabled_is_part_of_the_question(served: tuple[ServerProcess, StubUpstream]) -> None:
    """CD=1 and CD=0 are different upstream questions: data fetched without validation never
    reaches a client that asked for it."""
    server, upstream = served
    server.query("example.com", "A", flags=dns.flags.RD | dns.flags.CD)
    server.query("example.com", "A", flags=dns.flags.RD)
    assert upstream.count("example.com") == 2


# -- the byte-level reshaping, against dnspython's reading of the result -----------------------------
def _query(name: str, *, edns: int | None, payload: int = 1232) -> bytes:
    message = dns.message.make_query(name, "A", use_edns=edns if edns is not None else False, payload=payload)
    return message.to_wire()


def _upstream_reply(query_wire: bytes, *, answers: int, with_opt: bool) -> bytes:
    query = dns.message.from_wire(query_wire)
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.AA
    for i in range(answers):
        reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", f"192.0.2.{i + 1}"))
    if not with_opt:
        reply.use_edns(False)
    return reply.to_wire()


def test_core_reply_strips_the_upstream_opt_and_fixes_the_flags() -> None:
    fast = parse_fast(_query("example.com", edns=0))
    assert fast is not None
    canonical = upstream_query(fast)
    core = core_reply(_upstream_reply(canonical, answers=2, with_opt=True))
    assert core is not None
    parsed = dns.message.from_wire(core)
    assert parsed.edns == -1 and parsed.flags & dns.flags.RA and not parsed.flags & dns.flags.AA
    assert len(parsed.answer[0]) == 2


def test_client_reply_gives_each_client_its_own_shape() -> None:
    fast_edns = parse_fast(_query("Example.com", edns=0, payload=1232))
    fast_plain = parse_fast(_query("EXAMPLE.COM", edns=None))
    assert fast_edns is not None and fast_plain is not None
    assert shared_key(fast_edns) == shared_key(fast_plain)
    core = core_reply(_upstream_reply(upstream_query(fast_edns), answers=40, with_opt=True))
    assert core is not None
    edns_query, plain_query = _query("Example.com", edns=0), _query("EXAMPLE.COM", edns=None)
    fast_edns, fast_plain = parse_fast(edns_query), parse_fast(plain_query)
    assert fast_edns is not None and fast_plain is not None
    for wire, fast in ((edns_query, fast_edns), (plain_query, fast_plain)):
        reply = dns.message.from_wire(client_reply(core, wire, fast, tcp=False))
        assert reply.id == struct.unpack_from("!H", wire)[0]
        assert reply.question[0].name.to_text() == dns.message.from_wire(wire).question[0].name.to_text()
    edns_reply = dns.message.from_wire(client_reply(core, edns_query, fast_edns, tcp=False))
    assert edns_reply.edns == 0 and len(edns_reply.answer[0]) == 40  # 40 A records fit in 1232 bytes
    plain_reply = dns.message.from_wire(client_reply(core, plain_query, fast_plain, tcp=False))
    assert plain_reply.edns == -1 and plain_reply.flags & dns.flags.TC and not plain_reply.answer  # not in 512
    tcp_reply = dns.message.from_wire(client_reply(core, plain_query, fast_plain, tcp=True))
    assert len(tcp_reply.answer[0]) == 40 and not tcp_reply.flags & dns.flags.TC


def test_replies_the_bytes_path_cannot_reshape_are_refused_by_it() -> None:
    """A record after the OPT, or an extended rcode in it: left to the library path."""
    fast = parse_fast(_query("example.com", edns=0))
    assert fast is not None
    reply = bytearray(_upstream_reply(upstream_query(fast), answers=1, with_opt=True))
    opt_ttl_at = len(reply) - 6  # the OPT is last: its TTL's first byte is the extended rcode
    reply[opt_ttl_at] = 1
    assert core_reply(bytes(reply)) is None
    assert core_reply(b"\x00" * 5) is None
    assert core_reply(bytes(reply[:-3])) is None  # cut short
