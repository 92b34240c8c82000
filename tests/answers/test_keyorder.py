"""Entries appended in key order (answers/keyorder.py): the store holds what plain puts in the given
order would, however the entries are split into runs and chunks."""

from __future__ import annotations

import random
from pathlib import Path

import lmdb
import pytest

from bns_resolver.answers import keyorder
from bns_resolver.answers.keyorder import KeyOrderError, write_in_key_order


def _bindings(seed: int, count: int) -> list[list[tuple[bytes, bytes]]]:
    """Bindings of 1-4 entries; keys drawn from a small space so many are given twice or more."""
    rng = random.Random(seed)
    keys = [bytes([rng.randrange(1, 6)]) + rng.randbytes(rng.randrange(0, 3)) for _ in range(count // 3)]
    return [[(rng.choice(keys), rng.randbytes(rng.randrange(0, 40))) for _ in range(rng.randrange(1, 5))]
            for _ in range(count)]


def _plain_puts(bindings: list[list[tuple[bytes, bytes]]]) -> dict[bytes, bytes]:
    expected: dict[bytes, bytes] = {}
    for items in bindings:
        expected.update(items)
    return expected


def _stored(env: lmdb.Environment) -> list[tuple[bytes, bytes]]:
    with env.begin() as txn:
        return [(bytes(k), bytes(v)) for k, v in txn.cursor()]


@pytest.mark.parametrize("run_entries, chunk_entries", [(10**6, 8192), (50, 7), (7, 3), (1, 1)])
def test_appended_entries_equal_plain_puts_in_the_given_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              run_entries: int, chunk_entries: int) -> None:
    monkeypatch.setattr(keyorder, "CHUNK_ENTRIES", chunk_entries)
    monkeypatch.setattr(keyorder, "TXN_ENTRIES", 13)
    bindings = _bindings(seed=run_entries, count=600)
    env = lmdb.open(str(tmp_path / "store"), map_size=1 << 26)
    try:
        write_in_key_order(env, bindings, tmp_path / "runs", run_entries)
        assert _stored(env) == sorted(_plain_puts(bindings).items())
    finally:
        env.close()
    assert not (tmp_path / "runs").exists()


def test_no_entries_make_an_empty_store(tmp_path: Path) -> None:
    env = lmdb.open(str(tmp_path / "store"), map_size=1 << 20)
    try:
        write_in_key_order(env, [[], []], tmp_path / "runs")
        assert _stored(env) == []
    finally:
        env.close()


def test_a_store_that_is_not_empty_refuses_entries_below_its_last_key(tmp_path: Path) -> None:
    env = lmdb.open(str(tmp_path / "store"), map_size=1 << 20)
    try:
        with env.begin(write=True) as txn:
            txn.put(b"\x09zzz", b"there first")
        with pytest.raises(KeyOrderError):
            write_in_key_order(env, [[(b"\x01a", b"x")]], tmp_path / "runs")
        assert _stored(env) == [(b"\x09zzz", b"there first")]
        assert not (tmp_path / "runs").exists()
    finally:
        env.close()
