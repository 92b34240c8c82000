"""Run subdomain decoding and acceptance against the index.

For a domain, its held zone files are decoded in chain order; for each
subdomain they mention, every record we know of (from any domain's zone files,
found again through `subdomain_history.parent_zonefile_hash`) is re-decided
from scratch. The history rows are rewritten, the current state goes to
`subdomains`, and each subdomain's zone file goes through verify-then-store.
Recomputing a subdomain whole keeps the result independent of the order in
which zone files arrived.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from bns_resolver.index import subdomains as rows
from bns_resolver.index.db import Connection, Engine, reported
from bns_resolver.index.zonefiles import want_position
from bns_resolver.zonefiles.store import ZERO_HASH, get_zonefile, store_verified
from bns_resolver.zonefiles.subdomains import (
    SUBDOMAINS_FIRST_BLOCK,
    Decision,
    DecodedParent,
    ParentZoneFile,
    SubdomainRecord,
    decide_history,
    declared_origin,
    decode_parent_zonefile,
)

log = logging.getLogger(__name__)
_MARKER = b"seqn="  # cheap pre-filter: no subdomain record without it


@dataclass
class SubdomainReport:
    domains: list[str] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0
    skipped: list[str] = field(default_factory=list)  # records or files that produced no row
    changed: set[str] = field(default_factory=set)  # fqns whose `subdomains` row was rewritten or removed

    def merge(self, other: SubdomainReport) -> None:
        self.domains += other.domains
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.skipped += other.skipped
        self.changed |= other.changed


def process_domain_subdomains(
    engine: Engine, domain: str, *, first_block: int = SUBDOMAINS_FIRST_BLOCK
) -> SubdomainReport:
    """Index the subdomains carried by every held zone file of the on-chain name `domain`."""
    report = SubdomainReport(domains=[domain])
    with reported(engine, f"index the subdomains of {domain} into"), engine.begin() as conn:
        decoded = [decode_parent_zonefile(p) for p in domain_parent_zonefiles(conn, domain, first_block=first_block)]
        cache = {d.parent.zonefile_hash: d for d in decoded}
        fqns: set[str] = set()
        for item in decoded:
            _note_skips(item, report)
            fqns.update(_mentioned(item))
        for fqn in sorted(fqns):
            _rebuild_subdomain(conn, fqn, cache, report)
    return report


def process_all_subdomains(engine: Engine, *, first_block: int = SUBDOMAINS_FIRST_BLOCK) -> SubdomainReport:
    """Index the subdomains of every name whose held zone files may carry subdomain records."""
    with engine.connect() as conn:
        domains = sorted(_domains_with_marker(conn))
    report = SubdomainReport()
    for domain in domains:
        report.merge(process_domain_subdomains(engine, domain, first_block=first_block))
    return report


def process_stored_zonefile(
    engine: Engine, zonefile_hash: str, *, first_block: int = SUBDOMAINS_FIRST_BLOCK
) -> SubdomainReport:
    """Hook for a freshly stored zone file: re-index the names it belongs to, if it carries records."""
    report = SubdomainReport()
    content = get_zonefile(engine, zonefile_hash)
    if content is None or _MARKER not in content:
        return report
    with engine.connect() as conn:
        owners = rows.owners_of_value_hash(conn, zonefile_hash)
    for domain in sorted(owners):
        report.merge(process_domain_subdomains(engine, domain, first_block=first_block))
    return report


def domain_parent_zonefiles(
    conn: Connection, domain: str, *, first_block: int = SUBDOMAINS_FIRST_BLOCK
) -> list[ParentZoneFile]:
    """The held zone files of `domain` in chain order (first occurrence of each hash)."""
    ordered: dict[str, int | None] = {}
    for value_hash, block_height in rows.value_hash_history(conn, domain):
        ordered.setdefault(value_hash, block_height)
    current = rows.current_value_hash(conn, domain)
    if current:
        ordered.setdefault(current, None)  # e.g. names imported from a snapshot, without history
    ordered.pop(ZERO_HASH, None)
    return [p for p in _load_parents(conn, domain, ordered) if p.block_height is None or p.block_height >= first_block]


def _load_parents(conn: Connection, domain: str, ordered: dict[str, int | None]) -> Iterator[ParentZoneFile]:
    for zonefile_hash, block_height in ordered.items():
        content = get_zonefile(conn, zonefile_hash)
        if content is None:
            continue  # not fetched yet: its records wait for the fetcher's on_stored hook
        first_block, inv_index = want_position(conn, zonefile_hash) or (None, None)
        height = block_height if block_height is not None else first_block
        yield ParentZoneFile(zonefile_hash, content, domain, height, inv_index)


def _domains_with_marker(conn: Connection) -> set[str]:
    return {fqn for fqn, content in rows.names_with_content(conn) if _MARKER in content}


def _mentioned(decoded: DecodedParent) -> set[str]:
    fqns = {record.fqn for record in decoded.records}
    fqns.update(s.record.fqn for s in decoded.skipped if s.record is not None)
    return fqns


def _note_skips(decoded: DecodedParent, report: SubdomainReport) -> None:
    where = f"{decoded.parent.domain} zone file {decoded.parent.zonefile_hash}"
    if decoded.dropped:
        log.warning("subdomains of %s ignored: %s", where, decoded.dropped)
        report.skipped.append(f"{where}: {decoded.dropped}")
    for skip in decoded.skipped:
        if skip.record is None:
            log.warning("subdomain record %s in %s skipped: %s", skip.name, where, skip.reason)
            report.skipped.append(f"{where}: {skip.name}: {skip.reason}")


def _rebuild_subdomain(conn: Connection, fqn: str, cache: dict[str, DecodedParent], report: SubdomainReport) -> None:
    parents = _parents_for(conn, fqn, cache)
    decisions = decide_history([r for d in parents for r in d.records if r.fqn == fqn])
    # Duplicates that lost inside their own zone file are kept in the history as rejections.
    decisions += [
        Decision(s.record, False, s.reason) for d in parents for s in d.skipped if s.record and s.record.fqn == fqn
    ]
    parent_hashes = [d.parent.zonefile_hash for d in parents]
    rows.delete_history(conn, fqn, parent_hashes)
    for decision in sorted(decisions, key=lambda d: d.record.order_key()):
        _write_history(conn, decision)
    accepted = [d.record for d in decisions if d.accepted]
    report.accepted += len(accepted)
    report.rejected += len(decisions) - len(accepted)
    if accepted:
        _write_current(conn, max(accepted, key=SubdomainRecord.order_key))
        report.changed.add(fqn)
    else:
        if rows.delete_current(conn, fqn, parent_hashes):
            report.changed.add(fqn)


def _parents_for(conn: Connection, fqn: str, cache: dict[str, DecodedParent]) -> list[DecodedParent]:
    """Decoded zone files (this domain's and any other's) that mention `fqn`."""
    for parent_hash, block_height, inv_index in rows.history_places(conn, fqn):
        if parent_hash and parent_hash not in cache:
            decoded = _redecode(conn, parent_hash, block_height, inv_index)
            if decoded is not None:
                cache[parent_hash] = decoded
    return [d for d in cache.values() if fqn in _mentioned(d)]


def _redecode(conn: Connection, parent_hash: str, block_height: int | None, inv_index: int | None) -> DecodedParent | None:
    content = get_zonefile(conn, parent_hash)
    origin = declared_origin(content) if content is not None else None
    if content is None or origin is None:
        return None  # e.g. rows imported from the v1 export, whose parent file we never held
    return decode_parent_zonefile(ParentZoneFile(parent_hash, content, origin, block_height, inv_index))


def _write_history(conn: Connection, decision: Decision) -> None:
    record = decision.record
    if not decision.accepted:
        log.info(
            "subdomain %s seqn %d in %s zone file %s rejected: %s",
            record.fqn, record.sequence, record.domain, record.parent.zonefile_hash, decision.reason,
        )
    store_verified(conn, record.zonefile_hash, record.zonefile, f"subdomain:{record.parent.zonefile_hash}")
    rows.add_history(
        conn,
        fqn=record.fqn,
        sequence=record.sequence,
        owner_address=record.owner[:64],
        zonefile_hash=record.zonefile_hash,
        parent_zonefile_hash=record.parent.zonefile_hash,
        parent_zonefile_index=record.parent.inv_index,
        block_height=record.parent.block_height,
        accepted=decision.accepted,
        reason=decision.reason,
    )


def _write_current(conn: Connection, record: SubdomainRecord) -> None:
    values = {
        "domain": record.fqn.split(".", 1)[1],
        "owner_address": record.owner[:64],
        "sequence": record.sequence,
        "zonefile_hash": record.zonefile_hash,
        "parent_zonefile_hash": record.parent.zonefile_hash,
        "parent_zonefile_index": record.parent.inv_index,
        "block_height": record.parent.block_height,
        "resolver": (record.resolver or "")[:256] or None,
        "signature": record.signature,
    }
    rows.put_current(conn, record.fqn, values)
