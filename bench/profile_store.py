#!/usr/bin/env python3
"""CPU per query of a compiled-store answer vs today's miss path, in-process (no sockets).

Builds (or reuses) the synthetic index of `synth_index.py` (or, with --export DIR, the
synthetic BNS v1 export that `run_dns_bench.py --export DIR` made and imported), compiles its
answer store (kept when current with --export: a 2.2 M-name compile takes minutes), and sends distinct names through two `Gateway.handle`s over the same index, one with
the store: every query misses the answer cache, which is what the store is for. Reports
process CPU time (user + sys) per query, so other load on a shared host counts less.

    python bench/profile_store.py [--names 100000] [--queries 20000] [--profile CASE]
    python bench/profile_store.py --export /path/to/work-dir [--queries 20000]
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

import datasets  # noqa: E402
import synth_export  # noqa: E402
from measure import build_query  # noqa: E402
from synth_index import NAMESPACE, ensure_index, query_name  # noqa: E402

from bns_resolver.answers.compile import compile_store  # noqa: E402
from bns_resolver.answers.respond import StoreAnswerer  # noqa: E402
from bns_resolver.answers.store import open_current, store_root  # noqa: E402
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


def export_cases(dataset: datasets.Dataset, count: int) -> dict[str, list[bytes]]:
    """(e) and (c′) of run_dns_bench.py --export: existing names once each, random names under a registrar."""
    rng = random.Random(1)
    names = datasets.dataset_queries(dataset, count)
    return {
        "URI of an existing name (distinct names)": [build_query(name, TYPE_URI, n & 0xFFFF)
                                                    for n, name in enumerate(names)],
        f"NXDOMAIN, random name under {dataset.nx_parent}": [
            build_query(f"nx{rng.getrandbits(40):x}.{dataset.nx_parent}", TYPE_A, n & 0xFFFF) for n in range(count)],
    }


SHARED = {NAMESPACE: False}  # which namespaces are also ICANN TLDs (the export's are set in main)


def gateway(engine, store=None, cache_entries: int = 10000) -> Gateway:  # type: ignore[no-untyped-def]
    reader = IndexReader(engine)
    authority = BnsAuthority(reader, ZoneCache(reader))
    policy = NamespacePolicy(configured_shared=SHARED)
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
    p.add_argument("--export", type=Path, metavar="DIR", help="the synthetic export's work dir (run_dns_bench.py)")
    args = p.parse_args()
    if args.export:
        dataset, how = datasets.export_dataset(args.export, synth_export.Sizes())
        data_dir, hits_name = dataset.data_dir, dataset.probe
        SHARED.clear()
        SHARED.update({ns: ns in datasets.SHARED_NAMESPACES for ns, *_rest in synth_export.NAMESPACES})
        query_cases = export_cases(dataset, args.queries)
    else:
        data_dir, how = ensure_index(OUT, args.names)
        hits_name = query_name(7)
        query_cases = cases(args.names, args.queries)
    print(f"index: {data_dir} ({how})")
    engine = open_index(f"sqlite:///{data_dir / 'index.sqlite'}")
    if not (args.export and datasets.store_is_current(data_dir)):
        started, cpu = time.monotonic(), time.process_time()
        path, report = compile_store(IndexReader(engine), store_root(data_dir))
        size = (path / "data.mdb").stat().st_size
        print(f"compile: {time.monotonic() - started:.1f} s wall, {time.process_time() - cpu:.1f} s CPU; "
              f"{report.nodes:,} owner names, {size / 2**20:.1f} MiB on disk")
    rss_before = rss_anon_kib()
    store = open_current(store_root(data_dir))
    fast, slow = gateway(engine, store), gateway(engine)
    unbounded = gateway(engine, store, cache_entries=10**8)
    print(f"RssAnon {rss_before / 1024:.1f} MiB before opening the store, {rss_anon_kib() / 1024:.1f} MiB after\n")
    print("CPU µs per query in Gateway.handle: with the store, and without it (today's miss path);")
    print("'no evict': the same with an answer cache that never evicts; 'answer()': the store's own part\n")
    print(f"{'case':44s} {'store':>7s} {'slow':>7s} {'ratio':>6s} {'no evict':>9s} {'answer()':>9s}")
    for label, packets in query_cases.items():
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
    hits = [build_query(hits_name, TYPE_URI, n & 0xFFFF) for n in range(args.queries)]
    print(f"{'(reference) answer-cache hit, same name':44s} {cpu_per_query(fast, hits) * 1e6:7.2f}")
    print(f"\nanswers from the store: {fast.store.answered:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
