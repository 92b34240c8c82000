"""dns/responses.py (with rcodes.py): outcomes to wire answers, read back by dnspython."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dnslib
import pytest

from bns_resolver.dns.authority import NEGATIVE_TTL
from bns_resolver.dns.rcodes import RCODE_BADVERS, ede_of, rcode_of, upstream_failure
from bns_resolver.dns.resolver import AuthorityResult, Outcome
from bns_resolver.dns.responses import EDE_TEXT_MAX, authority_response, error_response, finish, udp_payload
from bns_resolver.dns.wire import MAX_UDP_PAYLOAD, MIN_UDP_PAYLOAD
from bns_resolver.errors import EDE_NETWORK_ERROR, EDE_NO_REACHABLE_AUTHORITY, EDE_NOT_READY
from bns_resolver.zonefiles.parse import parse_zonefile

HEIGHT = 700000


def request(name: str, rdtype: str, **edns: object) -> tuple[dns.message.Message, dnslib.DNSRecord]:
    query = dns.message.make_query(name, rdtype, **edns)  # type: ignore[arg-type]
    return query, dnslib.DNSRecord.parse(query.to_wire())


def answer_wire(query: dns.message.Message, record: dnslib.DNSRecord, result: AuthorityResult, *,
                tcp: bool = False) -> dns.message.Message:
    wire = finish(authority_response(record, result, height=HEIGHT), record, tcp=tcp, ede=ede_of(result))
    reply = dns.message.from_wire(wire)
    assert reply.id == query.id and reply.question == query.question
    return reply


def records(text: bytes, name: str = "alice.id") -> AuthorityResult:
    return AuthorityResult(Outcome.ANSWER, "id", parse_zonefile(text, name).records)


def test_an_answer_is_authoritative_and_carries_the_records() -> None:
    query, record = request("alice.id", "A")
    reply = answer_wire(query, record, records(b"@ 600 A 192.0.2.1\n@ 600 A 192.0.2.2\n"))
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA and reply.flags & dns.flags.RA and reply.flags & dns.flags.RD
    [rrset] = reply.answer
    assert rrset.ttl == 600 and sorted(r.address for r in rrset) == ["192.0.2.1", "192.0.2.2"]
    assert reply.authority == [] and reply.edns < 0  # no OPT for a client without EDNS


@pytest.mark.parametrize("outcome, rcode", [(Outcome.NXDOMAIN, dns.rcode.NXDOMAIN),
                                            (Outcome.NODATA, dns.rcode.NOERROR)])
def test_negative_answers_carry_the_namespace_soa(outcome: Outcome, rcode: int) -> None:
    """RFC 2308: the SOA in the authority section, its TTL the negative TTL, its serial the height."""
    query, record = request("nobody.id", "A")
    reply = answer_wire(query, record, AuthorityResult(outcome, "id"))
    assert reply.rcode() == rcode and reply.answer == []
    [soa] = reply.authority
    assert soa.name.to_text() == "id." and soa.ttl == NEGATIVE_TTL
    first = soa[0]
    assert isinstance(first, dns.rdtypes.ANY.SOA.SOA) and first.serial == HEIGHT and first.minimum == NEGATIVE_TTL


def test_servfail_carries_its_extended_error_to_an_edns_client() -> None:
    query, record = request("alice.id", "A", use_edns=0, payload=1232, want_dnssec=True)
    result = AuthorityResult(Outcome.SERVFAIL, "id", ede_code=EDE_NOT_READY, ede_text="x" * 500)
    reply = answer_wire(query, record, result)
    assert reply.rcode() == dns.rcode.SERVFAIL and reply.answer == [] and reply.authority == []
    assert reply.payload == MAX_UDP_PAYLOAD and reply.ednsflags & dns.flags.DO  # DO mirrored
    [ede] = reply.options
    assert isinstance(ede, dns.edns.EDEOption)
    assert ede.code == EDE_NOT_READY and ede.text == "x" * EDE_TEXT_MAX


def test_servfail_without_edns_has_no_opt() -> None:
    query, record = request("alice.id", "A")
    reply = answer_wire(query, record, AuthorityResult(Outcome.SERVFAIL, "id", ede_code=EDE_NOT_READY))
    assert reply.rcode() == dns.rcode.SERVFAIL and reply.edns < 0


def test_an_answer_too_big_for_udp_is_truncated_and_whole_over_tcp() -> None:
    zone = b"".join(b"@ TXT \"%s\"\n" % (b"%03d" % i + b"y" * 60) for i in range(12))  # ~800 bytes of TXT
    query, record = request("alice.id", "TXT")
    truncated = answer_wire(query, record, records(zone))
    assert truncated.flags & dns.flags.TC and truncated.answer == []
    whole = answer_wire(query, record, records(zone), tcp=True)
    assert not whole.flags & dns.flags.TC and len(whole.answer[0]) == 12
    big_query, big_record = request("alice.id", "TXT", use_edns=0, payload=1232)
    fits = answer_wire(big_query, big_record, records(zone))  # fits the client's 1232 bytes
    assert not fits.flags & dns.flags.TC and len(fits.answer[0]) == 12


def test_error_responses_are_not_authoritative_and_badvers_is_extended() -> None:
    query, record = request("alice.id", "A", use_edns=0)
    refused = dns.message.from_wire(finish(error_response(record, dns.rcode.REFUSED), record, tcp=True))
    assert refused.rcode() == dns.rcode.REFUSED and not refused.flags & dns.flags.AA
    badvers = dns.message.from_wire(finish(error_response(record, 0), record, tcp=True,
                                           extended_rcode=RCODE_BADVERS))
    assert badvers.rcode() == dns.rcode.BADVERS


def test_udp_payload_follows_the_clients_edns_within_bounds() -> None:
    assert udp_payload(None) == MIN_UDP_PAYLOAD
    for asked, used in ((100, MIN_UDP_PAYLOAD), (1232, 1232), (65000, MAX_UDP_PAYLOAD)):
        _query, record = request("alice.id", "A", use_edns=0, payload=asked)
        assert udp_payload(record.ar[0]) == used


def test_rcodes_and_upstream_failures_map_in_one_place() -> None:
    assert [rcode_of(o) for o in (Outcome.ANSWER, Outcome.NODATA, Outcome.NXDOMAIN, Outcome.SERVFAIL)] == [
        dns.rcode.NOERROR, dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL]
    with pytest.raises(ValueError, match="not-mine"):
        rcode_of(Outcome.NOT_MINE)
    assert ede_of(AuthorityResult(Outcome.NXDOMAIN, "id")) is None
    assert upstream_failure(EDE_NO_REACHABLE_AUTHORITY) == (22, "no upstream could answer")
    assert upstream_failure(EDE_NETWORK_ERROR) == (23, "upstream network error")
