"""The markdown report: per-case figures for both servers, ratios, targets met or not."""

from __future__ import annotations

from dataclasses import dataclass, field

from measure import PerfResult


@dataclass
class CaseResult:
    key: str
    title: str
    expect: str
    ours: PerfResult
    unbound: PerfResult
    ours_latency: PerfResult
    unbound_latency: PerfResult
    latency_rate: int
    per_cpu_target: float | None = None
    p99_target: float | None = None
    note: str = ""
    ours_spread: str = ""
    unbound_spread: str = ""


@dataclass
class Footprint:
    label: str
    rss_mib: float | None
    startup: float | None
    note: str = ""
    rss_anon_mib: float | None = None  # private memory (the issue's target)
    rss_file_mib: float | None = None  # mapped files' pages: page cache, shared and reclaimable


@dataclass
class Report:
    header: list[str] = field(default_factory=list)
    cases: list[CaseResult] = field(default_factory=list)
    footprints: list[Footprint] = field(default_factory=list)
    targets: list[tuple[str, str, str, bool | None]] = field(default_factory=list)
    floor_case: str = ""
    floors: list[tuple[str, PerfResult]] = field(default_factory=list)


def _us(run: PerfResult) -> str:
    split = run.cpu_us_per_query()
    return "–" if split is None else f"{split[0]:.1f} + {split[1]:.1f}"


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.3f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def _rcode_share(result: PerfResult, expect: str) -> str:
    total = sum(result.rcodes.values())
    if not total:
        return "no answers"
    share = result.rcodes.get(expect, 0) / total
    return f"{share * 100:.1f}% {expect}"


def case_rows(case: CaseResult) -> list[str]:
    rows = []
    for label, run, lat, spread in (("ours", case.ours, case.ours_latency, case.ours_spread),
                                    ("unbound", case.unbound, case.unbound_latency, case.unbound_spread)):
        rows.append(
            f"| {case.title} | {label} | {run.qps:,.0f} | {run.cpu:.2f} | {_us(run)} | {run.client_cpu:.2f} / {run.other_cpu:.2f} | {_fmt(run.per_cpu_second, ',.0f')} "
            f"| {_ms(lat.percentile(50))} | {_ms(lat.percentile(99))} | {_ms(run.percentile(50))} "
            f"| {_ms(run.percentile(99))} | {_rcode_share(run, case.expect)} | {run.lost} | {spread} |"
        )
    return rows


def ratio_row(case: CaseResult) -> tuple[str, list[tuple[str, str, str, bool | None]]]:
    qps = _ratio(case.ours.qps, case.unbound.qps)
    per_cpu = _ratio(case.ours.per_cpu_second, case.unbound.per_cpu_second)
    p99 = _ratio(case.ours_latency.percentile(99), case.unbound_latency.percentile(99))
    p99_sat = _ratio(case.ours.percentile(99), case.unbound.percentile(99))
    targets: list[tuple[str, str, str, bool | None]] = []
    if case.per_cpu_target is not None:
        targets.append((f"{case.title}: QPS per CPU-second vs Unbound", f"≥ {case.per_cpu_target}×",
                        f"{_fmt(per_cpu)}×", None if per_cpu is None else per_cpu >= case.per_cpu_target))
    if case.p99_target is not None:
        targets.append((f"{case.title}: p99 vs Unbound (at {case.latency_rate:,} qps)", f"≤ {case.p99_target}×",
                        f"{_fmt(p99)}×", None if p99 is None else p99 <= case.p99_target))
    row = (f"| {case.title} | {_fmt(qps)}× | {_fmt(per_cpu)}× | {_fmt(p99)}× (at {case.latency_rate:,} qps) "
           f"| {_fmt(p99_sat)}× |")
    return row, targets


def render(report: Report) -> str:
    lines = [*report.header, ""]
    lines += [
        "### Throughput and latency",
        "",
        "QPS and CPU: dnsperf unlimited rate. Latency columns: per-query latencies from `dnsperf -v`, "
        "first at a fixed offered rate (half the slower server's QPS for that case, shown in the ratio table), "
        "then at saturation (closed loop, so mostly queueing). "
        "`dnsperf / other CPU s`: dnsperf's own CPU time, and the CPU time everything else on the host used "
        "meanwhile (from /proc/stat; the host is shared, so this is the noise).",
        "",
        "| case | server | QPS | server CPU s | server CPU µs per query, user + sys | dnsperf / other CPU s | queries per CPU-s | p50 ms (fixed rate) | p99 ms (fixed rate) "
        "| p50 ms (saturated) | p99 ms (saturated) | rcodes | lost | queries per CPU-s, all runs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    all_targets: list[tuple[str, str, str, bool | None]] = []
    ratio_lines = []
    for case in report.cases:
        lines += case_rows(case)
        row, targets = ratio_row(case)
        ratio_lines.append(row)
        all_targets += targets
    lines += ["", "### Ours / Unbound", "",
              "| case | QPS | QPS per CPU-s | p99 (fixed rate) | p99 (saturated) |",
              "|---|---:|---:|---:|---:|", *ratio_lines]
    notes = [f"- {case.title}: {case.note}" for case in report.cases if case.note]
    if notes:
        lines += ["", *notes]
    if report.floors:
        lines += ["", "### Context: bare CPython responders on the same query file", "",
                  f"Query file of {report.floor_case}. `python_floor.py` answers from a dict of finished answers "
                  "(key: the query minus its ID), nothing else: `socket` is a blocking recvfrom/sendto loop, "
                  "`twisted` a DatagramProtocol using transport.write, `twisted-sendto` the same calling the "
                  "socket's sendto directly. Same pinning and dnsperf options; median of the runs.", "",
                  "| responder | QPS | CPU µs per query, user + sys | queries per CPU-s | vs Unbound |",
                  "|---|---:|---:|---:|---:|"]
        reference = dict(report.floors).get("Unbound")
        for label, run in report.floors:
            versus = _ratio(run.per_cpu_second, reference.per_cpu_second if reference else None)
            lines.append(f"| {label} | {run.qps:,.0f} | {_us(run)} | {_fmt(run.per_cpu_second, ',.0f')} "
                         f"| {_fmt(versus)}× |")
    lines += ["", "### Memory and start-up", "",
              "VmRSS is RssAnon (the process's own memory) + RssFile (pages of mapped files: the answer store, "
              "libraries; page cache, shared and reclaimable) + RssShmem.", "",
              "| server / data | VmRSS MiB (after its runs) | RssAnon MiB | RssFile MiB "
              "| start-up s (exec → first good answer) | note |",
              "|---|---:|---:|---:|---:|---|"]
    for fp in report.footprints:
        lines.append(f"| {fp.label} | {_fmt(fp.rss_mib, '.2f')} | {_fmt(fp.rss_anon_mib, '.2f')} "
                     f"| {_fmt(fp.rss_file_mib, '.2f')} | {_fmt(fp.startup, '.3f')} | {fp.note} |")
    all_targets += report.targets
    lines += ["", "### Targets", "", "| target | wanted | measured | met |", "|---|---|---|---|"]
    for name, wanted, measured, met in all_targets:
        verdict = "n/a" if met is None else ("**met**" if met else "**not met**")
        lines.append(f"| {name} | {wanted} | {measured} | {verdict} |")
    return "\n".join(lines) + "\n"
