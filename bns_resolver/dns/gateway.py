"""The query pipeline: access check → answer caches → compiled store → resolvers.

`Gateway.handle` takes one DNS message and returns the answer bytes, a Deferred
of them (forwarding), or None (drop). The common case is decided by a
dictionary lookup on the hand-parsed question; dnslib runs only on a miss.
On a miss the gateway composes its resolvers (resolver.py): the namespace
policies (routing.py) answer from the BNS authority or send the question to the
forwarder, and the gateway turns what they resolve to into bytes.
"""

from __future__ import annotations

import copy
import logging
import struct
from collections.abc import Callable, Collection
from typing import Any

from dnslib import QTYPE, RCODE, DNSRecord
from twisted.internet import defer

from bns_resolver.answers.native import NativeUdp
from bns_resolver.answers.respond import FORWARD, StoreAnswerer
from bns_resolver.dns.access import AccessList
from bns_resolver.dns.authority import BnsAuthority, ReadinessCheck
from bns_resolver.dns.cache import (
    MAX_POSITIVE_TTL,
    STALE_FOR,
    AnswerCache,
    ForwardCache,
    capped_ttls,
)
from bns_resolver.dns.forward_shape import client_reply, core_reply, shared_key, upstream_query
from bns_resolver.dns.forwarder import Forwarder, UpstreamError, reply_rcode
from bns_resolver.dns.loglimit import LogLimiter
from bns_resolver.dns.policy import NamespacePolicy
from bns_resolver.dns.rcodes import RCODE_BADVERS, STALE_ANSWER, ede_of, upstream_failure
from bns_resolver.dns.replay import FOREVER, ReplayCache
from bns_resolver.dns.resolver import AuthorityResult, Forward, Outcome, Query, Resolution, Resolver
from bns_resolver.dns.responses import authority_response, edns_version, error_response, finish, request_edns
from bns_resolver.dns.routing import UNKNOWN_NAME_FETCH_RATE, NamespaceRouter
from bns_resolver.dns.wire import CLASS_IN, FastQuery, parse_fast, patch_answer
from bns_resolver.errors import EDE_NO_REACHABLE_AUTHORITY

log = logging.getLogger(__name__)
limited_log = LogLimiter(log)

Answer = bytes | defer.Deferred[bytes] | None
MAX_NAME_LENGTH = 255
MAX_LABEL_LENGTH = 63


