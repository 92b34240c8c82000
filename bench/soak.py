#!/usr/bin/env python3
"""Soak: `bns-resolver serve` under a steady dnsperf load for minutes, watching its private memory.

    python bench/soak.py --minutes 10 --rate 2000

The server runs on the embedded snapshot (imported on a first start, answer store compiled)
and forwards to an Unbound stub on loopback. One query file mixes, in a shuffled order:

- BNS names of the snapshot: every `_http._tcp.<name> URI` that answers, and `<name> A`;
- forwarded names: 20,000 distinct `hostNNNNN.example.test A`, more than the forward cache holds,
  so the cache keeps turning over;
- random names under `id` (shared with ICANN): distinct, each one a trip to the upstream stub,
  which answers NXDOMAIN;
- names under a BNS-only namespace that no one registered: NXDOMAIN from the answer store.

Beside dnsperf a thread sends malformed packets (random bytes, truncated headers) at a low rate.
Every `--sample` seconds it reads RssAnon (the process's own memory; the store is page cache,
RssFile) from /proc/PID/status; dnsperf prints QPS every second. The report gives start, warm
(after `--warmup`), peak and end RssAnon, the growth after warm-up, QPS per second (min/median),
rcodes, loss and latency. Raw samples go to bench/out/soak-<time>/samples.json.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import queryfiles  # noqa: E402
import unbound_conf  # noqa: E402
from measure import cpu_seconds, status_kib  # noqa: E402
from servers import Processes, ours_argv, ours_compile_argv, ours_config, unbound_argv  # noqa: E402

TYPE_A, TYPE_URI = 1, 256
PROBE = "_http._tcp.zone117x.id"
ICANN_TLDS = {"id": True, "blockstack": False, "graphite": False, "helloworld": False, "podcast": False}
FORWARDED_NAMES = 20_000
SHARE = {"bns": 0.55, "forward": 0.30, "random_id": 0.02, "nx_bns_only": 0.13}  # random_id: under the 100/s fetch limit
_QPS_LINE = re.compile(r"^\s*(\d+\.\d+): ([\d.]+)\s*$")


@dataclass
class Samples:
    rss_anon_kib: list[tuple[float, int]] = field(default_factory=list)  # (seconds since load, KiB)
    malformed_sent: int = 0
    malformed_answered: int = 0


def stub_conf(port: int, workdir: Path, names: list[str]) -> str:
    """Unbound as the upstream: `test.` names as data, `id.` an empty zone (NXDOMAIN + SOA)."""
    conf = unbound_conf.stub_conf(port, workdir, names)
    zone = '    local-zone: "id." static\n    local-data: "id. 3600 IN SOA ns.id. hostmaster.id. 1 3600 600 86400 60"\n'
    return conf.replace("remote-control:", zone + "remote-control:", 1)


def query_lines(bns: list[str], total: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    forward = [f"{name} A" for name in unbound_conf.forward_names(FORWARDED_NAMES)]
    counts = {kind: int(total * share) for kind, share in SHARE.items()}
    lines = [bns[i % len(bns)] for i in range(counts["bns"])]
    lines += [forward[i % len(forward)] for i in range(counts["forward"])]
    lines += [f"soak-{rng.getrandbits(64):016x}.id A" for _ in range(counts["random_id"])]
    lines += [f"nx-{rng.getrandbits(64):016x}.podcast A" for _ in range(counts["nx_bns_only"])]
    rng.shuffle(lines)
    return lines


def sample_memory(pid: int, every: float, stop: threading.Event, out: Samples, started: float) -> None:
    while not stop.wait(every):
        try:
            out.rss_anon_kib.append((round(time.monotonic() - started, 1), status_kib(pid, "RssAnon")))
        except (OSError, KeyError):
            return  # the server is gone; the run will say so


def send_malformed(port: int, rate: float, stop: threading.Event, out: Samples) -> None:
    """Hostile bytes at a low steady rate: random junk, short headers, a header that lies about counts."""
    rng = random.Random(7)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        while not stop.wait(1 / rate):
            kind = rng.randrange(3)
            packet = (rng.randbytes(rng.randrange(1, 200)) if kind == 0
                      else rng.randbytes(rng.randrange(1, 12)) if kind == 1
                      else rng.randbytes(2) + b"\x01\x00\x00\x05\x00\x00\x00\x00\x00\x00" + rng.randbytes(9))
            try:
                sock.sendto(packet, ("127.0.0.1", port))
                out.malformed_sent += 1
                while True:
                    sock.recv(4096)
                    out.malformed_answered += 1
            except BlockingIOError:
                pass


def run_dnsperf(port: int, queries: Path, seconds: int, rate: int, log: Path) -> str:
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", str(seconds),
            "-Q", str(rate), "-c", "8", "-q", "500", "-t", "2", "-S", "1"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120, check=False)
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"dnsperf failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def summary_field(text: str, label: str) -> str:
    match = re.search(rf"{re.escape(label)}:\s+(.*)", text)
    return match.group(1).strip() if match else "?"


def report(args: argparse.Namespace, perf: str, samples: Samples, cpu: float, mix: dict[str, int]) -> str:
    qps = [float(m.group(2)) for m in map(_QPS_LINE.match, perf.splitlines()) if m]
    rss = samples.rss_anon_kib
    warm = [kib for t, kib in rss if t >= args.warmup]
    start, peak, end = rss[0][1], max(k for _, k in rss), rss[-1][1]
    lines = [
        f"- load: {args.rate:,} queries/s asked for {args.minutes:g} min; mix per {sum(mix.values()):,}-line file: "
        + ", ".join(f"{kind} {count:,}" for kind, count in mix.items()),
        f"- dnsperf: sent {summary_field(perf, 'Queries sent')}, completed {summary_field(perf, 'Queries completed')}, "
        f"lost {summary_field(perf, 'Queries lost')}; {summary_field(perf, 'Queries per second')} queries/s",
        f"- QPS per second: min {min(qps):,.0f}, median {statistics.median(qps):,.0f}, max {max(qps):,.0f} "
        f"({len(qps)} one-second samples)" if qps else "- QPS per second: none reported",
        f"- rcodes: {summary_field(perf, 'Response codes')}",
        f"- latency: average {summary_field(perf, 'Average Latency (s)')} s, "
        f"std dev {summary_field(perf, 'Latency StdDev (s)')} s",
        f"- malformed packets: {samples.malformed_sent:,} sent, {samples.malformed_answered:,} answered",
        f"- server CPU: {cpu:.1f} s over the run",
        f"- RssAnon (MiB), {len(rss)} samples every {args.sample:g} s: start {start / 1024:.1f}, "
        f"after {args.warmup:g} s warm-up {warm[0] / 1024 if warm else float('nan'):.1f}, "
        f"peak {peak / 1024:.1f}, end {end / 1024:.1f}; "
        f"after warm-up: min {min(warm) / 1024 if warm else float('nan'):.1f}, "
        f"max {max(warm) / 1024 if warm else float('nan'):.1f}",
        f"- RssAnon after warm-up: {(end - warm[0]) if warm else 0:+,} KiB from warm-up to end; "
        f"last rise at {_last_rise(rss):.0f} s of {rss[-1][0]:.0f} s",
    ]
    return "\n".join(lines)


def _last_rise(rss: list[tuple[float, int]]) -> float:
    """When RssAnon last went above every earlier sample (0 if it never did)."""
    peak, when = rss[0][1], 0.0
    for seconds, kib in rss:
        if kib > peak:
            peak, when = kib, seconds
    return when


def prepare(procs: Processes, run_dir: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    data_dir, config = run_dir / "data", ours_config(run_dir / "bns-resolver.toml", ICANN_TLDS)
    stub_port, port = args.port_base + 1, args.port_base
    names = unbound_conf.forward_names(FORWARDED_NAMES)
    (run_dir / "stub.conf").write_text(stub_conf(stub_port, run_dir, names))
    procs.start("stub", unbound_argv(run_dir / "stub.conf"), stub_port, run_dir / "stub.log", cpu=None,
                probe=(names[0], TYPE_A))
    first = procs.start("first-start", ours_argv(data_dir, port, stub_port, config), port,
                        run_dir / "first-start.log", cpu=None, probe=(PROBE, TYPE_URI))
    procs.stop(first)
    with (run_dir / "compile.log").open("wb") as out:
        subprocess.run(ours_compile_argv(data_dir, config), stdout=out, stderr=subprocess.STDOUT, check=True)
    return data_dir, config


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--rate", type=int, default=2000, help="dnsperf -Q: queries per second asked for")
    p.add_argument("--sample", type=float, default=1.0, help="seconds between RssAnon samples")
    p.add_argument("--warmup", type=float, default=120.0, help="seconds before memory must be flat")
    p.add_argument("--malformed-rate", type=float, default=50.0, help="malformed packets per second")
    p.add_argument("--lines", type=int, default=400_000, help="query file length")
    p.add_argument("--port-base", type=int, default=15454, help="server on base, upstream stub on base+1")
    args = p.parse_args()
    run_dir = BENCH_DIR / "out" / time.strftime("soak-%Y%m%dT%H%M%S")
    run_dir.mkdir(parents=True)
    procs = Processes()
    try:
        data_dir, config = prepare(procs, run_dir, args)
        server = procs.start("ours", ours_argv(data_dir, args.port_base, args.port_base + 1, config),
                             args.port_base, run_dir / "ours.log", cpu=None, probe=(PROBE, TYPE_URI))
        bns, _ = queryfiles.discover_bns_answers(args.port_base, queryfiles.indexed_names(data_dir))
        bns += [f"{name} A" for name in queryfiles.indexed_names(data_dir)]
        lines = query_lines(bns, args.lines, seed=20261205)
        mix = {kind: int(args.lines * share) for kind, share in SHARE.items()}
        queries = queryfiles.write_queries(run_dir / "queries.txt", lines)
        samples, stop = Samples(), threading.Event()
        started, cpu_before = time.monotonic(), cpu_seconds(server.pid)
        samples.rss_anon_kib.append((0.0, status_kib(server.pid, "RssAnon")))
        threads = [threading.Thread(target=sample_memory, args=(server.pid, args.sample, stop, samples, started)),
                   threading.Thread(target=send_malformed, args=(args.port_base, args.malformed_rate, stop, samples))]
        for thread in threads:
            thread.start()
        try:
            perf = run_dnsperf(args.port_base, queries, int(args.minutes * 60), args.rate, run_dir / "dnsperf.txt")
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        alive = server.proc.poll() is None
        cpu = cpu_seconds(server.pid) - cpu_before if alive else float("nan")
        if alive:
            samples.rss_anon_kib.append((round(time.monotonic() - started, 1), status_kib(server.pid, "RssAnon")))
        (run_dir / "samples.json").write_text(json.dumps({"rss_anon_kib": samples.rss_anon_kib, "dnsperf": perf}))
        text = report(args, perf, samples, cpu, mix)
        print(text if alive else text + "\n- THE SERVER EXITED during the run")
        print(f"(raw: {run_dir})", file=sys.stderr)
        return 0 if alive else 1
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
