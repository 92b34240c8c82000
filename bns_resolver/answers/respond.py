"""Answering a plain query from the compiled store: one key lookup, the reply joined from bytes.

The gateway calls `StoreAnswerer.answer` on an answer-cache miss for queries of the
plain shape (`dns.wire.parse_fast`). The reply is byte for byte what the slow path
(`dns.authority` + `dns.responses`, through dnslib) sends for the same lower-case
query. The answerer declines (returns None, and the slow path decides) whenever the
store cannot vouch for the answer alone: no current store, a namespace apex, an
icann-first namespace, an index that is not ready, an unusual name, or a binding
whose zone file was not held when the store was compiled.
"""

from __future__ import annotations

import ipaddress
import logging
import struct
from collections.abc import Container
from typing import Any

from bns_resolver.answers import native
from bns_resolver.answers.format import (
    FLAG_APEX,
    FLAG_WEB,
    KIND_MASK,
    KIND_NODE,
    KIND_SERVFAIL,
    decode_servfail,
    find_entry,
    is_plain,
    label_offsets,
    name_to_wire,
)
from bns_resolver.answers.store import CompiledStore
from bns_resolver.dns.authority import NEGATIVE_TTL, WEB_ADDRESS_TTL, BnsAuthority, apex_records
from bns_resolver.dns.loglimit import LogLimiter
from bns_resolver.dns.policy import Mode, NamespacePolicy
from bns_resolver.dns.rcodes import RCODE_NXDOMAIN, RCODE_SERVFAIL
from bns_resolver.dns.replay import ReplayCache
from bns_resolver.dns.wire import (
    MAX_UDP_PAYLOAD,
    MIN_UDP_PAYLOAD,
    TYPE_A,
    TYPE_AAAA,
    TYPE_AXFR,
    TYPE_IXFR,
    TYPE_OPT,
    TYPE_SOA,
    FastQuery,
)

log = logging.getLogger(__name__)
limited_log = LogLimiter(log)  # a SERVFAIL flood must not flood the log (as the slow path's)

FORWARD = "forward"  # (FORWARD, namespace): a bns-first namespace's NXDOMAIN, the gateway asks upstream
EDNS_OPTION_EDE = 15
EDE_TEXT_MAX = 300
MAX_NAME_LENGTH = 255  # RFC 1035 §2.3.4, in wire form
_COUNTS = struct.Struct("!HHHH")
_RR_FIXED = struct.Struct("!HHIH")
_CANARY = name_to_wire("use-application-dns.net")  # the gateway's DoH canary: its own rule
_OPT = {False: b"\x00" + _RR_FIXED.pack(TYPE_OPT, MAX_UDP_PAYLOAD, 0, 0),
        True: b"\x00" + _RR_FIXED.pack(TYPE_OPT, MAX_UDP_PAYLOAD, 0x8000, 0)}

Reply = tuple[bytes, bool]  # the answer, and whether the gateway may cache it
# What the native answerer (answers/native.py) may do in a namespace: its PLAN_* and the SOA record
# after its owner name; None: nothing (not a namespace, icann-first, or the index is not ready).
Plan = tuple[int, bytes] | None
MAX_PLANS = 1024  # namespaces and other last labels asked since the last change


