#!/usr/bin/env python3
"""In-process cost of `Gateway.handle` per query, without sockets, and a cProfile of it.

Splits the server's CPU per query into "Python in the gateway" and "everything
else" (Twisted's UDP loop, recvfrom/sendto). Uses the same wiring as `serve`
(GatewayService) on an index you point it at; the reactor is never run.

    python bench/profile_hot_path.py [--data-dir DIR] [--queries N] [--profile]

With no --data-dir, a temporary copy of the embedded snapshot is imported first.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import build_query  # noqa: E402

from bns_resolver.config import load_settings  # noqa: E402
from bns_resolver.service import GatewayService, ensure_embedded_snapshot, open_data  # noqa: E402

CASES = {
    "bns (cached answer)": ("_http._tcp.zone117x.id", 256, True),
    "nxdomain podcast (cached)": ("nx-bench.podcast", 1, True),
    "nxdomain podcast (uncached, distinct names)": ("nx-{i}.podcast", 1, False),
    "bns 300k name (uncached, distinct names)": ("_http._tcp.n{i:07d}.synth", 256, False),
}


def build_gateway(data_dir: Path, config: Path):  # type: ignore[no-untyped-def]
    from twisted.internet import reactor

    settings = load_settings(config, data_dir=str(data_dir), upstream=["127.0.0.1:9"])
    engine = open_data(settings)
    ensure_embedded_snapshot(engine, settings)
    return GatewayService(settings, reactor, engine).gateway


def time_case(gateway, name: str, qtype: int, cached: bool, count: int) -> float:  # type: ignore[no-untyped-def]
    if cached:
        packets = [build_query(name, qtype, i & 0xFFFF) for i in range(256)]
        gateway.handle(packets[0], "127.0.0.1", tcp=False)  # fill the cache
    else:
        packets = [build_query(name.format(i=i), qtype, i & 0xFFFF) for i in range(count)]
    handle = gateway.handle
    started = time.perf_counter()
    for i in range(count):
        answer = handle(packets[i % len(packets)], "127.0.0.1", tcp=False)
    elapsed = time.perf_counter() - started
    if not isinstance(answer, bytes):
        raise SystemExit(f"{name}: expected bytes from the gateway, got {type(answer).__name__}")
    return elapsed / count


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, help="an index data dir (default: embedded snapshot in a temp dir)")
    p.add_argument("--queries", type=int, default=200_000)
    p.add_argument("--profile", action="store_true", help="print the top of a cProfile of each case")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text("[namespaces]\nicann_tlds = { id = true, blockstack = false, graphite = false, "
                          "helloworld = false, podcast = false, synth = false }\n")
        data_dir = args.data_dir or Path(tmp) / "data"
        gateway = build_gateway(data_dir, config)
        for label, (name, qtype, cached) in CASES.items():
            if name.rsplit(".", 1)[-1] not in gateway.authority.namespaces:
                continue  # that namespace is not in this index
            count = args.queries if cached else min(args.queries, 20_000)
            per_query = time_case(gateway, name, qtype, cached, count)
            print(f"{label:48s} {per_query * 1e6:8.2f} µs/query in Gateway.handle  ({1 / per_query:,.0f}/s)")
            if args.profile:
                gateway.answers.clear()
                profiler = cProfile.Profile()
                profiler.enable()
                time_case(gateway, name, qtype, cached, count)
                profiler.disable()
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
                stats.print_stats(r"bns_resolver|dnslib/dns\.py|sqlalchemy/engine/base\.py", 25)
                print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
