"""Incremental store updates (answers/update.py): after an update, the store holds exactly what a
full compile of the same index holds, key by key and byte by byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, insert, update

from bns_resolver.answers.compile import compile_store
from bns_resolver.answers.format import KIND_MASK, KIND_SERVFAIL, META_KEY, NODES_PREFIX, name_to_wire
from bns_resolver.answers.store import CompiledStore, index_state, open_current
from bns_resolver.answers.update import affected_bindings, update_store
from bns_resolver.hashing import hash160_hex
from bns_resolver.index import schema
from bns_resolver.index import subdomains as subdomain_rows
from bns_resolver.index.changes import ALL_NAMES, record_changes
from bns_resolver.index.lookup import IndexReader
from bns_resolver.index.sync_state import write_sync_state
from bns_resolver.zonefiles.store import store_verified
from tests.support.dns_fixtures import IndexSpec, NameSpec, make_index


def _zone(fqn: str, *lines: str) -> bytes:
    return (f"$ORIGIN {fqn}\n" + "".join(line + "\n" for line in lines)).encode()


ALICE = _zone("alice.id", "@ A 192.0.2.1", "www CNAME alice.id.", "deep.under.there TXT \"x\"",
              "mail.sub TXT \"shadowed once sub.alice.id exists\"")
BOB = _zone("bob.id", "_http._tcp URI 10 1 \"https://gaia.example/bob.json\"")
CAROL = _zone("carol.id", "@ TXT \"carol\"")
OLD_SUB = _zone("old.alice.id", "@ A 192.0.2.20", "_http._tcp URI 10 1 \"https://gaia.example/old.json\"")


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return make_index(tmp_path / "data", IndexSpec(
        names=[NameSpec("alice.id", ALICE), NameSpec("bob.id", BOB), NameSpec("carol.id", CAROL),
               NameSpec("dave.id", _zone("dave.id", "@ A 192.0.2.4"), expire_block=665760),
               NameSpec("late.id", _zone("late.id", "@ A 192.0.2.9"), store_zonefile=False)],
        subdomains=[("old.alice.id", OLD_SUB)]))


def _entries(store: CompiledStore) -> dict[bytes, bytes]:
    with store.env.begin() as txn:
        return {bytes(k): bytes(v) for k, v in txn.cursor() if bytes(k) != META_KEY}


def _full_compile(engine: Engine, root: Path) -> dict[bytes, bytes]:
    compile_store(IndexReader(engine), root)
    store = open_current(root)
    assert store is not None
    try:
        return _entries(store)
    finally:
        store.close()


def _compiled(engine: Engine, root: Path) -> CompiledStore:
    compile_store(IndexReader(engine), root)
    store = open_current(root)
    assert store is not None
    return store


def _change_everything(engine: Engine) -> None:
    """A mix of what blocks, the fetcher and the subdomain indexer do, each through its own writer
    where the index has one, and with the change logged as the chain's flush logs it otherwise."""
    new_bob = _zone("bob.id", "@ A 192.0.2.2", "www A 192.0.2.3")
    erin = _zone("erin.id", "@ TXT \"new name\"")
    new_sub = _zone("sub.alice.id", "@ A 192.0.2.30", "mail TXT \"the subdomain's own\"")
    late = _zone("late.id", "@ A 192.0.2.9")
    with engine.begin() as conn:  # a block: bob's new zone file, erin registered, carol revoked
        conn.execute(update(schema.names).where(schema.names.c.fqn == "bob.id").values(value_hash=hash160_hex(new_bob)))
        conn.execute(insert(schema.zonefiles).values(zonefile_hash=hash160_hex(new_bob), content=new_bob,
                                                     source="test", fetched_at=0.0))
        conn.execute(insert(schema.names).values(fqn="erin.id", namespace_id="id", value_hash=hash160_hex(erin),
                                                 revoked=False))
        conn.execute(insert(schema.zonefiles).values(zonefile_hash=hash160_hex(erin), content=erin,
                                                     source="test", fetched_at=0.0))
        conn.execute(update(schema.names).where(schema.names.c.fqn == "carol.id").values(revoked=True))
        write_sync_state(conn, {"height": "665770"})  # past dave's expiry: no row of dave's changes
        record_changes(conn, ["bob.id", "erin.id", "carol.id"])
    with engine.begin() as conn:  # the fetcher: late.id's zone file arrives (the store logs it)
        assert store_verified(conn, hash160_hex(late), late, "test")
    with engine.begin() as conn:  # the subdomain indexer: sub.alice.id appears, old.alice.id goes
        store_verified(conn, hash160_hex(new_sub), new_sub, "test")
        subdomain_rows.put_current(conn, "sub.alice.id", {
            "domain": "alice.id", "owner_address": "1Test", "sequence": 0, "zonefile_hash": hash160_hex(new_sub)})
        conn.execute(update(schema.subdomains).where(schema.subdomains.c.fqn == "old.alice.id")
                     .values(parent_zonefile_hash="p" * 40))
        assert subdomain_rows.delete_current(conn, "old.alice.id", ["p" * 40])


