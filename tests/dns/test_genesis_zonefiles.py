"""All 1,631 real zone files of the final BNS v1 state, parsed and served over real DNS."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype

from bns_resolver.zonefiles.parse import parse_zonefile
from tests.support.dns_fixtures import (
    IndexSpec,
    NameSpec,
    ServerProcess,
    ask_uri,
    bns_only_config,
    make_index,
)


def _genesis_names(genesis_dir: Path) -> list[tuple[str, bytes]]:
    rows = [json.loads(line) for line in (genesis_dir / "derived" / "zonefiles.jsonl").open()]
    return [(row["name"], row["zonefile"].encode()) for row in rows]


def test_every_genesis_zone_file_answers_its_uri_records(tmp_path: Path, genesis_dir: Path) -> None:
    """Each real zone file, bound to its $ORIGIN name, answers every URI record it holds."""
    names = _genesis_names(genesis_dir)
    assert len(names) == 1631
    namespaces = tuple(sorted({fqn.rsplit(".", 1)[1] for fqn, _ in names}))
    make_index(tmp_path / "data", IndexSpec(names=[NameSpec(f, z) for f, z in names], namespaces=namespaces))
    server = ServerProcess(tmp_path / "data", config=bns_only_config(namespaces)).start()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(3)
        answered = 0
        for fqn, zonefile in names:
            expected = _uri_targets(fqn, zonefile)
            for owner, targets in expected.items():
                assert ask_uri(sock, server.port, owner) == targets, f"{owner} in {fqn}"
            answered += 1
        assert answered == 1631
    finally:
        server.stop()


def _uri_targets(fqn: str, zonefile: bytes) -> dict[str, set[str]]:
    targets: dict[str, set[str]] = {}
    for record in parse_zonefile(zonefile, fqn).records:
        if record.rdtype == dns.rdatatype.URI:
            targets.setdefault(record.owner, set()).add(record.rdata.target.decode())  # type: ignore[attr-defined]
    assert targets, f"{fqn} has no URI record"
    return targets

