"""Building DNS answers in wire form with dnslib, once per cache entry.

Everything here is the slow, complete path: it runs on a cache miss and for
unusual queries. The bytes it produces are what the fast path replays.
"""

from __future__ import annotations

import struct

from dnslib import EDNS0, QTYPE, RR, DNSHeader, DNSRecord
from dnslib.dns import RD, EDNSOption

from bns_resolver.dns.authority import NEGATIVE_TTL, apex_records
from bns_resolver.dns.rcodes import Ede, rcode_of
from bns_resolver.dns.resolver import AuthorityResult, Outcome
from bns_resolver.dns.wire import MAX_UDP_PAYLOAD, MIN_UDP_PAYLOAD
from bns_resolver.zonefiles.parse import ZoneRecord

EDNS_OPTION_EDE = 15
EDE_TEXT_MAX = 300  # bytes of EXTRA-TEXT we send: enough to act on, small enough for a UDP answer


def to_rr(record: ZoneRecord) -> RR:
    return RR(record.owner + ".", record.rdtype, 1, record.ttl, RD(record.wire))


def authority_response(request: DNSRecord, result: AuthorityResult, *, height: int | None) -> DNSRecord:
    """An authoritative reply: answers, or the namespace SOA for NXDOMAIN/NODATA (RFC 2308)."""
    reply = _reply_header(request, rcode=rcode_of(result.outcome), aa=True)
    for record in result.records:
        reply.add_answer(to_rr(record))
    if result.outcome in (Outcome.NODATA, Outcome.NXDOMAIN) and result.namespace:
        soa = apex_records(result.namespace, height)[0]
        reply.add_auth(RR(soa.owner + ".", soa.rdtype, 1, NEGATIVE_TTL, RD(soa.wire)))
    return reply


def error_response(request: DNSRecord, rcode: int) -> DNSRecord:
    return _reply_header(request, rcode=rcode, aa=False)


def _reply_header(request: DNSRecord, *, rcode: int, aa: bool) -> DNSRecord:
    header = DNSHeader(id=request.header.id, qr=1, opcode=request.header.opcode, aa=int(aa), ra=1,
                       rd=request.header.rd, rcode=rcode & 0xF)
    header.cd = request.header.cd
    reply = DNSRecord(header, q=request.q)
    reply.questions = list(request.questions)
    return reply


def request_edns(request: DNSRecord) -> RR | None:
    for rr in request.ar:
        if rr.rtype == QTYPE.OPT:
            return rr
    return None


def edns_version(opt: RR) -> int:
    return (opt.ttl >> 16) & 0xFF


def udp_payload(opt: RR | None) -> int:
    if opt is None:
        return MIN_UDP_PAYLOAD
    return min(max(opt.rclass, MIN_UDP_PAYLOAD), MAX_UDP_PAYLOAD)


def finish(reply: DNSRecord, request: DNSRecord, *, tcp: bool, ede: Ede | None = None,
           extended_rcode: int = 0) -> bytes:
    """Add OPT (mirroring the client's EDNS) and EDE, pack, and truncate for UDP."""
    opt = request_edns(request)
    if opt is not None:
        do_flag = "do" if (opt.ttl & 0x8000) else ""
        options = [EDNSOption(EDNS_OPTION_EDE, struct.pack("!H", ede[0]) + ede[1].encode()[:EDE_TEXT_MAX])] if ede else []
        reply.add_ar(EDNS0(udp_len=MAX_UDP_PAYLOAD, ext_rcode=extended_rcode >> 4, flags=do_flag, opts=options))
    packed = reply.pack()
    limit = udp_payload(opt)
    if tcp or len(packed) <= limit:
        return bytes(packed)
    return truncated(reply)


def truncated(reply: DNSRecord) -> bytes:
    """The reply with TC set and only its header, question and OPT: the client retries over TCP."""
    reply.header.tc = 1
    reply.rr, reply.auth = [], []
    reply.ar = [rr for rr in reply.ar if rr.rtype == QTYPE.OPT]
    return bytes(reply.pack())