class Gateway:
    """The query pipeline.

    `ready` (by default the authority's own check), `bns_namespaces`, `doh_canary` and
    `unknown_name_fetch_rate` configure the namespace policies (see routing.NamespaceRouter).
    """

    def __init__(self, authority: BnsAuthority, forwarder: Forwarder, *, policy: NamespacePolicy | None = None,
                 access: AccessList | None = None, cache_entries: int = 10000,
                 ready: ReadinessCheck | None = None, bns_namespaces: Callable[[], Collection[str]] | None = None,
                 max_cache_ttl: int = MAX_POSITIVE_TTL, stale_for: int = STALE_FOR, doh_canary: bool = True,
                 web_address: str | None = None, unknown_name_fetch_rate: float = UNKNOWN_NAME_FETCH_RATE,
                 store: StoreAnswerer | None = None) -> None:
        self.authority = authority
        self.forwarder = forwarder
        self.policy = policy or NamespacePolicy()
        self.access = access or AccessList()
        self.answers = AnswerCache(cache_entries)
        self.forwarded = ForwardCache(cache_entries, max_ttl=max_cache_ttl, stale_for=stale_for)
        self.router = NamespaceRouter(authority, self.policy, ready=ready or authority.not_ready,
                                      bns_namespaces=bns_namespaces or frozenset, doh_canary=doh_canary,
                                      fetch_rate=unknown_name_fetch_rate)
        self.stats = {"queries": 0, "cache_hits": 0, "refused": 0, "forwarded": 0, "servfail": 0, "stale": 0,
                      "rate_limited": 0}
        self.replay = ReplayCache(cache_entries)  # what the UDP reader answers repeats from
        self._replay_entries = cache_entries
        self.web_address = web_address  # what address-less BNS names answer A/AAAA with, if anything
        self._views: list[Gateway] = []
        self.store = store  # the compiled answer store, consulted on a cache miss (bns_resolver/answers)
        # Which part answered the last query (see dns/querylog.py): set as it is decided, read by the log.
        self.last_source = "policy"

    def view_with_web_address(self, web_address: str | None) -> Gateway:
        """This gateway for listeners whose clients reach the web gateway at another address.

        Everything is shared but the BNS answer and replay caches, whose bytes carry the address.
        """
        if web_address == self.web_address:
            return self
        for view in self._views:
            if view.web_address == web_address:
                return view
        view = copy.copy(self)
        view.web_address = web_address
        view.answers = AnswerCache(self._replay_entries)
        view.replay = ReplayCache(self._replay_entries)
        view._views = []
        self._views.append(view)
        return view

    def views(self) -> list[Gateway]:
        """This gateway and its per-web-address views (see view_with_web_address)."""
        return [self, *self._views]

    @property
    def clock(self) -> Callable[[], float]:
        """The clock of the namespaces' upstream fetch budgets (tests freeze it)."""
        return self.router.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.router.clock = clock

    def index_changed(self) -> None:
        """Anything may have changed (an import, a log trimmed past us): drop every BNS answer and
        switch the store off until it speaks for the index again. Upstream answers stay, but for
        names under BNS namespaces, which may be BNS's own now."""
        self.authority.refresh()
        if self.store is not None:
            self.store.index_changed()
        namespaces = {_wire_name(ns) for ns in self.authority.namespaces}
        self._drop_cached(lambda _qname: True, lambda qname: _tld(qname) in namespaces)

    def readiness_changed(self) -> None:
        """The index turned ready or not: every BNS answer goes (each is SERVFAIL now, or no longer),
        and so do upstream answers under BNS namespaces, which the namespace policies may route
        differently now."""
        namespaces = {_wire_name(ns) for ns in self.authority.namespaces}
        self._drop_cached(lambda _qname: True, lambda qname: _tld(qname) in namespaces)

    def names_changed(self, names: Collection[str], *, height_moved: bool) -> None:
        """These names (and so everything under them) changed: a block, a zone file, a subdomain.
        Only their answers go, upstream ones included (a forwarded NXDOMAIN for a name BNS now
        has); every other forwarded answer stays. A new height changes every negative answer's SOA
        serial, so then every BNS answer goes (they are rebuilt from the store in microseconds)."""
        self.authority.refresh()
        suffixes = tuple(_wire_name(name) for name in names if name)

        def touched(qname: bytes) -> bool:
            return qname.endswith(suffixes) if suffixes else False

        self._drop_cached((lambda _qname: True) if height_moved else touched, touched)

    def _drop_cached(self, bns: Callable[[bytes], bool], forwarded: Callable[[bytes], bool]) -> None:
        """Drop BNS answers whose (lower-case wire) question name `bns` picks, upstream ones `forwarded` picks.
        The native answerer's namespace plans go whatever is dropped: every caller follows a change of the
        index, its height or its readiness, which is what the plans are made of."""
        if self.store is not None:
            self.store.forget_plans()
        for key in [key for key in self.forwarded.entries if forwarded(key[0])]:  # type: ignore[arg-type]
            del self.forwarded.entries[key]
        for gateway in self.views():
            answers = gateway.answers.entries
            for key in [key for key in answers if bns(key[0])]:  # type: ignore[arg-type]
                del answers[key]
            gateway.replay.drop(bns, forwarded)

    def handle(self, packet: bytes, client_ip: str, *, tcp: bool) -> Answer:
        self.stats["queries"] += 1
        if not self.access.allows(client_ip):
            self.stats["refused"] += 1
            self.last_source = "policy"
            limited_log.info("refused", "refused a query from %s: not in the allow-list ([dns] allow)", client_ip)
            return _header_reply(packet, RCODE.REFUSED)
        fast = parse_fast(packet)
        if fast is not None:
            stored = self.answers.entries.get(fast.cache_key(tcp=tcp))
            if stored is not None:
                return self._cache_hit(packet, patch_answer(stored, packet, fast.question_end), FOREVER, tcp=tcp)
            core, until = self.forwarded.get_with_deadline(shared_key(fast))
            if core is not None:
                return self._cache_hit(packet, client_reply(core, packet, fast, tcp=tcp), until, tcp=tcp)
            if self.store is not None:
                found = self.store.answer(packet, fast, tcp=tcp, web_address=self.web_address)
                if found is not None:
                    self.last_source = "store"
                    return self._from_store(packet, fast, found, tcp=tcp)
        return self._slow_path(packet, fast, tcp=tcp)

    def store_answer_udp(self, packet: bytes) -> bytes | None:
        """The UDP reader's fast path, for a client already allowed: the compiled store's answer to a
        plain query, or None when the full path (handle) must decide.

        Only what the store vouches for alone is answered here: not a namespace whose names an upstream
        answer may be cached for (handle probes that cache first), not a name the store sends
        upstream. Both caches of handle are skipped: the store is as cheap as the answer cache, and
        its answer goes into the replay table, so the next repeat is one lookup in the reader.
        """
        store = self.store
        fast = parse_fast(packet) if store is not None else None
        if fast is None or store is None:
            return None
        found = store.answer(packet, fast, tcp=False, web_address=self.web_address,
                             shadowed=self.forwarded.namespaces)
        if found is None:
            return None
        wire, cacheable = found
        if not isinstance(wire, bytes):
            return None  # (FORWARD, namespace)
        self.stats["queries"] += 1
        self.last_source = "store"
        if cacheable:
            self.replay.remember(packet, wire, FOREVER)
        else:
            self.stats["servfail"] += 1
        return wire

    def native_store_udp(self) -> NativeUdp | None:
        """The C version of store_answer_udp's lookup, reply and replay entry, and of the UDP reader's
        loop (answers/native.py); None without the extension or a store. It declines whatever
        store_answer_udp must decide, and does not count in `stats`: the reader does."""
        if self.store is None:
            return None
        return self.store.native_udp(self.forwarded, self.web_address, self.replay)

    def _cache_hit(self, packet: bytes, answer: bytes, until: float, *, tcp: bool) -> bytes:
        self.stats["cache_hits"] += 1
        self.last_source = "cache"
        if not tcp:
            self.replay.remember(packet, answer, until)
        return answer

    def _from_store(self, packet: bytes, fast: FastQuery, found: Any, *, tcp: bool) -> Answer:
        """A compiled-store answer, cached like the slow path's; or its NXDOMAIN in a bns-first namespace."""
        wire, cacheable = found
        if wire is FORWARD:
            request, namespace = DNSRecord.parse(packet), cacheable
            return self._serve(self.router.unknown_name(namespace), self._query(packet, request, fast), packet,
                               request, fast, tcp=tcp)
        if cacheable:
            self.answers.put(fast.cache_key(tcp=tcp), wire)
        else:
            self.stats["servfail"] += 1
        return wire

    def _slow_path(self, packet: bytes, fast: FastQuery | None, *, tcp: bool) -> Answer:
        self.last_source = "policy"  # until the query is known to be well-formed and served
        try:
            request = DNSRecord.parse(packet)
        except Exception as exc:  # noqa: BLE001 - dnslib raises several types for garbage
            log.debug("malformed query (%s)", exc)
            return _header_reply(packet, RCODE.FORMERR)
        if request.header.qr:
            return None  # a response sent to us: never answer it
        if not all(_legal_name(q.qname.label) for q in request.questions):
            return _header_reply(packet, RCODE.FORMERR)  # RFC 1035 §2.3.4; it cannot even be echoed
        problem = _unsupported(request)
        if problem is not None:
            return problem
        self.last_source = "index"
        query = self._query(packet, request, fast)
        return self._serve(self.router.resolve(query), query, packet, request, fast, tcp=tcp)

    def _query(self, packet: bytes, request: DNSRecord, fast: FastQuery | None) -> Query:
        """The question for the resolvers. Plain queries go upstream in one canonical shape (see
        forward_shape), so clients that ask the same question differently share one fetch;
        anything unusual goes as the client sent it."""
        return Query(str(request.q.qname).rstrip(".").lower(), request.q.qtype,
                     upstream_query(fast) if fast is not None else packet, self.web_address)

    def _serve(self, resolution: Resolution, query: Query, packet: bytes, request: DNSRecord,
               fast: FastQuery | None, *, tcp: bool) -> Answer:
        """What the resolvers decided, as the client's answer: ours now, or the upstream's later."""
        if isinstance(resolution, AuthorityResult):
            return self._answer(request, resolution, fast, tcp=tcp)
        if isinstance(resolution, Forward):
            if resolution.fallback is not None:
                return self._icann_first(query, resolution.fallback, packet, request, fast, tcp=tcp)
            return self._forward(query, packet, request, fast, tcp=tcp)
        raise TypeError(f"the namespace policies resolved to {type(resolution).__name__}, not an answer or Forward")

    def _answer(self, request: DNSRecord, result: AuthorityResult, fast: FastQuery | None, *, tcp: bool) -> bytes:
        reply = authority_response(request, result, height=self.authority.height)
        ede = ede_of(result)
        if result.outcome is Outcome.SERVFAIL:
            self.stats["servfail"] += 1
            limited_log.warning(f"servfail-{result.ede_code}", "SERVFAIL for %s: %s", request.q.qname, result.ede_text)
        wire = finish(reply, request, tcp=tcp, ede=ede)
        if fast is not None and result.outcome is not Outcome.SERVFAIL:
            self.answers.put(fast.cache_key(tcp=tcp), wire)
        return wire

    def _forward(self, query: Query, packet: bytes, request: DNSRecord, fast: FastQuery | None, *,
                 tcp: bool) -> Answer:
        self.stats["forwarded"] += 1
        self.last_source = "forward"
        deferred = self.forwarder.resolve(query)
        deferred.addCallback(self._forwarded, packet, request, fast, tcp)
        deferred.addErrback(self._upstream_failed, request, fast, tcp)
        return deferred

    def _forwarded(self, reply: bytes, packet: bytes, request: DNSRecord, fast: FastQuery | None, tcp: bool) -> bytes:
        reply = capped_ttls(reply, self.forwarded.max_ttl)
        core = core_reply(reply) if fast is not None else None
        if fast is not None and core is not None:
            self.forwarded.put(shared_key(fast), core)
            return client_reply(core, packet, fast, tcp=tcp)
        return self._reshaped(reply, request, tcp)

    def _reshaped(self, reply: bytes, request: DNSRecord, tcp: bool) -> bytes:
        """An upstream reply the bytes-only path cannot reshape, rebuilt for this client by the library
        (the client's ID, question and EDNS; RA set, AA clear; TC when it does not fit its UDP)."""
        record = DNSRecord.parse(reply)
        record.header.id = request.header.id
        record.header.rd, record.header.cd = request.header.rd, request.header.cd
        record.header.ra, record.header.aa = 1, 0
        record.questions = list(request.questions)
        record.ar = [rr for rr in record.ar if rr.rtype != QTYPE.OPT]
        return finish(record, request, tcp=tcp)

    def _upstream_failed(self, failure: Any, request: DNSRecord, fast: FastQuery | None, tcp: bool) -> bytes:
        ede_code = getattr(failure.value, "ede_code", EDE_NO_REACHABLE_AUTHORITY)
        if not failure.check(UpstreamError):
            limited_log.error("forward-bug", "forwarding %s failed: %s", request.q.qname, failure.getTraceback())
        else:
            limited_log.warning("upstream", "forwarding %s failed: %s", request.q.qname, failure.getErrorMessage())
        stale = self.forwarded.stale(shared_key(fast)) if fast is not None else None
        if stale is not None:
            return self._stale_answer(stale, request, tcp)
        self.stats["servfail"] += 1
        return finish(error_response(request, RCODE.SERVFAIL), request, tcp=tcp, ede=upstream_failure(ede_code))

    def _stale_answer(self, stale: bytes, request: DNSRecord, tcp: bool) -> bytes:
        """RFC 8767: the expired answer, TTL 30, with EDE 3, rather than SERVFAIL when upstreams fail."""
        self.stats["stale"] += 1
        reply = DNSRecord.parse(stale)
        reply.header.id = request.header.id
        reply.questions = list(request.questions)  # the client's own letter case
        reply.ar = [rr for rr in reply.ar if rr.rtype != QTYPE.OPT]
        return finish(reply, request, tcp=tcp, ede=STALE_ANSWER)

    def _icann_first(self, query: Query, fallback: Resolver, packet: bytes, request: DNSRecord,
                     fast: FastQuery | None, *, tcp: bool) -> Answer:
        """Upstream's answer, unless it is NXDOMAIN or there is none: then the fallback's (BNS's)."""
        self.last_source = "forward"
        deferred = self.forwarder.resolve(query)

        def fall_back() -> bytes:
            result = fallback.resolve(query)
            if not isinstance(result, AuthorityResult):
                raise TypeError(f"an icann-first fallback resolved to {type(result).__name__}, not an answer")
            return self._answer(request, result, fast, tcp=tcp)

        def decide(reply: bytes) -> bytes:
            if reply_rcode(reply) == RCODE.NXDOMAIN:
                return fall_back()
            return self._forwarded(reply, packet, request, fast, tcp)

        def upstream_down(failure: Any) -> bytes:
            failure.trap(UpstreamError, defer.TimeoutError)
            # No upstream verdict: BNS's own answer is still better than none.
            return fall_back()

        return deferred.addCallbacks(decide, upstream_down)


