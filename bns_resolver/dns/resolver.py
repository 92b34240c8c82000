"""The one interface every stage of the gateway answers through: `resolve(query) -> resolution`.

As in twisted.names' resolver chain, each stage is a small object the gateway composes:
the BNS authority (dns/authority.py) answers with an `AuthorityResult`; the namespace
policies (dns/routing.py) answer with one too, or with `Forward` when the upstreams should
be asked; the forwarder (dns/forwarder.py) answers with the upstream's reply, later.
No stage knows DNS wire answers: dns/rcodes.py maps outcomes to rcodes and EDE codes,
and dns/responses.py builds the bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from twisted.internet import defer

from bns_resolver.zonefiles.parse import ZoneRecord


@dataclass(frozen=True, slots=True)
class Query:
    """One question as the resolvers see it."""

    qname: str  # lower case, without the final dot
    qtype: int
    wire: bytes  # the query as it goes upstream (one canonical shape for plain queries, see forward_shape)
    web_address: str | None = None  # what address-less BNS names answer A/AAAA with, if anything


class Outcome(enum.Enum):
    ANSWER = "answer"
    NODATA = "nodata"
    NXDOMAIN = "nxdomain"
    SERVFAIL = "servfail"
    NOT_MINE = "not-mine"


@dataclass(frozen=True)
class AuthorityResult:
    """An answer of our own: records, a negative answer under `namespace`, or a failure with its EDE."""

    outcome: Outcome
    namespace: str | None = None
    records: tuple[ZoneRecord, ...] = ()
    ede_code: int | None = None
    ede_text: str = ""


@dataclass(frozen=True, slots=True)
class Forward:
    """Not ours to answer alone: ask the upstreams.

    With a `fallback`, the upstream's NXDOMAIN, or no verdict at all, is answered by the
    fallback instead (icann-first namespaces: BNS fills in what the ICANN root lacks).
    """

    fallback: Resolver | None = None


Resolution = AuthorityResult | Forward | defer.Deferred[bytes]


class Resolver(Protocol):
    def resolve(self, query: Query) -> Resolution: ...
