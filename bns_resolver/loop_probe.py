"""At start-up: does an upstream send our own BNS namespaces back to us (a forwarding loop)?

The usual cause is a dnsmasq or unbound in front of bns-resolver that routes the BNS
namespaces to it and is also its upstream: every name BNS does not know then bounces
between the two until it times out as SERVFAIL. We ask each upstream for a random name in
each namespace we may forward from; if that very name reaches our forwarder a second time,
it came back through our own listener.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from bns_resolver.dns.forwarder import UpstreamError, build_query
from bns_resolver.dns.policy import Mode

if TYPE_CHECKING:
    from bns_resolver.dns.gateway import Gateway

log = logging.getLogger(__name__)

TYPE_A = 1


def probe_forwarding_loop(gateway: Gateway) -> defer.Deferred[str | None]:
    """None when no probe came back; otherwise a one-line description of the loop."""
    forwarder = gateway.forwarder
    namespaces = [ns for ns in sorted(gateway.authority.namespaces)
                  if gateway.policy.effective_mode(ns) is not Mode.BNS_ONLY]
    if not forwarder.upstreams or not namespaces:
        return defer.succeed(None)
    token = f"bns-loop-check-{secrets.token_hex(4)}"
    returned: list[str] = []
    forward: Callable[[bytes], defer.Deferred[bytes]] = forwarder.forward

    def guarded(query: bytes) -> defer.Deferred[bytes]:
        if token.encode() in query.lower():  # the label's bytes appear verbatim in the wire form
            returned.append(token)
            return defer.fail(UpstreamError("forwarding loop: our own probe came back"))
        return forward(query)

    # Only for the probe's few seconds; afterwards the class method serves again, unwrapped.
    forwarder.forward = guarded  # type: ignore[method-assign]
    probes = [forward(build_query(f"{token}.{ns}.", TYPE_A)) for ns in namespaces]

    def verdict(_results: Any) -> str | None:
        del forwarder.forward
        if not returned:
            return None
        upstreams = ", ".join(f"{host}:{port}" for host, port in forwarder.upstreams)
        return (f"forwarding loop: the upstream {upstreams} sends names under {', '.join(namespaces)} back to "
                "this server; pass --upstream ADDR (or [dns] upstreams) with a resolver that does not route "
                "BNS namespaces here, e.g. your router's or a public one")

    return defer.DeferredList(probes, consumeErrors=True).addCallback(verdict)
