"""One binding (an on-chain name or a subdomain) turned into store entries.

The answers are those of the DNS authority itself: each node's records come from
`dns.authority`'s own zone walk and the zone file from its own `ZoneCache` (hash160
check, then parse), so the store cannot say anything the slow path would not.
What the store adds is the enumeration: every name a zone can answer for (the
apex, each owner, each empty non-terminal between them) and every query type
that can change the answer there; anything else under the binding is NXDOMAIN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import dns.rdatatype

from bns_resolver.answers.format import (
    FLAG_APEX,
    FLAG_WEB,
    Entry,
    encode_answer_section,
    encode_defer,
    encode_node,
    encode_servfail,
    is_plain_name,
    name_to_wire,
)
from bns_resolver.dns.authority import _answer_from_zone
from bns_resolver.dns.rcodes import rcode_of
from bns_resolver.dns.zones import VerifiedZone, ZoneCache
from bns_resolver.errors import EDE_NO_REACHABLE_AUTHORITY, ZoneUnavailable
from bns_resolver.zonefiles.parse import ParsedZone

# A private-use type no zone file carries: its answer is what every type not in the zone gets.
UNLISTED_QTYPE = 65280
TYPE_ANY = int(dns.rdatatype.ANY)
_ADDRESS_TYPES = (int(dns.rdatatype.A), int(dns.rdatatype.AAAA), int(dns.rdatatype.CNAME))

Item = tuple[bytes, bytes]  # store key, store value


class _OneZoneFile:
    """Hands ZoneCache the zone-file bytes the index scan already read (or None: not held)."""

    def __init__(self, content: bytes | None) -> None:
        self._content = content

    def zonefile(self, _zonefile_hash: str) -> bytes | None:
        return self._content


def verified_zone(fqn: str, value_hash: str, content: bytes | None) -> VerifiedZone:
    """The binding's zone as `BnsAuthority.zone_of` gives it; raises ZoneUnavailable alike."""
    if not value_hash:
        # Registered without a zone file: the name exists, nothing under it does.
        return VerifiedZone(fqn, "", ParsedZone(fqn, ()))
    return ZoneCache(_OneZoneFile(content), max_entries=1).get(fqn, value_hash)  # type: ignore[arg-type]


def binding_items(fqn: str, namespace: str, value_hash: str, content: bytes | None,
                  shadowed: Callable[[str], bool] | None = None) -> tuple[str, list[Item]]:
    """("node"|"defer"|"servfail", the entries) for one binding.

    `shadowed(node)` says a node of an on-chain name's zone belongs to a subdomain's binding.
    """
    apex_key = name_to_wire(fqn) if is_plain_name(fqn) else b""
    if not apex_key:
        return "skip", []  # the slow path serves names the store cannot key plainly
    try:
        zone = verified_zone(fqn, value_hash, content)
    except ZoneUnavailable as exc:
        if exc.info_code == EDE_NO_REACHABLE_AUTHORITY:
            return "defer", [(apex_key, encode_defer(FLAG_APEX))]  # may arrive any moment
        return "servfail", [(apex_key, encode_servfail(FLAG_APEX, exc.info_code, exc.reason))]
    nodes = zone_nodes(zone)
    if shadowed is not None:
        nodes = [node for node in nodes if node == fqn or not shadowed(node)]
    if not all(is_plain_name(node) for node in nodes):
        return "defer", [(apex_key, encode_defer(FLAG_APEX))]
    return "node", list(_node_items(zone, namespace, nodes))


def zone_nodes(zone: VerifiedZone) -> list[str]:
    """The apex, every owner, and every empty non-terminal between an owner and the apex."""
    apex = zone.name
    nodes = {apex}
    for owner in zone.zone.owners():
        nodes.add(owner)
        while owner.endswith("." + apex):
            owner = owner.split(".", 1)[1]
            nodes.add(owner)
    return sorted(nodes)


def _node_items(zone: VerifiedZone, namespace: str, nodes: list[str]) -> Iterator[Item]:
    owners = zone.zone.owners()
    qtypes = sorted({record.rdtype for record in zone.zone.records} | {TYPE_ANY})
    web_names = (zone.name, "www." + zone.name)
    for node in nodes:
        default = _entry(zone, node, UNLISTED_QTYPE, namespace)
        entries = {}
        # A name without records of its own (the apex of most zones, empty non-terminals) answers
        # every type alike: the zone walk stops at once there, before looking at the type.
        for qtype in qtypes if node in owners else ():
            entry = _entry(zone, node, qtype, namespace)
            if entry != default:
                entries[qtype] = entry
        flags = FLAG_APEX if node == zone.name else 0
        if node in web_names and not any(r.rdtype in _ADDRESS_TYPES for r in owners.get(node, ())):
            flags |= FLAG_WEB
        yield name_to_wire(node), encode_node(flags, default, entries)


def _entry(zone: VerifiedZone, qname: str, qtype: int, namespace: str) -> Entry:
    result = _answer_from_zone(zone, qname, qtype, namespace)
    records = [(r.owner, r.rdtype, r.ttl, r.wire) for r in result.records]
    return rcode_of(result.outcome), len(records), encode_answer_section(qname, records)
