#!/usr/bin/env python3
"""CPU per query of a compiled-store answer vs today's miss path, in-process (no sockets).

Builds (or reuses) the synthetic index of `synth_index.py`, compiles its answer store,
and sends distinct names through two `Gateway.handle`s over the same index, one with
the store: every query misses the answer cache, which is what the store is for. Reports
process CPU time (user + sys) per query, so other load on a shared host counts less.

    python bench/profile_store.py [--names 100000] [--queries 20000] [--profile CASE]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import build_query  # noqa: E402
from synth_index import NAMESPACE, ensure_index, query_name  # noqa: E402

from bns_resolver.answers.compile import compile_store  # noqa: E402
from bns_resolver.answers.respond import StoreAnswerer  # noqa: E402
from bns_resolver.answers.store import open_current  # noqa: E402
from bns_resolver.dns.authority import BnsAuthority  # noqa: E402
from bns_resolver.dns.forwarder import Forwarder  # noqa: E402
from bns_resolver.dns.gateway import Gateway  # noqa: E402
from bns_resolver.dns.policy import NamespacePolicy  # noqa: E402
from bns_resolver.dns.wire import parse_fast  # noqa: E402
from bns_resolver.dns.zones import ZoneCache  # noqa: E402
from bns_resolver.index.db import open_index  # noqa: E402
from bns_resolver.index.lookup import IndexReader  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
TYPE_A, TYPE_URI = 1, 256


def cases(names: int, count: int) -> dict[str, list[bytes]]:
    rng = random.Random(1)
    picks = rng.sample(range(names), min(count, names))
    return {
        "URI of an existing name (distinct names)": [build_query(query_name(i), TYPE_URI, n & 0xFFFF)
                                                    for n, i in enumerate(picks)],
        f"NXDOMAIN, random name under .{NAMESPACE}": [build_query(f"nx{rng.getrandbits(40):x}.{NAMESPACE}", TYPE_A,
                                                                  n & 0xFFFF) for n in range(count)],
        "NXDOMAIN under an existing name": [build_query(f"x{n}.n{i:07d}.{NAMESPACE}", TYPE_A, n & 0xFFFF)
                                            for n, i in enumerate(picks)],
    }


def gateway(engine, store=None, cache_entries: int = 10000) -> Gateway:  # type: ignore[no-untyped-def]
    reader = IndexReader(engine)
    authority = BnsAuthority(reader, ZoneCache(reader))
    policy = NamespacePolicy(configured_shared={NAMESPACE: False})
    answerer = StoreAnswerer(authority, policy, store) if store is not None else None
    return Gateway(authority, Forwarder([]), policy=policy, store=answerer, cache_entries=cache_entries)


def cpu_per_answer(answerer: StoreAnswerer, packets: list[bytes]) -> float:
    """StoreAnswerer.answer alone: the store's own share of a miss."""
    answer = answerer.answer
    fast = [parse_fast(packet) for packet in packets]
    started = time.process_time()
    for packet, query in zip(packets, fast):
        answer(packet, query, tcp=False, web_address=None)
    return (time.process_time() - started) / len(packets)


def cpu_per_query(gw: Gateway, packets: list[bytes]) -> float:
    handle = gw.handle
    started = time.process_time()
    for packet in packets:
        answer = handle(packet, "127.0.0.1", tcp=False)
    elapsed = time.process_time() - started
    if not isinstance(answer, bytes):
        raise SystemExit(f"expected bytes, got {type(answer).__name__}")
    return elapsed / len(packets)


def rss_anon_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return -1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--names", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=20_000, help="per case for the store path")
    p.add_argument("--slow-queries", type=int, default=4_000, help="per case for the slow path")
    p.add_argument("--profile", metavar="WORD", help="cProfile the store path of the case containing WORD")
    args = p.parse_args()
    data_dir, how = ensure_index(OUT, args.names)
    print(f"index: {args.names:,} names in {data_dir} ({how})")
    engine = open_index(f"sqlite:///{data_dir / 'index.sqlite'}")
    started, cpu = time.monotonic(), time.process_time()
    path, report = compile_store(IndexReader(engine), data_dir / "answers")
    size = (path / "data.mdb").stat().st_size
    print(f"compile: {time.monotonic() - started:.1f} s wall, {time.process_time() - cpu:.1f} s CPU; "
          f"{report.nodes:,} owner names, {size / 2**20:.1f} MiB on disk")
    rss_before = rss_anon_kib()
    store = open_current(data_dir / "answers")
    fast, slow = gateway(engine, store), gateway(engine)
    unbounded = gateway(engine, store, cache_entries=10**8)
    print(f"RssAnon {rss_before / 1024:.1f} MiB before opening the store, {rss_anon_kib() / 1024:.1f} MiB after\n")
    print("CPU µs per query in Gateway.handle: with the store, and without it (today's miss path);")
    print("'no evict': the same with an answer cache that never evicts; 'answer()': the store's own part\n")
    print(f"{'case':44s} {'store':>7s} {'slow':>7s} {'ratio':>6s} {'no evict':>9s} {'answer()':>9s}")
    for label, packets in cases(args.names, args.queries).items():
        if args.profile and args.profile in label:
            profiler = cProfile.Profile()
            profiler.runcall(cpu_per_query, gateway(engine, store), packets)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        store_cpu = cpu_per_query(fast, packets)
        slow_cpu = cpu_per_query(slow, packets[:args.slow_queries])
        no_evict = cpu_per_query(unbounded, packets)
        alone = cpu_per_answer(fast.store, packets)
        print(f"{label:44s} {store_cpu * 1e6:7.2f} {slow_cpu * 1e6:7.1f} {slow_cpu / store_cpu:5.0f}x "
              f"{no_evict * 1e6:9.2f} {alone * 1e6:9.2f}")
    hits = [build_query(query_name(7), TYPE_URI, n & 0xFFFF) for n in range(args.queries)]
    print(f"{'(reference) answer-cache hit, same name':44s} {cpu_per_query(fast, hits) * 1e6:7.2f}")
    print(f"\nanswers from the store: {fast.store.answered:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
