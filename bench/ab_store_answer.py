#!/usr/bin/env python3
"""`StoreAnswerer.answer` of two versions of answers/respond.py, side by side on one store.

    git show main:bns_resolver/answers/respond.py > /tmp/respond_main.py
    python bench/ab_store_answer.py --export /path/to/work-dir --before /tmp/respond_main.py

Both answerers read the same compiled store (the synthetic export of `run_dns_bench.py
--export`), get the same parsed queries of cases (e) and (c′) (existing names once each,
random names under a registrar), and are timed in alternating rounds (process CPU time),
so drift on a shared host falls on both. Each answer is also checked to be byte-identical.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datasets  # noqa: E402
import synth_export  # noqa: E402
from profile_store import export_cases  # noqa: E402

from bns_resolver.answers.respond import StoreAnswerer  # noqa: E402
from bns_resolver.answers.store import open_current, store_root  # noqa: E402
from bns_resolver.dns.authority import BnsAuthority  # noqa: E402
from bns_resolver.dns.policy import NamespacePolicy  # noqa: E402
from bns_resolver.dns.wire import parse_fast  # noqa: E402
from bns_resolver.dns.zones import ZoneCache  # noqa: E402
from bns_resolver.index.db import open_index  # noqa: E402
from bns_resolver.index.lookup import IndexReader  # noqa: E402


def load_answerer_class(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("respond_before", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"ab_store_answer: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.StoreAnswerer


def cpu_per_answer(answerer: Any, queries: list[tuple[bytes, Any]]) -> float:
    answer = answerer.answer
    started = time.process_time()
    for packet, fast in queries:
        answer(packet, fast, tcp=False, web_address=None)
    return (time.process_time() - started) / len(queries)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", type=Path, required=True, metavar="DIR")
    p.add_argument("--before", type=Path, required=True, help="the other respond.py")
    p.add_argument("--queries", type=int, default=50_000)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    dataset, _how = datasets.export_dataset(args.export, synth_export.Sizes())
    reader = IndexReader(open_index(f"sqlite:///{dataset.data_dir / 'index.sqlite'}"))
    store = open_current(store_root(dataset.data_dir))
    if store is None:
        raise SystemExit("ab_store_answer: no compiled store; run run_dns_bench.py --export first")
    policy = NamespacePolicy(configured_shared={ns: ns in datasets.SHARED_NAMESPACES
                                                for ns, *_rest in synth_export.NAMESPACES})
    authority = BnsAuthority(reader, ZoneCache(reader))
    answerers = {"before": load_answerer_class(args.before)(authority, policy, store),
                 "now": StoreAnswerer(authority, policy, store)}
    print(f"µs of process CPU per StoreAnswerer.answer, median of {args.rounds} alternating rounds")
    print(f"{'case':48s} {'before':>8s} {'now':>8s} {'now/before':>10s}")
    for label, packets in export_cases(dataset, args.queries).items():
        queries = [(packet, parse_fast(packet)) for packet in packets]
        for packet, fast in queries[:2000]:
            a, b = (x.answer(packet, fast, tcp=False, web_address=None) for x in answerers.values())
            if a != b:
                raise SystemExit(f"ab_store_answer: the two answer differently for {fast.qname!r}: {a!r} vs {b!r}")
        times: dict[str, list[float]] = {name: [] for name in answerers}
        for round_ in range(args.rounds):
            for name in (list(answerers) if round_ % 2 == 0 else list(reversed(answerers))):
                times[name].append(cpu_per_answer(answerers[name], queries))
        before, now = (statistics.median(times[name]) * 1e6 for name in answerers)
        print(f"{label:48s} {before:8.2f} {now:8.2f} {now / before:9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
