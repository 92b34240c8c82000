"""bitcoind goes away in the middle of a sync under a running `serve`, and comes back.

The server must keep answering from the index it has (its height reported by `status` and
`/healthz`), say once per failed round why the sync stopped, and catch up by itself when
bitcoind is back — ending with an index equal to a clean sync's, table for table.

Two outages hit the same server: a short one, which the RPC client's retries ride out inside
the sync round, and one longer than the client's retry window, which fails the round so the
next round has to start over. The child's retry window is cut from 60 s to 2 s (the code
path is the same; only the wait is shorter) so the test takes seconds, not minutes.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.rcode
import dns.rdatatype
import pytest

from tests.support.bitcoind import BitcoindServer
from tests.support.bns_scenarios import NAMESPACE, build_scenario
from tests.support.index_cli import cli, diff_dumps, dump_index, sync_args, write_config
from tests.support.dns_fixtures import ServerProcess

pytestmark = pytest.mark.timeout(180)

RETRY_WINDOW = 2.0  # seconds the child's RPC client keeps retrying one call
# The same `bns-resolver` entry point, with the RPC client's retry window shortened.
_SHORT_RETRY_SERVE = (
    "import sys\n"
    "from bns_resolver.chain import rpc\n"
    f"rpc.BitcoindRPC.__init__.__kwdefaults__['retry_for'] = {RETRY_WINDOW}\n"
    "from bns_resolver.cli import main\n"
    "sys.exit(main())\n"
)


class _NodeThatFalls(BitcoindServer):
    """A test bitcoind that, once armed, goes down while answering the first getblock above a height."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fall_above: int | None = None
        self.down_for: float | None = None  # None: stay down until come_up()
        self.fell = threading.Event()

    def handle_one(self, request: Any, *, warming: bool) -> tuple[int, dict[str, Any]] | None:
        if self._should_fall(request):
            self.go_down()  # drops every connection, this request's too: the client sees it cut
            self.fell.set()
            if self.down_for is not None:
                threading.Timer(self.down_for, self.come_up).start()
        return super().handle_one(request, warming=warming)

    def _should_fall(self, request: Any) -> bool:
        if self.fall_above is None or not isinstance(request, dict) or request.get("method") != "getblock":
            return False
        height = self._state.height_of(str((request.get("params") or [""])[0]))
        if height is None or height <= self.fall_above:
            return False
        self.fall_above = None
        return True


def _server_status(data_dir: Path) -> dict[str, Any]:
    shown = cli("status", "--json", "--data-dir", str(data_dir), timeout=60)
    assert shown.returncode == 0, shown.stderr
    status: dict[str, Any] = json.loads(shown.stdout)
    return status


def _healthz(data_dir: Path) -> tuple[int, dict[str, Any]]:
    base = json.loads((data_dir / "server.json").read_text())["endpoints"][0]
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def _a_records(server: ServerProcess, name: str) -> tuple[int, list[str]]:
    reply = server.query(name, "A")
    return reply.rcode(), sorted(rd.to_text() for rrset in reply.answer
                                 if rrset.rdtype == dns.rdatatype.A for rd in rrset)


def _wait(what: str, check: Callable[[], bool], server: ServerProcess, *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert server.alive(), f"the server exited: {server.log()[-2000:]}"
        assert time.monotonic() < deadline, f"{what} not within {timeout} s: {server.log()[-2000:]}"
        time.sleep(0.1)


def _serving_at(server: ServerProcess, data_dir: Path, height: int) -> None:
    """The server answers alice from its index and says, in status and /healthz, where that index is."""
    assert _a_records(server, f"alice.{NAMESPACE}.") == (dns.rcode.NOERROR, ["192.0.2.1"])
    assert _server_status(data_dir)["server"]["height"] == height
    code, health = _healthz(data_dir)
    assert (code, health["ready"], health["height"]) == (200, True, height), health


def test_bitcoind_down_mid_sync_keeps_serving_and_the_sync_resumes(tmp_path: Path) -> None:
    scenario = build_scenario()
    blocks = scenario.chain.chain.blocks
    folder = scenario.write_zonefiles(tmp_path / "zonefiles")
    data, clean = tmp_path / "data", tmp_path / "clean"
    with _NodeThatFalls(chain="regtest") as node:
        node.set_chain(blocks[:263], scenario.chain.chain.external_prevouts)  # alice has her zone file at 262
        config = (f'[namespaces]\nicann_tlds = {{ {NAMESPACE} = false }}\n'
                  f'[chain]\nbitcoind = "{node.url}"\nnetwork = "regtest"\nconfirmations = 1\npoll_interval = 0.5\n'
                  f'[zonefiles]\nsources = ["dir:{folder}"]\n')
        server = ServerProcess(data, config=config)
        server.args[1:3] = ["-c", _SHORT_RETRY_SERVE]
        server.start()
        try:
            _wait("the first sync to block 262", lambda: _server_status(data)["server"]["height"] == 262, server)
            _wait("alice's answer", lambda: _a_records(server, f"alice.{NAMESPACE}.")[0] == dns.rcode.NOERROR,
                  server)

            # 1. A short outage, inside the retry window: the round rides it out.
            node.set_chain(blocks[:280], scenario.chain.chain.external_prevouts)
            node.down_for, node.fall_above = RETRY_WINDOW / 4, 262
            assert node.fell.wait(15), "the sync never asked for block 263"
            _wait("the sync to block 279", lambda: _server_status(data)["server"]["height"] == 279, server)
            assert "chain sync failed" not in server.log()

            # 2. A long outage, past the retry window: the round fails, the server keeps serving.
            node.fell.clear()
            node.down_for = None
            node.set_chain(blocks, scenario.chain.chain.external_prevouts)
            node.fall_above = 279
            assert node.fell.wait(15), "the sync never asked for block 280"
            _wait("the failed round's log line", lambda: "chain sync failed (will retry)" in server.log(), server,
                  timeout=RETRY_WINDOW * 4)
            time.sleep(1.5)  # several poll intervals with bitcoind away
            _serving_at(server, data, 279)
            node.come_up()
            tip = node.tip_height
            _wait("the resumed sync to the tip", lambda: _server_status(data)["server"]["height"] == tip, server)
            _wait("carol's revoke", lambda: _a_records(server, f"carol.{NAMESPACE}.")[0] == dns.rcode.NXDOMAIN,
                  server)
            assert _a_records(server, f"alice.{NAMESPACE}.") == (dns.rcode.NOERROR, ["192.0.2.1"])
            failures = [line for line in server.log().splitlines() if "chain sync failed" in line]
            assert 1 <= len(failures) <= 3 and all(len(line) < 400 for line in failures), failures
            assert "Traceback" not in server.log(), server.log()[-3000:]
        finally:
            assert server.stop() == 0, server.log()[-2000:]
        fresh = cli(*sync_args(node.url, clean, write_config(tmp_path / "sync.toml"), folder))
        assert fresh.returncode == 0, fresh.stderr

    got, want = dump_index(data), dump_index(clean)
    assert got == want, diff_dumps(got, want)
