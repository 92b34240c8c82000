"""The compile's subdomain scan, split over processes.

Building a subdomain's entries is Python work (decoding, checking and shaping its zone file),
so one process compiles 2.2 million subdomains on one core. Here the subdomains are cut into
fqn ranges, each range is read and built by a process of its own (its own connection to the
index), and the entries come back in batches for the one LMDB writer. An LMDB store holds its
keys sorted, so the order the batches arrive in does not change a byte of the result.

Producers are started with `spawn` (no inherited connections or reactor), send through a
bounded queue (memory stays a few batches per producer) and stop when their parent is gone
(`spawned.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, fields
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from bns_resolver import spawned
from bns_resolver.answers.nodes import Item
from bns_resolver.answers.store import IndexState
from bns_resolver.errors import GatewayError
from bns_resolver.index.lookup import IndexReader

if TYPE_CHECKING:
    from bns_resolver.answers.compile import CompileReport

log = logging.getLogger(__name__)

BATCH_ITEMS = 50_000  # entries per message: large enough to amortise pickling, small enough for memory
QUEUED_PER_PRODUCER = 2
# Below this many subdomains the processes' start-up (imports) costs more than they save.
PARALLEL_MIN_SUBDOMAINS = 100_000


class CompileWorkerError(GatewayError):
    """A process compiling a range of subdomains failed or died."""


def subdomain_items(reader: IndexReader, state: IndexState, domains: frozenset[str], report: CompileReport,
                    processes: int) -> Iterator[list[Item]]:
    """Every subdomain's entries, built by `processes` processes over fqn ranges; their counts go
    into `report`. Raises CompileWorkerError when a producer fails. Close the iterator when not
    reading it to the end (its producers stop then)."""
    points = reader.subdomain_split_points(processes)
    ranges = list(zip([None, *points], [*points, None], strict=True))
    url = reader.url()
    channel, producers = spawned.start(
        _produce, [(number, url, state, domains, low, high) for number, (low, high) in enumerate(ranges)],
        [f"bns-compile-{number}" for number in range(len(ranges))], QUEUED_PER_PRODUCER * len(ranges))
    log.info("compiling the subdomains' entries in %d processes", len(producers))
    try:
        yield from _collect(channel, producers, report)
    finally:
        spawned.stop(producers, channel)


def _collect(channel: Any, producers: list[BaseProcess], report: CompileReport) -> Iterator[list[Item]]:
    finished: set[int] = set()
    try:
        for number, kind, payload in spawned.receive(channel, producers, finished):
            if kind == "items":
                yield payload
            elif kind == "done":
                finished.add(number)
                for field in fields(report):
                    if field.name != "seconds":
                        setattr(report, field.name, getattr(report, field.name) + payload[field.name])
            else:
                raise CompileWorkerError(f"compile process {number} failed: {payload}")
    except spawned.HelperDied as died:
        raise CompileWorkerError(f"compile process {died.number} exited (code {died.exitcode}) "
                                 "before sending all its entries") from None


def _produce(number: int, url: str, state: IndexState, domains: frozenset[str], low: str | None, high: str | None,
             channel: Any, parent: int) -> None:
    """A producer process: build the entries of subdomains in [low, high) and send them in batches."""
    spawned.become_helper(parent)
    from bns_resolver.answers.compile import Bindings, CompileReport, with_nodes_key
    from bns_resolver.answers.shapes import SubdomainShapes
    from bns_resolver.index.db import open_index

    try:
        engine = open_index(url, migrate=False)
        reader = IndexReader(engine)
        report = CompileReport()
        bindings = Bindings(reader, state, domains, report, SubdomainShapes(with_nodes_key))
        batch: list[Item] = []
        for subdomain, content in reader.subdomains_with_zonefiles(low, high):
            batch += bindings.subdomain_items(subdomain, content)
            if len(batch) >= BATCH_ITEMS:
                spawned.send(channel, (number, "items", batch))
                batch = []
        spawned.send(channel, (number, "items", batch))
        engine.dispose()
        spawned.send(channel, (number, "done", asdict(report)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        spawned.send(channel, (number, "error", f"{type(exc).__name__}: {exc}"))
