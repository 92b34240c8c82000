"""BNS answers: from a query name to records of a verified zone file, or a reason why not.

Pure lookups over the index and the zone cache; no sockets and no wire format.
It answers through the gateway's one Resolver interface (resolver.py); the namespace
policies (routing.py) decide what is forwarded instead, rcodes.py maps outcomes to
rcodes and EDE codes, and responses.py builds the bytes.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from bns_resolver.dns.loglimit import LogLimiter
from bns_resolver.dns.resolver import AuthorityResult, Outcome, Query
from bns_resolver.dns.zones import VerifiedZone, ZoneCache
from bns_resolver.errors import EDE_NOT_READY, EDE_OTHER, IndexDamagedError, IndexUnavailable, ZoneUnavailable
from bns_resolver.index.lookup import IndexReader
from bns_resolver.zonefiles.parse import ParsedZone, ZoneRecord

ZERO_HASH = "0" * 40
APEX_TTL = 3600
NEGATIVE_TTL = 300
MAX_CNAME_CHAIN = 8
TYPE_CNAME = dns.rdatatype.CNAME
TYPE_ANY = dns.rdatatype.ANY
TYPE_A = dns.rdatatype.A
TYPE_AAAA = dns.rdatatype.AAAA
WEB_ADDRESS_TTL = 300  # synthesized gateway addresses; short, since the gateway's address is config
UNREADABLE = "the index cannot be read"

log = logging.getLogger(__name__)
limited_log = LogLimiter(log)


@dataclass(frozen=True)
class Binding:
    """What the index binds a query name to: the on-chain name or subdomain that owns it."""

    fqn: str
    kind: str  # "name" or "subdomain"
    owner_address: str | None
    value_hash: str  # "" for a name registered without a zone file


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
        self.refreshes = 0  # counts index changes, so caches above can tell theirs are stale
        self.refresh()

    def refresh(self) -> None:
        """Re-read what changes per block: the namespace set and the indexed height."""
        self.refreshes += 1
        self.namespaces = self._index.namespace_ids()
        self.height = self._index.indexed_height()
        # Most names have no subdomains: skip that lookup for them.
        self.subdomain_domains = self._index.subdomain_domains()
        self._zones.clear()

    def not_ready(self) -> str | None:
        """Why names cannot be vouched for now (e.g. sync lag), or None when they can."""
        return self._ready()

    def namespace_of(self, qname: str) -> str | None:
        tld = qname.rsplit(".", 1)[-1]
        return tld if tld in self.namespaces else None

    def resolve(self, query: Query) -> AuthorityResult:
        """The Resolver interface (dns/resolver.py): BNS's own answer for the query."""
        return self.lookup(query.qname, query.qtype, web_address=query.web_address)

    def lookup(self, qname: str, qtype: int, *, web_address: str | None = None) -> AuthorityResult:
        """The answer for qname/qtype; with web_address, address-less names point at the web gateway."""
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
        except IndexUnavailable as exc:
            # The database is away (restarting): say so to the client, and try again next query.
            return _servfail(namespace, EDE_NOT_READY, str(exc))
        except IndexDamagedError as exc:
            # A damaged file: no retry will read it; say so once in a while, never guess an answer.
            limited_log.error("index-read", "%s", exc)
            return _servfail(namespace, EDE_OTHER, UNREADABLE)
        if zone is None:
            return AuthorityResult(Outcome.NXDOMAIN, namespace)
        if web_address is not None and qtype in (TYPE_A, TYPE_AAAA) and qname in (zone.name, "www." + zone.name):
            return _web_answer(zone, qname, qtype, namespace, web_address)
        return _answer_from_zone(zone, qname, qtype, namespace)

    def binding_for(self, qname: str) -> Binding | None:
        """The live (not revoked, not expired) name or subdomain that owns qname, if any."""
        labels = qname.split(".")
        if len(labels) >= 3 and ".".join(labels[-2:]) in self.subdomain_domains:
            subdomain = self._index.subdomain(".".join(labels[-3:]))
            if subdomain is not None:
                return Binding(subdomain.fqn, "subdomain", subdomain.owner_address, subdomain.zonefile_hash)
        record = self._index.name(".".join(labels[-2:]))
        if record is None or record.revoked or self._expired(record.expire_block):
            return None
        value_hash = "" if not record.value_hash or record.value_hash == ZERO_HASH else record.value_hash
        return Binding(record.fqn, "name", record.owner_address, value_hash)

    def zone_of(self, binding: Binding) -> VerifiedZone:
        """The binding's verified zone; raises ZoneUnavailable when it cannot be used now."""
        if not binding.value_hash:
            # Registered without a zone file: the name exists (its owner is known), nothing under it does.
            return VerifiedZone(binding.fqn, "", ParsedZone(binding.fqn, ()))
        return self._zones.get(binding.fqn, binding.value_hash)

    def _zone_for(self, qname: str) -> VerifiedZone | None:
        """The verified zone that owns qname: a subdomain's own, else the on-chain name's."""
        binding = self.binding_for(qname)
        if binding is None:
            return None
        if not binding.value_hash and qname not in (binding.fqn, "www." + binding.fqn):
            return None
        return self.zone_of(binding)

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
        current = cnames[0].cname_target
    if chain:
        # The chain leaves the zone or ends without data: give what we have, clients follow.
        return AuthorityResult(Outcome.ANSWER, namespace, tuple(chain))
    if qname == zone.name or qname in owners or any(o.endswith("." + qname) for o in owners):
        return AuthorityResult(Outcome.NODATA, namespace)
    return AuthorityResult(Outcome.NXDOMAIN, namespace)


def _web_answer(zone: VerifiedZone, qname: str, qtype: int, namespace: str, web_address: str) -> AuthorityResult:
    """A name (or its www.) without addresses of its own answers with the web gateway's address."""
    at_owner = zone.zone.owners().get(qname, [])
    if any(r.rdtype in (TYPE_A, TYPE_AAAA, TYPE_CNAME) for r in at_owner):
        return _answer_from_zone(zone, qname, qtype, namespace)  # the owner's own addresses win
    family = TYPE_AAAA if ipaddress.ip_address(web_address).version == 6 else TYPE_A
    if qtype != family:
        return AuthorityResult(Outcome.NODATA, namespace)
    return AuthorityResult(Outcome.ANSWER, namespace,
                           (ZoneRecord(qname, qtype, WEB_ADDRESS_TTL, _web_rdata(qtype, web_address)),))


@functools.lru_cache(maxsize=16)
def _web_rdata(qtype: int, web_address: str) -> dns.rdata.Rdata:
    """The web gateway's address as A or AAAA data: parsed once per address, not per query."""
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.RdataType.make(qtype), web_address)


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
