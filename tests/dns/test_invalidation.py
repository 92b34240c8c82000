"""What the index's change feed drops from a gateway's caches (dns/invalidation.py).

A real SQLite index, its real change feed (IndexEvents) and a real compiled store; queries go
through the UDP reader's fast path, so what is remembered is what the reader would replay.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from bns_resolver.dns.invalidation import CacheInvalidation
from bns_resolver.index.changes import ChangeSet, IndexEvents, IndexUpdate, changes_since, record_changes
from tests.answers.pair import Ask, GatewayPair, as_the_udp_reader
from tests.support.dns_fixtures import IndexSpec, NameSpec, make_index

ALICE = b'$ORIGIN alice.id\n@ A 192.0.2.1\n'
BOB = b'$ORIGIN bob.id\n@ A 192.0.2.2\n'


class Following:
    """A gateway (with its compiled store) following an index's change feed, as serve does."""

    def __init__(self, tmp_path: Path) -> None:
        self.engine = make_index(tmp_path / "index", IndexSpec(names=[NameSpec("alice.id", ALICE),
                                                                      NameSpec("bob.id", BOB)]))
        self.events = IndexEvents(self.engine)
        self.pair = GatewayPair(self.engine, tmp_path / "answers", ready=lambda: self.events.not_ready)
        self.gateway = self.pair.fast
        self.invalidation = CacheInvalidation(self.gateway, self.events.not_ready)
        self.events.subscribe(lambda update: self.invalidation.apply(update, update.not_ready))

    def rcode(self, name: str, query_id: int = 7) -> int:
        """The answer's rcode, asked as the UDP reader asks: its replay table first, then the store."""
        return dns.message.from_wire(as_the_udp_reader(self.gateway, Ask(name, "A").packet(query_id))).rcode()

    def replayed(self, name: str) -> bool:
        return self.gateway.replay.get(Ask(name, "A").packet(7)[2:]) is not None

    def commit_change(self, names: list[str]) -> None:
        with self.engine.begin() as conn:
            record_changes(conn, names)
        self.events.poll()


@pytest.fixture
def following(tmp_path: Path) -> Iterator[Following]:
    made = Following(tmp_path)
    yield made
    made.pair.close()


def test_an_index_falling_behind_stops_replaying_answers_it_gave_while_current(following: Following) -> None:
    assert following.rcode("alice.id") == dns.rcode.NOERROR
    assert following.replayed("alice.id")
    following.events.set_not_ready("the index is at block 10, 12 blocks behind the chain tip 22")
    assert not following.replayed("alice.id")
    assert following.rcode("alice.id") == dns.rcode.SERVFAIL  # never the answer of a lagging index
    assert not following.replayed("alice.id")  # and a SERVFAIL is never replayed


def test_an_index_catching_up_answers_again(following: Following) -> None:
    following.events.set_not_ready("the index has not caught up with the chain yet")
    assert following.rcode("alice.id") == dns.rcode.SERVFAIL
    following.events.set_not_ready(None)
    assert following.rcode("alice.id") == dns.rcode.NOERROR
    assert following.replayed("alice.id")


def test_a_verdict_repeated_drops_nothing(following: Following) -> None:
    following.events.set_not_ready(None)  # the same verdict as before: IndexEvents publishes nothing
    assert following.rcode("alice.id") == dns.rcode.NOERROR
    following.invalidation.apply(_state_only(following), None)
    assert following.replayed("alice.id")


def test_a_changed_name_drops_its_own_answers_only(following: Following) -> None:
    assert following.rcode("alice.id") == dns.rcode.NOERROR
    assert following.rcode("bob.id") == dns.rcode.NOERROR
    following.commit_change(["alice.id"])
    assert not following.replayed("alice.id")
    assert following.replayed("bob.id")


def test_a_change_the_log_cannot_name_drops_everything(following: Following) -> None:
    assert following.rcode("alice.id") == dns.rcode.NOERROR
    step = _state_only(following)
    whole = ChangeSet(step.changes.since, step.changes.seq, frozenset(), complete=False)  # an import
    following.invalidation.apply(IndexUpdate(whole, step.height, step.height, step.tip, None), None)
    assert not following.replayed("alice.id")


def _state_only(following: Following) -> IndexUpdate:
    """A committed step in which only the sync state moved (no names, same height), not yet polled."""
    with following.engine.begin() as conn:
        record_changes(conn, ())
    with following.engine.connect() as conn:
        changes = changes_since(conn, following.events.seq)
    assert changes is not None
    events = following.events
    return IndexUpdate(changes, events.height, events.height, events.tip, None)
