"""Two gateways over one index: one answering misses from the compiled store, one by the slow path."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import dns.rdatatype
from sqlalchemy import Engine

from bns_resolver.answers.compile import compile_store
from bns_resolver.answers.respond import StoreAnswerer
from bns_resolver.answers.store import CompiledStore, open_current
from bns_resolver.dns.authority import BnsAuthority, ReadinessCheck
from bns_resolver.dns.forwarder import Forwarder
from bns_resolver.dns.gateway import Gateway
from bns_resolver.dns.policy import Mode, NamespacePolicy
from bns_resolver.dns.zones import ZoneCache
from bns_resolver.index.lookup import IndexReader

QTYPES = ("A", "AAAA", "URI", "TXT", "MX", "CNAME", "ANY", "SRV", "NS")


@dataclass(frozen=True)
class Ask:
    name: str
    rdtype: str
    edns: int | None = None  # EDNS payload size, or no EDNS
    do: bool = False
    tcp: bool = False
    web: str | None = None  # the web gateway address of the listener

    def packet(self, query_id: int = 0x1234) -> bytes:
        """The query in wire form, built by hand (dnspython's builder would dominate the test's time);
        odd IDs ask without RD and with CD, to see the flags copied."""
        flags = 0x0010 if query_id & 1 else 0x0100
        qname = b"".join(bytes([len(label)]) + label.encode() for label in self.name.split(".")) + b"\0"
        packet = struct.pack("!HHHHHH", query_id, flags, 1, 0, 0, 1 if self.edns else 0) + qname
        packet += struct.pack("!HH", dns.rdatatype.from_text(self.rdtype), 1)
        if self.edns:
            packet += b"\0" + struct.pack("!HHIH", 41, self.edns, 0x8000 if self.do else 0, 0)
        return packet


def as_the_udp_reader(gateway: Gateway, packet: bytes) -> bytes:
    """The answer the UDP reader (dns/server.py) gives: its replay table, then the store's fast
    path, then the full path."""
    entry = gateway.replay.get(packet[2:])
    wire = packet[:2] + entry[0] if entry is not None else gateway.store_answer_udp(packet)
    if wire is None:
        answer = gateway.handle(packet, "127.0.0.1", tcp=False)
        assert isinstance(answer, bytes)
        wire = answer
    return wire


class GatewayPair:
    def __init__(self, engine: Engine, root: Path, *, shared: bool = False, modes: dict[str, Mode] | None = None,
                 ready: ReadinessCheck | None = None) -> None:
        compile_store(IndexReader(engine), root)
        store = open_current(root)
        assert store is not None
        self.store: CompiledStore = store
        self.slow = _gateway(engine, shared, modes or {}, ready)
        self.fast = _gateway(engine, shared, modes or {}, ready)
        self.answerer = StoreAnswerer(self.fast.authority, self.fast.policy, store)
        self.fast.store = self.answerer

    def ask(self, ask: Ask, query_id: int = 0x1234) -> tuple[object, object, bool]:
        """(store path's answer, slow path's answer, whether the store answered)."""
        packet = ask.packet(query_id)
        before = self.answerer.answered
        fast = self.fast.view_with_web_address(ask.web).handle(packet, "127.0.0.1", tcp=ask.tcp)
        slow = self.slow.view_with_web_address(ask.web).handle(packet, "127.0.0.1", tcp=ask.tcp)
        return fast, slow, self.answerer.answered > before

    def close(self) -> None:
        self.store.close()


def _gateway(engine: Engine, shared: bool, modes: dict[str, Mode], ready: ReadinessCheck | None) -> Gateway:
    reader = IndexReader(engine)
    authority = BnsAuthority(reader, ZoneCache(reader), ready=ready)
    policy = NamespacePolicy(configured_shared={ns: shared for ns in authority.namespaces}, modes=dict(modes))
    return Gateway(authority, Forwarder([]), policy=policy)
