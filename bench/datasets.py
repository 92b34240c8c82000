"""The big data sets `run_dns_bench.py` measures: what each server loads, and which names to ask.

Two kinds: the 300,000-name synthetic index of `synth_index.py` (SQLite written directly),
and the synthetic BNS v1 export of `synth_export.py` at the real export's size (2,000
names, 2,200,000 subdomains), loaded the way a user loads the real one: `bns-resolver
import-snapshot`. Unbound gets the same records as `local-data:` lines in a file of their
own (included by its config), written once and reused: at 2.2 M names they would not fit
comfortably in one config string.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import synth_export
import synth_index

from bns_resolver.answers.store import open_fresh, store_root
from bns_resolver.index.db import open_index
from bns_resolver.index.lookup import IndexReader

SEED = 20261205
EXPORT_FORMAT = 1  # bump when the local-data file or the sampling changes


@dataclass(frozen=True)
class Dataset:
    """A data dir for ours, the same records for Unbound, and names to query."""

    label: str  # "300,000-name index", "2.2 M-name export"
    data_dir: Path
    local_data: Path  # Unbound `local-data:` lines, one a line
    static_zones: tuple[str, ...]  # BNS-only namespaces: NXDOMAIN for what local-data lacks
    transparent_zones: tuple[str, ...]  # namespaces shared with ICANN
    probe: str  # a name with a URI record, to tell a server is up
    nx_parent: str  # a served name or namespace: (c′) asks random names under it
    size: int  # names and subdomains served
    export_dir: Path | None = None  # the export's files, for a data set loaded from one


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    """Written beside and renamed, so a cut-short run never leaves half a file to reuse."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", buffering=1 << 20) as out:
        out.writelines(lines)
    partial.replace(path)
    return path


# --- the synthetic index (synth_index.py) -----------------------------------------------------

def synth_index_dataset(out_dir: Path, names: int) -> tuple[Dataset, str]:
    data_dir, how = synth_index.ensure_index(out_dir, names)
    local_data = data_dir / "unbound-local-data.conf"
    if not local_data.exists() or local_data.stat().st_mtime < (data_dir / "index.sqlite").stat().st_mtime:
        write_lines(local_data, synth_index.unbound_local_data(names))
    dataset = Dataset(f"{names:,}-name index", data_dir, local_data, (synth_index.NAMESPACE,), (),
                      synth_index.query_name(names - 1), synth_index.NAMESPACE, names)
    return dataset, how


# --- the synthetic export (synth_export.py) ---------------------------------------------------

NX_PARENT = "id.blockstack"  # the registrar that holds most subdomains (86 %), in a BNS-only namespace
SHARED_NAMESPACES = ("id",)  # also Indonesia's ccTLD


def export_dataset(work_dir: Path, sizes: synth_export.Sizes) -> tuple[Dataset, str]:
    """The export under work_dir/export, imported into work_dir/data; each step done once (niced)."""
    export_dir, data_dir = work_dir / "export", work_dir / "data"
    local_data = work_dir / "unbound-local-data.conf"
    wanted = json.dumps({"names": sizes.names, "subdomains": sizes.subdomains, "seed": sizes.seed,
                         "format": EXPORT_FORMAT})
    steps = [
        ("export", lambda: _run_niced([synth_export.__file__, str(export_dir), "--names", str(sizes.names),
                                       "--subdomains", str(sizes.subdomains), "--seed", str(sizes.seed)])),
        ("import", lambda: _import_fresh(export_dir, data_dir)),
        ("local-data", lambda: write_lines(local_data, export_local_data(export_dir))),
    ]
    done: list[str] = []
    for step, run in steps:
        marker = work_dir / f"{step}.done"
        if done or not marker.exists() or marker.read_text() != wanted:  # a step redone redoes the later ones
            run()
            marker.write_text(wanted)
            done.append(step)
    namespaces = sorted(ns for ns, *_rest in synth_export.NAMESPACES)
    dataset = Dataset(f"{sizes.names + sizes.subdomains:,}-name export", data_dir, local_data,
                      tuple(ns for ns in namespaces if ns not in SHARED_NAMESPACES), SHARED_NAMESPACES,
                      f"_http._tcp.{next(export_names(export_dir))}", NX_PARENT, sizes.names + sizes.subdomains,
                      export_dir)
    return dataset, ("made: " + ", ".join(done)) if done else "cached"


def _import_fresh(export_dir: Path, data_dir: Path) -> None:
    """import-snapshot into an empty data dir (a store compiled from an older import goes with it)."""
    shutil.rmtree(data_dir, ignore_errors=True)
    _run_niced(["-m", "bns_resolver.cli", "import-snapshot", str(export_dir), "--data-dir", str(data_dir)])


