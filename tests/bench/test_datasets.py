"""bench/datasets.py: Unbound gets exactly the records of the export's zone files, in a config it accepts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import datasets  # noqa: E402
import synth_export  # noqa: E402
import unbound_conf  # noqa: E402

NAMES, SUBDOMAINS = 12, 400


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synth") / "export"
    synth_export.generate(folder, synth_export.Sizes(NAMES, SUBDOMAINS, 5))
    return folder


Record = tuple[str, str, str]  # owner, type, rdata as dnspython writes them


def _records_of_zonefiles(export: Path) -> set[Record]:
    """Every record of every zone file a name or subdomain points at, read by dnspython."""
    current = {row[2] for row in datasets._chainstate_names(export)}
    found: set[Record] = set()
    for filename, keep in (("name_zonefiles.txt", current), ("subdomain_zonefiles.txt", None)):
        lines = (export / filename).read_text().splitlines()
        for digest, text in zip(lines[::2], lines[1::2]):
            if keep is not None and digest not in keep:
                continue
            zone = dns.zone.from_text(text.replace("\\n", "\n"), origin=dns.name.root, relativize=False,
                                      check_origin=False)  # `$ORIGIN x.id` is relative to the root
            for owner, rdataset in zone.iterate_rdatasets():
                found |= {(owner.to_text(), dns.rdatatype.to_text(rdataset.rdtype), rdata.to_text())
                          for rdata in rdataset}
    return found


def _records_of_local_data(lines: list[str]) -> set[Record]:
    found = set()
    for line in lines:
        text = line.strip().removeprefix("local-data: '").removesuffix("'")
        owner, ttl, rdclass, rdtype, rdata = text.split(None, 4)
        assert (ttl, rdclass) == ("3600", "IN")
        parsed = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), rdata)
        found.add((dns.name.from_text(owner).to_text(), rdtype, parsed.to_text()))
    return found


def test_local_data_holds_exactly_the_records_of_the_zone_files(export: Path) -> None:
    lines = list(datasets.export_local_data(export))
    assert _records_of_local_data(lines) == _records_of_zonefiles(export)
    assert len(lines) >= NAMES + SUBDOMAINS  # a URI for each, and some TXT and A besides


def test_export_names_are_every_name_then_every_subdomain(export: Path) -> None:
    names = list(datasets.export_names(export))
    assert len(names) == len(set(names)) == NAMES + SUBDOMAINS
    assert all(name.count(".") == 1 for name in names[:NAMES])
    assert all(name.count(".") >= 2 for name in names[NAMES:])


def test_queries_are_distinct_names_with_a_uri_record(export: Path) -> None:
    queries = datasets.export_queries(export, NAMES + SUBDOMAINS, 100)
    uri_owners = {owner for owner, rdtype, _ in _records_of_zonefiles(export) if rdtype == "URI"}
    assert len(set(queries)) == 100
    assert {f"{query}." for query in queries} <= uri_owners


@pytest.mark.skipif(shutil.which("unbound-checkconf") is None, reason="needs unbound-checkconf (Debian: unbound)")
def test_unbound_accepts_the_config_including_the_local_data(export: Path, tmp_path: Path) -> None:
    local_data = datasets.write_lines(tmp_path / "local-data.conf", datasets.export_local_data(export))
    conf = tmp_path / "unbound.conf"
    conf.write_text(unbound_conf.comparison_conf(25999, 25998, tmp_path, static_zones=["blockstack"],
                                                 transparent_zones=["id"], local_data=[],
                                                 local_data_file=local_data))
    checked = subprocess.run(["unbound-checkconf", str(conf)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
