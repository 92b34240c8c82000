"""BNS answers: from a query name to records of a verified zone file, or a reason why not.

Pure lookups over the index and the zone cache; no sockets and no wire format.
The server turns an Outcome into DNS bytes (see responses.py) and applies the
namespace policy (see policy.py) to decide what to forward.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from bns_resolver.dns.zones import (
    EDE_NOT_READY,
    VerifiedZone,
    ZoneCache,
    ZoneUnavailable,
)
from bns_resolver.index.lookup import IndexReader
from bns_resolver.zonefiles.parse import ParsedZone, ZoneRecord

ZERO_HASH = "0" * 40
APEX_TTL = 3600
NEGATIVE_TTL = 300
MAX_CNAME_CHAIN = 8
TYPE_CNAME = dns.rdatatype.CNAME
TYPE_ANY = dns.rdatatype.ANY


class Outcome(enum.Enum):
    ANSWER = "answer"
    NODATA = "nodata"
    NXDOMAIN = "nxdomain"
    SERVFAIL = "servfail"
    NOT_MINE = "not-mine"


@dataclass(frozen=True)
class AuthorityResult:
    outcome: Outcome
    namespace: str | None = None
    records: tuple[ZoneRecord, ...] = ()
    ede_code: int | None = None
    ede_text: str = ""


# None when ready; otherwise the reason names cannot be vouched for (e.g. sync lag).
ReadinessCheck = Callable[[], str | None]


class BnsAuthority:
    def __init__(self, index: IndexReader, zones: ZoneCache, *, ready: ReadinessCheck | None = None) -> None:
        self._index = index
        self._zones = zones
        self._ready = ready or (lambda: None)
        self.namespaces: frozenset[str] = frozenset()
        self.subdomain_domains: frozenset[str] = frozenset()
        self.height: int | None = None
        self.refresh()

    def refresh(self) -> None:
        """Re-read what changes per block: the namespace set and the indexed height."""
        self.namespaces = self._index.namespace_ids()
        self.height = self._index.indexed_height()
        # Most names have no subdomains: skip that lookup for them.
        self.subdomain_domains = self._index.subdomain_domains()
        self._zones.clear()

    def namespace_of(self, qname: str) -> str | None:
        tld = qname.rsplit(".", 1)[-1]
        return tld if tld in self.namespaces else None

    def lookup(self, qname: str, qtype: int) -> AuthorityResult:
        namespace = self.namespace_of(qname)
        if namespace is None:
            return AuthorityResult(Outcome.NOT_MINE)
        if qname == namespace:
            return self._apex(namespace, qtype)
        not_ready = self._ready()
        if not_ready:
            return _servfail(namespace, EDE_NOT_READY, not_ready)
        try:
            zone = self._zone_for(qname)
        except ZoneUnavailable as exc:
            return _servfail(namespace, exc.info_code, exc.reason)
        if zone is None:
            return AuthorityResult(Outcome.NXDOMAIN, namespace)
        return _answer_from_zone(zone, qname, qtype, namespace)

    def _zone_for(self, qname: str) -> VerifiedZone | None:
        """The verified zone that owns qname: a subdomain's own, else the on-chain name's."""
        labels = qname.split(".")
        if len(labels) >= 3 and ".".join(labels[-2:]) in self.subdomain_domains:
            subdomain_fqn = ".".join(labels[-3:])
            subdomain = self._index.subdomain(subdomain_fqn)
            if subdomain is not None:
                return self._zones.get(subdomain_fqn, subdomain.zonefile_hash)
        fqn = ".".join(labels[-2:])
        record = self._index.name(fqn)
        if record is None or record.revoked or self._expired(record.expire_block):
            return None
        if not record.value_hash or record.value_hash == ZERO_HASH:
            # Registered without a zone file: the name exists, nothing under it does.
            return VerifiedZone(fqn, "", ParsedZone(fqn, ())) if qname == fqn else None
        return self._zones.get(fqn, record.value_hash)

    def _apex(self, namespace: str, qtype: int) -> AuthorityResult:
        records = [r for r in apex_records(namespace, self.height) if qtype in (r.rdtype, TYPE_ANY)]
        if not records:
            return AuthorityResult(Outcome.NODATA, namespace)
        return AuthorityResult(Outcome.ANSWER, namespace, tuple(records[:1] if qtype == TYPE_ANY else records))

    def _expired(self, expire_block: int | None) -> bool:
        return expire_block is not None and self.height is not None and self.height >= expire_block


def _servfail(namespace: str, code: int, text: str) -> AuthorityResult:
    return AuthorityResult(Outcome.SERVFAIL, namespace, ede_code=code, ede_text=text)


def _answer_from_zone(zone: VerifiedZone, qname: str, qtype: int, namespace: str) -> AuthorityResult:
    owners = zone.zone.owners()
    chain: list[ZoneRecord] = []
    current = qname
    for _ in range(MAX_CNAME_CHAIN):
        at_owner = owners.get(current)
        if at_owner is None:
            break
        matches = _select(at_owner, qtype)
        if matches:
            return AuthorityResult(Outcome.ANSWER, namespace, tuple(chain + matches))
        cnames = [r for r in at_owner if r.rdtype == TYPE_CNAME]
        if not cnames:
            break
        chain.append(cnames[0])
        current = cnames[0].rdata.target.to_text(omit_final_dot=True).lower()  # type: ignore[attr-defined]
    if chain:
        # The chain leaves the zone or ends without data: give what we have, clients follow.
        return AuthorityResult(Outcome.ANSWER, namespace, tuple(chain))
    if qname == zone.name or qname in owners or any(o.endswith("." + qname) for o in owners):
        return AuthorityResult(Outcome.NODATA, namespace)
    return AuthorityResult(Outcome.NXDOMAIN, namespace)


def _select(records: list[ZoneRecord], qtype: int) -> list[ZoneRecord]:
    if qtype == TYPE_ANY:
        # RFC 8482: answer ANY with one RRset rather than everything.
        first_type = records[0].rdtype
        return [r for r in records if r.rdtype == first_type]
    return [r for r in records if r.rdtype == qtype]


@functools.lru_cache(maxsize=256)
def apex_records(namespace: str, height: int | None) -> tuple[ZoneRecord, ...]:
    """The synthesized SOA and NS of a namespace; the serial follows the indexed height."""
    soa = dns.rdata.from_text(
        dns.rdataclass.IN, dns.rdatatype.SOA,
        f"localhost. hostmaster.{namespace}. {height or 1} 3600 600 86400 {NEGATIVE_TTL}",
    )
    ns = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NS, "localhost.")
    return (ZoneRecord(namespace, dns.rdatatype.SOA, APEX_TTL, soa), ZoneRecord(namespace, dns.rdatatype.NS, APEX_TTL, ns))