def _run_niced(argv: list[str]) -> None:
    """Preparation is not measured: it yields the CPU to whatever is."""
    print(f"[bench] {' '.join(argv)}", file=sys.stderr, flush=True)
    subprocess.run(["nice", "-n", "19", sys.executable, *argv], check=True, stdout=sys.stderr)


def _chainstate_names(export_dir: Path) -> Iterator[list[str]]:
    """The NAMES rows of chainstate.txt: name, address, zone-file hash."""
    with (export_dir / "chainstate.txt").open() as chainstate:
        for line in chainstate:
            if line.rstrip() == "-----BEGIN NAMES-----":
                break
        next(chainstate)  # the column header
        for line in chainstate:
            if line.startswith("-----"):
                return
            yield line.rstrip("\n").split(",")


def export_names(export_dir: Path) -> Iterator[str]:
    """Every on-chain name, then every subdomain, in file order."""
    for row in _chainstate_names(export_dir):
        yield row[0]
    with (export_dir / "subdomains.csv").open(newline="") as rows:
        for record in csv.DictReader(rows):
            yield record["fully_qualified_subdomain"]


def export_queries(export_dir: Path, size: int, distinct: int) -> list[str]:
    """`distinct` query names (`_http._tcp.<name>`: every zone file has that URI), in a random order."""
    rng = random.Random(SEED)
    wanted = set(rng.sample(range(size), distinct))
    picked = [name for i, name in enumerate(export_names(export_dir)) if i in wanted]
    rng.shuffle(picked)
    return [f"_http._tcp.{name}" for name in picked]


def export_local_data(export_dir: Path) -> Iterator[str]:
    """Unbound lines for the records of every name's and subdomain's zone file.

    name_zonefiles.txt also holds the registrars' batch zone files, which no name points at.
    """
    current = {row[2] for row in _chainstate_names(export_dir)}
    for filename, keep in (("name_zonefiles.txt", current), ("subdomain_zonefiles.txt", None)):
        with (export_dir / filename).open() as pairs:
            for digest in pairs:
                zonefile = next(pairs)
                if keep is None or digest.rstrip("\n") in keep:
                    yield from zonefile_local_data(zonefile.rstrip("\n").replace("\\n", "\n"))


def zonefile_local_data(text: str) -> Iterator[str]:
    """The records of one zone file as `local-data:` lines: the simple form the generator writes.

    Owners are relative to `$ORIGIN` (`@` is the origin), the class is optional, and every
    record takes `$TTL`; a record whose text holds a single quote is left out (Unbound's
    quoting), as `queryfiles.discover_bns_answers` does.
    """
    origin, ttl = "", 3600
    for line in text.splitlines():
        words = line.split(None, 1)
        if not words or line.startswith(";"):
            continue
        if words[0] == "$ORIGIN":
            origin = words[1].strip().rstrip(".")
        elif words[0] == "$TTL":
            ttl = int(words[1])
        elif len(words) == 2 and "'" not in line:
            owner = origin if words[0] == "@" else f"{words[0]}.{origin}"
            rest = words[1].split(None, 1)
            record = rest[1] if rest[0].upper() == "IN" else words[1]
            yield f"local-data: '{owner}. {ttl} IN {record.strip()}'\n"


# --- what both servers are asked ---------------------------------------------------------------

def dataset_queries(dataset: Dataset, distinct: int) -> list[str]:
    """`distinct` different query names with a URI record, in a random order."""
    if distinct > dataset.size:
        raise ValueError(f"--distinct {distinct:,} is more than the {dataset.size:,} names of the {dataset.label}")
    if dataset.export_dir is None:
        picks = random.Random(SEED).sample(range(dataset.size), distinct)
        return [synth_index.query_name(i) for i in picks]
    return export_queries(dataset.export_dir, dataset.size, distinct)


def check_same_answers(ours_port: int, unbound_port: int, names: list[str]) -> None:
    """Both servers answer each name with the same URI records (TTL included), or the run stops."""
    for name in names:
        answers = []
        for port in (ours_port, unbound_port):
            reply = dns.query.udp(dns.message.make_query(name, dns.rdatatype.URI), "127.0.0.1", port=port,
                                  timeout=5)
            answers.append(sorted(line for rrset in reply.answer for line in rrset.to_text().splitlines()))
        if not answers[0] or answers[0] != answers[1]:
            raise RuntimeError(f"{name}: ours answers {answers[0]}, Unbound {answers[1]}: not the same data")


def store_is_current(data_dir: Path) -> bool:
    """Whether `serve` would find the answer store compiled from the index as it is now."""
    engine = open_index(f"sqlite:///{data_dir / 'index.sqlite'}")
    try:
        store = open_fresh(store_root(data_dir), IndexReader(engine))
        if store is None:
            return False
        store.close()
        return True
    finally:
        engine.dispose()
