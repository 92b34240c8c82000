"""A fleet of resolvers on one index, following it through the change feed.

Two `serve` processes (real subprocesses, real sockets), each with a compiled answer store of its
own, read one PostgreSQL index that `bns-resolver sync` (a third process) writes from a regtest
bitcoind; a block it commits reaches both within 2 s. And one resolver shows that a change of the
index leaves its forwarded (upstream) answers cached.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import dns.rcode
import pytest

from bns_resolver.hashing import hash160_hex
from bns_resolver.zonefiles.store import store_verified
from tests.support.bitcoind import BitcoindServer
from tests.support.bns_ops import BnsChain, preorder, register, update, zonefile
from tests.support.bns_scenarios import NAMESPACE, launch_namespace
from tests.support.index_cli import SERVE_CONFIG, cli, write_config
from tests.support.dns_fixtures import IndexSpec, NameSpec, ServerProcess, bns_only_config, make_index
from tests.support.upstream_stub import StubUpstream
from tests.support.postgres import shared_postgres_url

pytestmark = pytest.mark.timeout(180)

FOLLOW_SECONDS = 2.0  # a functional bound: the feed is polled every 0.5 s, not a benchmark


@pytest.fixture
def postgres_url() -> str:
    return shared_postgres_url("a fleet shares one PostgreSQL index: set BNS_TEST_POSTGRES_URL (.ci/run starts one)")


def _address(server: ServerProcess, name: str) -> str | None:
    try:
        reply = server.query(name, "A", timeout=1)
    except dns.exception.Timeout:
        return None
    if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
        return None
    return reply.answer[0][0].to_text()


def _sync(node: BitcoindServer, url: str, config: Path, folder: Path, data: Path) -> None:
    done = cli("sync", "--network", "regtest", "--bitcoind", node.url, "--config", str(config),
               "--data-dir", str(data), "--db", url, "--zonefile-source", f"dir:{folder}")
    assert done.returncode == 0, done.stderr


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    servers = [ServerProcess(tmp_path / f"resolver-{n}", config=SERVE_CONFIG.format(namespace=NAMESPACE),
                             extra=["--db", postgres_url]) for n in (1, 2)]
    yield servers[0], servers[1]
    for server in servers:
        server.stop()


def test_two_resolvers_on_one_postgresql_follow_a_block_within_two_seconds(
        tmp_path: Path, postgres_url: str, fleet: tuple[ServerProcess, ServerProcess]) -> None:
    chain = BnsChain()
    launch_namespace(chain)
    alice = chain.wallet("alice")
    fqn = f"alice.{NAMESPACE}"
    chain.mine()
    preorder(chain, alice, fqn)
    chain.mine()
    register(chain, alice, fqn)
    chain.mine()
    before, after = zonefile(fqn, "192.0.2.1"), zonefile(fqn, "192.0.2.99", www="192.0.2.98")
    update(chain, alice, fqn, hash160_hex(before))
    chain.mine()
    folder = tmp_path / "zonefiles"
    folder.mkdir()
    for content in (before, after):
        (folder / f"{hash160_hex(content)}.txt").write_bytes(content)
    config = write_config(tmp_path / "sync.toml")
    with BitcoindServer(chain="regtest") as node:
        node.serve_builder(chain.chain)
        _sync(node, postgres_url, config, folder, tmp_path / "writer")
        for server in fleet:
            server.start()
            _wait(lambda s=server: _address(s, fqn) == "192.0.2.1", f"{server.data_dir.name} answering", 30)
            _wait(lambda s=server: "answer store in use" in s.log(), "a compiled store", 30)
        update(chain, alice, fqn, hash160_hex(after))
        chain.mine()
        node.serve_builder(chain.chain)
        _sync(node, postgres_url, config, folder, tmp_path / "writer")
        committed = time.monotonic()
        pending = {server.data_dir.name: server for server in fleet}
        while pending and time.monotonic() - committed < 10:
            for name, server in list(pending.items()):
                if _address(server, fqn) == "192.0.2.99" and _address(server, f"www.{fqn}") == "192.0.2.98":
                    pending.pop(name)
        elapsed = time.monotonic() - committed
    print(f"fleet followed the block in {elapsed:.2f} s")  # shown with -s: the number the report quotes
    assert not pending, f"{sorted(pending)} still answer the old record after 10 s"
    assert elapsed <= FOLLOW_SECONDS, f"the fleet took {elapsed:.2f} s to follow the block"
    for server in fleet:
        # From each resolver's own store, brought up to date in place: no second compile.
        assert "answer store updated to change" in server.log() and server.log().count("answer store in use") == 1
        assert server.alive() and "Traceback" not in server.log()


def test_an_index_change_leaves_forwarded_answers_cached(tmp_path: Path, upstream: StubUpstream) -> None:
    """A new zone file changes one name's answers; the upstream's answer for example.com stays cached
    (the upstream is not asked again), while the changed name answers anew."""
    late = b"$ORIGIN late.id\n@ A 192.0.2.9\n"
    engine = make_index(tmp_path / "data", IndexSpec(names=[
        NameSpec("alice.id", b"$ORIGIN alice.id\n@ A 192.0.2.1\n"), NameSpec("late.id", late, store_zonefile=False)]))
    server = ServerProcess(tmp_path / "data", upstreams=[upstream.address], config=bns_only_config(["id"])).start()
    try:
        _wait(lambda: "answer store in use" in server.log(), "a compiled store", 30)
        assert _address(server, "example.com") == "93.184.216.34" and upstream.count("example.com") == 1
        asked = time.monotonic()
        assert server.query("late.id", "A").rcode() == dns.rcode.SERVFAIL  # its zone file is not held yet
        with engine.begin() as conn:
            assert store_verified(conn, hash160_hex(late), late, "test")  # as the fetcher stores it
        _wait(lambda: "answer store updated to change 1" in server.log(), "the feed's change in the store", 10)
        assert _address(server, "late.id") == "192.0.2.9"
        # The UDP replay table keeps an upstream answer's bytes for a second: past it, only the
        # forwarded cache can answer without asking the upstream.
        _wait(lambda: time.monotonic() - asked > 1.1, "the replayed bytes to expire", 5)
        assert _address(server, "example.com") == "93.184.216.34"
        assert upstream.count("example.com") == 1
        assert _address(server, "alice.id") == "192.0.2.1"
    finally:
        server.stop()


def _wait(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
