"""Asking the upstream whether each BNS namespace is also an ICANN TLD (the namespace policy's input).

A namespace the upstream answers for (NOERROR) is shared with ICANN; one it calls NXDOMAIN is
BNS's alone. An upstream that refuses, fails or stays silent says nothing: the last verdict
stays, and the namespace is asked again sooner than the next round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from bns_resolver.dns.forwarder import build_query, reply_rcode
from bns_resolver.dns.gateway import Gateway
from bns_resolver.dns.policy import TldStatus
from bns_resolver.dns.rcodes import RCODE_NXDOMAIN

if TYPE_CHECKING:
    from twisted.python.failure import Failure

log = logging.getLogger(__name__)

TYPE_SOA = 6
PROBE_RETRY_SECONDS = 60  # a TLD probe that got no verdict is asked again this soon, not next round


class TldProber:
    """One round asks every namespace not configured in [namespaces] icann_tlds; `on_round` runs
    after each round (and after each retry) with the verdicts recorded in the gateway's policy."""

    def __init__(self, gateway: Gateway, reactor: Any, on_round: Callable[[], None]) -> None:
        self.gateway = gateway
        self.reactor = reactor
        self.on_round = on_round
        self._retries: set[str] = set()  # namespaces whose failed probe is to be asked again

    def probe_namespaces(self) -> defer.Deferred[Any]:
        policy = self.gateway.policy
        probes = [self._probe(ns) for ns in sorted(self.gateway.authority.namespaces)
                  if ns not in policy.configured_shared]
        return defer.gatherResults(probes, consumeErrors=True).addCallback(lambda _results: self.on_round())

    def _probe(self, namespace: str) -> defer.Deferred[None]:
        def classify(reply: bytes) -> None:
            if reply_rcode(reply) == RCODE_NXDOMAIN:
                self.gateway.policy.record_probe(namespace, TldStatus.BNS_ONLY)
            elif reply_rcode(reply) == 0:
                # NOERROR, with the SOA or even without data: the name exists upstream.
                self.gateway.policy.record_probe(namespace, TldStatus.SHARED)

        def failed(failure: Failure) -> None:
            # An upstream that refuses, fails or stays silent says nothing about the TLD: keep what we
            # knew, say why in `status`, and ask again sooner than the next hourly round.
            reason = failure.getErrorMessage().splitlines()[0]
            log.info("could not ask upstream whether TLD %s exists (asking again in %d s): %s",
                     namespace, PROBE_RETRY_SECONDS, reason)
            self.gateway.policy.record_probe_failure(namespace, reason)
            self._retry_later(namespace)

        deferred = self.gateway.forwarder.forward(build_query(namespace + ".", TYPE_SOA))
        return deferred.addCallbacks(classify, failed)

    def _retry_later(self, namespace: str) -> None:
        if namespace in self._retries:
            return
        self._retries.add(namespace)

        def retry() -> None:
            self._retries.discard(namespace)
            self._probe(namespace).addCallback(lambda _result: self.on_round())

        self.reactor.callLater(PROBE_RETRY_SECONDS, retry)
