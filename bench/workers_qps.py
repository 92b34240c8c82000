#!/usr/bin/env python3
"""`[dns] workers = 1` vs `= 2`: queries per second of one `serve` (and its DNS workers) under dnsperf.

The point of workers is to use every core, so this measures QPS (not per CPU-second) and pins
nothing: server processes and dnsperf share the machine's cores as they would on a router.

Usage (from the repository root, under the shared lock):
    flock /tmp/bns-heavy.lock python3 bench/workers_qps.py --data-dir /work/tmp-NAME/bench [--seconds 10]
The data dir gets the embedded snapshot (12 names, 50 subdomains) and its compiled store on first use;
the queries are case (a)'s: the URI record of each of its names, so every answer is a cached one.
`--case e` asks 200,000 names of a big index once each instead (give it the 2.2 M data dir of
`run_dns_bench.py --export`).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--seconds", type=float, default=10.0, help="dnsperf -l per run")
    p.add_argument("--reps", type=int, default=3, help="runs per workers value (the median is reported)")
    p.add_argument("--clients", type=int, default=20, help="dnsperf -c: source ports the kernel spreads")
    p.add_argument("--outstanding", type=int, default=200, help="dnsperf -q")
    p.add_argument("--port", type=int, default=15390)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--case", choices=("a", "nx", "e"), default="a",
                   help="a: the URI of each embedded name (cached answers); nx: 100,000 distinct random names "
                        "under `id` (NXDOMAIN from the store, (c′)-like: no repeat, so no replay hit); e: the URI "
                        "of 200,000 random names of a big index (run_dns_bench's (e); use the data dir of "
                        "`run_dns_bench.py --export`, whose store is compiled)")
    return p.parse_args()


def query_file(data_dir: Path, case: str) -> Path:
    from bns_resolver.index.db import open_index

    if case == "nx":
        import random

        rng = random.Random(7)
        path = data_dir / "queries-nx.txt"
        path.write_text("".join(f"nx{rng.getrandbits(64):016x}.id A\n" for _ in range(100_000)))
        return path

    engine = open_index(f"sqlite:///{data_dir / 'index.sqlite'}")
    if case == "e":
        import random

        with engine.connect() as conn:  # every 11th row, spread over the whole index; the same each time
            sample = [row[0] for row in conn.execute(text(
                "SELECT fqn FROM subdomains WHERE rowid % 11 = 3 ORDER BY rowid LIMIT 200000"))]
        random.Random(7).shuffle(sample)
        path = data_dir / "queries-e.txt"
        path.write_text("".join(f"_http._tcp.{name} URI\n" for name in sample))
        return path
    with engine.connect() as conn:
        names = [row[0] for row in conn.execute(text("SELECT fqn FROM names UNION SELECT fqn FROM subdomains"))]
    path = data_dir / "queries-a.txt"
    path.write_text("".join(f"_http._tcp.{name} URI\n" for name in sorted(names)))
    return path


def start(data_dir: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    config = data_dir / f"workers-{workers}.toml"
    config.write_text(f"[dns]\nworkers = {workers}\n[namespaces]\nicann_tlds = {{ id = false }}\n"
                      "[web]\nenabled = false\n[limits]\nresponses_per_second = 0\n")
    log = (data_dir / f"serve-{workers}.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "bns_resolver.cli", "serve", "--config", str(config),
                                "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}",
                                "--upstream", "127.0.0.1:9"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text_log = (data_dir / f"serve-{workers}.log").read_text(errors="replace")
        serving = text_log.count(") serving 127.0.0.1") if workers > 1 else 1
        store = "answer store in use" in text_log or "matches the index" in text_log
        if store and serving >= workers - 1 and "status endpoint" in text_log:
            return process
        time.sleep(0.2)
    process.terminate()
    process.wait(timeout=30)
    raise RuntimeError(f"serve with {workers} workers did not come up")


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def family(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def dnsperf(queries: Path, port: int, seconds: float, clients: int, outstanding: int) -> float:
    done = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", str(seconds),
                           "-c", str(clients), "-q", str(outstanding)], capture_output=True, text=True, check=True)
    match = re.search(r"Queries per second:\s+([\d.]+)", done.stdout)
    lost = re.search(r"Queries lost:\s+(\d+)", done.stdout)
    assert match is not None and lost is not None, done.stdout
    return float(match.group(1))


def main() -> None:
    args = parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    print(f"case {args.case}; load before: {os.getloadavg()}")
    for workers in args.workers:
        process = start(args.data_dir, args.port, workers)
        try:
            queries = query_file(args.data_dir, args.case)
            dnsperf(queries, args.port, 3, args.clients, args.outstanding)  # warm every process's caches
            pids = family(process.pid)
            results = []
            for _ in range(args.reps):
                before = cpu_seconds(pids)
                qps = dnsperf(queries, args.port, args.seconds, args.clients, args.outstanding)
                results.append((qps, (cpu_seconds(pids) - before) / args.seconds))
            results.sort()
            qps, cpu = results[len(results) // 2]
            print(f"workers={workers} processes={len(pids)} runs_qps={[round(r[0]) for r in results]} "
                  f"median_qps={qps:.0f} server_cpu_per_second={cpu:.2f}")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
