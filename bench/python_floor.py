#!/usr/bin/env python3
"""Reference responders: the least a CPython UDP server can do per query, to put our numbers in context.

Each answers from a dict keyed on the query minus its ID (filled on first sight by asking
the real server at --backend-port once, blocking), copying the query's ID onto the stored
answer. No parsing, no access check, no stats. Modes:

  socket           a bare blocking recvfrom/sendto loop (no event loop at all)
  twisted          a Twisted DatagramProtocol answering with transport.write
  twisted-sendto   the same, but calling the socket's sendto directly (skips Port.write's checks)

    python bench/python_floor.py --mode twisted --port 15357 --backend-port 15354
"""

from __future__ import annotations

import argparse
import socket
import sys


def fetch(backend: tuple[str, int], query: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.sendto(query, backend)
        reply, _ = sock.recvfrom(65535)
    return reply


def serve_socket(port: int, backend: tuple[str, int]) -> None:
    answers: dict[bytes, bytes] = {}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    recvfrom, sendto = sock.recvfrom, sock.sendto
    while True:
        packet, addr = recvfrom(4096)
        stored = answers.get(packet[2:])
        if stored is None:
            stored = answers[packet[2:]] = fetch(backend, packet)
        sendto(packet[:2] + stored[2:], addr)


def serve_twisted(port: int, backend: tuple[str, int], *, raw_send: bool) -> None:
    from twisted.internet import protocol, reactor

    class Responder(protocol.DatagramProtocol):
        def __init__(self) -> None:
            self.answers: dict[bytes, bytes] = {}

        def startProtocol(self) -> None:
            if raw_send:
                self.sendto = self.transport.socket.sendto  # type: ignore[union-attr]
            else:
                self.sendto = self.transport.write  # type: ignore[union-attr]

        def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
            stored = self.answers.get(data[2:])
            if stored is None:
                stored = self.answers[data[2:]] = fetch(backend, data)
            self.sendto(data[:2] + stored[2:], addr)

    reactor.listenUDP(port, Responder(), interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("socket", "twisted", "twisted-sendto"), required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backend-port", type=int, required=True)
    args = p.parse_args()
    backend = ("127.0.0.1", args.backend_port)
    try:
        if args.mode == "socket":
            serve_socket(args.port, backend)
        else:
            serve_twisted(args.port, backend, raw_send=args.mode == "twisted-sendto")
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
