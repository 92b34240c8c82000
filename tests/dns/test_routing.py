"""dns/routing.py: the namespace policies decide, through resolve(Query), who answers a question."""

from __future__ import annotations

from pathlib import Path

import pytest

from bns_resolver.dns.authority import BnsAuthority
from bns_resolver.dns.policy import Mode, NamespacePolicy
from bns_resolver.dns.resolver import AuthorityResult, Forward, Outcome, Query
from bns_resolver.dns.routing import DOH_CANARY, NamespaceRouter
from bns_resolver.dns.zones import ZoneCache
from bns_resolver.errors import EDE_NOT_READY, EDE_OTHER
from bns_resolver.index.lookup import IndexReader
from tests.support.dns_fixtures import IndexSpec, NameSpec, make_index

A = 1


@pytest.fixture
def authority(tmp_path: Path) -> BnsAuthority:
    reader = IndexReader(make_index(tmp_path, IndexSpec(names=[NameSpec("alice.id", b"@ A 192.0.2.1\n")])))
    return BnsAuthority(reader, ZoneCache(reader))


def router(authority: BnsAuthority, mode: Mode | None = None, *, shared: bool = True, not_ready: str | None = None,
           fetch_rate: float = 0, bns_namespaces: frozenset[str] = frozenset()) -> NamespaceRouter:
    policy = NamespacePolicy(configured_shared={"id": shared}, modes={"id": mode} if mode else {})
    return NamespaceRouter(authority, policy, ready=lambda: not_ready, bns_namespaces=lambda: bns_namespaces,
                           fetch_rate=fetch_rate)


def resolve(router: NamespaceRouter, qname: str) -> AuthorityResult | Forward:
    return router.resolve(Query(qname, A, b""))


def test_bns_first_answers_known_names_and_forwards_unknown_ones(authority: BnsAuthority) -> None:
    shared = router(authority, Mode.BNS_FIRST)
    known = resolve(shared, "alice.id")
    assert isinstance(known, AuthorityResult) and known.outcome is Outcome.ANSWER
    assert resolve(shared, "nobody.id") == Forward()
    assert resolve(shared, "id") == Forward()  # a shared TLD's apex is ICANN's
    assert resolve(shared, "example.com") == Forward()


def test_a_namespace_only_bns_has_is_authoritative(authority: BnsAuthority) -> None:
    only = router(authority, shared=False)
    assert resolve(only, "nobody.id") == AuthorityResult(Outcome.NXDOMAIN, "id")
    apex = resolve(only, "id")
    assert isinstance(apex, AuthorityResult) and apex.outcome is Outcome.NODATA


def test_icann_first_forwards_with_the_authority_as_fallback(authority: BnsAuthority) -> None:
    decided = resolve(router(authority, Mode.ICANN_FIRST), "alice.id")
    assert isinstance(decided, Forward) and decided.fallback is authority


def test_the_doh_canary_does_not_exist_unless_turned_off(authority: BnsAuthority) -> None:
    assert resolve(router(authority), DOH_CANARY) == AuthorityResult(Outcome.NXDOMAIN)
    off = router(authority)
    off.doh_canary = False
    assert resolve(off, DOH_CANARY) == Forward()


def test_a_bns_namespace_not_indexed_yet_is_servfail_while_not_ready(authority: BnsAuthority) -> None:
    syncing = router(authority, not_ready="syncing", bns_namespaces=frozenset({"podcast"}))
    assert resolve(syncing, "bob.podcast") == AuthorityResult(Outcome.SERVFAIL, "podcast", ede_code=EDE_NOT_READY,
                                                              ede_text="syncing")
    assert resolve(syncing, "podcast") == Forward()  # the apex of a shared TLD stays ICANN's
    assert resolve(syncing, "example.com") == Forward()  # not BNS's at all
    ready = router(authority, bns_namespaces=frozenset({"podcast"}))
    assert resolve(ready, "bob.podcast") == Forward()


def test_unknown_names_spend_the_namespaces_upstream_budget(authority: BnsAuthority) -> None:
    """5 fetches a second, bursts of 10: on a frozen clock the 11th unknown name gets SERVFAIL."""
    limited = router(authority, Mode.BNS_FIRST, fetch_rate=5)
    limited.clock = lambda: 1000.0
    decided = [resolve(limited, f"r{i}.id") for i in range(12)]
    assert decided[:10] == [Forward()] * 10
    over = decided[10]
    assert isinstance(over, AuthorityResult) and (over.outcome, over.ede_code) == (Outcome.SERVFAIL, EDE_OTHER)
    assert "too many upstream queries" in over.ede_text
    known = resolve(limited, "alice.id")
    assert isinstance(known, AuthorityResult) and known.outcome is Outcome.ANSWER  # BNS names are not limited
    limited.clock = lambda: 1001.0  # a second later, 5 more
    assert resolve(limited, "r99.id") == Forward()
