"""`bns-resolver sync` against the test bitcoind, checked against the reference's consensus hashes."""

from __future__ import annotations

import json
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
