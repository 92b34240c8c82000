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
from dataclasses import dataclass

TYPE_OPT = 41
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


@dataclass(frozen=True, slots=True)
class EdnsInfo:
    payload: int
    do_bit: bool


@dataclass(frozen=True, slots=True)
class FastQuery:
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

