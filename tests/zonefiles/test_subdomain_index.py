from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bns_resolver.hashing import hash160
from bns_resolver.index.schema import names, subdomain_history, subdomains
from bns_resolver.zonefiles.fetcher import fetch_round
from bns_resolver.zonefiles.sources import DirSource
from bns_resolver.zonefiles.store import get_zonefile, store_verified
from bns_resolver.zonefiles.subdomain_index import (
    process_all_subdomains,
    process_domain_subdomains,
    process_stored_zonefile,
)
from tests.support.zonefile_data import derived_zonefiles, genesis_dir, read_csv, read_pairs
from tests.support.zonefile_subdomains import (
    MiniChain,
    address,
    key,
    parent_zonefile,
    sub_zonefile,
    txt_line,
    update_line,
)

ALICE, BOB = key(1), key(2)


def _current(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return {row.fqn: row for row in conn.execute(select(subdomains))}


def _history(engine: Engine, fqn: str) -> list[tuple[int, bool, str | None]]:
    query = select(subdomain_history).where(subdomain_history.c.fqn == fqn).order_by(subdomain_history.c.id)
    with engine.connect() as conn:
        return [(r.sequence, r.accepted, r.reason) for r in conn.execute(query)]


def test_all_172_genesis_embedded_subdomains(engine: Engine) -> None:
    """The 27 real parent zone files yield the 172 subdomains with the expected owners and zone-file hashes."""
    expected = {r["fully_qualified_subdomain"]: r for r in read_csv(genesis_dir() / "derived" / "genesis_subdomains.csv")}
    parents = {r["parent_zonefile_hash"] for r in expected.values()}
    with engine.begin() as conn:
        for row in derived_zonefiles():
            if row["zonefile_hash"] in parents:
                conn.execute(names.insert().values(fqn=row["name"], namespace_id=row["namespace"], value_hash=row["zonefile_hash"]))
                store_verified(conn, row["zonefile_hash"], row["zonefile"].encode(), "genesis")
    report = process_all_subdomains(engine)
    assert (len(report.domains), report.accepted, report.rejected, report.skipped) == (27, 172, 0, [])
    current = _current(engine)
    assert set(current) == set(expected)
    for fqn, row in current.items():
        want = expected[fqn]
        assert (row.owner_address, row.sequence, row.zonefile_hash) == (want["owner"], 0, want["subdomain_zonefile_hash"])
        assert row.parent_zonefile_hash == want["parent_zonefile_hash"] and row.domain == want["parent_name"]
        assert hash160(get_zonefile(engine, row.zonefile_hash) or b"").hex() == row.zonefile_hash
    decoded = read_pairs(genesis_dir() / "derived" / "genesis_subdomain_zonefiles.txt")
    assert all(get_zonefile(engine, h) == content for h, content in decoded.items())
    resolvers = {row.domain: row.resolver for row in current.values()}
    assert resolvers["id.blockstack"] == "https://registrar.blockstack.org"
    assert resolvers["dmails.id"] == "https://registrar.dmails.io" and resolvers["sub.helloworld"] is None


def _creation_file() -> bytes:
    return parent_zonefile("foo.id", [txt_line("alice", owner=address(ALICE), seqn=0, zonefile=sub_zonefile("alice.foo.id", "v0"))])


def _update_file(signer: object, tag: str, *, seqn: int = 1, owner: str | None = None, carrier: str = "foo.id") -> bytes:
    written = "alice" if carrier == "foo.id" else "alice.foo.id"
    line = update_line(
        signer, written, fqn="alice.foo.id", domain=carrier, owner=owner or address(ALICE), seqn=seqn,  # type: ignore[arg-type]
        zonefile=sub_zonefile("alice.foo.id", tag),
    )
    return parent_zonefile(carrier, [line])


def test_update_signed_by_owner_becomes_current(engine: Engine) -> None:
    """Creation then a signed seqn-1 update: the current row points at the new zone file, both history rows accepted."""
    chain = MiniChain(engine)
    chain.update("foo.id", _creation_file(), block=500000)
    chain.update("foo.id", _update_file(ALICE, "v1"), block=500010)
    report = process_domain_subdomains(engine, "foo.id")
    assert report.changed == {"alice.foo.id"}
    row = _current(engine)["alice.foo.id"]
    assert row.sequence == 1 and get_zonefile(engine, row.zonefile_hash) == sub_zonefile("alice.foo.id", "v1")
    assert row.parent_zonefile_index == 2 and row.block_height == 500010 and row.signature
    assert _history(engine, "alice.foo.id") == [(0, True, None), (1, True, None)]


def test_forged_update_is_recorded_and_logged(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    """A forged update is stored as a rejected history row with its reason, and logged; the current row stays."""
    chain = MiniChain(engine)
    chain.update("foo.id", _creation_file(), block=500000)
    chain.update("foo.id", _update_file(BOB, "forged", owner=address(BOB)), block=500010)
    with caplog.at_level(logging.INFO, logger="bns_resolver.zonefiles.subdomain_index"):
        process_domain_subdomains(engine, "foo.id")
    assert _current(engine)["alice.foo.id"].sequence == 0
    (_, (seq, accepted, reason)) = _history(engine, "alice.foo.id")
    assert (seq, accepted) == (1, False) and "not signed by previous owner" in (reason or "")
    assert any("alice.foo.id" in m and "rejected" in m for m in caplog.messages)


def test_tie_resolved_by_inventory_order_even_when_files_arrive_late(engine: Engine) -> None:
    """Two valid seqn-1 updates: the later file alone is accepted until the earlier one arrives, then the earlier wins."""
    chain = MiniChain(engine)
    chain.update("foo.id", _creation_file(), block=500000)
    early = _update_file(ALICE, "early")
    early_hash = chain.update("foo.id", early, block=500010, store=False)
    chain.update("foo.id", _update_file(ALICE, "late"), block=500020)
    process_domain_subdomains(engine, "foo.id")
    assert get_zonefile(engine, _current(engine)["alice.foo.id"].zonefile_hash) == sub_zonefile("alice.foo.id", "late")
    store_verified(engine, early_hash, early, "late-arrival")
    process_stored_zonefile(engine, early_hash)
    row = _current(engine)["alice.foo.id"]
    assert get_zonefile(engine, row.zonefile_hash) == sub_zonefile("alice.foo.id", "early") and row.parent_zonefile_index == 2
    assert [(s, a) for s, a, _ in _history(engine, "alice.foo.id")] == [(0, True), (1, True), (1, False)]


def test_independent_transfer_rejected_whatever_the_processing_order(engine: Engine) -> None:
    """bar.id's file tries to transfer alice.foo.id: rejected, whether bar.id or foo.id is processed first."""
    chain = MiniChain(engine)
    chain.update("foo.id", _creation_file(), block=500000)
    chain.update("bar.id", _update_file(ALICE, "stolen", owner=address(BOB), carrier="bar.id"), block=500010)
    process_domain_subdomains(engine, "bar.id")
    assert "alice.foo.id" not in _current(engine)
    process_domain_subdomains(engine, "foo.id")
    assert _current(engine)["alice.foo.id"].owner_address == address(ALICE)
    reasons = [r for _, accepted, r in _history(engine, "alice.foo.id") if not accepted]
    assert len(reasons) == 1 and "independent" in (reasons[0] or "")


def test_zonefiles_before_subdomain_activation_are_ignored(engine: Engine) -> None:
    """Subdomain records in zone files from before block 478872 are not indexed."""
    chain = MiniChain(engine)
    chain.update("foo.id", _creation_file(), block=478871)
    assert process_domain_subdomains(engine, "foo.id").accepted == 0
    assert _current(engine) == {}


def test_fetcher_hook_indexes_subdomains_of_new_zonefile(engine: Engine, tmp_path: Path) -> None:
    """process_stored_zonefile as on_stored: a fetched parent zone file's subdomains appear at once."""
    chain = MiniChain(engine)
    content = _creation_file()
    value_hash = chain.update("foo.id", content, block=500000, store=False)
    (tmp_path / f"{value_hash}.txt").write_bytes(content)
    fetch_round(engine, [DirSource(tmp_path)], on_stored=lambda h: process_stored_zonefile(engine, h))
    assert _current(engine)["alice.foo.id"].sequence == 0
