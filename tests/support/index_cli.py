"""Driving the `bns-resolver` CLI from tests and reading the index it wrote (read-only SQLite)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

SYNC_CONFIG = """
[chain]
confirmations = 1
"""
SERVE_CONFIG = """
[namespaces]
icann_tlds = {{ {namespace} = false }}
"""
# sync_state keys that say when, not what (a fresh build and a resumed one differ there),
# and what a DNS server that ran on the directory noted about namespace policies.
VOLATILE_STATE = {"generation", "tip", "namespace_policy"}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bns_resolver.cli", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def sync_args(url: str, data_dir: Path, config: Path, zonefiles: Path | None = None) -> list[str]:
    args = ["sync", "--network", "regtest", "--bitcoind", url, "--config", str(config), "--data-dir", str(data_dir)]
    if zonefiles is not None:
        args += ["--zonefile-source", f"dir:{zonefiles}"]
    return args


def write_config(path: Path, text: str = SYNC_CONFIG) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def index_file(data_dir: Path) -> Path:
    return data_dir / "index.sqlite"


def read_only(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{index_file(data_dir)}?mode=ro", uri=True, timeout=5)


def synced_height(data_dir: Path) -> int | None:
    """sync_state.height as another process sees it (None before the first commit)."""
    if not index_file(data_dir).exists():
        return None
    try:
        with closing(read_only(data_dir)) as conn:
            row = conn.execute("SELECT value FROM sync_state WHERE key = 'height'").fetchone()
    except sqlite3.OperationalError:  # schema not created yet, or a writer holds the lock
        return None
    return int(row[0]) if row and row[0] else None


def dump_index(data_dir: Path) -> dict[str, list[tuple]]:
    """The chain-derived tables, sorted, without row ids or volatile bookkeeping."""
    with closing(read_only(data_dir)) as conn:
        out: dict[str, list[tuple]] = {}
        for table in ("names", "namespaces", "chain_records", "blocks"):
            out[table] = sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
        out["sync_state"] = sorted(row for row in conn.execute("SELECT key, value FROM sync_state")
                                   if row[0] not in VOLATILE_STATE)
        out["undo_log"] = sorted(conn.execute("SELECT height, kind, key, before_json FROM undo_log").fetchall(),
                                 key=repr)
    return out


def diff_dumps(a: dict[str, list[tuple]], b: dict[str, list[tuple]], limit: int = 5) -> str:
    """A short human-readable difference of two dumps ('' when equal)."""
    lines = []
    for table in sorted(set(a) | set(b)):
        rows_a, rows_b = set(a.get(table, [])), set(b.get(table, []))
        for row in sorted(rows_a - rows_b, key=repr)[:limit]:
            lines.append(f"{table}: only in first: {row}")
        for row in sorted(rows_b - rows_a, key=repr)[:limit]:
            lines.append(f"{table}: only in second: {row}")
        if len(a.get(table, [])) != len(b.get(table, [])):
            lines.append(f"{table}: {len(a.get(table, []))} rows vs {len(b.get(table, []))}")
    return "\n".join(lines)
