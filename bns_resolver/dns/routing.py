"""The namespace policies as one resolver: who answers a question, BNS or the upstreams.

`NamespaceRouter.resolve` answers through the gateway's Resolver interface (resolver.py):
an `AuthorityResult` when the answer is ours (BNS's records, the DoH canary's NXDOMAIN,
SERVFAIL while the index cannot vouch for a name, SERVFAIL when a namespace's upstream
budget is spent), or `Forward` when the upstreams should be asked. It asks the authority
only where the namespace's mode (policy.py) lets BNS answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from bns_resolver.dns.authority import BnsAuthority, ReadinessCheck
from bns_resolver.dns.policy import Mode, NamespacePolicy
from bns_resolver.dns.ratelimit import Bucket
from bns_resolver.dns.rcodes import over_fetch_limit
from bns_resolver.dns.resolver import AuthorityResult, Forward, Outcome, Query
from bns_resolver.errors import EDE_NOT_READY

# Firefox turns its default DNS-over-HTTPS off when this name does not resolve, so the
# system resolver (us) stays in charge of its lookups.
DOH_CANARY = "use-application-dns.net"
# A flood of random names under a namespace shared with an ICANN TLD must not become an upstream flood.
UNKNOWN_NAME_FETCH_RATE = 100.0
FORWARD = Forward()


class NamespaceRouter:
    """`ready` says whether the index may vouch for names (None when it may); `bns_namespaces`
    names namespaces known to be BNS's before the index has seen them (from the snapshot or the
    chain profile): while the index is not ready, names under them get SERVFAIL, never an
    upstream's NXDOMAIN. `fetch_rate` bounds the upstream fetches per second for names BNS does
    not know, per namespace (0: no limit)."""

    def __init__(self, authority: BnsAuthority, policy: NamespacePolicy, *, ready: ReadinessCheck,
                 bns_namespaces: Callable[[], Collection[str]] = frozenset, doh_canary: bool = True,
                 fetch_rate: float = UNKNOWN_NAME_FETCH_RATE) -> None:
        self.authority = authority
        self.policy = policy
        self.doh_canary = doh_canary
        self._not_ready = ready
        self._bns_namespaces = bns_namespaces
        self._fetch_rate = fetch_rate
        self._fetch_budgets: dict[str, Bucket] = {}
        self.clock: Callable[[], float] = time.monotonic  # the fetch budgets' clock (tests freeze it)

    def resolve(self, query: Query) -> AuthorityResult | Forward:
        qname = query.qname
        if self.doh_canary and qname == DOH_CANARY:
            return AuthorityResult(Outcome.NXDOMAIN)
        namespace = self.authority.namespace_of(qname)
        if namespace is None:
            return self._not_yet_indexed(qname)
        mode = self.policy.effective_mode(namespace)
        if qname == namespace and mode is not Mode.BNS_ONLY:
            return FORWARD  # a shared TLD's apex is ICANN's
        if mode is Mode.ICANN_FIRST:
            return self.unknown_name(namespace, Forward(fallback=self.authority))
        result = self.authority.resolve(query)
        if mode is Mode.BNS_FIRST and result.outcome is Outcome.NXDOMAIN:
            return self.unknown_name(namespace)
        return result

    def unknown_name(self, namespace: str, forward: Forward = FORWARD) -> AuthorityResult | Forward:
        """Forward a name BNS does not know, within its namespace's budget of upstream fetches."""
        return forward if self._may_fetch(namespace) else over_fetch_limit(namespace)

    def _may_fetch(self, namespace: str) -> bool:
        """Spend one of the namespace's upstream fetches for names BNS does not know."""
        if self._fetch_rate <= 0:
            return True
        now = self.clock()
        budget = self._fetch_budgets.get(namespace)
        if budget is None:
            budget = self._fetch_budgets[namespace] = Bucket(self._fetch_rate, 2 * self._fetch_rate, now)
        return budget.admit(now)

    def _not_yet_indexed(self, qname: str) -> AuthorityResult | Forward:
        """Forward a name outside BNS, unless it may be a BNS name the syncing index has not reached.

        A fresh sync reveals namespaces as it goes: until it is ready, a namespace the
        configuration or the chain knows as BNS's may simply not be indexed yet, and the
        upstream's NXDOMAIN for `alice.<namespace>` would be a false one.
        """
        tld = qname.rsplit(".", 1)[-1]
        not_ready = self._not_ready() if self._is_bns_namespace(tld) else None
        if not not_ready:
            return FORWARD
        if qname == tld and self.policy.effective_mode(tld) is not Mode.BNS_ONLY:
            return FORWARD  # a shared TLD's apex is ICANN's
        return AuthorityResult(Outcome.SERVFAIL, tld, ede_code=EDE_NOT_READY, ede_text=not_ready)

    def _is_bns_namespace(self, tld: str) -> bool:
        policy = self.policy
        return tld in policy.configured_shared or tld in policy.modes or tld in self._bns_namespaces()
