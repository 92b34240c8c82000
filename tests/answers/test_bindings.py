"""The store on the cases the real snapshot lacks: revoked, expired and zone-less names, zone
files missing, forged or unparsable, CNAME chains, subdomains shadowing their parent's zone,
and the namespace policies and readiness that decide whether the store may answer at all."""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.rcode
import pytest
from twisted.internet import defer

from bns_resolver.answers.format import name_to_wire
from bns_resolver.dns.policy import Mode
from bns_resolver.hashing import hash160_hex
from bns_resolver.index.db import open_index
from bns_resolver.zonefiles.store import store_verified
from tests.answers.pair import Ask, GatewayPair
from tests.support.dns_fixtures import IndexSpec, NameSpec, make_index

HEIGHT = 665750
CNAME_ZONE = b"""$ORIGIN cname.id
$TTL 600
@ URI 10 1 "https://example.com/"
@ A 192.0.2.1
@ TXT "v=apex"
www CNAME cname.id.
alias CNAME www.cname.id.
out CNAME example.com.
loop1 CNAME loop2.cname.id.
loop2 CNAME loop1.cname.id.
deep.a.b TXT "deep"
mail MX 10 mx.cname.id.
mx A 192.0.2.25
v6 AAAA 2001:db8::1
"""
SHADOW_ZONE = b"$ORIGIN shadow.id\n@ TXT \"name\"\nsub TXT \"from the name's zone\"\nx.sub TXT \"hidden\"\nother TXT \"kept\"\n"
SUB_ZONE = b"$ORIGIN sub.shadow.id\n@ TXT \"from the subdomain\"\n_http._tcp URI 10 1 \"https://gaia.example/sub.json\"\n"
FORGED = b"$ORIGIN forged.id\n@ A 203.0.113.66\n_http._tcp URI 10 1 \"https://evil.example/\"\n"
JSON_PROFILE = b'{"name": "legacy profile, not a zone file"}'
WWW_A_ZONE = b"$ORIGIN wwwa.id\n@ URI 10 1 \"https://example.com/\"\nwww A 192.0.2.9\n"
OWNER_A_ZONE = b"$ORIGIN hasa.id\n@ A 192.0.2.10\n"


def _spec() -> IndexSpec:
    return IndexSpec(height=HEIGHT, names=[
        NameSpec("cname.id", CNAME_ZONE),
        NameSpec("shadow.id", SHADOW_ZONE),
        NameSpec("wwwa.id", WWW_A_ZONE),
        NameSpec("hasa.id", OWNER_A_ZONE),
        NameSpec("revoked.id", b"$ORIGIN revoked.id\n@ A 192.0.2.3\n", revoked=True),
        NameSpec("expired.id", b"$ORIGIN expired.id\n@ A 192.0.2.4\n", expire_block=HEIGHT),
        NameSpec("living.id", b"$ORIGIN living.id\n@ A 192.0.2.5\n", expire_block=HEIGHT + 1),
        NameSpec("nozone.id"),
        NameSpec("missing.id", b"$ORIGIN missing.id\n@ A 192.0.2.6\n", store_zonefile=False),
        NameSpec("forged.id", FORGED, value_hash=hash160_hex(b"the bytes the chain committed to")),
        NameSpec("legacy.id", JSON_PROFILE),
    ], subdomains=[("sub.shadow.id", SUB_ZONE), ("sub.revoked.id", SUB_ZONE.replace(b"shadow", b"revoked"))])


@pytest.fixture
def pair(tmp_path: Path) -> GatewayPair:
    made = GatewayPair(make_index(tmp_path, _spec()), tmp_path / "answers")
    yield made
    made.close()


NAMES = ["cname.id", "www.cname.id", "alias.cname.id", "out.cname.id", "loop1.cname.id", "deep.a.b.cname.id",
         "a.b.cname.id", "b.cname.id", "mail.cname.id", "v6.cname.id", "nx.cname.id",
         "shadow.id", "sub.shadow.id", "x.sub.shadow.id", "_http._tcp.sub.shadow.id", "_tcp.sub.shadow.id",
         "other.shadow.id", "www.sub.shadow.id", "www.shadow.id",
         "wwwa.id", "www.wwwa.id", "hasa.id", "www.hasa.id",
         "revoked.id", "www.revoked.id", "sub.revoked.id", "_http._tcp.sub.revoked.id",
         "expired.id", "living.id", "nozone.id", "www.nozone.id", "x.nozone.id",
         "forged.id", "_http._tcp.forged.id", "legacy.id", "x.legacy.id"]
QTYPES = ("A", "AAAA", "URI", "TXT", "MX", "CNAME", "ANY", "NS")
WEB = (None, "192.0.2.80", "2001:db8::80")


@pytest.mark.parametrize("web", WEB)
def test_every_case_answers_as_the_slow_path(pair: GatewayPair, web: str | None) -> None:
    for name in NAMES:
        for rdtype in QTYPES:
            for edns in (None, 1232):
                fast, slow, from_store = pair.ask(Ask(name, rdtype, edns=edns, web=web))
                assert fast == slow, f"{name} {rdtype} web={web} edns={edns}:\n{fast!r}\n{slow!r}"
                assert from_store, f"{name} {rdtype}: not from the store"


