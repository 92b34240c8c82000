"""Bringing a compiled answer store up to the index, binding by binding, from the change feed.

The feed (`index/changes.py`) says which names changed since the store's sequence number.
Each changed name is one binding to rewrite: an on-chain name, or a subdomain and its
domain (whose zone gives up the subtree a new subdomain owns). A height that moved across
a name's expiry changes that name too. All of it happens in one LMDB write transaction:
the binding's old keys out (the apex, and the owner names its NODES_PREFIX key lists),
its new entries in (from `compile.Bindings`, so the bytes are exactly a full compile's:
zone files are checked against their hash before anything is written, as there), and the
store's metadata moved to the new sequence number. A reader sees all of it or none.

When the feed cannot say what changed (an import, a log trimmed past the store), when the
served namespaces changed, or when too much changed to be worth it, the caller compiles
the store whole instead (`UpdateResult.full_reason`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import lmdb

from bns_resolver.answers.compile import Bindings, CompileReport
from bns_resolver.answers.format import FORMAT_VERSION, META_KEY, NODES_PREFIX, is_plain_name, name_to_wire, \
    split_wire_names
from bns_resolver.answers.nodes import Item
from bns_resolver.answers.store import CompiledStore, IndexState, index_state
from bns_resolver.index.lookup import IndexReader

log = logging.getLogger(__name__)

MAX_BINDINGS = 50_000  # past this, one write transaction grows large: a full compile is as good


@dataclass
class UpdateResult:
    state: IndexState | None = None  # what the store speaks for now (None: unchanged)
    bindings: frozenset[str] = frozenset()  # names whose entries were rewritten (and all under them)
    full_reason: str = ""  # non-empty: not updated, compile the store whole, for this reason
    report: CompileReport = field(default_factory=CompileReport)
    seconds: float = 0.0


def affected_bindings(names: Iterable[str]) -> set[str]:
    """The bindings whose entries the changed names may change (see the module docstring)."""
    bindings: set[str] = set()
    for name in names:
        labels = name.split(".")
        if len(labels) == 2:
            bindings.add(name)
        elif len(labels) == 3:
            bindings.update((name, ".".join(labels[1:])))
    return bindings


def update_store(reader: IndexReader, store: CompiledStore) -> UpdateResult:
    """Apply what the index changed since the store's sequence number (from a worker thread)."""
    started = time.monotonic()
    current = store.state()
    target = index_state(reader)  # read first: a change after it waits for the next update
    if current is None:
        return UpdateResult(full_reason=f"the store's format is not {FORMAT_VERSION}")
    if target.namespaces != current.namespaces:
        return UpdateResult(full_reason="the served namespaces changed")
    if target == current:
        return UpdateResult()
    changes = reader.changes_since(current.seq, until=target.seq)
    if changes is not None and not changes.complete:
        return UpdateResult(full_reason=f"the change log no longer covers change {current.seq}")
    names = set(changes.names) if changes is not None else set()
    names |= reader.names_expiring_between(current.height, target.height)
    bindings = affected_bindings(names)
    if len(bindings) > MAX_BINDINGS:
        return UpdateResult(full_reason=f"{len(bindings)} names changed")
    result = UpdateResult(target, frozenset(bindings))
    items = _new_items(Bindings(reader, target, _Domains(reader), result.report), bindings)
    _write(store, bindings, items, target)
    result.seconds = round(time.monotonic() - started, 4)
    log.info("answer store updated to change %s: %d bindings rewritten in %.3f s", target.seq, len(bindings),
             result.seconds)
    return result


def _new_items(bindings: Bindings, fqns: set[str]) -> list[Item]:
    """Names before subdomains, as the full compile writes them."""
    reader = bindings.reader
    items: list[Item] = []
    for fqn in sorted(f for f in fqns if f.count(".") == 1):
        name = reader.name(fqn)
        if name is not None:
            content = reader.zonefile(name.value_hash) if name.value_hash else None
            items += bindings.name_items(name, content)
    for fqn in sorted(f for f in fqns if f.count(".") == 2):
        subdomain = reader.subdomain(fqn)
        if subdomain is not None:
            items += bindings.subdomain_items(subdomain, reader.zonefile(subdomain.zonefile_hash))
    return items


def _write(store: CompiledStore, fqns: set[str], items: list[Item], target: IndexState) -> None:
    meta = {**store.meta, "format": FORMAT_VERSION, **asdict(target),
            "updates": int(store.meta.get("updates", 0)) + 1}
    with store.env.begin(write=True) as txn:
        for fqn in fqns:
            _remove_binding(txn, fqn)
        for key, value in items:
            txn.put(key, value)
        txn.put(META_KEY, json.dumps(meta).encode())


def _remove_binding(txn: lmdb.Transaction, fqn: str) -> None:
    if not is_plain_name(fqn):
        return  # the store never held it (compile skips names it cannot key plainly)
    apex = name_to_wire(fqn)
    listed = txn.get(NODES_PREFIX + apex)
    if listed is not None:
        for key in split_wire_names(bytes(listed)):
            txn.delete(key)
        txn.delete(NODES_PREFIX + apex)
    txn.delete(apex)


class _Domains:
    """`name in domains` (the name has subdomains), asked of the index per name and remembered."""

    def __init__(self, reader: IndexReader) -> None:
        self._reader = reader
        self._known: dict[str, bool] = {}

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name not in self._known:
            self._known[name] = self._reader.has_subdomains(name)
        return self._known[name]
