"""Hand-parsing of the common DNS query shape, and patching of cached answers.

The hot path must not run a DNS library per query: we read the 12-byte header
and the single question by hand, and let anything unusual (several questions,
compression in the question, unknown EDNS options, a non-query opcode) fall
through to the full dnslib path. A cached answer is reused by copying the
query's ID, RD/CD bits and question bytes (so the client sees its own 0x20
case) over the stored bytes.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

# Resource record types the hand-written wire paths name (RFC 1035, 3596, 6891, 1995).
TYPE_A, TYPE_SOA, TYPE_AAAA, TYPE_OPT, TYPE_IXFR, TYPE_AXFR = 1, 6, 28, 41, 251, 252
CLASS_IN = 1
MIN_UDP_PAYLOAD = 512
MAX_UDP_PAYLOAD = 4096

_HEADER = struct.Struct("!HHHHHH")
_FLAG_QR = 0x8000
_OPCODE_MASK = 0x7800
_FLAG_RD = 0x0100
_FLAG_AD = 0x0020
_FLAG_CD = 0x0010
_COPIED_FLAGS = _FLAG_RD | _FLAG_CD
# Query flags an upstream answers differently: RD (recursion or its cache only), CD (data that
# failed validation may come back), AD (whether to say the data validated).
_KEYED_FLAGS = _FLAG_RD | _FLAG_AD | _FLAG_CD


# NamedTuples, not frozen dataclasses: one is built per query on the hot path, and a frozen
# dataclass sets each field through object.__setattr__ (about three times the cost).
class EdnsInfo(NamedTuple):
    payload: int
    do_bit: bool


class FastQuery(NamedTuple):
    """A query of the plain shape: one question, optionally a bare OPT record."""

    qname: bytes  # wire form, lower-cased
    qtype: int
    qclass: int
    question_end: int
    edns: EdnsInfo | None
    flags: int = 0  # the query's RD, AD and CD bits

    def cache_key(self, *, tcp: bool) -> tuple[object, ...]:
        # Everything that changes the answer's bytes, and nothing else. Never serve an answer
        # fetched with CD=1 (checking disabled) to a client that wants validated data.
        if self.edns is None:
            return (self.qname, self.qtype, self.qclass, None, False, tcp, self.flags)
        return (self.qname, self.qtype, self.qclass, self.edns.payload, self.edns.do_bit, tcp, self.flags)

    def udp_limit(self) -> int:
        return self.edns.payload if self.edns else MIN_UDP_PAYLOAD


def parse_fast(packet: bytes) -> FastQuery | None:
    """Return the query if it has the plain shape, else None (use the library path)."""
    if len(packet) < 17:
        return None
    _id, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(packet)
    if flags & (_FLAG_QR | _OPCODE_MASK) or qdcount != 1 or ancount or nscount or arcount > 1:
        return None
    end = skip_plain_name(packet, 12)
    if end < 0 or end + 4 > len(packet):
        return None
    qtype, qclass = struct.unpack_from("!HH", packet, end)
    question_end = end + 4
    edns: EdnsInfo | None = None
    if arcount:
        edns = _parse_bare_opt(packet, question_end)
        if edns is None:
            return None
    elif question_end != len(packet):
        return None
    return FastQuery(packet[12:end].lower(), qtype, qclass, question_end, edns, flags & _KEYED_FLAGS)


def skip_plain_name(packet: bytes, offset: int) -> int:
    """Offset after an uncompressed name, or -1."""
    length = len(packet)
    while offset < length:
        label = packet[offset]
        if label == 0:
            return offset + 1
        if label > 63:
            return -1
        offset += label + 1
    return -1


class RecordSpan(NamedTuple):
    """Where one resource record of a message lies, and the fixed fields the callers need."""

    start: int  # the first byte of its owner name
    fixed: int  # the first byte after the owner name: TYPE, then CLASS, TTL (at fixed + 4), RDLENGTH
    rtype: int
    ttl: int
    end: int  # the first byte after its RDATA


class MessageWalk(NamedTuple):
    question_end: int
    records: list[RecordSpan]  # answer, authority and additional sections, in order
    end: int  # after the last record: len(message) unless bytes trail it


_RR_FIXED = struct.Struct("!HHIH")


def skip_name(message: bytes, offset: int) -> int:
    """Offset after a (possibly compressed) name in a DNS message.

    Raises ValueError when the name runs past the end, or uses an extended label type
    (RFC 6891 §5: lengths 0x40-0xBF, never deployed): its length is unknowable.
    """
    length = len(message)
    while offset < length:
        label = message[offset]
        if label == 0:
            return offset + 1
        if label >= 0xC0:
            if offset + 2 > length:
                break
            return offset + 2  # a pointer ends the name
        if label > 63:
            raise ValueError(f"an extended label type (0x{label:02x}) at byte {offset}")
        offset += label + 1
    raise ValueError("a name runs past the end of the message")


def walk_message(message: bytes) -> MessageWalk:
    """Every record of a message after its question section, by offsets (no library, no copies).

    Raises ValueError for a message whose names or records do not fit it.
    """
    if len(message) < 12:
        raise ValueError("shorter than a DNS header")
    qdcount, ancount, nscount, arcount = struct.unpack_from("!HHHH", message, 4)
    offset = 12
    for _ in range(qdcount):
        offset = skip_name(message, offset) + 4
    question_end = offset
    if question_end > len(message):
        raise ValueError("the question runs past the end of the message")
    records: list[RecordSpan] = []
    for _ in range(ancount + nscount + arcount):
        start, fixed = offset, skip_name(message, offset)
        if fixed + 10 > len(message):
            raise ValueError("a record runs past the end of the message")
        rtype, _cls, ttl, rdlen = _RR_FIXED.unpack_from(message, fixed)
        offset = fixed + 10 + rdlen
        if offset > len(message):
            raise ValueError("a record's data runs past the end of the message")
        records.append(RecordSpan(start, fixed, rtype, ttl, offset))
    return MessageWalk(question_end, records, offset)


def _parse_bare_opt(packet: bytes, offset: int) -> EdnsInfo | None:
    # Root owner, type OPT, version 0, and no options: anything else takes the slow path.
    if len(packet) != offset + 11 or packet[offset] != 0:
        return None
    rtype, payload, _ext_rcode, version, ttl_low, rdlen = struct.unpack_from("!HHBBHH", packet, offset + 1)
    if rtype != TYPE_OPT or version != 0 or rdlen != 0:
        return None
    clamped = min(max(payload, MIN_UDP_PAYLOAD), MAX_UDP_PAYLOAD)
    return EdnsInfo(payload=clamped, do_bit=bool(ttl_low & 0x8000))


def patch_answer(stored: bytes, query: bytes, question_end: int) -> bytes:
    """The stored answer with the query's ID, RD/CD flags and exact question bytes."""
    stored_flags = (stored[2] << 8) | stored[3]
    query_flags = (query[2] << 8) | query[3]
    flags = (stored_flags & ~_COPIED_FLAGS) | (query_flags & _COPIED_FLAGS)
    return b"".join((query[0:2], flags.to_bytes(2, "big"), stored[4:12], query[12:question_end],
                     stored[question_end:]))

