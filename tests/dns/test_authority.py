"""dns/authority.py: from a query name to the records of a verified zone file, or why not.

The authority answers through the Resolver interface (`resolve(Query)`); records are
checked by their wire rdata, as the gateway sends them.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bns_resolver.dns.authority import APEX_TTL, WEB_ADDRESS_TTL, BnsAuthority
from bns_resolver.dns.resolver import AuthorityResult, Outcome, Query
from bns_resolver.dns.zones import ZoneCache
from bns_resolver.errors import EDE_INVALID_DATA, EDE_NO_REACHABLE_AUTHORITY, EDE_NOT_READY
from bns_resolver.hashing import hash160_hex
from bns_resolver.index.lookup import IndexReader
from tests.support.dns_fixtures import IndexSpec, NameSpec, make_index

A, NS, CNAME, SOA, TXT, AAAA, ANY = 1, 2, 5, 6, 16, 28, 255
HEIGHT = 665750
ALICE = (b"@ A 192.0.2.1\nwww CNAME @\nmail CNAME mx\nmx A 192.0.2.25\nhost.deep TXT \"deep\"\n"
         b"elsewhere CNAME example.com.\n")
SUB = b"@ A 203.0.113.5\n"


@pytest.fixture
def authority(tmp_path: Path) -> BnsAuthority:
    spec = IndexSpec(
        names=[NameSpec("alice.id", ALICE), NameSpec("textonly.id", b"@ TXT \"no address\"\n"),
               NameSpec("revoked.id", b"@ A 192.0.2.9\n", revoked=True),
               NameSpec("expired.id", b"@ A 192.0.2.9\n", expire_block=HEIGHT),
               NameSpec("bare.id"), NameSpec("missing.id", b"@ A 192.0.2.3\n", store_zonefile=False),
               NameSpec("forged.id", b"@ A 192.0.2.66\n", value_hash=hash160_hex(b"the chain's bytes")),
               NameSpec("host.id", b"@ TXT \"domain\"\n")],
        subdomains=[("sub.host.id", SUB)], height=HEIGHT)
    reader = IndexReader(make_index(tmp_path, spec))
    return BnsAuthority(reader, ZoneCache(reader))


def ask(authority: BnsAuthority, qname: str, qtype: int, web_address: str | None = None) -> AuthorityResult:
    return authority.resolve(Query(qname, qtype, b"", web_address))


def rdata(result: AuthorityResult) -> list[tuple[str, int, bytes]]:
    return [(r.owner, r.rdtype, r.rdata.to_wire()) for r in result.records]


def test_a_name_answers_its_zone_files_records(authority: BnsAuthority) -> None:
    result = ask(authority, "alice.id", A)
    assert (result.outcome, result.namespace) == (Outcome.ANSWER, "id")
    assert rdata(result) == [("alice.id", A, socket.inet_aton("192.0.2.1"))]


def test_cnames_are_followed_inside_the_zone_and_given_as_is_outside_it(authority: BnsAuthority) -> None:
    chain = ask(authority, "mail.alice.id", A)
    assert rdata(chain) == [("mail.alice.id", CNAME, b"\x02mx\x05alice\x02id\x00"),
                            ("mx.alice.id", A, socket.inet_aton("192.0.2.25"))]
    outside = ask(authority, "elsewhere.alice.id", A)
    assert outside.outcome is Outcome.ANSWER
    assert rdata(outside) == [("elsewhere.alice.id", CNAME, b"\x07example\x03com\x00")]


def test_nodata_for_a_name_without_that_type_and_for_an_empty_non_terminal(authority: BnsAuthority) -> None:
    assert ask(authority, "alice.id", AAAA).outcome is Outcome.NODATA
    assert ask(authority, "deep.alice.id", TXT).outcome is Outcome.NODATA  # only host.deep.alice.id has data
    assert ask(authority, "nowhere.alice.id", A).outcome is Outcome.NXDOMAIN
    assert ask(authority, "nobody.id", A) == AuthorityResult(Outcome.NXDOMAIN, "id")


def test_any_is_answered_with_one_rrset(authority: BnsAuthority) -> None:
    """RFC 8482: ANY gets one RRset, not the whole owner."""
    assert rdata(ask(authority, "alice.id", ANY)) == [("alice.id", A, socket.inet_aton("192.0.2.1"))]


def test_revoked_and_expired_names_do_not_exist(authority: BnsAuthority) -> None:
    assert ask(authority, "revoked.id", A).outcome is Outcome.NXDOMAIN
    assert ask(authority, "expired.id", A).outcome is Outcome.NXDOMAIN


def test_a_name_without_a_zone_file_exists_with_nothing_under_it(authority: BnsAuthority) -> None:
    """Its owner is known, so the name exists; its www. exists only where a web address stands in."""
    assert ask(authority, "bare.id", A).outcome is Outcome.NODATA
    assert ask(authority, "www.bare.id", A).outcome is Outcome.NXDOMAIN
    assert rdata(ask(authority, "www.bare.id", A, web_address="192.0.2.80")) == [
        ("www.bare.id", A, socket.inet_aton("192.0.2.80"))]
    assert ask(authority, "other.bare.id", A, web_address="192.0.2.80").outcome is Outcome.NXDOMAIN


def test_a_subdomain_answers_from_its_own_zone_file(authority: BnsAuthority) -> None:
    assert rdata(ask(authority, "sub.host.id", A)) == [("sub.host.id", A, socket.inet_aton("203.0.113.5"))]
    assert ask(authority, "other.host.id", A).outcome is Outcome.NXDOMAIN
    assert ask(authority, "host.id", TXT).outcome is Outcome.ANSWER


def test_zone_files_missing_or_forged_are_servfail_with_their_ede(authority: BnsAuthority) -> None:
    missing = ask(authority, "missing.id", A)
    assert (missing.outcome, missing.ede_code) == (Outcome.SERVFAIL, EDE_NO_REACHABLE_AUTHORITY)
    forged = ask(authority, "forged.id", A)
    assert (forged.outcome, forged.ede_code) == (Outcome.SERVFAIL, EDE_INVALID_DATA)
    assert forged.records == () and "hash mismatch" in forged.ede_text


def test_an_index_that_is_not_ready_vouches_for_no_name(tmp_path: Path) -> None:
    reader = IndexReader(make_index(tmp_path, IndexSpec(names=[NameSpec("alice.id", ALICE)])))
    authority = BnsAuthority(reader, ZoneCache(reader), ready=lambda: "12 blocks behind the chain tip")
    result = ask(authority, "alice.id", A)
    assert result == AuthorityResult(Outcome.SERVFAIL, "id", ede_code=EDE_NOT_READY,
                                     ede_text="12 blocks behind the chain tip")
    assert authority.not_ready() == "12 blocks behind the chain tip"


def test_the_namespace_apex_has_a_synthesized_soa_and_ns(authority: BnsAuthority) -> None:
    soa = ask(authority, "id", SOA)
    assert len(soa.records) == 1 and soa.records[0].ttl == APEX_TTL
    serial = int.from_bytes(soa.records[0].rdata.to_wire()[-20:-16], "big")
    assert serial == HEIGHT
    assert rdata(ask(authority, "id", NS)) == [("id", NS, b"\x09localhost\x00")]
    assert ask(authority, "id", A).outcome is Outcome.NODATA


def test_names_outside_the_served_namespaces_are_not_mine(authority: BnsAuthority) -> None:
    assert ask(authority, "example.com", A) == AuthorityResult(Outcome.NOT_MINE)


def test_a_web_address_stands_in_for_names_without_addresses(authority: BnsAuthority) -> None:
    web = ask(authority, "textonly.id", A, web_address="192.0.2.80")
    assert rdata(web) == [("textonly.id", A, socket.inet_aton("192.0.2.80"))]
    assert web.records[0].ttl == WEB_ADDRESS_TTL
    assert ask(authority, "www.textonly.id", A, web_address="192.0.2.80").outcome is Outcome.ANSWER
    assert ask(authority, "textonly.id", AAAA, web_address="192.0.2.80").outcome is Outcome.NODATA
    six = ask(authority, "textonly.id", AAAA, web_address="2001:db8::80")
    assert rdata(six) == [("textonly.id", AAAA, socket.inet_pton(socket.AF_INET6, "2001:db8::80"))]
    own = ask(authority, "alice.id", A, web_address="192.0.2.80")  # the owner's own address wins
    assert rdata(own) == [("alice.id", A, socket.inet_aton("192.0.2.1"))]
