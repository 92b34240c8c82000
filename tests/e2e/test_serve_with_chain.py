"""`serve` with a bitcoind: it syncs in the background, fetches zone files, and answers meanwhile."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import dns.rcode

from tests.support.bitcoind import BitcoindServer
from tests.support.bns_scenarios import build_scenario
from tests.support.dns_fixtures import ServerProcess


def test_serve_syncs_and_answers_newly_synced_names_promptly(tmp_path: Path) -> None:
    """A fresh data dir with a bitcoind: no false NXDOMAIN while syncing, alice answers within 10 s."""
    scenario = build_scenario()
    folder = scenario.write_zonefiles(tmp_path / "zf")
    with BitcoindServer(chain="regtest") as node:
        node.serve_builder(scenario.chain.chain)
        config = (f'[namespaces]\nicann_tlds = {{ e2etests = false }}\n[chain]\nbitcoind = "{node.url}"\n'
                  f'network = "regtest"\nconfirmations = 1\npoll_interval = 0.5\n'
                  f'[zonefiles]\nsources = ["dir:{folder}"]\n')
        server = ServerProcess(tmp_path / "data", config=config).start()
        try:
            deadline = time.monotonic() + 10
            reply = server.query("alice.e2etests.", "A")
            while reply.rcode() != dns.rcode.NOERROR and time.monotonic() < deadline:
                assert reply.rcode() != dns.rcode.NXDOMAIN, "a syncing index must not deny a name"
                reply = server.query("alice.e2etests.", "A")
            assert reply.rcode() == dns.rcode.NOERROR, server.log()[-1500:]
            status = json.loads(subprocess.run(
                [sys.executable, "-m", "bns_resolver.cli", "status", "--json", "--data-dir", str(tmp_path / "data")],
                capture_output=True, text=True, timeout=60).stdout)
            assert status["source"] == "chain" and status["tip"] == node.tip_height
            assert status["lag"] == 0
        finally:
            server.stop()
