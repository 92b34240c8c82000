"""Outcomes to DNS rcodes and Extended DNS Errors (RFC 8914): the one place that maps them.

Resolvers (resolver.py) say what happened in their own terms; the DNS edge asks here
which rcode and which EDE (code, text) a client gets for it.
"""

from __future__ import annotations

from bns_resolver.dns.resolver import AuthorityResult, Outcome
from bns_resolver.errors import EDE_NO_REACHABLE_AUTHORITY, EDE_OTHER, EDE_STALE_ANSWER

RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4
RCODE_REFUSED = 5
RCODE_BADVERS = 16  # RFC 6891: an extended rcode, carried half in the OPT record

Ede = tuple[int, str]  # (RFC 8914 INFO-CODE, EXTRA-TEXT)

_OUTCOME_RCODES = {
    Outcome.ANSWER: RCODE_NOERROR,
    Outcome.NODATA: RCODE_NOERROR,
    Outcome.NXDOMAIN: RCODE_NXDOMAIN,
    Outcome.SERVFAIL: RCODE_SERVFAIL,
}

STALE_ANSWER: Ede = (EDE_STALE_ANSWER, "upstreams failed; serving an expired answer")  # RFC 8767


def rcode_of(outcome: Outcome) -> int:
    """The rcode of an answer of our own; NOT_MINE has none (it is never answered as ours)."""
    try:
        return _OUTCOME_RCODES[outcome]
    except KeyError:
        raise ValueError(f"{outcome.value} is not an answer of our own") from None


def ede_of(result: AuthorityResult) -> Ede | None:
    """The EDE a result carries, if any."""
    return (result.ede_code, result.ede_text) if result.ede_code is not None else None


def over_fetch_limit(namespace: str) -> AuthorityResult:
    """SERVFAIL for a name under `namespace` when its budget of upstream fetches is spent."""
    return AuthorityResult(Outcome.SERVFAIL, namespace, ede_code=EDE_OTHER,
                           ede_text=f"too many upstream queries for unknown names under {namespace}; try again")


def upstream_failure(ede_code: int) -> Ede:
    """The EDE of a SERVFAIL when no upstream answered (the forwarder's UpstreamError gives the code)."""
    text = "no upstream could answer" if ede_code == EDE_NO_REACHABLE_AUTHORITY else "upstream network error"
    return ede_code, text
