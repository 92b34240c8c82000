"""`serve` with the store: compiled when missing or stale, reused when current; `compile`, and
a compile killed with SIGKILL that leaves the previous store in place."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import insert

from bns_resolver.answers.compile import CompileCancelled, compile_store
from bns_resolver.answers.format import name_to_wire
from bns_resolver.answers.store import CURRENT, open_current, open_fresh
from bns_resolver.hashing import hash160_hex
from bns_resolver.index import schema
from bns_resolver.index.db import open_index
from bns_resolver.index.lookup import IndexReader
from bns_resolver.index.changes import ALL_NAMES, record_changes
from tests.support.dns_fixtures import IndexSpec, NameSpec, ServerProcess, bns_only_config, make_index

ZONE = b"$ORIGIN alice.id\n_http._tcp URI 10 1 \"https://gaia.example/alice.json\"\n"


def _wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_serve_compiles_a_missing_store_then_reuses_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_index(data, IndexSpec(names=[NameSpec("alice.id", ZONE)]))
    server = ServerProcess(data, config=bns_only_config(("id",))).start()
    try:
        _wait_for(lambda: "answer store in use" in server.log())
        reply = server.query("_http._tcp.alice.id", "URI")
        assert reply.answer and "gaia.example/alice.json" in reply.answer[0].to_text()
        assert server.query("nobody.id", "A").rcode() == 3
    finally:
        server.stop()
    assert (data / "answers" / CURRENT).is_symlink()
    again = ServerProcess(data, config=bns_only_config(("id",))).start()
    try:
        _wait_for(lambda: "matches the index" in again.log())
        assert "compiled" not in again.log()
        assert again.query("_http._tcp.alice.id", "URI").answer
    finally:
        again.stop()


def _add_bob(engine, changed: str) -> None:  # type: ignore[no-untyped-def]
    bob = b"$ORIGIN bob.id\n_http._tcp URI 10 1 \"https://gaia.example/bob.json\"\n"
    with engine.begin() as conn:
        conn.execute(insert(schema.names).values(fqn="bob.id", namespace_id="id", owner_address="1Test",
                                                 value_hash=hash160_hex(bob), revoked=False))
        conn.execute(insert(schema.zonefiles).values(zonefile_hash=hash160_hex(bob), content=bob,
                                                     source="test", fetched_at=0.0))
        record_changes(conn, [changed])


def test_serve_updates_the_store_in_place_after_a_change(tmp_path: Path) -> None:
    """A change the feed names is written into the store in use: no second compile, no second store."""
    data = tmp_path / "data"
    engine = make_index(data, IndexSpec(names=[NameSpec("alice.id", ZONE)]))
    server = ServerProcess(data, config=bns_only_config(("id",))).start()
    try:
        _wait_for(lambda: server.log().count("answer store in use") == 1)
        assert server.query("_http._tcp.bob.id", "URI").rcode() == 3  # cached as NXDOMAIN now
        _add_bob(engine, "bob.id")
        _wait_for(lambda: "answer store updated to change" in server.log())
        reply = server.query("_http._tcp.bob.id", "URI")
        assert reply.answer and "gaia.example/bob.json" in reply.answer[0].to_text()
        assert server.log().count("answer store in use") == 1
        assert len(list((data / "answers").glob("store-*"))) == 1
    finally:
        server.stop()


def test_serve_recompiles_after_the_index_changes_as_a_whole(tmp_path: Path) -> None:
    """An import (the feed says "everything") switches the store off (the slow path answers) until a
    new one is swapped in."""
    data = tmp_path / "data"
    engine = make_index(data, IndexSpec(names=[NameSpec("alice.id", ZONE)]))
    server = ServerProcess(data, config=bns_only_config(("id",))).start()
    try:
        _wait_for(lambda: server.log().count("answer store in use") == 1)
        _add_bob(engine, ALL_NAMES)
        _wait_for(lambda: server.log().count("answer store in use") == 2)
        reply = server.query("_http._tcp.bob.id", "URI")
        assert reply.answer and "gaia.example/bob.json" in reply.answer[0].to_text()
        assert len(list((data / "answers").glob("store-*"))) == 1  # the superseded store is gone
    finally:
        server.stop()


def test_compile_command_and_staleness(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine = make_index(data, IndexSpec(names=[NameSpec("alice.id", ZONE)]))
    done = subprocess.run([sys.executable, "-m", "bns_resolver.cli", "compile", "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=120, check=True)
    assert "1 names, 0 subdomains" in done.stdout
    reader = IndexReader(engine)
    store = open_fresh(data / "answers", reader)
    assert store is not None and store.get(name_to_wire("_http._tcp.alice.id")) is not None
    store.close()
    with engine.begin() as conn:
        record_changes(conn, ["alice.id"])
    assert open_fresh(data / "answers", reader) is None  # behind the index: updated or compiled again


def test_compile_refuses_a_process_count_below_one(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bns_resolver.cli", "compile", "--data-dir", str(tmp_path),
                           "--processes", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "expected a whole number of at least 1, got '0'" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "answers").exists()


def test_a_compile_killed_midway_leaves_the_previous_store_serving(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    make_index(data, IndexSpec(names=[NameSpec("alice.id", ZONE)]))
    engine = open_index(f"sqlite:///{data / 'index.sqlite'}")
    first, _ = compile_store(IndexReader(engine), data / "answers")
    _big_index_rows(engine, 1500)
    child = subprocess.Popen([sys.executable, "-m", "bns_resolver.cli", "compile", "--data-dir", str(data)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: any((data / "answers").glob("build-*/data.mdb")), timeout=60)
        time.sleep(0.3)  # into the scan: 1,500 zone files take seconds to compile
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert (data / "answers" / CURRENT).resolve() == first
    assert list((data / "answers").glob("build-*")), "the kill should have landed mid-compile"
    store = open_current(data / "answers")
    assert store is not None and store.get(name_to_wire("_http._tcp.alice.id")) is not None
    store.close()
    second, report = compile_store(IndexReader(engine), data / "answers")
    assert report.names == 1501 and not list((data / "answers").glob("build-*")) and not first.exists()


def test_stopping_serve_mid_compile_stops_the_compile(tmp_path: Path) -> None:
    """SIGTERM during a first compile: serve does not sit out the compile (a big index takes a minute),
    the build is removed and no store is made current."""
    data = tmp_path / "data"
    data.mkdir()
    make_index(data, IndexSpec(names=[NameSpec("alice.id", ZONE)]))
    _big_index_rows(open_index(f"sqlite:///{data / 'index.sqlite'}"), 20000)
    server = ServerProcess(data, config=bns_only_config(("id",))).start()
    try:
        _wait_for(lambda: any((data / "answers").glob("build-*/data.mdb")), timeout=60)
        assert server.stop() == 0
    finally:
        server.stop()
    log = server.log()
    assert "answer store compile stopped: the server is stopping" in log, log[-2000:]
    assert "answer store compiled at" not in log
    assert not list((data / "answers").glob("build-*")) and not (data / "answers" / CURRENT).exists()


def test_a_cancelled_compile_keeps_the_previous_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine = make_index(data, IndexSpec(names=[NameSpec("alice.id", ZONE)]))
    first, _ = compile_store(IndexReader(engine), data / "answers")
    with pytest.raises(CompileCancelled):
        compile_store(IndexReader(engine), data / "answers", cancelled=lambda: True)
    assert (data / "answers" / CURRENT).resolve() == first and not list((data / "answers").glob("build-*"))


def _big_index_rows(engine, names: int) -> None:  # type: ignore[no-untyped-def]
    rows, zonefiles = [], []
    for i in range(names):
        fqn = f"n{i:06d}.id"
        zonefile = f"$ORIGIN {fqn}\n".encode() + b"".join(
            f"o{j} TXT \"record {j} of {fqn}\"\n".encode() for j in range(12))
        value_hash = hash160_hex(zonefile)
        rows.append({"fqn": fqn, "namespace_id": "id", "owner_address": "1Test", "value_hash": value_hash,
                     "revoked": False})
        zonefiles.append({"zonefile_hash": value_hash, "content": zonefile, "source": "test", "fetched_at": 0.0})
    with engine.begin() as conn:
        conn.execute(insert(schema.names), rows)
        conn.execute(insert(schema.zonefiles), zonefiles)
        record_changes(conn, [ALL_NAMES])
