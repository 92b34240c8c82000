"""The 172 real subdomains carried in genesis zone files, indexed from those files and served over DNS."""

from __future__ import annotations

import csv
import json
import socket
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype

from bns_resolver.zonefiles.parse import parse_zonefile
from bns_resolver.zonefiles.subdomain_index import process_all_subdomains
from tests.support.dns_fixtures import (
    IndexSpec,
    NameSpec,
    ServerProcess,
    ask_uri,
    bns_only_config,
    make_index,
)
from tests.support.zonefile_data import read_pairs


def test_every_embedded_subdomain_answers_its_uri_records(tmp_path: Path, genesis_dir: Path) -> None:
    """Parents' TXT records → verified subdomain rows → each subdomain's own URI records over DNS."""
    rows = [json.loads(line) for line in (genesis_dir / "derived" / "zonefiles.jsonl").open()]
    namespaces = tuple(sorted({row["namespace"] for row in rows}))
    engine = make_index(tmp_path / "data", IndexSpec(
        names=[NameSpec(row["name"], row["zonefile"].encode()) for row in rows], namespaces=namespaces))
    report = process_all_subdomains(engine, first_block=0)
    expected = list(csv.DictReader((genesis_dir / "derived" / "genesis_subdomains.csv").open()))
    assert len(expected) == 172 and report.accepted >= 172
    decoded = read_pairs(genesis_dir / "derived" / "genesis_subdomain_zonefiles.txt")
    server = ServerProcess(tmp_path / "data", config=bns_only_config(namespaces)).start()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(3)
        checked = 0
        for row in expected:
            fqn = row["fully_qualified_subdomain"]
            zonefile = decoded[row["subdomain_zonefile_hash"]]
            for record in parse_zonefile(zonefile, fqn).records:
                if record.rdtype == dns.rdatatype.URI:
                    assert record.rdata.target.decode() in ask_uri(sock, server.port, record.owner), fqn  # type: ignore[attr-defined]
                    checked += 1
        assert checked >= 172
    finally:
        server.stop()



def test_every_export_subdomain_answers_over_dns(tmp_path: Path) -> None:
    """All 50 subdomains of the embedded export answer their URI record from their verified zone file."""
    from bns_resolver.index.snapshot import EMBEDDED_DIR

    rows = list(csv.DictReader((EMBEDDED_DIR / "subdomains.csv").open()))
    zonefiles = read_pairs(EMBEDDED_DIR / "subdomain_zonefiles.txt")
    assert len(rows) == 50
    server = ServerProcess(tmp_path / "data", config="[namespaces]\nicann_tlds = { blockstack = false }\n").start()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(3)
        for row in rows:
            fqn = row["fully_qualified_subdomain"]
            uris = [r for r in parse_zonefile(zonefiles[row["zonefile_hash"]], fqn).records
                    if r.rdtype == dns.rdatatype.URI]
            assert uris, fqn
            for record in uris:
                assert record.rdata.target.decode() in ask_uri(sock, server.port, record.owner), fqn  # type: ignore[attr-defined]
    finally:
        server.stop()
