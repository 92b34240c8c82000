"""`bns-resolver sync` against the test bitcoind, checked against the reference's consensus hashes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bitcoind import BitcoindServer
from tests.support.chainbuilder import corpus_chain
from tests.support.corpus import corpus_files, load_scenario

# 0.14.1-era regtest knobs, as the reference's test mode set them (consensus-corpus README).
REGTEST_0141 = """
[chain]
network = "regtest"
confirmations = 1
rules = "0.14.1"
import_keyring_size = 5
namespace_reveal_expire = 144
namespace_1char_cost = 4100000000
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bns_resolver.cli", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def node() -> Iterator[BitcoindServer]:
    with BitcoindServer(chain="regtest") as server:
        yield server


def _scenario(name: str) -> object:
    matches = [p for p in corpus_files() if p.parent.name == "0.14.1" and p.name == name]
    if not matches:
        pytest.skip(f"corpus scenario 0.14.1/{name} not available")
    return load_scenario(matches[0])


def test_sync_reaches_the_reference_consensus_hash(node: BitcoindServer, tmp_path: Path) -> None:
    """A full CLI sync ends at the scenario's last block with the reference's consensus hash."""
    scenario = _scenario("name_preorder_register_update_accounts.json.gz")
    node.serve_builder(corpus_chain(scenario.data))  # type: ignore[attr-defined]
    config = tmp_path / "regtest.toml"
    config.write_text(REGTEST_0141)
    data = str(tmp_path / "data")
    synced = _cli("sync", "--config", str(config), "--data-dir", data, "--bitcoind", node.url)
    assert synced.returncode == 0, synced.stderr
    status = json.loads(_cli("status", "--json", "--data-dir", data).stdout)
    last = scenario.data["blocks"][-1]  # type: ignore[attr-defined]
    assert status["height"] == int(last["height"])
    assert status["consensus_hash"] == last["consensus_hash"]
    assert status["network"] == "regtest" and status["source"] == "chain"
    looked = _cli("lookup", "foo.test", "--data-dir", data)
    assert looked.returncode == 0 and "name foo.test" in looked.stdout


def test_sync_refuses_the_wrong_network(node: BitcoindServer, tmp_path: Path) -> None:
    """A regtest node given to a mainnet sync is refused with a message saying so."""
    scenario = _scenario("name_preorder_register_update_accounts.json.gz")
    node.serve_builder(corpus_chain(scenario.data))  # type: ignore[attr-defined]
    result = _cli("sync", "--data-dir", str(tmp_path / "data"), "--bitcoind", node.url)
    assert result.returncode == 2 and "regtest" in result.stderr and "Traceback" not in result.stderr


def test_sync_will_not_mix_with_a_snapshot(node: BitcoindServer, tmp_path: Path) -> None:
    """A data directory holding the imported snapshot is never extended from a chain."""
    data = str(tmp_path / "data")
    assert _cli("import-snapshot", "--data-dir", data).returncode == 0
    result = _cli("sync", "--data-dir", data, "--bitcoind", node.url, "--network", "regtest")
    assert result.returncode == 2 and "snapshot" in result.stderr


def test_undo_data_is_kept_only_as_deep_as_a_reorg_can_go(node: BitcoindServer, tmp_path: Path) -> None:
    """After a sync, undo rows older than the reorg limit are gone; newer ones stay."""
    from sqlalchemy import func, select

    from bns_resolver.chainsync import ChainSync
    from bns_resolver.config import ChainSettings
    from bns_resolver.index import schema
    from bns_resolver.index.db import open_index

    scenario = _scenario("name_preorder_register_update_accounts.json.gz")
    node.serve_builder(corpus_chain(scenario.data))  # type: ignore[attr-defined]
    engine = open_index(f"sqlite:///{tmp_path / 'index.sqlite'}")
    overrides = {"rules": "0.14.1", "import_keyring_size": 5, "namespace_reveal_expire": 144,
                 "namespace_1char_cost": 4100000000}
    chain_sync = ChainSync(engine, ChainSettings(bitcoind=node.url, network="regtest", confirmations=1,
                                                 profile=overrides))
    chain_sync.virtualchain.reorg_limit = 2
    result = chain_sync.sync()
    with engine.connect() as conn:
        lowest = conn.execute(select(func.min(schema.undo_log.c.height))).scalar()
    assert result.last_block is not None and lowest == result.last_block - 2



def _can_mount_tmpfs() -> bool:
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, timeout=10, check=False) if shutil.which("unshare") else None
    return probe is not None and probe.returncode == 0


def _sync_on_a_small_disk(node: BitcoindServer, config: Path, data: Path, spare_kib: int, out: Path) -> str:
    """Sync a copy of `data` on a tmpfs with `spare_kib` free; copy what is left to `out`; stderr."""
    used = sum(p.stat().st_size for p in data.iterdir())
    mount = out.with_name(out.name + "-mnt")
    mount.mkdir()
    script = (f"mount -t tmpfs -o size={(used // 4096 + 1) * 4096 + spare_kib * 1024} tmpfs {mount} && "
              f"cp -a {data}/. {mount}/ && {sys.executable} -m bns_resolver.cli sync --config {config} "
              f"--data-dir {mount} --bitcoind {node.url}; echo rc=$?; mkdir {out}; cp -a {mount}/. {out}/")
    run = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120,
                         check=False)
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "rc=0" in run.stdout or ("rc=2" in run.stdout and len(run.stderr.strip().splitlines()[-1]) < 300)
    return run.stderr


def test_full_disk_mid_sync_is_one_line_and_resuming_equals_a_clean_sync(node: BitcoindServer,
                                                                         tmp_path: Path) -> None:
    """The data dir sits on a nearly full tmpfs: sync stops with a one-line error and exit 2, the index
    is either as before or fully synced (never in between), and with room again it resumes to a clean
    sync's index.  Several sizes of free space, so the disk fills inside a batch at least once."""
    from tests.support.index_cli import dump_index

    if not _can_mount_tmpfs():
        pytest.skip("needs `unshare -m` and a tmpfs mount (root in a container or VM)")
    scenario = _scenario("name_preorder_register_update_accounts.json.gz")
    chain = corpus_chain(scenario.data)  # type: ignore[attr-defined]
    config = tmp_path / "regtest.toml"
    config.write_text(REGTEST_0141)
    node.serve_builder(chain)
    clean, data = tmp_path / "clean", tmp_path / "data"
    assert _cli("sync", "--config", str(config), "--data-dir", str(clean), "--bitcoind", node.url).returncode == 0
    node.set_chain(chain.blocks[:-4])
    assert _cli("sync", "--config", str(config), "--data-dir", str(data), "--bitcoind", node.url).returncode == 0
    before, after = dump_index(data), dump_index(clean)
    node.serve_builder(chain)
    kept_before = 0
    for spare in (40, 48, 56, 64):
        saved = tmp_path / f"after-{spare}"
        stderr = _sync_on_a_small_disk(node, config, data, spare, saved)
        assert dump_index(saved) in (before, after), f"{spare} KiB spare left a half-synced index"
        if dump_index(saved) == before and "database or disk is full; it keeps its last flushed block" in stderr:
            kept_before += 1
        resumed = _cli("sync", "--config", str(config), "--data-dir", str(saved), "--bitcoind", node.url)
        assert resumed.returncode == 0, resumed.stderr
        assert dump_index(saved) == after
    assert kept_before >= 1
