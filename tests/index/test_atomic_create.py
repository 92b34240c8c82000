"""Creating the index is atomic: a kill -9 during the first schema creation or the first
snapshot import never leaves a data directory that cannot start, and finishing afterwards
gives the same index as a clean run, table for table."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from bns_resolver.index.db import open_index, sqlite_url
from bns_resolver.index.lookup import IndexReader
from bns_resolver.index.snapshot import EMBEDDED_DIR, ExportFiles, import_export

pytestmark = pytest.mark.timeout(300)

KILLS = 24
# What a first start does to an empty data directory (service.open_data + ensure_embedded_snapshot).
CHILD = """
import sys, time
from bns_resolver.index.db import open_index
from bns_resolver.index.lookup import IndexReader
from bns_resolver.index.snapshot import EMBEDDED_DIR, ExportFiles, import_export
files = ExportFiles.open(EMBEDDED_DIR)
print("ready", flush=True)
sys.stdin.readline()
started = time.monotonic()
engine = open_index(sys.argv[1])
print("schema", time.monotonic() - started, flush=True)
if IndexReader(engine).is_empty():
    import_export(engine, files)
print("done", time.monotonic() - started, flush=True)
"""
VOLATILE_STATE = {"imported_at", "snapshot_origin"}


def _child(data_dir: Path) -> subprocess.Popen[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, sqlite_url(data_dir)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child


def _clean_run(data_dir: Path) -> tuple[float, float]:
    """(seconds to the schema, seconds to the end) of an uninterrupted first start."""
    child = _child(data_dir)
    out, _ = child.communicate("go\n", timeout=120)
    lines = dict(line.split() for line in out.splitlines())
    assert child.returncode == 0
    return float(lines["schema"]), float(lines["done"])


def _dump(data_dir: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, sorted, without row ids, fetch times or import timestamps."""
    with closing(sqlite3.connect(f"file:{data_dir / 'index.sqlite'}?mode=ro", uri=True)) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        out: dict[str, list[tuple[object, ...]]] = {}
        for table in tables:
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")
                       if row[1] not in ("id", "fetched_at")]
            rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            if table == "sync_state":
                rows = [row for row in rows if row[0] not in VOLATILE_STATE]
            out[table] = sorted(rows, key=repr)
    return out


def _finish_first_start(data_dir: Path) -> None:
    """The next start after a kill: must open the index and complete what was cut off."""
    engine = open_index(sqlite_url(data_dir))
    if IndexReader(engine).is_empty():
        import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    engine.dispose()


def test_kill_9_during_first_start_never_bricks_the_data_dir(tmp_path: Path) -> None:
    """24 kills at random points (half inside the schema creation) each restart into an equal index."""
    schema_seconds, total_seconds = _clean_run(tmp_path / "clean")
    clean = _dump(tmp_path / "clean")
    rng = random.Random(int(os.environ.get("BNS_KILL_SEED", time.time())))
    outcomes = []
    for attempt in range(KILLS):
        window = schema_seconds * 1.2 if attempt % 2 == 0 else total_seconds
        delay = rng.uniform(0, window)
        data_dir = tmp_path / f"killed-{attempt}"
        child = _child(data_dir)
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        outcomes.append(child.returncode)
        _finish_first_start(data_dir)
        assert _dump(data_dir) == clean, f"kill {attempt} at {delay:.3f} s left a different index"
    # Most kills must have landed before the child finished, or the test proved nothing.
    assert outcomes.count(-signal.SIGKILL) >= KILLS * 3 // 4, outcomes


def test_a_migration_that_fails_halfway_leaves_no_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole upgrade is one transaction on SQLite too: a failure in the second revision
    (say, a full disk) also undoes the first revision's CREATE TABLEs."""
    import alembic.op

    def full_disk(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(alembic.op, "create_index", full_disk)
    with pytest.raises(Exception, match="disk is full"):
        open_index(sqlite_url(tmp_path))
    with closing(sqlite3.connect(tmp_path / "index.sqlite")) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == []
    monkeypatch.undo()
    assert IndexReader(open_index(sqlite_url(tmp_path))).is_empty()
