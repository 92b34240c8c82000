"""The compiled store answers exactly what the slow path (authority + dnslib) answers.

Every real zone file of the embedded snapshot is bound to its $ORIGIN name; each of
its owner names, empty non-terminals, `www.` and a name under it that does not
exist is asked A, AAAA, URI, TXT, MX, CNAME and ANY through two gateways over the
same index, one with the store. Lower-case queries must get identical bytes.
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import dns.message
import pytest

from bns_resolver.answers.nodes import verified_zone, zone_nodes
from bns_resolver.index.db import open_index
from bns_resolver.index.snapshot import EMBEDDED_DIR, ExportFiles, import_export
from tests.answers.pair import Ask, GatewayPair
from tests.support.dns_fixtures import IndexSpec, NameSpec, make_index
from tests.support.zonefile_data import read_pairs

ISSUE_QTYPES = ("A", "AAAA", "URI", "TXT", "MX", "CNAME", "ANY")
_ORIGIN = re.compile(rb"\$ORIGIN\s+(\S+)")


def _embedded_names() -> list[tuple[str, str, bytes]]:
    """(name, zone-file hash, zone file) for every zone file of the embedded snapshot."""
    pairs = read_pairs(EMBEDDED_DIR / "name_zonefiles.txt")
    found = []
    for zonefile_hash, zonefile in pairs.items():
        match = _ORIGIN.search(zonefile)
        assert match, zonefile_hash
        found.append((match.group(1).decode().lower().rstrip("."), zonefile_hash, zonefile))
    return sorted(found)


@pytest.fixture(scope="module")
def genesis_pair(tmp_path_factory: pytest.TempPathFactory) -> GatewayPair:
    names = _embedded_names()
    assert len(names) == 1631
    namespaces = tuple(sorted({name.rsplit(".", 1)[1] for name, _, _ in names}))
    data = tmp_path_factory.mktemp("genesis")
    engine = make_index(data, IndexSpec(names=[NameSpec(n, z) for n, _, z in names], namespaces=namespaces))
    pair = GatewayPair(engine, data / "answers")
    yield pair
    pair.close()


def _names_to_ask(name: str, zonefile_hash: str, zonefile: bytes) -> list[str]:
    nodes = zone_nodes(verified_zone(name, zonefile_hash, zonefile))
    return [*nodes, "www." + name, "nx-q7." + name, "a.b." + name]


def _assert_same(pair: GatewayPair, ask: Ask, query_id: int = 0x1234) -> None:
    fast, slow, from_store = pair.ask(ask, query_id)
    assert from_store, f"{ask}: the store did not answer"
    assert fast == slow, f"{ask}:\nstore {fast!r}\nslow  {slow!r}"


def test_every_embedded_zone_file_answers_as_the_slow_path(genesis_pair: GatewayPair) -> None:
    asked = 0
    for name, zonefile_hash, zonefile in _embedded_names():
        for qname in _names_to_ask(name, zonefile_hash, zonefile):
            for rdtype in ISSUE_QTYPES:
                _assert_same(genesis_pair, Ask(qname, rdtype))
                asked += 1
    assert asked > 1631 * 4 * len(ISSUE_QTYPES)


def test_random_names_under_each_namespace_are_nxdomain_from_the_store(genesis_pair: GatewayPair) -> None:
    rng = random.Random(7)
    for namespace in sorted(genesis_pair.fast.authority.namespaces):
        for _ in range(50):
            label = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-") for _ in range(rng.randint(1, 30)))
            ask = Ask(f"nx{label}.{namespace}", rng.choice(ISSUE_QTYPES))
            fast, slow, from_store = genesis_pair.ask(ask)
            assert from_store and fast == slow, ask
            assert isinstance(fast, bytes) and fast[3] & 0x0F == 3  # NXDOMAIN


VARIANTS = (
    {"edns": 1232, "do": True},
    {"edns": 4096},
    {"edns": 512},
    {"tcp": True},
    {"edns": 1232, "tcp": True},
    {"web": "192.0.2.80"},
    {"web": "2001:db8::80", "edns": 1232},
)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={v[k]}" for k in v))
def test_edns_transport_and_web_variants_match(genesis_pair: GatewayPair, variant: dict[str, object]) -> None:
    """EDNS mirrored (size, DO), TC over UDP, TCP, flags copied, web-gateway addresses: every 25th name."""
    for index, (name, zonefile_hash, zonefile) in enumerate(_embedded_names()[::25]):
        for qname in _names_to_ask(name, zonefile_hash, zonefile):
            for rdtype in ISSUE_QTYPES:
                _assert_same(genesis_pair, Ask(qname, rdtype, **variant), query_id=0x4000 + index)  # type: ignore[arg-type]


def test_mixed_case_queries_get_the_same_records(genesis_pair: GatewayPair) -> None:
    """With 0x20 mixed case, dnslib compresses less: the records, not the bytes, must agree."""
    for name, zonefile_hash, zonefile in _embedded_names()[::40]:
        for qname in _names_to_ask(name, zonefile_hash, zonefile):
            mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(qname))
            for rdtype in ISSUE_QTYPES:
                fast, slow, from_store = genesis_pair.ask(Ask(mixed, rdtype, edns=1232))
                assert from_store
                fast_msg, slow_msg = dns.message.from_wire(fast), dns.message.from_wire(slow)  # type: ignore[arg-type]
                assert fast_msg == slow_msg and fast_msg.flags == slow_msg.flags, mixed
                assert fast_msg.question[0].name.to_text() == mixed + "."


def test_every_embedded_subdomain_answers_as_the_slow_path(tmp_path: Path) -> None:
    """The embedded export (12 names, 50 subdomains of id.blockstack): subdomains own their subtrees."""
    engine = open_index(f"sqlite:///{tmp_path / 'index.sqlite'}")
    import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    pair = GatewayPair(engine, tmp_path / "answers")
    try:
        subdomains = read_pairs(EMBEDDED_DIR / "subdomain_zonefiles.txt")
        rows = list(csv.DictReader((EMBEDDED_DIR / "subdomains.csv").open()))
        assert len(rows) == 50
        for row in rows:
            fqn = row["fully_qualified_subdomain"]
            zone = verified_zone(fqn, row["zonefile_hash"], subdomains[row["zonefile_hash"]])
            for qname in [*zone_nodes(zone), "www." + fqn, "nx." + fqn]:
                for rdtype in ISSUE_QTYPES:
                    _assert_same(pair, Ask(qname, rdtype))
                    _assert_same(pair, Ask(qname, rdtype, web="192.0.2.80"))
        for qname in ("blockstack", "id.blockstack", "www.id.blockstack", "nobody.id.blockstack", "a.b.id.blockstack"):
            fast, slow, _ = pair.ask(Ask(qname, "A"))
            assert fast == slow, qname
    finally:
        pair.close()