def test_an_incremental_update_equals_a_full_compile_byte_for_byte(engine: Engine, tmp_path: Path) -> None:
    store = _compiled(engine, tmp_path / "incremental")
    before = _entries(store)
    _change_everything(engine)
    result = update_store(IndexReader(engine), store)
    assert not result.full_reason and result.state == index_state(IndexReader(engine))
    assert {"bob.id", "erin.id", "carol.id", "dave.id", "late.id", "sub.alice.id", "alice.id",
            "old.alice.id"} <= result.bindings
    store.renew()
    after = _entries(store)
    full = _full_compile(engine, tmp_path / "full")
    assert after == full
    assert after != before  # the update did change the store
    assert store.matches(index_state(IndexReader(engine)))
    # What moved, spelled out: the old subdomain and the shadowed node are gone, the new ones in.
    assert name_to_wire("old.alice.id") in before and name_to_wire("old.alice.id") not in after
    assert name_to_wire("mail.sub.alice.id") in after and name_to_wire("erin.id") in after
    assert name_to_wire("carol.id") not in after and name_to_wire("dave.id") not in after
    store.close()


def test_a_binding_lists_its_owner_names_and_an_update_removes_exactly_those(engine: Engine,
                                                                             tmp_path: Path) -> None:
    store = _compiled(engine, tmp_path / "s")
    listed = store.get(NODES_PREFIX + name_to_wire("alice.id"))
    assert listed is not None and name_to_wire("deep.under.there.alice.id") in bytes(listed)
    smaller = _zone("alice.id", "@ A 192.0.2.1")
    with engine.begin() as conn:
        conn.execute(update(schema.names).where(schema.names.c.fqn == "alice.id").values(value_hash=hash160_hex(smaller)))
        store_verified(conn, hash160_hex(smaller), smaller, "test")  # logs alice.id itself
    update_store(IndexReader(engine), store)
    store.renew()
    assert store.get(name_to_wire("deep.under.there.alice.id")) is None
    assert store.get(NODES_PREFIX + name_to_wire("alice.id")) is None
    assert _entries(store) == _full_compile(engine, tmp_path / "full")
    store.close()


def test_a_zone_file_that_does_not_verify_never_reaches_the_store(engine: Engine, tmp_path: Path) -> None:
    """A row holding bytes that do not hash to the name's value hash: SERVFAIL, none of its records."""
    store = _compiled(engine, tmp_path / "s")
    forged = _zone("bob.id", "@ A 203.0.113.66")
    claimed = hash160_hex(b"something else")
    with engine.begin() as conn:
        conn.execute(update(schema.names).where(schema.names.c.fqn == "bob.id").values(value_hash=claimed))
        conn.execute(insert(schema.zonefiles).values(zonefile_hash=claimed, content=forged, source="test",
                                                     fetched_at=0.0))
        record_changes(conn, ["bob.id"])
    update_store(IndexReader(engine), store)
    store.renew()
    entries = _entries(store)
    apex = entries[name_to_wire("bob.id")]
    assert apex[0] & KIND_MASK == KIND_SERVFAIL
    assert not any(b"\xcb\x00\x71\x42" in value for value in entries.values())  # 203.0.113.66
    assert name_to_wire("_http._tcp.bob.id") not in entries  # the old records are gone too
    store.close()


def test_what_the_log_cannot_say_asks_for_a_full_compile(engine: Engine, tmp_path: Path) -> None:
    store = _compiled(engine, tmp_path / "s")
    seq = store.meta["seq"]
    with engine.begin() as conn:
        record_changes(conn, [ALL_NAMES])
    assert "no longer covers" in update_store(IndexReader(engine), store).full_reason
    with engine.begin() as conn:  # a log trimmed past the store: its next number is gone
        record_changes(conn, ["bob.id"])
    with engine.begin() as conn:
        conn.execute(delete(schema.index_changes).where(schema.index_changes.c.seq <= seq + 1))
    assert "no longer covers" in update_store(IndexReader(engine), store).full_reason
    with engine.begin() as conn:
        conn.execute(insert(schema.namespaces).values(namespace_id="btc", version=1, lifetime=1, coeff=1, base=1,
                                                      buckets="1", nonalpha_discount=1, no_vowel_discount=1,
                                                      ready=True))
    assert update_store(IndexReader(engine), store).full_reason == "the served namespaces changed"
    store.close()


def test_nothing_new_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    store = _compiled(engine, tmp_path / "s")
    before = _entries(store)
    result = update_store(IndexReader(engine), store)
    assert result.state is None and not result.bindings and not result.full_reason
    assert _entries(store) == before
    store.close()


def test_affected_bindings_include_a_subdomains_domain() -> None:
    assert affected_bindings(["a.b.id", "c.id", "id", "", "x.y.z.id"]) == {"a.b.id", "b.id", "c.id"}