def _unsupported(request: DNSRecord) -> bytes | None:
    """Answers for queries we do not serve, or None when the query is fine."""
    if request.header.opcode != 0:
        return _not_implemented(request)
    opts = [rr for rr in request.ar if rr.rtype == QTYPE.OPT]
    if len(opts) > 1 or (opts and opts[0].rname.label != ()):
        # RFC 6891 §6.1.1: more than one OPT, or an OPT not owned by the root, is a format error;
        # the reply carries no OPT, as the client's EDNS cannot be understood.
        return bytes(error_response(request, RCODE.FORMERR).pack())
    if len(request.questions) != 1:
        return finish(error_response(request, RCODE.FORMERR), request, tcp=True)
    opt = request_edns(request)
    if opt is not None and edns_version(opt) != 0:
        return finish(error_response(request, 0), request, tcp=True, extended_rcode=RCODE_BADVERS)
    if request.q.qclass != CLASS_IN or request.q.qtype in (QTYPE.AXFR, QTYPE.IXFR):
        return finish(error_response(request, RCODE.REFUSED if request.q.qclass != CLASS_IN else RCODE.NOTIMP),
                      request, tcp=True)
    return None


def _legal_name(labels: tuple[bytes, ...]) -> bool:
    """RFC 1035 §2.3.4 sizes. dnslib reads a byte 0x40-0xBF (the extended label types of RFC 6891
    §5, unused) as a label length over 63, which it then cannot pack again."""
    return (all(len(label) <= MAX_LABEL_LENGTH for label in labels)
            and sum(len(label) + 1 for label in labels) + 1 <= MAX_NAME_LENGTH)


