"""`GET /metrics`: what the resolver is doing, in Prometheus's text exposition format.

Hand-written (a dozen gauges and counters do not need a client library): each
value is read from the live objects when scraped, so the query path pays nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Sample = tuple[str, str, str, dict[str, str], float]  # name, type, help, labels, value


@dataclass
class MetricsSource:
    """Callables the exporter reads at scrape time; the service fills them in."""

    dns_stats: Callable[[], dict[str, int]]
    cache_sizes: Callable[[], dict[str, int]]
    index_height: Callable[[], int | None]
    not_ready: Callable[[], str | None]
    profile_stats: Callable[[], dict[str, int]]
    started_at: float = field(default_factory=time.time)
    upstream_stats: Callable[[], dict[str, float]] = dict  # exchanges, failures, seconds (dns/forwarder.py)
    # The running server's self-description for `bns-resolver status` (GET /status.json).
    server_status: Callable[[], dict[str, Any]] | None = None


def render_metrics(source: MetricsSource) -> str:
    samples: list[Sample] = []
    for key, value in sorted(source.dns_stats().items()):
        samples.append((f"bns_dns_{key}_total", "counter", f"DNS queries counted as {key}", {}, value))
    for cache, size in sorted(source.cache_sizes().items()):
        samples.append(("bns_dns_cache_entries", "gauge", "entries in each answer cache", {"cache": cache}, size))
    height = source.index_height()
    if height is not None:
        samples.append(("bns_index_height", "gauge", "block height the index reflects", {}, height))
    samples.append(("bns_index_ready", "gauge", "1 when BNS names are answered, 0 while not ready", {},
                    0 if source.not_ready() else 1))
    for key, value in sorted(source.profile_stats().items()):
        samples.append((f"bns_web_profile_{key}_total", "counter", f"profile storage {key}", {}, value))
    upstream = source.upstream_stats()
    if upstream:
        samples += [
            ("bns_upstream_exchanges_total", "counter", "queries sent upstream (distinct, in flight)", {},
             upstream["exchanges"]),
            ("bns_upstream_failures_total", "counter", "upstream exchanges no upstream answered", {},
             upstream["failures"]),
            ("bns_upstream_seconds_total", "counter", "seconds upstream exchanges took, in all", {},
             upstream["seconds"]),
        ]
    samples.append(("bns_process_start_time_seconds", "gauge", "Unix time the server started", {},
                    source.started_at))
    return _exposition(samples)


def _exposition(samples: Iterable[Sample]) -> str:
    lines: list[str] = []
    described: set[str] = set()
    for name, kind, help_text, labels, value in samples:
        if name not in described:
            described.add(name)
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
    return "\n".join(lines) + "\n"