def test_forged_and_unparsable_zone_files_never_reach_the_store(pair: GatewayPair) -> None:
    """Nothing of a zone file that fails hash160 is in the store: its names are SERVFAIL with EDE 24."""
    assert pair.store.get(name_to_wire("_http._tcp.forged.id")) is None
    assert b"203.0.113.66" not in _all_values(pair) and b"evil.example" not in _all_values(pair)
    for name in ("forged.id", "_http._tcp.forged.id", "legacy.id"):
        fast, _, from_store = pair.ask(Ask(name, "A", edns=1232))
        reply = dns.message.from_wire(fast)  # type: ignore[arg-type]
        assert from_store and reply.rcode() == dns.rcode.SERVFAIL and not reply.answer
        assert [(option.otype, option.code) for option in reply.options] == [(15, 24)]  # EDE: invalid data
    assert pair.store.meta["report"]["servfail"] == 2


def _all_values(pair: GatewayPair) -> bytes:
    with pair.store.env.begin() as txn:  # a test looks at every stored byte
        return b"".join(value for _, value in txn.cursor())


def test_a_zone_file_missing_at_compile_time_is_left_to_the_slow_path(pair: GatewayPair, tmp_path: Path) -> None:
    """It may arrive any moment (the fetcher does not bump the generation): the slow path looks each time."""
    fast, slow, from_store = pair.ask(Ask("missing.id", "A"))
    assert not from_store and fast == slow
    assert dns.message.from_wire(fast).rcode() == dns.rcode.SERVFAIL  # type: ignore[arg-type]
    engine = open_index(f"sqlite:///{tmp_path / 'index.sqlite'}")
    zonefile = b"$ORIGIN missing.id\n@ A 192.0.2.6\n"
    assert store_verified(engine, hash160_hex(zonefile), zonefile, "test")
    fast, _, from_store = pair.ask(Ask("missing.id", "A", edns=1232))
    assert not from_store and dns.message.from_wire(fast).answer[0][0].to_text() == "192.0.2.6"  # type: ignore[arg-type]


def test_bns_first_nxdomain_is_forwarded_without_sql(tmp_path: Path) -> None:
    """In a namespace shared with ICANN, a name BNS does not have goes upstream; the store knows it is absent."""
    made = GatewayPair(make_index(tmp_path, _spec()), tmp_path / "answers", shared=True)
    try:
        for name in ("nobody.id", "nx.cname.id"):
            before = made.answerer.answered
            fast = made.fast.handle(Ask(name, "A").packet(), "127.0.0.1", tcp=False)
            assert isinstance(fast, defer.Deferred) and made.answerer.answered == before
            fast.addErrback(lambda _f: None)
        fast, slow, from_store = made.ask(Ask("cname.id", "A"))
        assert from_store and fast == slow
    finally:
        made.close()


def test_bns_first_nxdomain_from_the_store_spends_the_namespace_fetch_budget(tmp_path: Path) -> None:
    """A flood of unknown names under a shared namespace becomes SERVFAIL (EDE 0), as on the slow path."""
    made = GatewayPair(make_index(tmp_path, _spec()), tmp_path / "answers", shared=True)
    made.fast.clock = lambda: 1000.0  # no refill while the flood runs, however slow the machine
    try:
        outcomes = []
        for i in range(300):
            answer = made.fast.handle(Ask(f"nobody{i}.id", "A").packet(), "127.0.0.1", tcp=False)
            if isinstance(answer, defer.Deferred):
                answer.addErrback(lambda _f: None)
                outcomes.append("forwarded")
            else:
                reply = dns.message.from_wire(answer)  # type: ignore[arg-type]
                assert reply.rcode() == dns.rcode.SERVFAIL and not reply.options  # no EDNS asked
                outcomes.append("servfail")
        assert outcomes[0] == "forwarded" and outcomes[-1] == "servfail"
        assert outcomes.count("forwarded") == 200  # the bucket's burst: twice the per-second rate
    finally:
        made.close()


def test_icann_first_and_not_ready_take_the_slow_path(tmp_path: Path) -> None:
    engine = make_index(tmp_path, _spec())
    made = GatewayPair(engine, tmp_path / "answers", modes={"id": Mode.ICANN_FIRST})
    made.fast.policy.configured_shared["id"] = True
    try:
        answer = made.fast.handle(Ask("cname.id", "A").packet(), "127.0.0.1", tcp=False)
        assert isinstance(answer, defer.Deferred) and made.answerer.answered == 0
        answer.addErrback(lambda _f: None)
    finally:
        made.close()
    lagging = GatewayPair(engine, tmp_path / "answers2", ready=lambda: "the index is 9 blocks behind")
    try:
        fast, slow, from_store = lagging.ask(Ask("cname.id", "A", edns=1232))
        assert not from_store and fast == slow
        assert dns.message.from_wire(fast).rcode() == dns.rcode.SERVFAIL  # type: ignore[arg-type]
    finally:
        lagging.close()


def test_an_index_change_switches_the_store_off(pair: GatewayPair) -> None:
    pair.fast.index_changed()
    fast, slow, from_store = pair.ask(Ask("cname.id", "A"))
    assert not from_store and fast == slow and not pair.answerer.active


def test_unusual_names_take_the_slow_path(pair: GatewayPair) -> None:
    """Labels dnslib and dnspython may spell differently (here a space) are not the store's to judge."""
    packet = Ask("x.cname.id", "A").packet().replace(b"\x01x", b"\x01 ")
    fast = pair.fast.handle(packet, "127.0.0.1", tcp=False)
    assert pair.answerer.answered == 0 and fast == pair.slow.handle(packet, "127.0.0.1", tcp=False)
