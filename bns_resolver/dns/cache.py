"""Bounded answer caches: finished wire answers, keyed on what changes their bytes.

`AnswerCache` holds authoritative BNS answers; they stay valid until the index
changes them (the gateway drops the answers at or under changed names, and all of
them when the height moves, as negative answers carry it). `ForwardCache` holds upstream answers,
one per question whatever shape clients asked it in (see forward_shape.py), with
their TTLs (RFC 2308 for negative answers), and serves them with TTLs counted
down, rewriting the bytes at most once per second of age. Expired
answers are kept for `stale_for` seconds more: when every upstream fails, the
gateway may serve one as a stale answer (RFC 8767).
"""

from __future__ import annotations

import itertools
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bns_resolver.dns.rcodes import RCODE_NOERROR, RCODE_NXDOMAIN
from bns_resolver.dns.wire import TYPE_OPT, TYPE_SOA, walk_message

MAX_POSITIVE_TTL = 86400
MAX_NEGATIVE_TTL = 10800  # RFC 2308 §5 suggests at most three hours
_FLAG_TC = 0x02  # in the third header byte
_SOA_MIN_RDATA = 22  # two root names and the five 32-bit fields
TTL_TOP_BIT = 1 << 31  # RFC 2181 §8: a TTL with the top bit set is treated as zero
STALE_FOR = 86400  # RFC 8767 §5 suggests keeping expired answers for one to three days
STALE_TTL = 30  # RFC 8767 §4: the TTL of a stale answer