class StoreAnswerer:
    def __init__(self, authority: BnsAuthority, policy: NamespacePolicy, store: CompiledStore | None = None) -> None:
        self.authority = authority
        self.policy = policy
        self.store: CompiledStore | None = None
        self._get: Any = None  # store.get while the store matches the index, else None
        self.changes = 0  # index changes seen; a compile started before the last one is stale
        self._answered = 0  # by `answer`; the native answerers count their own
        self._natives: list[Any] = []
        # The finished SOA record of a NXDOMAIN/NODATA reply, per namespace, height and owner pointer.
        self._soa: dict[tuple[str, int | None, int], bytes] = {}
        self._web_rr: dict[str, tuple[int, bytes]] = {}
        # Per last label (bytes), what the native answerer may answer there; dropped on every change
        # of the index, its readiness or the namespace policy (Gateway and the policy call forget_plans).
        self.plans: dict[bytes, Plan] = {}
        policy.listeners.append(self.forget_plans)
        if store is not None:
            self.attach(store)

    def attach(self, store: CompiledStore) -> CompiledStore | None:
        """Serve from `store` from now on; returns the store it replaces (the caller closes it)."""
        previous, self.store, self._get = self.store, store, store.get
        self.forget_plans()
        return previous if previous is not store else None

    @property
    def active(self) -> bool:
        return self._get is not None

    def index_changed(self) -> None:
        """The index moved on: the store no longer speaks for it until a new compile is attached."""
        self.changes += 1
        self._get = None
        self.forget_plans()

    def forget_plans(self) -> None:
        self.plans.clear()

    def plan(self, label: bytes) -> Plan:
        """What the native answerer may answer under the last label `label` until the next change:
        the checks `answer` makes per query that depend on the namespace alone."""
        namespace = label.decode("latin-1")
        plan: Plan = None
        if namespace in self.authority.namespaces:
            mode = self.policy.effective_mode(namespace)
            if mode is not Mode.ICANN_FIRST and not self.authority.not_ready():
                height = self.authority.height
                kind = native.PLAN_BNS_ONLY if mode is Mode.BNS_ONLY else native.PLAN_BNS_FIRST
                plan = (kind, self._soa_tail(namespace, height))
        if len(self.plans) >= MAX_PLANS:
            self.plans.clear()
        self.plans[label] = plan
        return plan

    @property
    def answered(self) -> int:
        """Replies joined so far, here and by the native answerers."""
        return self._answered + sum(int(answerer.answered) for answerer in self._natives)

    def native_udp(self, forwarded: Any, web_address: str | None, replay: ReplayCache) -> native.NativeUdp | None:
        """A native answerer for a UDP reader (None without the C extension): the replies `answer` gives
        with tcp=False and the forward cache's namespaces shadowed, remembered in `replay` as the
        gateway remembers them; it declines (None) whatever `answer` must decide."""
        web = None if web_address is None else self._web_record(web_address)
        answerer = native.udp_answerer(self, forwarded, web, replay)
        if answerer is not None:
            self._natives.append(answerer)
        return answerer

    def answer(self, packet: bytes, fast: FastQuery, *, tcp: bool, web_address: str | None,
               shadowed: Container[str] = ()) -> Reply | tuple[str, str] | None:
        """The reply, (FORWARD, namespace), or None (the slow path decides). Names of a namespace in
        `shadowed` are declined: an upstream answer cached for them comes first (the gateway's order)."""
        get = self._get
        qtype = fast.qtype
        if get is None or fast.qclass != 1 or qtype == TYPE_AXFR or qtype == TYPE_IXFR:
            return None
        qname = fast.qname
        if len(qname) > MAX_NAME_LENGTH:
            return None  # FORMERR, the slow path's; LMDB keys stop at 511 bytes anyway
        offsets = label_offsets(qname)
        if len(offsets) < 2 or qname == _CANARY:
            return None  # a namespace apex, the root, or the canary: the slow path's own rules
        namespace = qname[offsets[-1] + 1:-1].decode("latin-1")
        if namespace not in self.authority.namespaces or namespace in shadowed:
            return None
        mode = self.policy.effective_mode(namespace)
        if mode is Mode.ICANN_FIRST or self.authority.not_ready():
            return None
        value = get(qname)
        if value is None:
            if not is_plain(qname, offsets):
                return None
            value, apex_at = self._binding(qname, offsets, get)
            if value is not None and value[0] & KIND_MASK != KIND_NODE:
                return self._unusable(packet, fast, tcp, value)
            if (value is not None and web_address is not None and (qtype == TYPE_A or qtype == TYPE_AAAA)
                    and offsets[1] == apex_at and qname.startswith(b"\x03www")):
                return self._web(packet, fast, tcp, offsets, namespace, web_address)
            if mode is Mode.BNS_FIRST:
                return FORWARD, namespace
            return self._reply(packet, fast, tcp, offsets, namespace, RCODE_NXDOMAIN, 0, b""), True
        if value[0] & KIND_MASK != KIND_NODE:
            return self._unusable(packet, fast, tcp, value)
        if web_address is not None and (qtype == TYPE_A or qtype == TYPE_AAAA) and value[0] & FLAG_WEB:
            return self._web(packet, fast, tcp, offsets, namespace, web_address)
        rcode, ancount, section = find_entry(value, qtype)
        if rcode == RCODE_NXDOMAIN and mode is Mode.BNS_FIRST:
            return FORWARD, namespace
        return self._reply(packet, fast, tcp, offsets, namespace, rcode, ancount, section), True

    @staticmethod
    def _binding(qname: bytes, offsets: list[int], get: Any) -> tuple[bytes | None, int]:
        """The apex entry of the name or subdomain that owns a name the store has no entry for."""
        if len(offsets) >= 4:
            value = get(qname[offsets[-3]:])
            if value is not None and value[0] & FLAG_APEX:
                return value, offsets[-3]  # a subdomain owns its whole subtree
        if len(offsets) >= 3:
            value = get(qname[offsets[-2]:])
            if value is not None and value[0] & FLAG_APEX:
                return value, offsets[-2]
        return None, -1

    def _unusable(self, packet: bytes, fast: FastQuery, tcp: bool, value: bytes) -> Reply | None:
        if value[0] & KIND_MASK != KIND_SERVFAIL:
            return None  # deferred: the zone file may have arrived since; the slow path looks
        code, text = decode_servfail(value)
        limited_log.warning(f"servfail-{code}", "SERVFAIL for %s: %s", _text(fast.qname), text.decode(errors="replace"))
        self._answered += 1
        opt = b""
        if fast.edns is not None:
            option = struct.pack("!HHH", EDNS_OPTION_EDE, 2 + len(text[:EDE_TEXT_MAX]), code) + text[:EDE_TEXT_MAX]
            opt = b"\x00" + _RR_FIXED.pack(TYPE_OPT, MAX_UDP_PAYLOAD, 0x8000 if fast.edns.do_bit else 0,
                                           len(option)) + option
        return _join(packet, fast, tcp, RCODE_SERVFAIL, 0, b"", 0, opt), False

    def _web(self, packet: bytes, fast: FastQuery, tcp: bool, offsets: list[int], namespace: str,
             web_address: str) -> Reply:
        """The web gateway's address for an address-less name or its www (`authority._web_answer`)."""
        family, record = self._web_record(web_address)
        if fast.qtype != family:
            return self._reply(packet, fast, tcp, offsets, namespace, 0, 0, b""), True
        return self._reply(packet, fast, tcp, offsets, namespace, 0, 1, record), True

    def _web_record(self, web_address: str) -> tuple[int, bytes]:
        """(A or AAAA, the finished answer record) for the web gateway's address, built once per address."""
        known = self._web_rr.get(web_address)
        if known is not None:
            return known
        address = ipaddress.ip_address(web_address)
        family = TYPE_AAAA if address.version == 6 else TYPE_A
        record = b"\xc0\x0c" + _RR_FIXED.pack(family, 1, WEB_ADDRESS_TTL, len(address.packed)) + address.packed
        self._web_rr[web_address] = (family, record)
        return family, record

    def _reply(self, packet: bytes, fast: FastQuery, tcp: bool, offsets: list[int], namespace: str, rcode: int,
               ancount: int, section: bytes) -> bytes:
        self._answered += 1
        if ancount:
            authority, nscount = b"", 0
        else:
            # NXDOMAIN/NODATA carry the namespace SOA (RFC 2308), its owner pointing into the question.
            authority, nscount = self._soa_record(namespace, 12 + offsets[-1]), 1
        opt = _OPT[fast.edns.do_bit] if fast.edns is not None else b""
        return _join(packet, fast, tcp, rcode, ancount, section + authority, nscount, opt)

    def _soa_record(self, namespace: str, pointer: int) -> bytes:
        # One dict lookup per NXDOMAIN: a flood of random names costs no SOA building.
        key = (namespace, self.authority.height, pointer)
        record = self._soa.get(key)
        if record is None:
            if len(self._soa) > 1024:
                self._soa.clear()
            record = self._soa[key] = struct.pack("!H", 0xC000 | pointer) + self._soa_tail(namespace, key[1])
        return record

    @staticmethod
    def _soa_tail(namespace: str, height: int | None) -> bytes:
        """The namespace's SOA record after its owner name."""
        rdata = apex_records(namespace, height)[0].wire
        return _RR_FIXED.pack(TYPE_SOA, 1, NEGATIVE_TTL, len(rdata)) + rdata


def _join(packet: bytes, fast: FastQuery, tcp: bool, rcode: int, ancount: int, records: bytes, nscount: int,
          opt: bytes) -> bytes:
    """Header (as dnslib sets it for an authoritative reply), question as asked, records, OPT; TC if too big."""
    flags = bytes((0x84 | (packet[2] & 0x01), 0x80 | (packet[3] & 0x10) | rcode))
    question = packet[12:fast.question_end]
    arcount = 1 if opt else 0
    wire = b"".join((packet[:2], flags, _COUNTS.pack(1, ancount, nscount, arcount), question, records, opt))
    if tcp or len(wire) <= MIN_UDP_PAYLOAD or len(wire) <= fast.udp_limit():  # every client takes 512
        return wire
    flags = bytes((flags[0] | 0x02, flags[1]))
    return b"".join((packet[:2], flags, _COUNTS.pack(1, 0, 0, arcount), question, opt))


def _text(wire: bytes) -> str:
    return ".".join(wire[o + 1:o + 1 + wire[o]].decode("latin-1") for o in label_offsets(wire))
