"""`bns-resolver compile`: the answer store rebuilt from the SQL index, crash-safely.

Each compile writes a new LMDB environment beside the old one and only then points
`current` at it (a symlink replaced atomically), so a compile killed at any moment
leaves the previous store serving. Which bindings exist follows
`BnsAuthority.binding_for` exactly (`Bindings`). Between compiles, `update.py`
rewrites the bindings the change feed names, with the same `Bindings`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Container, Generator
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path

import lmdb

from bns_resolver.answers import parallel
from bns_resolver.answers.format import FORMAT_VERSION, META_KEY, NODES_PREFIX, name_to_wire
from bns_resolver.answers.nodes import Item, binding_items
from bns_resolver.answers.parallel import PARALLEL_MIN_SUBDOMAINS
from bns_resolver.answers.shapes import SubdomainShapes
from bns_resolver.answers.store import CURRENT, IndexState, index_state
from bns_resolver.errors import GatewayError
from bns_resolver.index.lookup import IndexReader, NameRecord, SubdomainRecord

log = logging.getLogger(__name__)

ZERO_HASH = "0" * 40
PUTS_PER_TXN = 50_000  # keeps each write transaction well under LMDB's dirty-page limit
BUILD_MAP_SIZE = (1 << 38) if sys.maxsize > 2**32 else (1 << 30)  # address space only; the file grows


@dataclass
class CompileReport:
    names: int = 0
    subdomains: int = 0
    nodes: int = 0
    deferred: int = 0  # bindings left to the slow path: zone file not held yet
    servfail: int = 0  # bindings whose zone file does not verify or parse: SERVFAIL with EDE
    skipped: int = 0  # revoked or expired names, rows outside served namespaces, unusual names
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.names} names, {self.subdomains} subdomains, {self.nodes} owner names; "
                f"{self.deferred} waiting for zone files, {self.servfail} with unusable zone files, "
                f"{self.skipped} skipped; {self.seconds:.2f} s")


class CompileCancelled(GatewayError):
    """The compile was asked to stop (the server is stopping); the previous store stays current."""


def compile_store(reader: IndexReader, root: Path, *, processes: int = 1,
                  cancelled: Callable[[], bool] = lambda: False) -> tuple[Path, CompileReport]:
    """Build a new store from the index and make it current; returns its path. With `processes` > 1
    the subdomains are built by that many processes (parallel.py), when there are enough of them.
    `cancelled` is asked after each binding: when it says so, CompileCancelled is raised."""
    started = time.monotonic()
    state = index_state(reader)  # read first: a change during the scan then reads as stale
    root.mkdir(parents=True, exist_ok=True)
    build = root / f"build-{os.getpid()}-{time.time_ns()}"
    report = CompileReport()
    try:
        _build(build, reader, state, report, started, processes, cancelled)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    final = root / f"store-{time.time_ns()}"
    os.rename(build, final)
    _make_current(root, final)
    remove_old_stores(root, keep=final)
    log.info("answer store compiled at change %s: %s", state.seq, report.summary())
    return final, report


def _build(build: Path, reader: IndexReader, state: IndexState, report: CompileReport, started: float,
           processes: int, cancelled: Callable[[], bool]) -> None:
    env = lmdb.open(str(build), map_size=BUILD_MAP_SIZE, sync=False, metasync=False, readahead=False)
    try:
        with closing(_items(reader, state, report, processes)) as items:  # a failed write stops producers now
            _write(env, items, cancelled)
        report.seconds = round(time.monotonic() - started, 3)
        with env.begin(write=True) as txn:
            txn.put(META_KEY, json.dumps({"format": FORMAT_VERSION, **asdict(state),
                                          "report": asdict(report)}).encode())
        env.sync(True)
    finally:
        env.close()


def _write(env: lmdb.Environment, bindings: Generator[list[Item], None, None], cancelled: Callable[[], bool]) -> None:
    batch: list[Item] = []
    for items in bindings:
        if cancelled():
            raise CompileCancelled("the compile was stopped before it finished")
        batch += items
        if len(batch) >= PUTS_PER_TXN:
            _put_all(env, batch)
            batch = []
    _put_all(env, batch)


def _put_all(env: lmdb.Environment, batch: list[Item]) -> None:
    with env.begin(write=True) as txn:
        cursor = txn.cursor()
        cursor.putmulti(batch)


def _items(reader: IndexReader, state: IndexState, report: CompileReport,
           processes: int) -> Generator[list[Item], None, None]:
    """Each binding's entries, names first."""
    domains = reader.subdomain_domains()
    bindings = Bindings(reader, state, domains, report, SubdomainShapes(with_nodes_key))
    for name, content in reader.names_with_zonefiles():
        yield bindings.name_items(name, content)
    if processes > 1 and reader.subdomain_count() >= PARALLEL_MIN_SUBDOMAINS:
        yield from parallel.subdomain_items(reader, state, domains, report, processes)
        return
    for subdomain, content in reader.subdomains_with_zonefiles():
        yield bindings.subdomain_items(subdomain, content)


