"""The shape of the answer store: one LMDB key per DNS owner name, finished answers as values.

Key: the owner in wire form, lower-case, with its final zero byte: exactly the bytes
`dns.wire.parse_fast` yields as `FastQuery.qname`, so a query is looked up as it came.

Value: one byte of kind and flags, then by kind
  NODE      answer entries, each `ENTRY` (qtype, rcode, ancount, length) and the finished
            answer section; the first entry (qtype 0) serves every qtype not listed
  DEFER     nothing more: the slow path answers (the zone file was not held when compiled)
  SERVFAIL  the EDE code (2 bytes) and the EDE text (UTF-8)
A binding with owner names beside its apex also has a NODES_PREFIX key listing them.
Answer sections are encoded as if the question (the key) sat at offset 12, where every
reply puts it, so their compression pointers hold in any reply to that name.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

KIND_NODE = 0
KIND_DEFER = 1
KIND_SERVFAIL = 2
KIND_MASK = 0x0F
FLAG_APEX = 0x10  # the on-chain name or subdomain itself: what a query's binding is found by
FLAG_WEB = 0x20  # A/AAAA for the web gateway may be synthesized here (no A/AAAA/CNAME of its own)

META_KEY = b"\xffmeta"  # no wire name starts with 0xff
# 0xfe + a binding's apex key: the keys of its other owner names, concatenated (wire names end
# in their zero byte), so an incremental update can remove exactly what the binding wrote.
NODES_PREFIX = b"\xfe"
FORMAT_VERSION = 2
DEFAULT_QTYPE = 0
ENTRY = struct.Struct("!HBHI")
_RR_FIXED = struct.Struct("!HHIH")
CLASS_IN = 1
HEADER_LEN = 12
QUESTION_FIXED = 4  # qtype and qclass after the question name

# Labels of these bytes read the same to dnslib and dnspython; other names take the slow path.
PLAIN_BYTES = b"abcdefghijklmnopqrstuvwxyz0123456789-_*"

Entry = tuple[int, int, bytes]  # rcode, ancount, answer section
# In a wire name this short every label length is at most 40, below '*' (42), the first plain byte.
_NO_PLAIN_LENGTHS = 42


def encode_node(flags: int, default: Entry, entries: dict[int, Entry]) -> bytes:
    parts = [bytes([KIND_NODE | flags]), _entry(DEFAULT_QTYPE, default)]
    parts.extend(_entry(qtype, entry) for qtype, entry in sorted(entries.items()))
    return b"".join(parts)


def encode_defer(flags: int) -> bytes:
    return bytes([KIND_DEFER | flags])


def encode_servfail(flags: int, code: int, text: str) -> bytes:
    return bytes([KIND_SERVFAIL | flags]) + struct.pack("!H", code) + text.encode()


def decode_servfail(value: bytes) -> tuple[int, bytes]:
    return (value[1] << 8) | value[2], value[3:]


def _entry(qtype: int, entry: Entry) -> bytes:
    rcode, ancount, section = entry
    return ENTRY.pack(qtype, rcode, ancount, len(section)) + section


def find_entry(value: bytes, qtype: int) -> Entry:
    """The entry of a NODE value for qtype (its own, else the default)."""
    unpack = ENTRY.unpack_from
    _, rcode, ancount, length = unpack(value, 1)
    default = (rcode, ancount, value[10:10 + length])
    offset, end = 10 + length, len(value)
    while offset < end:
        entry_type, rcode, ancount, length = unpack(value, offset)
        if entry_type == qtype:
            return rcode, ancount, value[offset + 9:offset + 9 + length]
        offset += 9 + length
    return default


def name_to_wire(name: str) -> bytes:
    """'a.b.id' → b'\\x01a\\x01b\\x02id\\x00' (the name must be plain, lower-case)."""
    return b"".join(bytes([len(label)]) + label for label in name.encode().split(b".")) + b"\x00"


def label_offsets(wire: bytes) -> list[int]:
    """Where each label of an uncompressed wire name starts."""
    offsets = []
    offset = 0
    while wire[offset]:
        offsets.append(offset)
        offset += wire[offset] + 1
    return offsets


def split_wire_names(joined: bytes) -> list[bytes]:
    """Uncompressed wire names written one after another, apart."""
    names, start, offset = [], 0, 0
    while offset < len(joined):
        length = joined[offset]
        offset += length + 1
        if length == 0:
            names.append(joined[start:offset])
            start = offset
    return names


def is_plain(wire: bytes, offsets: list[int]) -> bool:
    # Quick: what is not a plain byte must be exactly the length bytes and the final zero. Lengths
    # that are themselves plain bytes ('*', '-', digits: 42, 45, 48-57) fail it; then look per label.
    rest = wire.translate(None, PLAIN_BYTES)
    if len(wire) <= _NO_PLAIN_LENGTHS:
        return len(rest) == len(offsets) + 1  # every length is below 42: none of them was removed
    if rest == bytes(map(wire.__getitem__, offsets)) + b"\x00":
        return True
    return not any(wire[o + 1:o + 1 + wire[o]].translate(None, PLAIN_BYTES) for o in offsets)


def is_plain_name(name: str) -> bool:
    return all(label and not label.encode().translate(None, PLAIN_BYTES) for label in name.split("."))


def encode_answer_section(qname: str, records: Iterable[tuple[str, int, int, bytes]]) -> bytes:
    """Records (owner, rdtype, ttl, rdata) after the question `qname`, compressed as dnslib does.

    dnslib compresses owner names against every name (suffix) written before, rdata never;
    doing the same keeps the store's answers byte-identical to the slow path's.
    """
    names: dict[tuple[str, ...], int] = {}
    question = tuple(qname.split("."))
    offset = HEADER_LEN
    for index, label in enumerate(question):
        names.setdefault(question[index:], offset)
        offset += 1 + len(label)
    out = bytearray()
    start = offset + 1 + QUESTION_FIXED
    for owner, rdtype, ttl, rdata in records:
        labels = tuple(owner.split("."))
        while labels:
            pointer = names.get(labels)
            if pointer is not None and pointer < 0x4000:
                out += struct.pack("!H", 0xC000 | pointer)
                break
            names[labels] = start + len(out)
            out += bytes([len(labels[0])]) + labels[0].encode()
            labels = labels[1:]
        else:
            out += b"\x00"
        out += _RR_FIXED.pack(rdtype, CLASS_IN, ttl, len(rdata)) + rdata
    return bytes(out)
