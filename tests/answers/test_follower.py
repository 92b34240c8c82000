"""Following a store another process keeps (answers/follower.py): a DNS worker's view of serve's store.

The writer here is what serve's keeper runs (update_store, compile_store); the follower opens the
same LMDB files read-only, as a separate environment, exactly as a worker process does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bns_resolver.answers.compile import compile_store
from bns_resolver.answers.follower import StoreFollower
from bns_resolver.answers.respond import StoreAnswerer
from bns_resolver.answers.store import store_root
from bns_resolver.dns.authority import BnsAuthority
from bns_resolver.dns.policy import Mode, NamespacePolicy
from bns_resolver.dns.zones import ZoneCache
from bns_resolver.hashing import hash160_hex
from bns_resolver.index.lookup import IndexReader
from bns_resolver.zonefiles.store import store_verified
from bns_resolver.answers.format import name_to_wire
from tests.support.dns_fixtures import IndexSpec, NameSpec, make_index

LATE = b"$ORIGIN late.id\n@ A 192.0.2.9\n"


class Calls:
    def __init__(self) -> None:
        self.names: list[set[str]] = []
        self.whole = 0

    def names_changed(self, names: set[str], _height_moved: bool) -> None:
        self.names.append(names)

    def all_changed(self) -> None:
        self.whole += 1


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return make_index(tmp_path / "data", IndexSpec(names=[
        NameSpec("alice.id", b"$ORIGIN alice.id\n@ A 192.0.2.1\n"),
        NameSpec("late.id", LATE, store_zonefile=False)]))


def _follower(engine: Engine, root: Path, calls: Calls) -> tuple[StoreFollower, StoreAnswerer]:
    reader = IndexReader(engine)
    policy = NamespacePolicy(default_mode=Mode.BNS_ONLY)
    answerer = StoreAnswerer(BnsAuthority(reader, ZoneCache(reader)), policy)
    follower = StoreFollower(root, answerer, engine, names_changed=calls.names_changed, all_changed=calls.all_changed)
    return follower, answerer


def _update_elsewhere(engine: Engine, root: Path) -> str:
    """serve's keeper applying the change, in a process of its own (LMDB opens an environment once
    per process: the follower's read-only one and the writer's cannot share one)."""
    code = ("import sys; from pathlib import Path; from bns_resolver.index.db import open_index; "
            "from bns_resolver.index.lookup import IndexReader; from bns_resolver.answers.store import open_current; "
            "from bns_resolver.answers.update import update_store; store = open_current(Path(sys.argv[2])); "
            "print(sorted(update_store(IndexReader(open_index(sys.argv[1])), store).bindings)); store.close()")
    done = subprocess.run([sys.executable, "-c", code, str(engine.url), str(root)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _entry(answerer: StoreAnswerer, name: str) -> bytes | None:
    assert answerer.store is not None
    value = answerer.store.get(name_to_wire(name))
    return None if value is None else bytes(value)


def test_follows_updates_in_place_and_a_new_compile(engine: Engine, tmp_path: Path) -> None:
    root = store_root(tmp_path / "data")
    calls = Calls()
    follower, answerer = _follower(engine, root, calls)
    follower.poll()
    assert not answerer.active  # nothing compiled yet: the slow path answers
    compile_store(IndexReader(engine), root)
    follower.poll()
    waiting = _entry(answerer, "late.id")  # no zone file yet: a SERVFAIL entry
    assert answerer.active and calls.whole == 1 and waiting is not None
    with engine.begin() as conn:  # the fetcher stores late.id's zone file: change 1
        assert store_verified(conn, hash160_hex(LATE), LATE, "test")
    follower.poll()
    assert _entry(answerer, "late.id") == waiting and calls.names == []  # the writer has not applied it yet
    assert _update_elsewhere(engine, root) == "['late.id']"
    follower.poll()
    served = _entry(answerer, "late.id")
    assert calls.names == [{"late.id"}] and answerer.active and served not in (None, waiting)
    old_path = follower.store.path if follower.store else None
    compile_store(IndexReader(engine), root)  # a full compile replaces the store whole
    follower.poll()
    assert calls.whole == 2 and follower.store is not None and follower.store.path != old_path
    assert answerer.active and answerer.store is follower.store and _entry(answerer, "late.id") == served
    follower.close()
    assert not answerer.active


def test_a_store_older_than_a_whole_index_change_is_not_served(engine: Engine, tmp_path: Path) -> None:
    root = store_root(tmp_path / "data")
    compile_store(IndexReader(engine), root)
    follower, answerer = _follower(engine, root, Calls())
    follower.require(5)  # the feed said: everything changed up to change 5 (an import)
    follower.poll()
    assert not answerer.active
    follower.wanted_seq = 0  # as if a store compiled after the import were in place
    follower.poll()
    assert answerer.active
