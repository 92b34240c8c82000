"""What the web gateway says about a name: its binding, verified zone file and profile location.

Everything here comes from the control plane (the index) and from zone files that
verified against it; the profile is fetched and judged separately (profiles/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dns.rdatatype

from bns_resolver.dns.authority import BnsAuthority
from bns_resolver.errors import ZoneUnavailable
from bns_resolver.index.lookup import IndexReader
from bns_resolver.zonefiles.parse import ParsedZone, ZoneRecord

HTTP_NOT_FOUND = 404
HTTP_UNAVAILABLE = 503
PROFILE_OWNER_PREFIX = "_http._tcp."


class NameUnavailable(Exception):
    """No page for this host: unknown to BNS (404) or not verifiable now (503)."""

    def __init__(self, status: int, reason: str, ede_code: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.ede_code = ede_code


@dataclass(frozen=True)
class NameFacts:
    name: str
    kind: str  # "name" or "subdomain"
    owner: str | None
    value_hash: str  # the hash the chain binds; "" when registered without a zone file
    provenance: dict[str, str]
    records: tuple[str, ...] = ()
    profile_url: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "owner": self.owner,
                "zonefile_hash": self.value_hash or None, "verified": True, "binding": self.provenance,
                "records": list(self.records), "profile_url": self.profile_url}


class NameDirectory:
    """Looks up the facts behind a page; reads through the DNS authority's verified view."""

    def __init__(self, authority: BnsAuthority, index: IndexReader) -> None:
        self._authority = authority
        self._index = index

    def facts(self, host: str) -> NameFacts:
        host = host.strip().rstrip(".").lower()
        if self._authority.namespace_of(host) is None or host.count(".") < 1:
            raise NameUnavailable(HTTP_NOT_FOUND, f"{host} is not under a BNS namespace this index serves")
        not_ready = self._authority.not_ready()
        if not_ready:
            raise NameUnavailable(HTTP_UNAVAILABLE, not_ready, 14)
        binding = self._authority.binding_for(host)
        if binding is None or host not in (binding.fqn, "www." + binding.fqn):
            raise NameUnavailable(HTTP_NOT_FOUND, f"{host} is not a registered BNS name (or it expired or was revoked)")
        try:
            zone = self._authority.zone_of(binding).zone
        except ZoneUnavailable as exc:
            raise NameUnavailable(HTTP_UNAVAILABLE, exc.reason, exc.info_code) from None
        return NameFacts(binding.fqn, binding.kind, binding.owner_address, binding.value_hash, self.provenance(),
                         tuple(_record_text(r) for r in zone.records), profile_url(zone, binding.fqn))

    def provenance(self) -> dict[str, str]:
        state = self._index.sync_state()
        if state.get("source") == "chain":
            return {"source": "chain", "network": state.get("network", ""), "height": state.get("height", ""),
                    "consensus_hash": state.get("consensus_hash", "")}
        return {"source": "export", "height": state.get("height", ""),
                "chainstate_sha256": state.get("snapshot_sha256", ""), "origin": state.get("snapshot_origin", "")}


def profile_url(zone: ParsedZone, fqn: str) -> str | None:
    """The target of the zone file's first `_http._tcp` URI record: where the profile lives."""
    owner = PROFILE_OWNER_PREFIX + fqn
    for record in zone.records:
        if record.owner == owner and record.rdtype == dns.rdatatype.URI:
            target = record.rdata.target  # type: ignore[attr-defined]
            return target.decode("utf-8", "replace") if isinstance(target, bytes) else str(target)
    return None


def _record_text(record: ZoneRecord) -> str:
    return f"{record.owner}. {record.ttl} IN {dns.rdatatype.to_text(dns.rdatatype.RdataType(record.rdtype))} {record.rdata.to_text()}"
