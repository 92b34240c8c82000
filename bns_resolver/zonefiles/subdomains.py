"""Subdomain records carried in an on-chain name's zone file (spec §6, blockstack-core `lib/subdomains.py`).

A TXT record whose strings include `owner=`, `seqn=` and `parts=` is a
subdomain operation. This module turns one parent zone file into records
(`decode_parent_zonefile`) and decides, for one subdomain, which of its records
are accepted (`decide_history`). Both are pure; `subdomain_index.py` runs them
against the index.

Failure levels follow blockstack-core so that our view matches other resolvers':
a record with bad names or non-integer fields is skipped alone, while a record
that cannot be decoded at all (an entry without `=`, a missing `zfN`, bad
base64) makes blockstack-core drop every subdomain in that zone file.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import dns.rdatatype

from bns_resolver.errors import ZoneFileError
from bns_resolver.hashing import hash160
from bns_resolver.zonefiles.parse import ZoneRecord, parse_zonefile
from bns_resolver.zonefiles.store import MAX_ZONEFILE_BYTES
from bns_resolver.zonefiles.subdomain_auth import AuthError, verify_signature

log = logging.getLogger(__name__)

# Subdomain operations are only indexed from this block on (SUBDOMAINS_FIRST_BLOCK).
SUBDOMAINS_FIRST_BLOCK = 478872
RESERVED_NAMES = frozenset({"_missing", "_resolver", "_registrar"})
# blockstack-core cuts the base64 zone file into 250-character zfN pieces ("zf99=" + 250 ≤ 255).
PIECE_CHARS = 250
_LABEL_RE = re.compile(r"^[a-z0-9\-_+]+$")
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9\-_+]+\.[a-z0-9\-_+]{1,37}\.[a-z0-9\-_+]{1,19}$")


class RecordError(ValueError):
    """This subdomain record is skipped; the rest of the zone file still counts."""


class ZoneFileDropped(ValueError):
    """No subdomain record of this zone file counts (blockstack-core's decode returned None)."""


@dataclass(frozen=True)
class ParentZoneFile:
    """One zone file of an on-chain name (the "domain"), where it sits in chain order."""

    zonefile_hash: str
    content: bytes
    domain: str
    block_height: int | None = None
    inv_index: int | None = None  # Atlas inventory position, 1-based


@dataclass(frozen=True)
class SubdomainRecord:
    fqn: str
    domain: str  # the on-chain name whose zone file carried the record
    owner: str
    sequence: int
    zonefile: bytes
    signature: str | None
    parent: ParentZoneFile
    position: int  # index of the TXT record in its zone file
    resolver: str | None = None

    @property
    def independent(self) -> bool:
        """Carried by another name's zone file (`a.b.id` in `c.id`): may update, never transfer."""
        return not self.fqn.endswith("." + self.domain)

    @property
    def zonefile_hash(self) -> str:
        return hash160(self.zonefile).hex()

    def order_key(self) -> tuple[int, int, int, int]:
        # (seqn, inv_index) in blockstack-core; block height stands in when the index is unknown.
        parent = self.parent
        return (self.sequence, parent.block_height or 0, parent.inv_index or 0, self.position)

    def signed_text(self) -> str:
        """The comma-joined text the owner signs (pack_subdomain without `sig`)."""
        name = self.fqn if self.independent else self.fqn.split(".", 1)[0]
        encoded = base64.b64encode(self.zonefile).decode("ascii")
        pieces = [encoded[i : i + PIECE_CHARS] for i in range(0, len(encoded), PIECE_CHARS)]
        fields = [name, _kv("owner", self.owner), _kv("seqn", str(self.sequence)), _kv("parts", str(len(pieces)))]
        fields += [_kv(f"zf{i}", piece) for i, piece in enumerate(pieces)]
        return ",".join(fields)


def _kv(key: str, value: str) -> str:
    return f"{key}={value.replace('=', chr(92) + '=')}"


@dataclass(frozen=True)
class Skipped:
    """A subdomain TXT record that produced no candidate, or a duplicate that lost within its file."""

    name: str
    reason: str
    record: SubdomainRecord | None = None  # set for duplicates, which are well-formed


@dataclass(frozen=True)
class DecodedParent:
    parent: ParentZoneFile
    records: tuple[SubdomainRecord, ...]
    skipped: tuple[Skipped, ...]
    dropped: str | None = None  # why the whole file yields nothing


def decode_parent_zonefile(parent: ParentZoneFile) -> DecodedParent:
    """Every subdomain record in `parent`, duplicates resolved (lowest seqn, then first, wins)."""
    try:
        txts, resolver = _subdomain_txts(parent)
        kept: dict[str, SubdomainRecord] = {}
        skipped: list[Skipped] = []
        for position, (label, strings) in enumerate(txts):
            try:
                record = _parse_record(parent, label, strings, position, resolver)
            except RecordError as exc:
                skipped.append(Skipped(label, str(exc)))
                continue
            _keep_lowest(kept, record, skipped)
    except ZoneFileDropped as exc:
        return DecodedParent(parent, (), (), dropped=str(exc))
    return DecodedParent(parent, tuple(sorted(kept.values(), key=lambda r: r.position)), tuple(skipped))


def _keep_lowest(kept: dict[str, SubdomainRecord], record: SubdomainRecord, skipped: list[Skipped]) -> None:
    current = kept.get(record.fqn)
    if current is None or record.sequence < current.sequence:
        kept[record.fqn] = record
        loser = current
    else:
        loser = record
    if loser is not None:
        reason = f"duplicate of {loser.fqn} in the same zone file (lowest seqn, then first, wins)"
        skipped.append(Skipped(loser.fqn, reason, loser))


def _subdomain_txts(parent: ParentZoneFile) -> tuple[list[tuple[str, tuple[str, ...]]], str | None]:
    """(name as written, TXT strings) of each subdomain-looking TXT record, and the `_resolver` URL."""
    try:
        zone = parse_zonefile(parent.content, parent.domain)
    except ZoneFileError as exc:
        raise ZoneFileDropped(f"zone file does not parse: {exc}") from None
    origin = declared_origin(parent.content)
    if origin != parent.domain:
        raise ZoneFileDropped(f"$ORIGIN is {origin!r}, not {parent.domain!r}")
    found: list[tuple[str, tuple[str, ...]]] = []
    resolver = None
    for record in zone.records:
        written = _written_name(record, parent.domain)
        if record.rdtype == dns.rdatatype.URI and written == "_resolver" and resolver is None:
            resolver = _as_text(record.rdata.target)  # type: ignore[attr-defined]  # a URI rdata
        elif record.rdtype == dns.rdatatype.TXT and written not in RESERVED_NAMES:
            strings = tuple(_as_text(s) for s in record.strings)
            if _is_subdomain_txt(strings):
                found.append((written, strings))
    return found, resolver


def declared_origin(content: bytes) -> str | None:
    """The `$ORIGIN` a zone file names (lower-case, no trailing dot), or None."""
    for line in content.decode("utf-8", "replace").splitlines():
        tokens = line.split()
        if len(tokens) >= 2 and tokens[0].upper() == "$ORIGIN":
            return tokens[1].rstrip(".").lower()
    return None


def _written_name(record: ZoneRecord, domain: str) -> str:
    # parse.py anchors owners at the domain, so `a.b.id` written in c.id's file
    # arrives as `a.b.id.c.id`; strip the anchor to get the name as written.
    if record.owner == domain:
        return "@"
    return record.owner[: -len(domain) - 1]


def _as_text(value: bytes | str) -> str:
    if isinstance(value, str):
        return value
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise ZoneFileDropped("subdomain TXT record is not ASCII") from None


def _is_subdomain_txt(strings: tuple[str, ...]) -> bool:
    if len(strings) < 2:  # blockstack_zones turns a single string into a scalar: never a subdomain
        return False
    return all(any(s.startswith(p) for s in strings) for p in ("parts=", "owner=", "seqn="))


def _parse_record(
    parent: ParentZoneFile, written: str, strings: tuple[str, ...], position: int, resolver: str | None
) -> SubdomainRecord:
    entries = _entries(strings)
    parts, sequence = _int_field(entries, "parts"), _int_field(entries, "seqn")
    if sequence < 0 or parts < 0:
        raise RecordError(f"negative seqn or parts in {written}")
    try:
        chunks = "".join(entries[f"zf{i}"] for i in range(parts))
        zonefile = base64.b64decode(chunks)
    except KeyError as exc:
        raise ZoneFileDropped(f"record {written} lacks {exc.args[0]}") from None
    except (binascii.Error, ValueError) as exc:
        raise ZoneFileDropped(f"record {written} has bad base64: {exc}") from None
    if len(zonefile) > MAX_ZONEFILE_BYTES:
        raise RecordError(f"{written}: zone file is {len(zonefile)} bytes, over {MAX_ZONEFILE_BYTES}")
    return SubdomainRecord(
        fqn=_fqn(written, parent.domain),
        domain=parent.domain,
        owner=entries["owner"],
        sequence=sequence,
        zonefile=zonefile,
        signature=entries.get("sig"),
        parent=parent,
        position=position,
        resolver=resolver,
    )


def _entries(strings: tuple[str, ...]) -> dict[str, str]:
    entries: dict[str, str] = {}
    for item in strings:
        if "=" not in item:
            raise ZoneFileDropped(f"TXT entry {item[:40]!r} is not key=value")
        key, value = item.split("=", 1)
        if key in entries:
            raise RecordError(f"duplicate TXT entry {key!r}")
        entries[key] = value.replace("\\=", "=")
    return entries


def _int_field(entries: dict[str, str], key: str) -> int:
    value = entries[key]
    if not re.fullmatch(r"\s*[+-]?\d+\s*", value):  # what Python 2's int() accepted
        raise RecordError(f"{key}={value!r} is not an integer")
    return int(value)


def _fqn(written: str, domain: str) -> str:
    if written.count(".") == 2 and _SUBDOMAIN_RE.match(written):
        return written  # fully qualified as written: maybe independent of this domain
    fqn = f"{written}.{domain}"
    if not _LABEL_RE.match(written) or not _SUBDOMAIN_RE.match(fqn):
        raise RecordError(f"{written!r} is not a valid subdomain name under {domain}")
    return fqn


@dataclass(frozen=True)
class Decision:
    record: SubdomainRecord
    accepted: bool
    reason: str | None = None


def decide_history(records: Sequence[SubdomainRecord]) -> list[Decision]:
    """Accept or reject every known record of one subdomain, in (seqn, inv_index) order.

    The first record must be a seqn-0 creation in its own domain's zone file;
    each later accepted record must be seqn+1, signed by the previous owner,
    and may change the owner only if it is not independent.
    """
    ordered = sorted(records, key=SubdomainRecord.order_key)
    if not ordered:
        return []
    first = ordered[0]
    problem = _creation_problem(first)
    if problem is not None:
        unrooted = "no accepted creation (seqn 0 in the parent domain's zone file) precedes it"
        return [Decision(first, False, problem)] + [Decision(r, False, unrooted) for r in ordered[1:]]
    decisions = [Decision(first, True)]
    last = first
    for record in ordered[1:]:
        problem = transition_problem(last, record)
        decisions.append(Decision(record, problem is None, problem))
        if problem is None:
            last = record
    return decisions


def _creation_problem(record: SubdomainRecord) -> str | None:
    if record.sequence != 0:
        return f"first known record has seqn {record.sequence}, a creation needs seqn 0"
    if record.independent:
        return f"creation must come from {record.fqn.split('.', 1)[1]}'s zone file, not {record.domain}'s"
    return None


def transition_problem(previous: SubdomainRecord, record: SubdomainRecord) -> str | None:
    """Why `record` cannot follow the accepted `previous`, or None if it can."""
    if record.sequence <= previous.sequence:
        return f"seqn {record.sequence} already taken by an earlier record"
    if record.sequence != previous.sequence + 1:
        return f"sequence gap: seqn {record.sequence} after accepted seqn {previous.sequence}"
    try:
        verify_signature(previous.owner, record.signed_text(), record.signature)
    except AuthError as exc:
        return f"not signed by previous owner {previous.owner}: {exc}"
    if record.owner != previous.owner and record.independent:
        return f"transfer to {record.owner} from an independent record in {record.domain}'s zone file"
    return None
