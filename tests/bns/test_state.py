"""Tests for bns.state.MemoryStateStore: records, indexes and exact per-block undo."""

import pytest

from bns_resolver.bns.state import MemoryStateStore
from bns_resolver.errors import ChainError


def _name(owner: str, value: str | None = None) -> dict:
    return {"name": "foo.test", "name_hash128": "aa" * 16, "sender": owner, "value_hash": value}


def test_rollback_restores_previous_block_state_exactly() -> None:
    """Changes of the rolled-back block vanish; earlier blocks' changes stay, indexes too."""
    store = MemoryStateStore()
    store.begin_block(256, "h256")
    store.put_name(_name("alice"))
    store.put_consensus_hash(256, "c1", "o1")
    store.commit_block()
    store.begin_block(257, "h257")
    store.put_name(_name("bob", "11" * 20))
    store.put_name_preorder({"preorder_hash": "p1"})
    store.put_consensus_hash(257, "c2", "o2")
    store.commit_block()
    assert store.names_by_owner("bob") == ["foo.test"] and store.get_block_hash(257) == "h257"
    store.undo_block(257)
    assert store.get_name("foo.test") == _name("alice")
    assert store.names_by_owner("alice") == ["foo.test"] and store.names_by_owner("bob") == []
    assert store.get_name_preorder("p1") is None
    assert store.get_consensus_hash(257) is None and store.block_for_consensus_hash("c2") is None
    assert store.last_block() == 256 and store.get_block_hash(257) is None


def test_only_newest_block_can_be_rolled_back() -> None:
    """Undo is strictly newest-first, as a reorg unwinds."""
    store = MemoryStateStore()
    for height in (256, 257):
        store.begin_block(height)
        store.commit_block()
    with pytest.raises(ChainError):
        store.undo_block(256)


def test_writes_outside_a_block_are_refused() -> None:
    """Every mutation must be journaled."""
    with pytest.raises(ChainError):
        MemoryStateStore().put_name(_name("alice"))


def test_returned_records_are_copies() -> None:
    """Mutating a returned record does not change the store."""
    store = MemoryStateStore()
    store.begin_block(1)
    store.put_name(_name("alice"))
    store.get_name("foo.test")["sender"] = "mallory"  # type: ignore[index]
    assert store.get_name("foo.test")["sender"] == "alice"  # type: ignore[index]
    assert store.name_by_hash128("aa" * 16) == "foo.test"


def test_open_block_rollback_and_discarded_undo() -> None:
    """An open (failed) block can be undone; undo data discarded below a height is gone."""
    store = MemoryStateStore()
    for height in (256, 257):
        store.begin_block(height)
        store.put_consensus_hash(height, f"c{height}", "o")
        store.commit_block()
    store.begin_block(258)
    store.put_consensus_hash(258, "c258", "o")
    store.rollback()
    assert store.get_consensus_hash(258) is None and store.last_block() == 257
    store.discard_undo(257)
    store.undo_block(257)
    assert store.last_block() == 256
    with pytest.raises(ChainError):
        store.undo_block(256)
