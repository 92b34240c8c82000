"""One upstream question and one cached reply per name, shaped for each client.

Clients ask the same question in many shapes: with or without EDNS, with another
buffer size, over UDP or TCP, in mixed letter case (0x20). What the upstream answers
depends on none of that, so the gateway asks it one canonical question per
(name, type, class, DO, RD/AD/CD) and keeps one reply: the upstream's records without
its OPT record, with RA set (we offer recursion) and AA clear (the answer is not ours).
Each client gets that reply with its own ID, flags and question bytes, an OPT record
only when it sent one, and TC with no records when it does not fit the client's UDP
limit. All of it is done on wire bytes: no DNS library on the hit path.
"""

from __future__ import annotations

import struct

from bns_resolver.dns.wire import MAX_UDP_PAYLOAD, TYPE_OPT, FastQuery, patch_answer, walk_message

# Our buffer size towards upstreams (the DNS flag day 2020 value): answers that do not fit
# come back with TC and are fetched again over TCP by the forwarder.
UPSTREAM_PAYLOAD = 1232
_FLAG_AA = 0x0400
_FLAG_TC = 0x0200
_FLAG_RA = 0x0080
_FLAG_DO = 0x8000
_HEADER = struct.Struct("!HHHHHH")


def shared_key(fast: FastQuery) -> tuple[object, ...]:
    """What the upstream's answer depends on: never the client's transport, buffer size or letter case."""
    return (fast.qname, fast.qtype, fast.qclass, fast.edns is not None and fast.edns.do_bit, fast.flags)


def upstream_query(fast: FastQuery) -> bytes:
    """The canonical question for `fast` (ID 0: the forwarder picks a random one per attempt)."""
    do_bit = fast.edns is not None and fast.edns.do_bit
    opt = b"\x00" + struct.pack("!HHBBHH", TYPE_OPT, UPSTREAM_PAYLOAD, 0, 0, _FLAG_DO if do_bit else 0, 0)
    return (_HEADER.pack(0, fast.flags, 1, 0, 0, 1) + fast.qname
            + struct.pack("!HH", fast.qtype, fast.qclass) + opt)


def core_reply(reply: bytes) -> bytes | None:
    """The upstream reply without its OPT record, with RA set and AA clear; None when it cannot
    be reshaped by bytes alone (an OPT that is not the last record, or an extended rcode)."""
    try:
        walk = walk_message(reply)
    except ValueError:
        return None
    if walk.end != len(reply):
        return None
    _id, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(reply)
    opt_at = -1
    for index, record in enumerate(walk.records):
        if record.rtype == TYPE_OPT:
            if index < ancount + nscount or opt_at >= 0 or record.ttl >> 24:
                return None  # misplaced, doubled, or an extended rcode we would lose
            opt_at = record.start
        elif opt_at >= 0:
            return None  # a record after the OPT: cutting the OPT out could break its pointers
    flags = (flags | _FLAG_RA) & ~_FLAG_AA
    header = _HEADER.pack(_id, flags, qdcount, ancount, nscount, arcount - (opt_at >= 0))
    return header + reply[12:opt_at if opt_at >= 0 else len(reply)]


def client_reply(core: bytes, packet: bytes, fast: FastQuery, *, tcp: bool) -> bytes:
    """`core` as the answer to `packet`: its ID, RD/CD, question bytes and EDNS; TC if it does not fit."""
    answer = patch_answer(core, packet, fast.question_end)
    opt = _our_opt(fast)
    if opt:
        answer = answer[:10] + (struct.unpack_from("!H", answer, 10)[0] + 1).to_bytes(2, "big") + answer[12:] + opt
    if tcp or len(answer) <= fast.udp_limit():
        return answer
    flags = struct.unpack_from("!H", answer, 2)[0] | _FLAG_TC
    header = _HEADER.pack(struct.unpack_from("!H", packet)[0], flags, 1, 0, 0, 1 if opt else 0)
    return header + packet[12:fast.question_end] + opt


def _our_opt(fast: FastQuery) -> bytes:
    """An OPT record for a client that sent one: our buffer size, DO echoed (RFC 3225)."""
    if fast.edns is None:
        return b""
    return b"\x00" + struct.pack("!HHBBHH", TYPE_OPT, MAX_UDP_PAYLOAD, 0, 0, _FLAG_DO if fast.edns.do_bit else 0, 0)
