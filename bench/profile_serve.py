#!/usr/bin/env python3
"""Where `serve` spends its CPU under dnsperf load, sampled with py-spy (no cProfile overhead per call).

Starts `bns-resolver serve` on a big data set of `run_dns_bench.py` (the synthetic export with
--export DIR, else the synthetic index), pinned like the benchmark, sends it one case's query
file with dnsperf, first without the sampler (CPU per query as the benchmark measures it),
then with `py-spy record --nonblocking` attached, and prints the share of CPU samples per
function (its own time: the innermost frame) and under each step of the answer path
(inclusive). C functions (recvfrom, sendto, LMDB's get) count as the Python line calling them.

    python bench/profile_serve.py --export /path/to/work-dir --case e      # each name once
    python bench/profile_serve.py --export /path/to/work-dir --case nx     # (c′) random names
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import datasets  # noqa: E402
import queryfiles  # noqa: E402
import synth_export  # noqa: E402
from measure import run_dnsperf  # noqa: E402
from run_dns_bench import CLIENT_CPU, ICANN_TLDS, NX_MISS, OUT_DIR, SERVER_CPU, TYPE_URI  # noqa: E402
from servers import Processes, ours_argv, ours_config  # noqa: E402

# Steps of the answer path, counted inclusively (a sample counts for every step on its stack).
STEPS = (
    ("UDP reader loop (FastUdpServer.doRead)", "doRead (bns_resolver/dns/server.py"),
    ("Gateway.handle", "handle (bns_resolver/dns/gateway.py"),
    ("parse_fast", "parse_fast (bns_resolver/dns/wire.py"),
    ("FastQuery.cache_key", "cache_key (bns_resolver/dns/wire.py"),
    ("forward cache probe (get_with_deadline)", "get_with_deadline ("),
    ("StoreAnswerer.answer", "answer (bns_resolver/answers/respond.py"),
    ("  its parent lookup (_binding)", "_binding (bns_resolver/answers/respond.py"),
    ("  its reply (_reply, _join, _soa_record)", "_reply (bns_resolver/answers/respond.py"),
    ("  find_entry", "find_entry (bns_resolver/answers/format.py"),
    ("  label_offsets", "label_offsets (bns_resolver/answers/format.py"),
    ("Gateway._from_store (answer cache put)", "_from_store (bns_resolver/dns/gateway.py"),
    ("sending (_send_limited, _send)", "_send_limited (bns_resolver/dns/server.py"),
)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]*)(?::(?P<line>\d+))?\)$")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", type=Path, metavar="DIR", help="the synthetic export's work dir (run_dns_bench.py)")
    p.add_argument("--names", type=int, default=300_000, help="synthetic index size without --export")
    p.add_argument("--case", choices=("e", "nx", "d"), default="e",
                   help="e: each of --distinct names once; nx: (c′) random names; d: Zipf over --distinct")
    p.add_argument("--distinct", type=int, default=200_000)
    p.add_argument("--seconds", type=float, default=15, help="sampled run length (default 15)")
    p.add_argument("--rate", type=int, default=500, help="py-spy samples per second (default 500)")
    p.add_argument("--port", type=int, default=25480)
    p.add_argument("--top", type=int, default=25, help="functions listed by own time (default 25)")
    return p.parse_args()


def query_lines(dataset: datasets.Dataset, case: str, distinct: int) -> list[str]:
    if case == "nx":
        return queryfiles.nxdomain_queries(dataset.nx_parent, NX_MISS)
    names = datasets.dataset_queries(dataset, distinct)
    if case == "d":
        names = [names[i] for i in queryfiles.synth_zipf(list(range(len(names))), 4 * len(names))]
    return [f"{name} URI" for name in names]


def summarize(raw: Path, top: int) -> list[str]:
    """Own-time shares per function and per line, and inclusive shares per step, from collapsed stacks."""
    own_func: Counter[str] = Counter()
    own_line: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), stack.split(";")
        total += count
        own_line[frames[-1]] += count
        match = _FRAME.match(frames[-1])
        own_func[f"{match['func']} ({match['file']})" if match else frames[-1]] += count
        for label, fragment in STEPS:
            if any(fragment in frame for frame in frames):
                steps[label] += count
    if not total:
        return ["no samples (did the server get any load?)"]
    lines = [f"{total:,} samples", "", "| step (inclusive) | share |", "|---|---:|"]
    lines += [f"| {label} | {steps[label] / total:.1%} |" for label, _ in STEPS]
    lines += ["", "| function (own time) | share |", "|---|---:|"]
    lines += [f"| `{name}` | {n / total:.1%} |" for name, n in own_func.most_common(top)]
    lines += ["", "| line (own time) | share |", "|---|---:|"]
    lines += [f"| `{name}` | {n / total:.1%} |" for name, n in own_line.most_common(top)]
    return lines


def main() -> int:
    args = parse_args()
    if shutil.which("py-spy") is None or shutil.which("dnsperf") is None:
        sys.exit("profile_serve: needs py-spy (pip install py-spy) and dnsperf (apt-get install dnsperf)")
    if args.export:
        dataset, _how = datasets.export_dataset(args.export, synth_export.Sizes())
    else:
        dataset, _how = datasets.synth_index_dataset(OUT_DIR, args.names)
    run_dir = OUT_DIR / time.strftime("profile-serve-%Y%m%dT%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    queries = queryfiles.write_queries(run_dir / "queries.txt", query_lines(dataset, args.case, args.distinct))
    config = ours_config(run_dir / "bns-resolver.toml", ICANN_TLDS)
    procs = Processes()
    try:
        server = procs.start("ours", ours_argv(dataset.data_dir, args.port, 9, config), args.port,
                             run_dir / "ours.log", cpu=SERVER_CPU, probe=(dataset.probe.rstrip("."), TYPE_URI))
        perf = {"seconds": args.seconds, "clients": 10, "outstanding": 100, "verbose": False,
                "cpu": CLIENT_CPU, "server_pid": server.pid}
        run_dnsperf(args.port, queries, max_runs=1, **{**perf, "seconds": 10})  # type: ignore[arg-type]
        plain = run_dnsperf(args.port, queries, **perf)  # type: ignore[arg-type]
        raw = run_dir / "pyspy.txt"
        spy = subprocess.Popen(["py-spy", "record", "--pid", str(server.pid), "--rate", str(args.rate),
                                "--format", "raw", "--nonblocking", "--duration", str(int(args.seconds)),
                                "--output", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sampled = run_dnsperf(args.port, queries, **perf)  # type: ignore[arg-type]
        spy.wait(timeout=args.seconds + 60)
    finally:
        procs.stop_all()
    print(f"## serve under dnsperf, case {args.case}, {dataset.label} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
    for label, run in (("without the sampler", plain), ("with py-spy attached", sampled)):
        user, system = run.cpu_us_per_query() or (0.0, 0.0)
        print(f"- {label}: {run.qps:,.0f} QPS, {run.per_cpu_second or 0:,.0f} queries per CPU-s, "
              f"{user:.1f} µs user + {system:.1f} µs sys per query, rcodes {run.rcodes}, other CPU {run.other_cpu:.1f} s")
    print(f"- collapsed stacks: {raw}\n")
    print("\n".join(summarize(raw, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
