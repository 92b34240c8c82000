"""A tiny upstream DNS server (UDP and TCP) for end-to-end tests, run as a separate process.

    python upstream_stub.py 127.0.0.2 53 forwarded.example=192.0.2.80 [...]

Knows only the A records given on the command line. Other types at those names,
and their ancestors (`example.`, so a TLD "exists"), get NOERROR without data;
every other name NXDOMAIN, so the gateway's probe of a BNS namespace as an
ICANN TLD says "not in the root" unless a record was given under it. Prints one line,
`ready`, once both sockets are bound, and serves until SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class StaticResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, records: dict[str, str]) -> None:
        self.records = records

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        address = self.records.get(qname)
        if address is not None and request.q.qtype in (QTYPE.A, QTYPE.ANY):
            reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=60, rdata=A(address)))
        elif address is None and not any(name.endswith("." + qname) for name in self.records):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def main(argv: list[str]) -> int:
    host, port = argv[0], int(argv[1])
    records = dict(pair.lower().split("=", 1) for pair in argv[2:])
    resolver = StaticResolver(records)
    quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data")
    servers = [DNSServer(resolver, address=host, port=port, tcp=tcp, logger=quiet) for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    for server in servers:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