def evict_oldest(entries: dict[Any, Any], max_entries: int) -> None:
    """Make room in a full insertion-ordered dict by dropping its oldest eighth at once.

    Dropping one entry per insertion (`del d[next(iter(d))]`) costs 5-7 µs at 10,000 entries:
    each `next(iter(d))` walks over the deleted slots at the front of the dict until it is
    next resized. One sweep per eighth of the size costs 0.5 µs per insertion instead
    (bench/profile_store.py, where every query is a new name).
    """
    for key in list(itertools.islice(entries, max(len(entries) - max_entries * 7 // 8, 1))):
        del entries[key]


class AnswerCache:
    """A size-bounded map from query key to finished answer bytes (FIFO eviction)."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self.entries: dict[tuple[object, ...], bytes] = {}

    def put(self, key: tuple[object, ...], answer: bytes) -> None:
        entries = self.entries
        if key not in entries and len(entries) >= self._max_entries:
            evict_oldest(entries, self._max_entries)
        entries[key] = answer

    def clear(self) -> None:
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)


@dataclass
class ForwardEntry:
    wire: bytes
    stored_at: float
    lifetime: int
    ttl_offsets: tuple[int, ...]
    aged: dict[int, bytes] = field(default_factory=dict)

    def bytes_at(self, now: float) -> bytes | None:
        age = int(now - self.stored_at)
        if age >= self.lifetime:
            return None
        if age == 0 or not self.ttl_offsets:
            return self.wire
        cached = self.aged.get(age)
        if cached is None:
            cached = _age_ttls(self.wire, self.ttl_offsets, age)
            self.aged = {age: cached}
        return cached


class _EveryName:
    """A container holding every name: what `ForwardCache.namespaces` becomes past its bound."""

    def __contains__(self, _item: object) -> bool:
        return True


MAX_TRACKED_NAMESPACES = 4096  # distinct last labels; an attacker's random TLDs must not grow it for ever


class ForwardCache:
    def __init__(self, max_entries: int, *, clock: Callable[[], float] = time.monotonic,
                 max_ttl: int = MAX_POSITIVE_TTL, stale_for: int = STALE_FOR) -> None:
        self._max_entries = max_entries
        self.max_ttl = max_ttl
        self.stale_for = stale_for
        self._clock = clock
        self.entries: dict[tuple[object, ...], ForwardEntry] = {}
        # The last label (the namespace, as text) of every question put since the last clear: a
        # superset of what entries hold, so "not in here" proves no upstream answer shadows a name
        # (the gateway's UDP fast path skips the probe then). Past its bound it holds everything.
        self.namespaces: set[str] | _EveryName = set()

    def get(self, key: tuple[object, ...]) -> bytes | None:
        return self.get_with_deadline(key)[0]

    def get_with_deadline(self, key: tuple[object, ...]) -> tuple[bytes | None, float]:
        """The answer aged to now, and until when those exact bytes may be replayed.

        Replayed bytes keep their TTLs, so they are good for at most a second.
        """
        entry = self.entries.get(key)
        if entry is None:
            return None, 0.0
        now = self._clock()
        answer = entry.bytes_at(now)
        if answer is None:
            if now >= entry.stored_at + entry.lifetime + self.stale_for:
                del self.entries[key]
            return None, 0.0
        return answer, min(now + 1.0, entry.stored_at + entry.lifetime)

    def stale(self, key: tuple[object, ...]) -> bytes | None:
        """The expired answer for key, with every TTL set to STALE_TTL, if it is stale for less than stale_for."""
        entry = self.entries.get(key)
        if entry is None or self._clock() >= entry.stored_at + entry.lifetime + self.stale_for:
            return None
        buffer = bytearray(entry.wire)
        for offset in entry.ttl_offsets:
            struct.pack_into("!I", buffer, offset, STALE_TTL)
        return bytes(buffer)

    def put(self, key: tuple[object, ...], reply: bytes) -> None:
        try:
            lifetime = min(cache_lifetime(reply), self.max_ttl)
        except ValueError:  # an upstream reply whose records do not fit it is simply not cached
            return
        if lifetime <= 0:
            return
        if key not in self.entries and len(self.entries) >= self._max_entries:
            evict_oldest(self.entries, self._max_entries)
        self.entries[key] = ForwardEntry(reply, self._clock(), lifetime, tuple(ttl_offsets(reply)))
        self._note_namespace(key[0])

    def _note_namespace(self, qname: object) -> None:
        namespaces = self.namespaces
        if isinstance(namespaces, set) and isinstance(qname, bytes):
            if len(namespaces) >= MAX_TRACKED_NAMESPACES:
                self.namespaces = _EveryName()
            else:
                namespaces.add(last_label(qname))

    def clear(self) -> None:
        self.entries.clear()
        self.namespaces = set()

    def __len__(self) -> int:
        return len(self.entries)


def last_label(qname: bytes) -> str:
    """The last label of a lower-case wire name, as text: b'\\x05alice\\x02id\\x00' → 'id' ('' for the root)."""
    offset, last = 0, 0
    while offset < len(qname) and qname[offset]:
        last = offset
        offset += qname[offset] + 1
    return qname[last + 1:offset].decode("latin-1")


def cache_lifetime(reply: bytes) -> int:
    """Seconds an upstream reply may be reused; 0 means do not cache. Read from the bytes alone.

    Raises ValueError for a reply whose records do not fit it.
    """
    records = walk_message(reply).records
    rcode = reply[3] & 0x0F
    if reply[2] & _FLAG_TC or rcode not in (RCODE_NOERROR, RCODE_NXDOMAIN):
        return 0
    ancount, nscount = struct.unpack_from("!HH", reply, 6)
    if rcode == RCODE_NOERROR and ancount:
        return min(min(record.ttl for record in records[:ancount]), MAX_POSITIVE_TTL)
    # Negative answer: cacheable only with an SOA, for min(SOA TTL, SOA MINIMUM) (RFC 2308 §5).
    for record in records[ancount:ancount + nscount]:
        if record.rtype == TYPE_SOA:
            if record.end - record.fixed - 10 < _SOA_MIN_RDATA:
                raise ValueError("an SOA record too short for its fields")
            minimum = struct.unpack_from("!I", reply, record.end - 4)[0]  # MINIMUM ends the rdata
            return min(record.ttl, minimum, MAX_NEGATIVE_TTL)
    return 0


def capped_ttls(wire: bytes, max_ttl: int) -> bytes:
    """The reply with every TTL at most max_ttl, and TTLs of 2**31 or more as 0 (RFC 2181 §8).

    Raises ValueError for a reply whose records do not fit its length.
    """
    buffer: bytearray | None = None
    for offset in ttl_offsets(wire):
        ttl = struct.unpack_from("!I", wire, offset)[0]
        capped = 0 if ttl >= TTL_TOP_BIT else min(ttl, max_ttl)
        if capped != ttl:
            buffer = buffer if buffer is not None else bytearray(wire)
            struct.pack_into("!I", buffer, offset, capped)
    return bytes(buffer) if buffer is not None else wire


def ttl_offsets(packet: bytes) -> list[int]:
    """Byte offsets of the TTL field of every answer/authority/additional RR except OPT.

    Raises ValueError when the records do not fit the packet (a malformed reply).
    """
    return [record.fixed + 4 for record in walk_message(packet).records if record.rtype != TYPE_OPT]


def _age_ttls(wire: bytes, offsets: tuple[int, ...], age: int) -> bytes:
    buffer = bytearray(wire)
    for offset in offsets:
        ttl = struct.unpack_from("!I", buffer, offset)[0]
        struct.pack_into("!I", buffer, offset, max(ttl - age, 0))
    return bytes(buffer)
