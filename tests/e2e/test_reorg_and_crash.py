"""An index that went through a reorg, or a `kill -9` mid-sync, equals one built cleanly.

Both tests run `bns-resolver sync` as a subprocess against the test bitcoind and compare
the chain-derived tables (names, namespaces, chain_records, blocks, undo_log without row
ids, sync_state without generation/tip) of the two data directories row for row.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

from tests.support.bitcoind import BitcoindServer
from tests.support.bns_ops import replay, update, zonefile, zonefile_hash
from tests.support.bns_scenarios import NAMESPACE, build_long_chain, build_scenario
from tests.support.index_cli import SERVE_CONFIG, cli, diff_dumps, dump_index, sync_args, synced_height, write_config
from tests.support.dns_fixtures import ServerProcess

pytestmark = pytest.mark.timeout(120)


def _a_records(server: ServerProcess, name: str) -> tuple[int, list[str]]:
    reply = server.query(name, "A")
    assert reply.rcode() != dns.rcode.NOERROR or reply.flags & dns.flags.AA
    return reply.rcode(), sorted(rd.to_text() for rrset in reply.answer
                                 if rrset.rdtype == dns.rdatatype.A for rd in rrset)


def _wait_for_height(data_dir: Path, process: subprocess.Popen[bytes], above: int, *, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        height = synced_height(data_dir)
        if height is not None and height > above:
            return height
        if process.poll() is not None:
            raise AssertionError(f"sync exited ({process.returncode}) before passing block {above}")
        time.sleep(0.01)
    raise AssertionError(f"sync did not pass block {above} within {timeout} s")


@contextmanager
def _sync_process(args: list[str], log_path: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A `bns-resolver sync` child; never left running when the test fails."""
    with open(log_path or os.devnull, "wb") as log:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def _kill(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL


def test_reorg_resync_equals_a_fresh_sync_of_the_new_branch(tmp_path: Path) -> None:
    """A 3-block reorg that drops carol's revoke and adds an update of alice: the re-synced
    index equals a fresh sync of the new chain, and a DNS server running on it all along
    switches to the new branch's answers."""
    scenario = build_scenario()
    chain = scenario.chain
    revoke_height = chain.height - 2
    assert chain.accepted(revoke_height) == [("NAME_REVOKE", f"carol.{NAMESPACE}")]
    new_alice = zonefile(f"alice.{NAMESPACE}", "192.0.2.99", uri="https://alice.example/v2")
    scenario.zonefiles[zonefile_hash(new_alice)] = new_alice
    folder = scenario.write_zonefiles(tmp_path / "zonefiles")
    config = write_config(tmp_path / "sync.toml")
    branch = chain.fork(3, tag=b"reorg")
    update(branch, scenario.wallets["alice"], f"alice.{NAMESPACE}", zonefile_hash(new_alice))
    branch.mine(4)  # one block longer than what it replaces
    assert branch.accepted(revoke_height) == [("NAME_UPDATE", f"alice.{NAMESPACE}")]

    a, b = tmp_path / "a", tmp_path / "b"
    with BitcoindServer(chain="regtest") as node:
        node.serve_builder(chain.chain)
        first = cli(*sync_args(node.url, a, config, folder))
        assert first.returncode == 0, first.stderr
        before = dump_index(a)
        server = ServerProcess(a, config=SERVE_CONFIG.format(namespace=NAMESPACE)).start()
        try:
            assert _a_records(server, f"carol.{NAMESPACE}.") == (dns.rcode.NXDOMAIN, [])
            assert _a_records(server, f"alice.{NAMESPACE}.") == (dns.rcode.NOERROR, ["192.0.2.1"])
            node.stage_reorg(3, branch.blocks[-4:])
            again = cli(*sync_args(node.url, a, config, folder))
            assert again.returncode == 0, again.stderr
            assert "reorg" in again.stderr.lower(), again.stderr
            _wait_for_answer(server, f"carol.{NAMESPACE}.", (dns.rcode.NOERROR, ["192.0.2.3"]))
            assert _a_records(server, f"alice.{NAMESPACE}.") == (dns.rcode.NOERROR, ["192.0.2.99"])
            assert _a_records(server, f"bob.{NAMESPACE}.") == (dns.rcode.NOERROR, ["192.0.2.2"])
        finally:
            server.stop()
        fresh = cli(*sync_args(node.url, b, config, folder))
        assert fresh.returncode == 0, fresh.stderr

    after, clean = dump_index(a), dump_index(b)
    assert after != before
    assert after == clean, diff_dumps(after, clean)
    _, outcomes = replay(branch.blocks)
    status = json.loads(cli("status", "--json", "--data-dir", str(a)).stdout)
    assert (status["height"], status["consensus_hash"]) == (outcomes[-1].height, outcomes[-1].consensus_hash)


def _wait_for_answer(server: ServerProcess, name: str, expected: tuple[int, list[str]], *,
                     timeout: float = 15) -> None:
    """Until the running server answers `expected` (it re-reads the index every few seconds)."""
    deadline = time.monotonic() + timeout
    got = _a_records(server, name)
    while got != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        got = _a_records(server, name)
    assert got == expected, f"{name}: still {got} after {timeout} s"


def test_kill_9_mid_sync_then_resume_equals_a_clean_sync(tmp_path: Path) -> None:
    """sync is SIGKILLed twice — once while committing blocks at full speed, once while stuck
    retrying a vanished bitcoind — and the resumed index equals a clean sync's."""
    chain = build_long_chain(330)
    first_block, tip = chain.profile.first_block, chain.height
    config = write_config(tmp_path / "sync.toml")
    crashed, clean = tmp_path / "crashed", tmp_path / "clean"
    with BitcoindServer(chain="regtest") as node:
        node.serve_builder(chain.chain)
        args = [sys.executable, "-m", "bns_resolver.cli", *sync_args(node.url, crashed, config)]

        # 1. Killed at full speed: wherever it lands, possibly inside a block's transaction.
        with _sync_process(args) as hot:
            _wait_for_height(crashed, hot, first_block + 60)
            _kill(hot)
        killed_hot = synced_height(crashed)
        assert killed_hot is not None and first_block + 60 < killed_hot < tip

        # 2. Killed while stuck: bitcoind goes away, the client retries, we kill it there.
        log_path = tmp_path / "stuck.log"
        with _sync_process(args, log_path) as stuck:
            _wait_for_height(crashed, stuck, killed_hot + 40)
            node.go_down()
            try:
                _wait_for_retry_log(log_path, stuck)
                killed_stuck = synced_height(crashed)
                _kill(stuck)
            finally:
                node.come_up()
        assert killed_stuck is not None and killed_hot + 40 < killed_stuck < tip
        assert synced_height(crashed) == killed_stuck  # nothing was half-written by the kill

        resumed = cli(*sync_args(node.url, crashed, config))
        assert resumed.returncode == 0, resumed.stderr
        assert f"index at block {tip}" in resumed.stdout
        fresh = cli(*sync_args(node.url, clean, config))
        assert fresh.returncode == 0, fresh.stderr

    got, want = dump_index(crashed), dump_index(clean)
    assert got == want, diff_dumps(got, want)
    _, outcomes = replay(chain.blocks)
    assert dict(got["sync_state"])["consensus_hash"] == outcomes[-1].consensus_hash


def _wait_for_retry_log(log_path: Path, process: subprocess.Popen[bytes], *, timeout: float = 20) -> None:
    """Until the sync logs that an RPC failed and it is retrying: from then on it sits inside
    that call (the fetcher is synchronous), so no further block can commit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "sync gave up while bitcoind was down"
        if "; retrying" in log_path.read_text(errors="replace"):
            return
        time.sleep(0.02)
    raise AssertionError(f"sync did not start retrying within {timeout} s: {log_path.read_text()[-2000:]}")
