"""Fuzz targets: one function per hostile-input surface, each taking raw bytes.

A target returns normally when the input was handled (answered, or rejected with the module's
own error); anything else it raises is a bug. The functions need no atheris, so the regression
corpus in tests/fuzz/corpus/<target>/ is replayed by plain pytest (test_corpus.py), and
bench/fuzz/run.py drives the same functions under atheris for the long campaigns.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

from twisted.internet import defer
from twisted.python.failure import Failure

from bns_resolver.answers.compile import compile_store
from bns_resolver.answers.native import NativeUdp
from bns_resolver.answers.respond import StoreAnswerer
from bns_resolver.answers.store import open_current
from bns_resolver.dns.authority import BnsAuthority
from bns_resolver.dns.forwarder import Forwarder
from bns_resolver.dns.gateway import Gateway
from bns_resolver.dns.policy import NamespacePolicy
from bns_resolver.dns.zones import ZoneCache
from bns_resolver.errors import IndexStoreError, SnapshotError, ZoneFileError
from bns_resolver.hashing import hash160
from bns_resolver.index.db import open_index
from bns_resolver.index.lookup import IndexReader
from bns_resolver.index.snapshot import EMBEDDED_DIR, ExportFiles, import_export
from bns_resolver.profiles.tokens import verify_profile_document
from bns_resolver.zonefiles.parse import parse_zonefile

# The scratch directory lives as long as the process: the gateway's index and store are read lazily.
_SCRATCH = tempfile.TemporaryDirectory(prefix="bns-fuzz-")
# An owner hash the fuzzer cannot hit by accident: a verdict must still be reached, not a crash.
_OWNER_HASH = hash160(b"fuzz owner")
# Export sections in one input, split on a separator a CSV or zone file rarely holds.
_SECTION_SEPARATOR = b"\n==\n"
_EXPORT_FILES = ("chainstate.txt", "name_zonefiles.txt", "subdomains.csv", "subdomain_zonefiles.txt",
                 "chainstate.txt.sha256", "subdomains.csv.sha256")


@cache
def _embedded_gateway() -> Gateway:
    """The full query pipeline (allow-list, replay table, compiled store, slow path) over the
    embedded snapshot's real names, with a web address so address synthesis runs too."""
    root = Path(_SCRATCH.name) / "query"
    root.mkdir(parents=True, exist_ok=True)
    engine = open_index(f"sqlite:///{root / 'index.sqlite'}")
    import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    compile_store(IndexReader(engine), root / "answers")
    store = open_current(root / "answers")
    assert store is not None
    reader = IndexReader(engine)
    authority = BnsAuthority(reader, ZoneCache(reader))
    policy = NamespacePolicy(configured_shared={ns: False for ns in authority.namespaces})
    gateway = Gateway(authority, Forwarder([]), policy=policy, web_address="192.0.2.80", cache_entries=256)
    gateway.store = StoreAnswerer(authority, policy, store)
    return gateway


def query_path(data: bytes) -> None:
    """A datagram (or TCP message) from an allowed client, through everything the server runs."""
    gateway = _embedded_gateway()
    for tcp in (False, True):
        _check_reply(data, gateway.handle(data, "127.0.0.1", tcp=tcp))
    if len(gateway.forwarded) > 200:  # keep the campaign's memory flat
        gateway.index_changed()


def native_answer(data: bytes) -> None:
    """A datagram for the C answerer (answers/_native.c): it must decline or give the Python store
    path's exact bytes, and never crash (the one surface here in C; atheris cannot instrument it,
    so the campaign relies on the comparison, and on bench/fuzz/native_sanitized.py under ASan)."""
    gateway = _embedded_gateway()
    udp = _native_answerer(gateway)
    if udp is None:
        return  # built without the extension: nothing in C to fuzz
    gateway.replay.clear()
    mine = udp.answer(data)
    gateway.replay.clear()
    # Python's answer always, so its coverage guides the campaign (the C code is not instrumented).
    theirs = gateway.store_answer_udp(data)
    if mine is not None and mine != theirs:
        raise AssertionError(f"the C answerer's reply differs from the Python store path's: {mine!r:.120}")


@cache
def _native_answerer(gateway: Gateway) -> NativeUdp | None:
    return gateway.native_store_udp()


def _check_reply(query: bytes, answer: bytes | defer.Deferred[bytes] | None) -> None:
    results: list[object] = []
    if isinstance(answer, defer.Deferred):
        answer.addBoth(results.append)
        if not results:  # Forwarder([]) has no upstream to wait for: it must settle at once
            raise AssertionError("forwarded query left pending with no upstream")
        answer = results[0]  # type: ignore[assignment]
    if isinstance(answer, Failure):
        answer.raiseException()
    if answer is None:
        return
    if not isinstance(answer, bytes) or len(answer) < 12 or answer[:2] != query[:2]:
        raise AssertionError(f"reply is not a DNS message for this query: {answer!r:.80}")


def zonefile(data: bytes) -> None:
    """Zone-file bytes as any untrusted mirror could serve them for a name."""
    for name in ("alice.id", "mymansgotabeefy1.id.blockstack"):
        try:
            parse_zonefile(data, name)
        except ZoneFileError:
            pass


def profile_token(data: bytes) -> None:
    """A profile.json body from Gaia storage: JSON, a token list, a compact JWT, a signature."""
    verdict = verify_profile_document(data, _OWNER_HASH)
    if verdict.verified:
        raise AssertionError("a fuzzed profile verified against a key nobody holds")
    if not verdict.reason:
        raise AssertionError("an unverified profile carries no reason")


@cache
def _import_engine():  # type: ignore[no-untyped-def]
    root = Path(_SCRATCH.name) / "import"
    root.mkdir(parents=True, exist_ok=True)
    return open_index(f"sqlite:///{root / 'index.sqlite'}")


def snapshot_import(data: bytes) -> None:
    """An export (chainstate.txt, zone-file lists, subdomains.csv) from a download or a folder."""
    parts = data.split(_SECTION_SEPARATOR)
    contents = {name: part for name, part in zip(_EXPORT_FILES, parts)}
    try:
        import_export(_import_engine(), ExportFiles(contents, "fuzz-export"))
    except (SnapshotError, IndexStoreError):
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "query_path": query_path,
    "native_answer": native_answer,
    "zonefile": zonefile,
    "profile_token": profile_token,
    "snapshot_import": snapshot_import,
}
