"""The change feed (index/changes.py): numbers in commit order, names logged by every writer in its
own transaction, the log trimmed, and IndexEvents publishing it; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bns_resolver.hashing import hash160_hex
from bns_resolver.index import changes, schema
from bns_resolver.index import subdomains as subdomain_rows
from bns_resolver.index.changes import (
    ALL_NAMES,
    IndexEvents,
    IndexUpdate,
    changes_since,
    latest_seq,
    record_changes,
    save_state_noted,
)
from bns_resolver.index.db import open_index
from bns_resolver.index.snapshot import EMBEDDED_DIR, ExportFiles, import_export
from bns_resolver.index.sync_state import write_sync_state
from bns_resolver.zonefiles.store import store_verified
from tests.support.dns_fixtures import IndexSpec, NameSpec, write_index
from tests.support.postgres import shared_postgres_url

BOB = b"$ORIGIN bob.id\n@ A 192.0.2.2\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    if request.param == "sqlite":
        return open_index(f"sqlite:///{tmp_path / 'index.sqlite'}")
    return open_index(shared_postgres_url("set BNS_TEST_POSTGRES_URL to run the change feed against PostgreSQL"))


def _since(engine: Engine, seq: int) -> changes.ChangeSet | None:
    with engine.connect() as conn:
        return changes_since(conn, seq)


def test_one_number_per_commit_and_nothing_for_a_rollback(engine: Engine) -> None:
    with engine.begin() as conn:
        first = record_changes(conn, ["alice.id"])
        assert record_changes(conn, ["b.alice.id", "alice.id"]) == first  # the same transaction
    with engine.connect() as conn:
        conn.begin()
        record_changes(conn, ["never.id"])
        conn.rollback()
    with engine.begin() as conn:
        second = record_changes(conn, [])
    assert (first, second) == (1, 2)
    found = _since(engine, 0)
    assert found is not None and found.complete and found.seq == 2
    assert found.names == {"alice.id", "b.alice.id"}  # the state-only commit names nothing
    assert _since(engine, 2) is None
    one = _since(engine, 1)
    assert one is not None and one.names == frozenset() and one.seq == 2


def test_an_import_and_a_trimmed_log_are_incomplete(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with engine.begin() as conn:
        record_changes(conn, [ALL_NAMES])
    found = _since(engine, 0)
    assert found is not None and not found.complete
    monkeypatch.setattr(changes, "KEEP_SEQS", 3)
    monkeypatch.setattr(changes, "TRIM_EVERY", 5)
    for _ in range(4):
        with engine.begin() as conn:
            record_changes(conn, ["x.id"])
    with engine.connect() as conn:
        kept = sorted({row[0] for row in conn.execute(select(schema.index_changes.c.seq))})
    assert kept == [3, 4, 5]  # trimmed at 5 to the last three
    behind, recent = _since(engine, 1), _since(engine, 2)
    assert behind is not None and not behind.complete
    assert recent is not None and recent.complete and recent.names == {"x.id"}


@pytest.mark.postgres
def test_postgresql_numbers_follow_commit_order(engine: Engine) -> None:
    """A second writer waits for the first one's commit before it takes a number: a reader that
    saw the later number can never miss the earlier one."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the table lock is PostgreSQL's; SQLite has one writer at a time anyway")
    first = engine.connect()
    first.begin()
    record_changes(first, ["first.id"])
    taken: list[int] = []
    second = threading.Thread(target=lambda: taken.append(_record(engine, "second.id")))
    second.start()
    time.sleep(0.5)
    assert not taken  # blocked on the lock
    first.commit()
    first.close()
    second.join(10)
    assert taken == [2]


def _record(engine: Engine, name: str) -> int:
    with engine.begin() as conn:
        return record_changes(conn, [name])


def test_the_writers_log_what_they_change(engine: Engine) -> None:
    write_index(engine, IndexSpec(names=[NameSpec("bob.id", BOB, store_zonefile=False)]))
    seq = _latest(engine)
    with engine.begin() as conn:  # the fetcher: bob's zone file arrives
        assert store_verified(conn, hash160_hex(BOB), BOB, "test")
    assert _names_after(engine, seq) == {"bob.id"}
    seq = _latest(engine)
    with engine.begin() as conn:  # the subdomain indexer
        subdomain_rows.put_current(conn, "s.bob.id", {"domain": "bob.id", "owner_address": "1Test", "sequence": 0,
                                                      "zonefile_hash": "b" * 40, "parent_zonefile_hash": "c" * 40})
    assert _names_after(engine, seq) == {"s.bob.id"}
    seq = _latest(engine)
    with engine.begin() as conn:
        assert subdomain_rows.delete_current(conn, "s.bob.id", ["c" * 40])
        assert not subdomain_rows.delete_current(conn, "s.bob.id", ["c" * 40])
    assert _names_after(engine, seq) == {"s.bob.id"}
    seq = _latest(engine)
    import_export(engine, ExportFiles.open(EMBEDDED_DIR))  # a snapshot import: everything
    found = _since(engine, seq)
    assert found is not None and not found.complete


def test_a_new_tip_is_logged_only_when_it_moved(engine: Engine) -> None:
    save_state_noted(engine, {"tip": "100"})
    seq = _latest(engine)
    save_state_noted(engine, {"tip": "100"})
    assert _latest(engine) == seq
    save_state_noted(engine, {"tip": "101"})
    assert _latest(engine) == seq + 1


def test_index_events_publish_names_height_tip_and_readiness(engine: Engine) -> None:
    events = IndexEvents(engine)
    heard: list[IndexUpdate] = []
    events.subscribe(heard.append)
    assert events.poll() is None and not heard
    with engine.begin() as conn:
        write_sync_state(conn, {"height": "700", "tip": "702"})
        record_changes(conn, ["alice.id"])
    update = events.poll()
    assert update is not None and heard == [update]
    assert update.changes.names == {"alice.id"} and (update.height, update.previous_height, update.tip) == \
        (700, None, 702)
    assert events.poll() is None and len(heard) == 1
    events.set_not_ready("syncing")
    events.set_not_ready("syncing")
    assert [u.not_ready for u in heard[1:]] == ["syncing"]


def test_a_subscriber_that_fails_hears_the_change_again(engine: Engine) -> None:
    events = IndexEvents(engine)
    calls: list[int] = []

    def flaky(update: IndexUpdate) -> None:
        calls.append(update.changes.seq)
        if len(calls) == 1:
            raise RuntimeError("the database went away")

    events.subscribe(flaky)
    with engine.begin() as conn:
        record_changes(conn, ["alice.id"])
    with pytest.raises(RuntimeError):
        events.poll()
    assert events.poll() is not None and calls == [1, 1]


def _latest(engine: Engine) -> int:
    with engine.connect() as conn:
        return latest_seq(conn)


def _names_after(engine: Engine, seq: int) -> frozenset[str]:
    found = _since(engine, seq)
    assert found is not None and found.complete
    return found.names
