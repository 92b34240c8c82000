"""dns/zones.py: a zone file is used only when it verifies against its value hash, and parsed once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from bns_resolver.dns.zones import ZoneCache
from bns_resolver.errors import (
    EDE_INVALID_DATA,
    EDE_NO_REACHABLE_AUTHORITY,
    GatewayError,
    ZoneUnavailable,
)
from bns_resolver.hashing import hash160_hex
from bns_resolver.index.lookup import IndexReader
from tests.support.dns_fixtures import IndexSpec, NameSpec, _store_zonefile, make_index

ALICE = b"$ORIGIN alice.id\n@ A 192.0.2.1\nwww CNAME @\n_http._tcp URI 10 1 \"https://gaia.example/alice\"\n"
BOB = b"@ TXT \"hello\"\n"


class CountingReader(IndexReader):
    """The real reader, counting the zone-file reads that reach the database."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.reads: list[str] = []

    def zonefile(self, zonefile_hash: str) -> bytes | None:
        self.reads.append(zonefile_hash)
        return super().zonefile(zonefile_hash)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return make_index(tmp_path, IndexSpec(names=[NameSpec("alice.id", ALICE), NameSpec("bob.id", BOB)]))


def test_a_verified_zone_is_parsed_once_and_read_once(engine: Engine) -> None:
    reader = CountingReader(engine)
    zones = ZoneCache(reader)
    zone = zones.get("alice.id", hash160_hex(ALICE))
    assert (zone.name, zone.value_hash) == ("alice.id", hash160_hex(ALICE))
    owners = zone.zone.owners()
    assert sorted(owners) == ["_http._tcp.alice.id", "alice.id", "www.alice.id"]
    assert owners["alice.id"][0].rdata.to_wire() == bytes([192, 0, 2, 1])
    assert zones.get("alice.id", hash160_hex(ALICE)) is zone
    assert reader.reads == [hash160_hex(ALICE)]


def test_a_zone_file_not_held_yet_is_unavailable_and_not_remembered(engine: Engine) -> None:
    """EDE 22 while the file is missing: the fetcher may bring it any moment, so the next query looks again."""
    content = b"@ A 198.51.100.7\n"
    value_hash = hash160_hex(content)
    zones = ZoneCache(IndexReader(engine))
    with pytest.raises(ZoneUnavailable) as missing:
        zones.get("carol.id", value_hash)
    assert missing.value.info_code == EDE_NO_REACHABLE_AUTHORITY
    assert value_hash in missing.value.reason and "carol.id" in missing.value.reason
    with engine.begin() as conn:
        _store_zonefile(conn, value_hash, content)
    assert zones.get("carol.id", value_hash).zone.records[0].rdata.to_wire() == bytes([198, 51, 100, 7])


def test_a_zone_file_that_does_not_verify_is_invalid_data_and_remembered(engine: Engine) -> None:
    """Bytes whose hash160 is not the value hash never become records; the verdict is final."""
    wrong_hash = hash160_hex(b"something else")
    with engine.begin() as conn:
        _store_zonefile(conn, wrong_hash, ALICE)  # stored under a hash it does not have
    reader = CountingReader(engine)
    zones = ZoneCache(reader)
    for _ in range(2):
        with pytest.raises(ZoneUnavailable) as mismatch:
            zones.get("alice.id", wrong_hash)
        assert mismatch.value.info_code == EDE_INVALID_DATA
        assert "hash mismatch" in mismatch.value.reason
    assert reader.reads == [wrong_hash]


def test_an_unparsable_zone_file_is_invalid_data(engine: Engine) -> None:
    content = b"{\"name\": \"a legacy JSON profile\"}"
    with engine.begin() as conn:
        _store_zonefile(conn, hash160_hex(content), content)
    with pytest.raises(ZoneUnavailable) as unparsable:
        ZoneCache(IndexReader(engine)).get("dave.id", hash160_hex(content))
    assert unparsable.value.info_code == EDE_INVALID_DATA and "unparsable" in unparsable.value.reason
    assert isinstance(unparsable.value, GatewayError)  # under the project's error root


def test_the_cache_is_bounded_and_keeps_the_recently_used(engine: Engine) -> None:
    reader = CountingReader(engine)
    zones = ZoneCache(reader, max_entries=1)
    zones.get("alice.id", hash160_hex(ALICE))
    zones.get("bob.id", hash160_hex(BOB))  # evicts alice
    zones.get("bob.id", hash160_hex(BOB))
    zones.get("alice.id", hash160_hex(ALICE))
    assert reader.reads == [hash160_hex(ALICE), hash160_hex(BOB), hash160_hex(ALICE)]
    zones.clear()
    zones.get("alice.id", hash160_hex(ALICE))
    assert len(reader.reads) == 4
