#!/usr/bin/env python3
"""A/B of the UDP replay loop (`FastUdpServer.doRead`) of two versions of `dns/server.py`.

Both servers read the same repeated query (a cached BNS answer, so every datagram takes the
replay path) from real loopback sockets; only the CPU time inside `doRead` is counted (recvfrom,
lookup, sendto), in alternating rounds, and the medians are compared. No reactor runs.

    python bench/ab_udp_replay.py OLD/bns_resolver/dns/server.py [NEW/bns_resolver/dns/server.py]
        [--reps 20] [--limited]

NEW defaults to this tree's server.py. `--limited` puts the loopback client under the response
rate limiter (with a rate it never reaches), to price the limiter for LAN clients.
"""

from __future__ import annotations

import argparse
import importlib.util
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dns.message  # noqa: E402

from bns_resolver.dns.authority import BnsAuthority  # noqa: E402
from bns_resolver.dns.forwarder import Forwarder  # noqa: E402
from bns_resolver.dns.gateway import Gateway  # noqa: E402
from bns_resolver.dns.zones import ZoneCache  # noqa: E402
from bns_resolver.index.lookup import IndexReader  # noqa: E402
from tests.support.dns_fixtures import IndexSpec, NameSpec, make_index  # noqa: E402


class NoReactor:
    def addReader(self, _reader: object) -> None:  # noqa: N802
        pass

    def removeReader(self, _reader: object) -> None:  # noqa: N802
        pass


def load(path: str, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_server(module: Any, gateway: Gateway, limited: bool) -> Any:
    limiter_class = getattr(module, "ResponseRateLimiter", None)
    if limiter_class is None:
        return module.FastUdpServer(gateway, "127.0.0.1", 0, NoReactor())
    limiter = limiter_class(rate=1e9, exempt=() if limited else ("127.0.0.0/8", "::1/128"))
    return module.FastUdpServer(gateway, "127.0.0.1", 0, NoReactor(), rate_limiter=limiter)


def cpu_per_query(server: Any, client: socket.socket, query: bytes, rounds: int = 200, batch: int = 200) -> float:
    port = server.getHost().port
    cpu, answered = 0.0, 0
    for _ in range(rounds):
        for _ in range(batch):
            client.sendto(query, ("127.0.0.1", port))
        started = time.process_time()
        server.doRead()
        cpu += time.process_time() - started
        while True:
            try:
                client.recv(512)
                answered += 1
            except BlockingIOError:
                break
    return cpu / max(answered, 1) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new", nargs="?", default=str(ROOT / "bns_resolver/dns/server.py"))
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--limited", action="store_true")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp())
    reader = IndexReader(make_index(data_dir, IndexSpec(names=[NameSpec("alice.id", b"@ A 192.0.2.1\n")])))
    gateway = Gateway(BnsAuthority(reader, ZoneCache(reader)), Forwarder([]))
    gateway.policy.configured_shared["id"] = False
    query = dns.message.make_query("alice.id", "A").to_wire()
    for _ in range(2):
        gateway.handle(query, "127.0.0.1", tcp=False)  # the second one is a cache hit: replayable
    gateway.access.allows("127.0.0.1")
    servers = {"old": build_server(load(args.old, "old_server"), gateway, args.limited),
               "new": build_server(load(args.new, "new_server"), gateway, args.limited)}
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setblocking(False)
    for sock in [client] + [s.sock for s in servers.values()]:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    results: dict[str, list[float]] = {"old": [], "new": []}
    for rep in range(args.reps):
        for name in ("old", "new") if rep % 2 == 0 else ("new", "old"):
            results[name].append(cpu_per_query(servers[name], client, query))
    for name, values in results.items():
        print(f"{name}: median {statistics.median(values):.3f} µs CPU per query in doRead (min {min(values):.3f})")
    print(f"new/old (medians): {statistics.median(results['new']) / statistics.median(results['old']):.3f}")


if __name__ == "__main__":
    main()