class Bindings:
    """Each binding's store entries, deciding which bindings exist as `BnsAuthority.binding_for`
    does: live names of served namespaces, and subdomains (of a served namespace, three labels,
    whose domain has subdomains), which take their subtree from the name's zone. Shared by the
    full compile and the incremental update (`update.py`), so both write the same bytes."""

    def __init__(self, reader: IndexReader, state: IndexState, domains: Container[str],
                 report: CompileReport, shapes: SubdomainShapes | None = None) -> None:
        self.reader, self.state, self.domains, self.report = reader, state, domains, report
        self.shapes = shapes  # a full compile's: most subdomain zone files share a few shapes
        self.namespaces = set(state.namespaces)

    def shadowed(self, node: str) -> bool:
        # binding_for: under a domain with subdomains, an existing subdomain owns its subtree.
        labels = node.split(".")
        return (len(labels) >= 3 and ".".join(labels[-2:]) in self.domains
                and self.reader.subdomain(".".join(labels[-3:])) is not None)

    def name_items(self, name: NameRecord, content: bytes | None) -> list[Item]:
        namespace = name.fqn.rsplit(".", 1)[-1]
        if namespace not in self.namespaces or name.revoked or _expired(name.expire_block, self.state):
            self.report.skipped += 1
            return []
        value_hash = "" if not name.value_hash or name.value_hash == ZERO_HASH else name.value_hash
        self.report.names += 1
        shadowed = self.shadowed if name.fqn in self.domains else None
        return _counted(self.report, name.fqn, binding_items(name.fqn, namespace, value_hash, content, shadowed))

    def subdomain_items(self, subdomain: SubdomainRecord, content: bytes | None) -> list[Item]:
        labels = subdomain.fqn.split(".")
        if len(labels) != 3 or labels[-1] not in self.namespaces or ".".join(labels[-2:]) not in self.domains:
            self.report.skipped += 1
            return []
        self.report.subdomains += 1
        shaped = None if self.shapes is None else \
            self.shapes.items(subdomain.fqn, labels[-1], subdomain.zonefile_hash, content)
        if shaped is not None:
            self.report.nodes += shaped[0]
            return shaped[1]
        return _counted(self.report, subdomain.fqn,
                        binding_items(subdomain.fqn, labels[-1], subdomain.zonefile_hash, content))


def _counted(report: CompileReport, fqn: str, outcome: tuple[str, list[Item]]) -> list[Item]:
    kind, items = outcome
    if kind == "defer":
        report.deferred += 1
    elif kind == "servfail":
        report.servfail += 1
    elif kind == "skip":
        report.skipped += 1
    report.nodes += len(items)
    return with_nodes_key(fqn, items)


def with_nodes_key(fqn: str, items: list[Item]) -> list[Item]:
    """The binding's entries plus the key listing its owner names beside the apex, if it has any."""
    if not items:
        return items
    apex = name_to_wire(fqn)
    others = [key for key, _ in items if key != apex]
    return [*items, (NODES_PREFIX + apex, b"".join(others))] if others else items


def _expired(expire_block: int | None, state: IndexState) -> bool:
    return expire_block is not None and state.height is not None and state.height >= expire_block


def _make_current(root: Path, target: Path) -> None:
    link = root / f"{CURRENT}.tmp-{os.getpid()}"
    link.unlink(missing_ok=True)
    os.symlink(target.name, link)
    os.replace(link, root / CURRENT)
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_old_stores(root: Path, *, keep: Path) -> None:
    """Drop superseded stores and builds of compiles that died (a server may still map an old one:
    its pages stay valid until it lets go)."""
    for path in root.iterdir():
        if path == keep or not path.is_dir() or path.is_symlink():
            continue
        if path.name.startswith("store-") or (path.name.startswith("build-") and not _alive(path.name)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(build_name: str) -> bool:
    try:
        pid = int(build_name.split("-")[1])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return pid != os.getpid()
