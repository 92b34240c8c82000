"""A small upstream DNS server for forwarding tests: UDP and TCP on one loopback port.

It answers from a table of records and can misbehave on purpose: stay silent,
send a forged reply (wrong ID) before the real one, truncate over UDP, answer
every query with one rcode (REFUSED, SERVFAIL, ...), drop every Nth UDP query,
or give every record one TTL.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from dataclasses import dataclass, field

from dnslib import QTYPE, RCODE, RR, DNSRecord

from tests.support.dns_fixtures import free_port


@dataclass
class UpstreamBehaviour:
    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (name, TYPE) -> zone lines
    tlds: set[str] = field(default_factory=set)  # TLDs it knows (SOA at the apex, NXDOMAIN below)
    silent: bool = False
    forge_first: bool = False
    wrong_question_first: bool = False  # UDP: first a reply with the right ID for another name
    wrong_source_first: bool = False  # UDP: first a forged reply (right ID, 6.6.6.6) from another port
    truncate_udp: bool = False
    negative_soa_ttl: int = 60
    rcode: int | None = None  # answer everything with this rcode and no records
    drop_every: int = 0  # drop every Nth UDP query (2: every other one)
    ttl: int | None = None  # the TTL of every answer record


class StubUpstream:
    def __init__(self, behaviour: UpstreamBehaviour | None = None) -> None:
        self.behaviour = behaviour or UpstreamBehaviour()
        self.port = free_port()
        self.queries: list[tuple[str, str, str]] = []  # (transport, name, type)
        self._lock = threading.Lock()
        stub = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                if stub.behaviour.wrong_source_first:
                    stub.send_from_elsewhere(data, self.client_address)
                for reply in stub.replies(data, tcp=False):
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while True:
                    size = self.rfile.read(2)
                    if len(size) < 2:
                        return
                    data = self.rfile.read(int.from_bytes(size, "big"))
                    for reply in stub.replies(data, tcp=True)[-1:]:
                        self.wfile.write(len(reply).to_bytes(2, "big") + reply)

        socketserver.ThreadingUDPServer.allow_reuse_address = True
        self._udp = socketserver.ThreadingUDPServer(("127.0.0.1", self.port), Udp)
        self._tcp = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Tcp)
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (self._udp, self._tcp)]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> StubUpstream:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        for server in (self._udp, self._tcp):
            server.shutdown()
            server.server_close()

    def count(self, name: str) -> int:
        with self._lock:
            return sum(1 for _t, n, _ in self.queries if n == name.lower().rstrip("."))

    def replies(self, data: bytes, *, tcp: bool) -> list[bytes]:
        request = DNSRecord.parse(data)
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        with self._lock:
            self.queries.append(("tcp" if tcp else "udp", name, qtype))
            received = len(self.queries)
        drop_every = self.behaviour.drop_every
        if self.behaviour.silent or (not tcp and drop_every and received % drop_every == 0):
            return []
        if self.behaviour.rcode is not None:
            refusal = request.reply()
            refusal.header.rcode = self.behaviour.rcode
            return [bytes(refusal.pack())]
        reply = self._answer(request, name, qtype)
        if not tcp and self.behaviour.truncate_udp:
            reply.rr = []
            reply.header.tc = 1
        wire = bytes(reply.pack())
        if self.behaviour.wrong_question_first and not tcp:
            other = DNSRecord.question("elsewhere.example.net", qtype)
            other.header.id = request.header.id
            lie = other.reply()
            lie.add_answer(*RR.fromZone("elsewhere.example.net. 60 IN A 6.6.6.6"))
            return [bytes(lie.pack()), wire]
        if self.behaviour.forge_first and not tcp:
            forged = bytearray(wire)
            forged[0] ^= 0xFF
            forged_reply = DNSRecord.parse(bytes(forged))
            forged_reply.rr = [RR.fromZone(f"{name}. 60 IN A 6.6.6.6")[0]] if qtype == "A" else []
            return [bytes(forged_reply.pack()), wire]
        return [wire]

    def send_from_elsewhere(self, data: bytes, client: tuple[str, int]) -> None:
        """A spoofing attempt: the right ID and question, a false address, from a port that is not ours."""
        request = DNSRecord.parse(data)
        lie = request.reply()
        name = str(request.q.qname).rstrip(".")
        lie.add_answer(*RR.fromZone(f"{name}. 60 IN A 6.6.6.6"))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
            other.bind(("127.0.0.1", 0))
            other.sendto(bytes(lie.pack()), client)

    def _answer(self, request: DNSRecord, name: str, qtype: str) -> DNSRecord:
        reply = request.reply()
        lines = self.behaviour.records.get((name, qtype))
        if lines:
            for line in lines:
                for rr in RR.fromZone(line):
                    if self.behaviour.ttl is not None:
                        rr.ttl = self.behaviour.ttl
                    reply.add_answer(rr)
            return reply
        tld = name.rsplit(".", 1)[-1]
        if name in self.behaviour.tlds and qtype == "SOA":
            reply.add_answer(*RR.fromZone(self._soa(name)))
            return reply
        known_name = any(n == name for n, _ in self.behaviour.records)
        if not known_name:
            reply.header.rcode = RCODE.NXDOMAIN
        zone = tld if tld in self.behaviour.tlds else name
        reply.add_auth(*RR.fromZone(self._soa(zone)))
        return reply

    def _soa(self, zone: str) -> str:
        ttl = self.behaviour.negative_soa_ttl
        return f"{zone}. {ttl} IN SOA ns.{zone}. admin.{zone}. 1 7200 3600 86400 {ttl}"


def start_stub(records: dict[tuple[str, str], list[str]], **behaviour: object) -> StubUpstream:
    """A started stub that knows `records` and the TLD com, misbehaving as `behaviour` says."""
    return StubUpstream(UpstreamBehaviour(records=dict(records), tlds={"com"}, **behaviour)).start()  # type: ignore[arg-type]


def udp_socket_closed(port: int) -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        probe.close()