def _not_implemented(request: DNSRecord) -> bytes:
    """NOTIMP for an opcode other than QUERY: RA, RD, CD and AD are defined only for QUERY."""
    reply = error_response(request, RCODE.NOTIMP)
    header = reply.header
    header.ra = header.rd = header.cd = header.ad = 0
    return finish(reply, request, tcp=True)


def _header_reply(packet: bytes, rcode: int) -> bytes | None:
    """A reply of the query's header alone, for packets we cannot or will not parse further."""
    if len(packet) < 12 or packet[2] & 0x80:
        return None  # not even a header, or a response: say nothing
    opcode = packet[2] & 0x78
    flags = 0x8000 | (opcode | (packet[2] & 0x01 if opcode == 0 else 0)) << 8 | rcode  # RD only for QUERY
    return packet[0:2] + struct.pack("!HHHHH", flags, 0, 0, 0, 0)


def _wire_name(name: str) -> bytes:
    """'alice.id' → b'\\x05alice\\x02id\\x00', as cache keys hold question names."""
    return b"".join(bytes([len(label)]) + label for label in name.lower().encode().split(b".") if label) + b"\x00"


def _tld(qname: bytes) -> bytes:
    """The last label of a wire name, as a wire name of its own (b'\\x02id\\x00')."""
    offset, last = 0, 0
    while offset < len(qname) and qname[offset]:
        last = offset
        offset += qname[offset] + 1
    return qname[last:]
