#!/usr/bin/env python3
"""bns-resolver vs Unbound, side by side, with dnsperf: BNS answers, forwarded cache hits, NXDOMAIN,
plus resident memory and start-up time with the embedded snapshot and a synthetic 300,000-name index.

Usage (from the repository root):  python bench/run_dns_bench.py [--seconds 10] [--skip-300k]
Writes the markdown table to stdout and bench/out/latest.md (raw numbers in bench/out/latest.json).
See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import datasets  # noqa: E402
import queryfiles  # noqa: E402
import synth_export  # noqa: E402
import synth_index  # noqa: E402
import unbound_conf  # noqa: E402
from measure import PerfResult, memory_mib, run_dnsperf  # noqa: E402
from report import CaseResult, Footprint, Report, render  # noqa: E402
from servers import Processes, Server, ours_argv, ours_compile_argv, ours_config, unbound_argv  # noqa: E402

from bns_resolver.config import Settings  # noqa: E402

OUT_DIR = BENCH_DIR / "out"
TYPE_A, TYPE_URI = 1, 256
SERVER_CPU, CLIENT_CPU = 1, 0
# Namespaces of the embedded snapshot and the synthetic one; `id` is also Indonesia's ccTLD.
ICANN_TLDS = {"id": True, "blockstack": False, "graphite": False, "helloworld": False, "podcast": False,
              synth_index.NAMESPACE: False}
NX_NAMESPACE = "podcast"
NX_MISS = 100_000  # distinct random names in (c′): ten times the answer cache


@dataclasses.dataclass
class Case:
    key: str
    title: str
    queries: Path
    expect: str
    per_cpu_target: float | None = None
    p99_target: float | None = None
    note: str = ""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10, help="dnsperf -l per measured run (default 10)")
    p.add_argument("--latency-seconds", type=float, default=5, help="fixed-rate latency run length (default 5)")
    p.add_argument("--warm-seconds", type=float, default=10, help="bound on each warm-up pass (default 10)")
    p.add_argument("--reps", type=int, default=3,
                   help="measured runs per case and server, alternating order; the median is reported (default 3)")
    p.add_argument("--clients", type=int, default=10, help="dnsperf -c (default 10)")
    p.add_argument("--outstanding", type=int, default=100, help="dnsperf -q (default 100)")
    p.add_argument("--names", type=int, default=300_000, help="synthetic index size (default 300000)")
    p.add_argument("--distinct", type=int, default=50_000, help="distinct names queried in the big index")
    p.add_argument("--port-base", type=int, default=15354, help="ours, unbound, stub use base, base+1, base+2")
    p.add_argument("--skip-300k", action="store_true", help="only the embedded-snapshot cases")
    p.add_argument("--export", type=Path, metavar="DIR",
                   help="big cases on the synthetic BNS v1 export of synth_export.py instead of the synthetic "
                        "index: generated, imported (import-snapshot) and kept under DIR; (c′) moves there too")
    p.add_argument("--export-names", type=int, default=synth_export.Sizes.names,
                   help=f"on-chain names in the export (default {synth_export.Sizes.names:,})")
    p.add_argument("--export-subdomains", type=int, default=synth_export.Sizes.subdomains,
                   help=f"subdomains in the export (default {synth_export.Sizes.subdomains:,})")
    p.add_argument("--keep-store", action="store_true",
                   help="do not compile the big data set's answer store again when it is current")
    p.add_argument("--no-floor", action="store_true",
                   help="skip the CPython reference responders (python_floor.py) on case (a)")
    p.add_argument("--no-saturated-latency", action="store_true",
                   help="run the throughput runs without -v (no saturated latency columns)")
    return p.parse_args()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_dir = OUT_DIR / time.strftime("run-%Y%m%dT%H%M%S")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.procs = Processes()
        self.report = Report()
        self.raw: dict[str, object] = {"cases": {}, "footprints": []}
        self.ours_port, self.unbound_port, self.stub_port = (args.port_base + i for i in range(3))
        self.config = ours_config(self.run_dir / "bns-resolver.toml", ICANN_TLDS)
        self.cache_entries = Settings(data_dir=Path(".")).cache_entries

    # --- servers ----------------------------------------------------------------------------

    def start_stub(self) -> None:
        names = unbound_conf.forward_names(1000)
        conf = self.run_dir / "stub.conf"
        conf.write_text(unbound_conf.stub_conf(self.stub_port, self.run_dir, names))
        self.procs.start("upstream stub", unbound_argv(conf), self.stub_port, self.run_dir / "stub.log",
                         cpu=CLIENT_CPU, probe=(names[0], TYPE_A))

    def start_ours(self, label: str, data_dir: Path, probe: str) -> Server:
        argv = ours_argv(data_dir, self.ours_port, self.stub_port, self.config)
        return self.procs.start(label, argv, self.ours_port, self.run_dir / f"{label}.log", cpu=SERVER_CPU,
                                probe=(probe, TYPE_URI))

    def compile_store(self, label: str, data_dir: Path) -> float:
        """Compile the answer store first, so the measured server answers misses from it at once."""
        started = time.monotonic()
        with (self.run_dir / f"{label}.log").open("wb") as out:
            subprocess.run(ours_compile_argv(data_dir, self.config), stdout=out, stderr=subprocess.STDOUT, check=True)
        seconds = time.monotonic() - started
        print(f"[bench] {label}: answer store compiled in {seconds:.1f} s", file=sys.stderr, flush=True)
        return seconds

    def start_unbound(self, label: str, local_data: list[str], static_zones: list[str], probe: str, *,
                      transparent: list[str] | None = None, local_data_file: Path | None = None) -> Server:
        conf = self.run_dir / f"{label}.conf"
        conf.write_text(unbound_conf.comparison_conf(
            self.unbound_port, self.stub_port, self.run_dir, static_zones=static_zones,
            transparent_zones=["id"] if transparent is None else transparent, local_data=local_data,
            local_data_file=local_data_file))
        return self.procs.start(label, unbound_argv(conf), self.unbound_port, self.run_dir / f"{label}.log",
                                cpu=SERVER_CPU, probe=(probe, TYPE_URI), limit=600)

    # --- runs -------------------------------------------------------------------------------

    def perf(self, server: Server, case: Case, tag: str, **kwargs: object) -> PerfResult:
        a = self.args
        options: dict[str, object] = {"seconds": a.seconds, "clients": a.clients, "outstanding": a.outstanding,
                                      "verbose": not a.no_saturated_latency}
        options.update(kwargs)
        log = self.run_dir / f"dnsperf-{case.key}-{server.label}-{tag}.txt"
        return run_dnsperf(server.port, case.queries, server_pid=server.pid, cpu=CLIENT_CPU, log=log,
                           **options)  # type: ignore[arg-type]

    def run_case(self, case: Case, ours: Server, unbound: Server) -> CaseResult:
        print(f"[bench] {case.title}", file=sys.stderr, flush=True)
        a = self.args
        runs: dict[str, list[PerfResult]] = {ours.label: [], unbound.label: []}
        for server in (ours, unbound):
            self.perf(server, case, "warm", seconds=a.warm_seconds, max_runs=1, verbose=False)
        for rep in range(a.reps):
            # Alternate who goes first: the host is shared, so load drifts between runs.
            for server in ((ours, unbound) if rep % 2 == 0 else (unbound, ours)):
                runs[server.label].append(self.perf(server, case, f"throughput{rep}"))
        saturated = {label: _median_run(results) for label, results in runs.items()}
        qps = min(r.qps for r in saturated.values())
        rate = max(100, int(qps * 0.5) // 100 * 100)
        latency = {s.label: self.perf(s, case, "latency", seconds=a.latency_seconds, rate=rate, verbose=True)
                   for s in (ours, unbound)}
        result = CaseResult(case.key, case.title, case.expect, saturated[ours.label], saturated[unbound.label],
                            latency[ours.label], latency[unbound.label], rate, case.per_cpu_target,
                            case.p99_target, case.note,
                            ours_spread=_spread(runs[ours.label]), unbound_spread=_spread(runs[unbound.label]))
        self.report.cases.append(result)
        self.raw["cases"][case.key] = {  # type: ignore[index]
            "title": case.title, "latency_rate": rate,
            "ours_reps": [_summary(r) for r in runs[ours.label]],
            "unbound_reps": [_summary(r) for r in runs[unbound.label]],
            **{f"{label}_{kind}": _summary(res) for label, kind, res in (
                ("ours", "throughput", result.ours), ("unbound", "throughput", result.unbound),
                ("ours", "latency", result.ours_latency), ("unbound", "latency", result.unbound_latency))},
        }
        return result

    def footprint(self, label: str, server: Server | None, *, startup: float | None, note: str = "") -> None:
        memory = memory_mib(server.pid) if server is not None and server.proc.poll() is None else {}
        self.report.footprints.append(Footprint(label, memory.get("VmRSS"), startup, note,
                                                memory.get("RssAnon"), memory.get("RssFile")))
        self.raw["footprints"].append({"label": label, "rss_mib": memory.get("VmRSS"),  # type: ignore[union-attr]
                                       "rss_anon_mib": memory.get("RssAnon"), "rss_file_mib": memory.get("RssFile"),
                                       "startup_s": startup, "note": note})

    # --- the two halves ---------------------------------------------------------------------

    def embedded(self) -> None:
        data_dir = self.run_dir / "embedded-data"
        probe = "_http._tcp.zone117x.id"
        first = self.start_ours("ours-embedded-first-start", data_dir, probe)
        self.procs.stop(first)
        self.compile_store("compile-embedded", data_dir)
        ours = self.start_ours("ours-embedded", data_dir, probe)
        queries, local_data = queryfiles.discover_bns_answers(self.ours_port, queryfiles.indexed_names(data_dir))
        static = [ns for ns, shared in ICANN_TLDS.items() if not shared and ns != synth_index.NAMESPACE]
        unbound = self.start_unbound("unbound-embedded", local_data, static, probe)
        qdir = self.run_dir / "queries"
        nx_small = 1000
        cases = [
            Case("bns", f"(a) BNS names ({len(queries)} URI names, cached)",
                 queryfiles.write_queries(qdir / "bns.txt", queries), "NOERROR", 0.85, 1.5),
            Case("fwd", "(b) forwarded, cache hits (1,000 names)", queryfiles.write_queries(
                qdir / "forward.txt", (f"{n} A" for n in unbound_conf.forward_names(1000))), "NOERROR", 0.85),
            Case("nx", f"(c) NXDOMAIN under `{NX_NAMESPACE}` ({nx_small:,} names, cached)", queryfiles.write_queries(
                qdir / "nx.txt", queryfiles.nxdomain_queries(NX_NAMESPACE, nx_small)), "NXDOMAIN", 0.85),
        ]
        if not self.args.export:  # else (c′) is asked of the export, under one of its names
            cases.append(Case(
                "nx-miss", f"(c′) NXDOMAIN under `{NX_NAMESPACE}` ({NX_MISS:,} distinct names, > cache)",
                queryfiles.write_queries(qdir / "nx-miss.txt", queryfiles.nxdomain_queries(NX_NAMESPACE, NX_MISS)),
                "NXDOMAIN", 0.7, note=f"more distinct names than the gateway's {self.cache_entries:,}-entry "
                                      "answer cache: ours answers each from the store"))
        results = [self.run_case(case, ours, unbound) for case in cases]
        if not self.args.no_floor:
            self.floor(cases[0], results[0])
        self.footprint("ours, embedded snapshot, first start (imports the snapshot)", None,
                       startup=first.startup)
        self.footprint("ours, embedded snapshot", ours, startup=ours.startup, note="restart on the imported index")
        self.footprint(f"Unbound, same data ({len(local_data)} local-data)", unbound, startup=unbound.startup)
        self.procs.stop(ours)
        self.procs.stop(unbound)

    def floor(self, case: Case, measured: CaseResult) -> None:
        """What bare CPython responders cost per query on the same query file (context, not a target)."""
        port = self.args.port_base + 3
        self.report.floor_case = case.title
        self.report.floors += [("ours (bns-resolver)", measured.ours), ("Unbound", measured.unbound)]
        for mode in ("socket", "twisted", "twisted-sendto"):
            print(f"[bench] CPython reference responder: {mode}", file=sys.stderr, flush=True)
            argv = [sys.executable, str(BENCH_DIR / "python_floor.py"), "--mode", mode, "--port", str(port),
                    "--backend-port", str(self.ours_port)]
            server = self.procs.start(f"floor-{mode}", argv, port, self.run_dir / f"floor-{mode}.log",
                                      cpu=SERVER_CPU, probe=("_http._tcp.zone117x.id", TYPE_URI))
            self.perf(server, case, "warm", seconds=self.args.warm_seconds, max_runs=1, verbose=False)
            runs = [self.perf(server, case, f"throughput{rep}", verbose=False) for rep in range(self.args.reps)]
            self.procs.stop(server)
            result = _median_run(runs)
            self.report.floors.append((f"reference: {mode}", result))
            self.raw.setdefault("floor", {})[mode] = [_summary(r) for r in runs]  # type: ignore[union-attr]

    def big_data(self) -> None:
        a = self.args
        if a.export:
            sizes = synth_export.Sizes(a.export_names, a.export_subdomains)
            dataset, how = datasets.export_dataset(a.export, sizes)
        else:
            dataset, how = datasets.synth_index_dataset(OUT_DIR, a.names)
        print(f"[bench] {dataset.label} {how}: {dataset.data_dir}", file=sys.stderr, flush=True)
        tag = f"{dataset.size}"
        compile_seconds = self.compile_store(f"compile-{tag}", dataset.data_dir) if self.must_compile(dataset) else None
        startups: list[float] = []
        for attempt in range(3):
            server = self.start_ours(f"ours-{tag}-start{attempt}", dataset.data_dir, dataset.probe)
            startups.append(_startup(server))
            self.procs.stop(server)
        ours = self.start_ours(f"ours-{tag}", dataset.data_dir, dataset.probe)
        startups.append(_startup(ours))
        store_current = "matches the index" in (self.run_dir / f"ours-{tag}.log").read_text()
        unbound = self.start_unbound(f"unbound-{tag}", [], list(dataset.static_zones), dataset.probe,
                                     transparent=list(dataset.transparent_zones), local_data_file=dataset.local_data)
        names = datasets.dataset_queries(dataset, a.distinct)
        datasets.check_same_answers(self.ours_port, self.unbound_port, names[:200])
        cases = self.big_cases(dataset, names)
        results = [self.run_case(case, ours, unbound) for case in cases]
        startup = sorted(startups)[len(startups) // 2]
        memory = memory_mib(ours.pid)
        self.footprint(f"ours, {dataset.label}", ours, startup=startup,
                       note=f"store current at start: {store_current}; start-up: median of "
                            + ", ".join(f"{s:.3f}" for s in startups) + " s")
        self.footprint(f"Unbound, {dataset.label} as local-data", unbound, startup=unbound.startup)
        self.big_targets(dataset, results, memory, startup, compile_seconds)
        self.procs.stop(ours)
        self.procs.stop(unbound)

    def must_compile(self, dataset: datasets.Dataset) -> bool:
        """Compile unless told to keep a store that is already current (the compile is measured elsewhere)."""
        if self.args.keep_store and datasets.store_is_current(dataset.data_dir):
            print("[bench] answer store current: not compiled again (--keep-store)", file=sys.stderr, flush=True)
            return False
        return True

    def big_cases(self, dataset: datasets.Dataset, names: list[str]) -> list[Case]:
        a, qdir, label = self.args, self.run_dir / "queries", dataset.label
        zipf = [names[i] for i in queryfiles.synth_zipf(list(range(len(names))), 4 * len(names))]
        zipf_lines = [f"{name} URI" for name in zipf]
        hit = queryfiles.fifo_hit_rate(zipf_lines, self.cache_entries)
        cases = []
        if a.export:
            nx_lines = queryfiles.nxdomain_queries(dataset.nx_parent, NX_MISS)
            cases.append(Case("big-nx-miss", f"(c′) NXDOMAIN under `{dataset.nx_parent}`, {label} "
                              f"({NX_MISS:,} distinct random names)",
                              queryfiles.write_queries(qdir / "big-nx-miss.txt", nx_lines), "NXDOMAIN", 0.7,
                              note=f"random names under a served name of a BNS-only namespace, more than the "
                                   f"gateway's {self.cache_entries:,}-entry answer cache: ours answers each "
                                   "from the store"))
        cases += [
            Case("big-zipf", f"(d) BNS names, {label}, {len(names):,} distinct (Zipf)",
                 queryfiles.write_queries(qdir / "big-zipf.txt", zipf_lines), "NOERROR", 0.7,
                 note=f"{len(zipf_lines):,} queries over {len(names):,} names with Zipf(1) popularity; "
                      f"simulated hit rate of the {self.cache_entries:,}-entry FIFO answer cache: {hit:.0%}"),
            Case("big-miss", f"(e) BNS names, {label}, {len(names):,} distinct (each once)",
                 queryfiles.write_queries(qdir / "big-miss.txt", [f"{name} URI" for name in names]), "NOERROR",
                 0.6, note="each name once per pass through the file: more names than the answer cache, so "
                           "every query of ours is an answer-cache miss, answered from the compiled store"),
        ]
        return cases

    def big_targets(self, dataset: datasets.Dataset, results: list[CaseResult], memory: dict[str, float],
                    startup: float, compile_seconds: float | None) -> None:
        targets, label = self.report.targets, dataset.label
        anon = memory["RssAnon"]
        targets.append((f"private memory (RssAnon) serving the {label} (RssFile, the store's pages and "
                        f"libraries: {memory['RssFile']:.1f} MiB)", "≤ 64 MiB", f"{anon:.2f} MiB", anon <= 64))
        targets.append((f"start-up with the {label}, store compiled", "≤ 1 s", f"{startup:.3f} s", startup <= 1.0))
        for result in results:
            if result.key in ("big-nx-miss", "big-miss"):
                user = (result.ours.cpu_us_per_query() or (float("nan"), 0.0))[0]
                targets.append((f"{result.title}: our user CPU per store answer", "≤ 6 µs", f"{user:.1f} µs",
                                user <= 6))
        if compile_seconds is not None:
            targets.append((f"compile the answer store, {label}", "≤ 60 s", f"{compile_seconds:.1f} s",
                            compile_seconds <= 60))

    def run(self) -> str:
        self.report.header = self.header()
        try:
            self.start_stub()
            self.embedded()
            if not self.args.skip_300k:
                self.big_data()
        finally:
            self.procs.stop_all()
        return render(self.report)

    def header(self) -> list[str]:
        a = self.args
        unbound_version = subprocess.run(unbound_argv(Path("/dev/null"))[:1] + ["-V"], capture_output=True,
                                         text=True, timeout=10).stdout.splitlines()[0]
        helptext = subprocess.run(["dnsperf", "-h"], capture_output=True, text=True, timeout=10)
        found = re.search(r"Version (\S+)", helptext.stdout + helptext.stderr)
        dnsperf_version = found.group(1) if found else "(unknown version)"
        cpu = _cpu_model()
        repo = BENCH_DIR.parent
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "bns_resolver"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return [
            f"## bns-resolver vs Unbound — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            f"- bns-resolver at commit {commit}"
            f"{' with uncommitted changes in bns_resolver/' if dirty else ''}",
            f"- host: {platform.node()}, {os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, "
            f"Python {platform.python_version()}",
            f"- Unbound {unbound_version.split()[-1]} (`num-threads: 1`), dnsperf {dnsperf_version}; servers pinned to CPU "
            f"{SERVER_CPU}, dnsperf and the upstream stub to CPU {CLIENT_CPU} (taskset)",
            f"- dnsperf `-l {a.seconds:g} -c {a.clients} -q {a.outstanding}`, no `-Q` (unlimited) for QPS/CPU; "
            f"`-l {a.latency_seconds:g} -Q <rate> -v` for fixed-rate latency; UDP, no EDNS; each case warmed "
            "with one pass (`-n 1`, bounded) first; "
            f"{a.reps} throughput runs per case and server, alternating order, the run with the median "
            "queries per CPU-s is shown (range in the last column)",
            f"- ours: `bns-resolver serve` with `[namespaces] icann_tlds` = "
            f"{', '.join(f'{k}={str(v).lower()}' for k, v in ICANN_TLDS.items())}; answer cache "
            f"{self.cache_entries:,} entries (default)",
            f"- logs, configs and query files: `{self.run_dir.relative_to(BENCH_DIR.parent)}`",
        ]


def _startup(server: Server) -> float:
    if server.startup is None:
        raise RuntimeError(f"{server.label}: started without a probe, so no start-up time")
    return server.startup


def _median_run(results: list[PerfResult]) -> PerfResult:
    """The run with the median queries per CPU-second."""
    ordered = sorted(results, key=lambda r: r.per_cpu_second or 0.0)
    return ordered[len(ordered) // 2]


def _spread(results: list[PerfResult]) -> str:
    values = sorted(r.per_cpu_second or 0.0 for r in results)
    return f"{values[0]:,.0f}–{values[-1]:,.0f}" if len(values) > 1 else ""


def _summary(result: PerfResult) -> dict[str, object]:
    return {"qps": result.qps, "completed": result.completed, "lost": result.lost, "rcodes": result.rcodes,
            "cpu_s": result.cpu, "cpu_user_s": result.cpu_user, "cpu_sys_s": result.cpu_sys, "dnsperf_cpu_s": result.client_cpu, "other_cpu_s": result.other_cpu,
            "elapsed_s": result.elapsed, "per_cpu_s": result.per_cpu_second, "p50_s": result.percentile(50),
            "p99_s": result.percentile(99), "latency_samples": len(result.latencies)}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _require(tools: list[str], check: Callable[[str], str | None] = shutil.which) -> None:
    missing = [t for t in tools if not check(t)]
    if missing:
        sys.exit(f"run_dns_bench: missing {', '.join(missing)} (Debian: apt-get install dnsperf unbound)")


def main() -> int:
    args = parse_args()
    _require(["dnsperf"])
    if not shutil.which("unbound") and not Path("/usr/sbin/unbound").exists():
        sys.exit("run_dns_bench: unbound not found (Debian: apt-get install unbound)")
    bench = Bench(args)
    table = bench.run()
    sys.stdout.write(table)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "latest.md").write_text(table)
    (bench.run_dir / "report.md").write_text(table)
    (OUT_DIR / "latest.json").write_text(json.dumps(bench.raw, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
