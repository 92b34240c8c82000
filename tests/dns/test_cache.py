"""Answer caches: bounded size, TTL countdown, RFC 2308 negative lifetimes."""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.flags
import dns.rrset
import pytest

from bns_resolver.dns.cache import MAX_POSITIVE_TTL, AnswerCache, ForwardCache, cache_lifetime, capped_ttls


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reply(name: str = "example.com", ttl: int = 300, rcode: int = 0, soa: tuple[int, int] | None = None) -> bytes:
    response = dns.message.make_response(dns.message.make_query(name, "A"))
    response.set_rcode(rcode)
    if rcode == 0 and soa is None:
        response.answer.append(dns.rrset.from_text(name + ".", ttl, "IN", "A", "192.0.2.1"))
    if soa is not None:
        response.authority.append(dns.rrset.from_text(
            "com.", soa[0], "IN", "SOA", f"ns.com. admin.com. 1 7200 3600 86400 {soa[1]}"))
    return response.to_wire()


def test_answer_cache_is_bounded() -> None:
    """The oldest entry goes when the cache is full."""
    cache = AnswerCache(max_entries=2)
    for key in ("a", "b", "c"):
        cache.put((key,), key.encode())
    assert list(cache.entries) == [("b",), ("c",)]


def test_a_full_cache_drops_its_oldest_eighth_at_once() -> None:
    """One sweep per eighth of the size: dropping one per insertion walks the dict's dead slots each time."""
    cache = AnswerCache(max_entries=16)
    for key in range(17):
        cache.put((key,), b"x")
    assert list(cache.entries) == [(key,) for key in range(2, 17)]


def test_forwarded_ttls_count_down_and_expire() -> None:
    """Served TTLs shrink with age; the entry disappears when the smallest TTL runs out."""
    clock = FakeClock()
    cache = ForwardCache(10, clock=clock, stale_for=0)
    cache.put(("k",), _reply(ttl=30))
    clock.now += 10.5
    aged = cache.get(("k",))
    assert aged is not None and dns.message.from_wire(aged).answer[0].ttl == 20
    clock.now += 20
    assert cache.get(("k",)) is None and len(cache) == 0


def test_negative_lifetime_follows_rfc2308() -> None:
    """NXDOMAIN lives min(SOA TTL, SOA MINIMUM); without an SOA it is not cached."""
    assert cache_lifetime(_reply(rcode=dns.rcode.NXDOMAIN, soa=(900, 60))) == 60
    assert cache_lifetime(_reply(rcode=dns.rcode.NXDOMAIN, soa=(30, 600))) == 30
    assert cache_lifetime(_reply(rcode=dns.rcode.NXDOMAIN)) == 0
    assert cache_lifetime(_reply(soa=(900, 120))) == 120  # NODATA: NOERROR, no answer, an SOA


def test_positive_lifetime_is_the_shortest_ttl_read_from_the_bytes() -> None:
    """The smallest answer TTL, at most a day; truncated replies, failures and short packets are not cached."""
    response = dns.message.make_response(dns.message.make_query("example.com", "A"))
    response.answer.append(dns.rrset.from_text("example.com.", 600, "IN", "CNAME", "www.example.com."))
    response.answer.append(dns.rrset.from_text("www.example.com.", 45, "IN", "A", "192.0.2.1"))
    assert cache_lifetime(response.to_wire()) == 45
    assert cache_lifetime(_reply(ttl=10 * MAX_POSITIVE_TTL)) == MAX_POSITIVE_TTL
    response.flags |= dns.flags.TC
    assert cache_lifetime(response.to_wire()) == 0
    assert cache_lifetime(_reply(rcode=dns.rcode.REFUSED)) == 0
    with pytest.raises(ValueError):
        cache_lifetime(_reply()[:-3])


def test_servfail_is_not_cached() -> None:
    """Failures upstream must not stick."""
    cache = ForwardCache(10, clock=FakeClock())
    cache.put(("k",), _reply(rcode=dns.rcode.SERVFAIL))
    assert cache.get(("k",)) is None


def test_expired_answers_are_kept_for_serve_stale() -> None:
    """Past its TTL an answer is no longer served, but stays available as stale (TTL 30) for stale_for s."""
    clock = FakeClock()
    cache = ForwardCache(10, clock=clock, stale_for=3600)
    cache.put(("k",), _reply(ttl=30))
    clock.now += 31
    assert cache.get(("k",)) is None
    stale = cache.stale(("k",))
    assert stale is not None and dns.message.from_wire(stale).answer[0].ttl == 30
    clock.now += 3600
    assert cache.get(("k",)) is None and cache.stale(("k",)) is None and len(cache) == 0


def test_ttls_are_capped_and_top_bit_ttls_are_zero() -> None:
    """RFC 2181 §8: 2**31 and above means 0; everything else is capped at the maximum."""
    assert dns.message.from_wire(capped_ttls(_reply(ttl=2**31 + 5), 86400)).answer[0].ttl == 0
    assert dns.message.from_wire(capped_ttls(_reply(ttl=900000), 86400)).answer[0].ttl == 86400
    same = _reply(ttl=300)
    assert capped_ttls(same, 86400) is same
