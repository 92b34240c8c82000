"""dns/replay.py: the UDP reader's replay cache."""

from __future__ import annotations

import dns.message

from bns_resolver.dns.replay import FOREVER, ReplayCache, question_name


def query(name: str, query_id: int = 1) -> bytes:
    message = dns.message.make_query(name, "A")
    message.id = query_id
    return message.to_wire()


def test_a_remembered_answer_is_found_for_any_id() -> None:
    replay = ReplayCache(10)
    replay.remember(query("alice.id", 1), b"\x00\x01answer", FOREVER)
    assert replay.get(query("alice.id", 0xBEEF)[2:]) == (b"answer", FOREVER)
    assert replay.get(query("bob.id")[2:]) is None and len(replay) == 1


def test_a_full_cache_drops_its_oldest_entries() -> None:
    replay = ReplayCache(8)
    for i in range(9):
        replay.remember(query(f"n{i}.id"), b"\x00\x00a", FOREVER)
    assert len(replay) <= 8
    assert replay.get(query("n0.id")[2:]) is None and replay.get(query("n8.id")[2:]) is not None


def test_drop_picks_bns_and_upstream_answers_by_question_name() -> None:
    """BNS answers (FOREVER) and upstream ones (a deadline) are chosen by separate rules."""
    replay = ReplayCache(10)
    replay.remember(query("Alice.ID"), b"\x00\x00bns", FOREVER)
    replay.remember(query("bob.id"), b"\x00\x00bns", FOREVER)
    replay.remember(query("alice.id.example.com"), b"\x00\x00up", 5.0)
    assert question_name(query("Alice.ID")[2:]) == b"\x05alice\x02id\x00"
    replay.drop(lambda name: name == b"\x05alice\x02id\x00", lambda name: name.endswith(b"\x07example\x03com\x00"))
    assert replay.get(query("Alice.ID")[2:]) is None and replay.get(query("alice.id.example.com")[2:]) is None
    assert replay.get(query("bob.id")[2:]) == (b"bns", FOREVER)
    replay.clear()
    assert len(replay) == 0
