"""`kill -9` at 20 random points of a sync: wherever it lands (start-up, inside a flush batch, at a
flush), the restarted sync ends with an index equal to a clean sync's, table for table."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.bitcoind import BitcoindServer
from tests.support.bns_scenarios import build_long_chain
from tests.support.index_cli import cli, diff_dumps, dump_index, sync_args, synced_height, write_config

pytestmark = pytest.mark.timeout(600)

KILLS = 20


def test_kill_9_at_20_random_points_of_a_sync(tmp_path: Path) -> None:
    """Each of 20 fresh syncs is killed at a uniformly random moment of a clean sync's duration,
    then run again to the end: every one ends equal to the clean index."""
    chain = build_long_chain(250)
    config = write_config(tmp_path / "sync.toml")
    clean = tmp_path / "clean"
    rng = random.Random(int(os.environ.get("BNS_KILL_SEED", time.time())))
    with BitcoindServer(chain="regtest") as node:
        node.serve_builder(chain.chain)
        started = time.monotonic()
        assert cli(*sync_args(node.url, clean, config)).returncode == 0
        duration = time.monotonic() - started
        want = dump_index(clean)
        killed_at: list[int | None] = []
        for attempt in range(KILLS):
            crashed = tmp_path / f"crashed-{attempt}"
            args = [sys.executable, "-m", "bns_resolver.cli", *sync_args(node.url, crashed, config)]
            process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(rng.uniform(0, duration))
                process.send_signal(signal.SIGKILL)
            finally:
                process.wait(timeout=30)
            killed_at.append(synced_height(crashed) if process.returncode == -signal.SIGKILL else -1)
            resumed = cli(*sync_args(node.url, crashed, config))
            assert resumed.returncode == 0, resumed.stderr
            got = dump_index(crashed)
            assert got == want, f"kill {attempt} (index at {killed_at[-1]}): {diff_dumps(got, want)}"
    # Most kills landed before the sync finished, at different flushed heights (None: before the first).
    assert killed_at.count(-1) <= KILLS // 2 and len(set(killed_at) - {-1}) >= 2, killed_at
