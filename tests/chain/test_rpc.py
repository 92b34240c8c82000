"""BitcoindRPC against the test bitcoind over real HTTP."""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from bns_resolver.chain.rpc import (
    BitcoindRPC,
    BlockPrunedError,
    NodeUnreachableError,
    NodeWarmingUpError,
    RpcAuthError,
    RpcForbiddenError,
    RpcProtocolError,
    TxIndexRequiredError,
    WrongNetworkError,
    cookie_path,
)
from bns_resolver.errors import ChainError, RpcError
from tests.support.bitcoind import BitcoindServer
from tests.support.chainbuilder import ChainBuilder, txid_of


class FakeClock:
    """Time that only moves when the client sleeps; records the sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client(node: BitcoindServer, clock: FakeClock, **kwargs: object) -> BitcoindRPC:
    return BitcoindRPC(node.url, sleep=clock.sleep, clock=clock, **kwargs)  # type: ignore[arg-type]


def test_simple_calls_match_the_chain(rpc: BitcoindRPC, builder: ChainBuilder) -> None:
    """getblockcount/getblockhash/getbestblockhash agree with the builder's chain."""
    assert rpc.getblockcount() == builder.height
    assert rpc.getbestblockhash() == builder.tip_hash
    assert rpc.getblockhash(3) == builder.block_hash(3)
    assert rpc.getblockheader(builder.tip_hash)["height"] == builder.height


def test_batch_is_one_http_request(rpc: BitcoindRPC, node: BitcoindServer, builder: ChainBuilder) -> None:
    """getblockhashes sends one HTTP POST and returns hashes in request order."""
    before = node.http_posts
    heights = [5, 1, 7, 2]
    assert rpc.getblockhashes(heights) == [builder.block_hash(h) for h in heights]
    assert node.http_posts == before + 1


def test_batch_works_with_strict_jsonrpc2_and_legacy_nodes(builder: ChainBuilder) -> None:
    """Batches decode the same whether the node answers 2.0 strictly (Core >= 28) or not."""
    for strict in (True, False):
        with BitcoindServer(jsonrpc2_strict=strict) as node:
            node.serve_builder(builder)
            hashes = BitcoindRPC(node.url).getblockhashes([0, 1])
            assert hashes == [builder.block_hash(0), builder.block_hash(1)]


def test_empty_batch_sends_nothing(rpc: BitcoindRPC, node: BitcoindServer) -> None:
    """An empty batch is answered locally."""
    before = node.http_posts
    assert rpc.getblockhashes([]) == []
    assert node.http_posts == before


def test_amounts_are_decimal(rpc: BitcoindRPC, builder: ChainBuilder) -> None:
    """BTC amounts arrive as Decimal, never float."""
    block = rpc.getblock(builder.tip_hash, 2)
    assert isinstance(block["tx"][0]["vout"][0]["value"], Decimal)


def test_wrong_credentials_raise_auth_error(node: BitcoindServer) -> None:
    """HTTP 401 becomes RpcAuthError with advice, without retrying."""
    clock = FakeClock()
    bad = BitcoindRPC(node.url.replace(node.rpcpassword or "", "wrong"), sleep=clock.sleep, clock=clock)
    with pytest.raises(RpcAuthError, match="HTTP 401.*rpcuser/rpcpassword"):
        bad.getblockcount()
    assert clock.sleeps == []


def test_password_is_not_in_error_messages(node: BitcoindServer) -> None:
    """Errors name host:port, never the credentials."""
    bad = BitcoindRPC(node.url.replace(node.rpcpassword or "", "hunter2"))
    with pytest.raises(RpcAuthError) as info:
        bad.getblockcount()
    assert "hunter2" not in str(info.value) and f"127.0.0.1:{node.port}" in str(info.value)


def test_cookie_auth_and_rotation(builder: ChainBuilder, tmp_path: Path) -> None:
    """Cookie auth works, and a restarted node's new cookie is picked up after a 401."""
    with BitcoindServer(rpcuser=None, rpcpassword=None, datadir=tmp_path) as node:
        node.serve_builder(builder)
        path = cookie_path(tmp_path, "regtest")
        assert path == node.cookie_path and path.read_text().startswith("__cookie__:")
        rpc = BitcoindRPC(node.url_without_auth, cookie_file=path, sleep=lambda _: None)
        assert rpc.getblockcount() == builder.height
        old_cookie = path.read_text()
        node.go_down()
        node.come_up()
        assert path.read_text() != old_cookie
        assert rpc.getblockcount() == builder.height


def test_missing_cookie_means_node_not_running(tmp_path: Path) -> None:
    """No cookie file (bitcoind removes it on shutdown) is retried, then reported as unreachable."""
    clock = FakeClock()
    rpc = BitcoindRPC("http://127.0.0.1:1", cookie_file=tmp_path / ".cookie", sleep=clock.sleep, clock=clock,
                      retry_for=5.0)
    with pytest.raises(NodeUnreachableError, match="no cookie file"):
        rpc.getblockcount()
    assert clock.sleeps


def test_cookie_client_survives_a_restart(builder: ChainBuilder, tmp_path: Path) -> None:
    """While the node is down its cookie is gone; the client waits and uses the new one."""
    with BitcoindServer(rpcuser=None, rpcpassword=None, datadir=tmp_path) as node:
        node.serve_builder(builder)
        clock = FakeClock()
        rpc = BitcoindRPC(node.url_without_auth, cookie_file=node.cookie_path, sleep=clock.sleep, clock=clock)
        assert rpc.getblockcount() == builder.height
        node.go_down()
        assert node.cookie_path is not None and not node.cookie_path.exists()

        def restart(seconds: float) -> None:
            clock.sleep(seconds)
            if len(clock.sleeps) == 2:
                node.come_up()

        rpc._sleep = restart
        assert rpc.getbestblockhash() == builder.tip_hash


def test_forbidden_client(node: BitcoindServer) -> None:
    """HTTP 403 (rpcallowip) is reported at once with the setting to change."""
    node.allow_client = False
    clock = FakeClock()
    with pytest.raises(RpcForbiddenError, match="rpcallowip") as info:
        client(node, clock).getblockcount()
    assert clock.sleeps == [] and info.value.code == 403


def test_url_needs_credentials() -> None:
    """Without user:password or a cookie, the client refuses to start."""
    with pytest.raises(ValueError):
        BitcoindRPC("http://127.0.0.1:8332")


def test_rpc_errors_keep_their_code(rpc: BitcoindRPC) -> None:
    """-8 out of range and -5 block not found are RpcError with the node's code."""
    with pytest.raises(RpcError, match="Block height out of range") as info:
        rpc.getblockhash(10_000)
    assert info.value.code == -8
    with pytest.raises(RpcError, match="Block not found") as info:
        rpc.getblock("11" * 32)
    assert info.value.code == -5


def test_error_inside_a_batch_names_the_call(rpc: BitcoindRPC) -> None:
    """A failing item makes the batch raise that item's error."""
    with pytest.raises(RpcError, match="getblockhash failed: Block height out of range"):
        rpc.getblockhashes([1, 10_000])


def test_unknown_method(rpc: BitcoindRPC) -> None:
    """-32601 (HTTP 404) is reported as an unknown RPC."""
    with pytest.raises(RpcError, match="does not know the RPC 'getfoo'") as info:
        rpc._call("getfoo")
    assert info.value.code == -32601


def test_pruned_block(rpc: BitcoindRPC, node: BitcoindServer, builder: ChainBuilder) -> None:
    """-1 'Block not available (pruned data)' becomes BlockPrunedError with advice."""
    node.prune(range(50))
    with pytest.raises(BlockPrunedError, match="without -prune") as info:
        rpc.getblock(builder.block_hash(10))
    assert info.value.code == -1
    assert rpc.getblockchaininfo()["pruned"] is True


def test_missing_txindex(rpc: BitcoindRPC, node: BitcoindServer, builder: ChainBuilder) -> None:
    """getrawtransaction -5 '...Use -txindex...' becomes TxIndexRequiredError."""
    txid = txid_of(builder.blocks[-1].vtx[1])
    assert rpc.getrawtransactions([txid])[0]["txid"] == txid
    node.txindex = False
    with pytest.raises(TxIndexRequiredError, match="-txindex=1"):
        rpc.getrawtransactions([txid])


def test_wrong_network(rpc: BitcoindRPC) -> None:
    """check_network compares getblockchaininfo's chain with the configured one."""
    assert rpc.check_network("regtest")["chain"] == "regtest"
    with pytest.raises(WrongNetworkError, match="on chain 'regtest'.*configured for 'main'") as info:
        rpc.check_network("main")
    assert isinstance(info.value, ChainError)


def test_warmup_is_retried_with_backoff(node: BitcoindServer, caplog: pytest.LogCaptureFixture) -> None:
    """-28 is retried with doubling, capped delays and a single warning."""
    clock = FakeClock()
    node.warmup_requests = 6
    rpc = client(node, clock, backoff=(0.25, 1.0))
    with caplog.at_level(logging.WARNING, logger="bns_resolver.chain.rpc"):
        assert rpc.getblockcount() == node.tip_height
    assert clock.sleeps == [0.25, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert len([r for r in caplog.records if "warming up" in r.getMessage()]) == 1


def test_warmup_in_a_batch_is_retried(node: BitcoindServer) -> None:
    """-28 inside batch replies is retried too."""
    clock = FakeClock()
    node.warmup_requests = 1
    assert len(client(node, clock).getblockhashes([0, 1, 2])) == 3
    assert clock.sleeps == [0.25]


def test_warmup_gives_up_after_retry_for(node: BitcoindServer) -> None:
    """A node that never finishes warming up ends in NodeWarmingUpError."""
    clock = FakeClock()
    node.warmup_requests = 10_000
    with pytest.raises(NodeWarmingUpError, match="still starting|Loading block index"):
        client(node, clock, retry_for=10.0).getblockcount()
    assert sum(clock.sleeps) == pytest.approx(10.0)


def test_unreachable_node(node: BitcoindServer) -> None:
    """A node that stays down ends in NodeUnreachableError naming host:port."""
    clock = FakeClock()
    node.go_down()
    with pytest.raises(NodeUnreachableError, match=rf"127.0.0.1:{node.port}.*is bitcoind running"):
        client(node, clock, retry_for=30.0).getblockcount()
    assert max(clock.sleeps) == 4.0


def test_node_down_then_up(node: BitcoindServer) -> None:
    """Calls made while the node restarts succeed once it is back."""
    clock = FakeClock()
    rpc = client(node, clock)
    assert rpc.getblockcount() == node.tip_height  # keep-alive connection now open
    node.go_down()

    def restart_on_third_sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 3:
            node.come_up()

    rpc._sleep = restart_on_third_sleep
    assert rpc.getblockhashes([0, 1]) == [node.block_hash(0), node.block_hash(1)]
    assert len(clock.sleeps) == 3


def test_dropped_connection_is_retried(rpc: BitcoindRPC, node: BitcoindServer) -> None:
    """A connection closed mid-request is retried on a fresh one."""
    node.drop_requests = 2
    assert rpc.getblockcount() == node.tip_height


def test_per_call_timeout(node: BitcoindServer) -> None:
    """timeout= applies to one call; the client default stays."""
    rpc = BitcoindRPC(node.url, timeout=7.0)
    rpc.getblock(node.block_hash(1), 1, timeout=0.5)
    assert rpc._conn is not None and rpc._conn.timeout == 0.5
    rpc.getblocks([node.block_hash(1)], 1, timeout=0.25)
    assert rpc._conn.timeout == 0.25
    rpc.getblockcount()
    assert rpc._conn.timeout == 7.0


def test_cookie_path_per_network(tmp_path: Path) -> None:
    """bitcoind's cookie lives in the network's subdirectory (mainnet: the datadir)."""
    assert cookie_path(tmp_path, "main") == tmp_path / ".cookie"
    assert cookie_path(tmp_path, "test") == tmp_path / "testnet3" / ".cookie"
    assert cookie_path(tmp_path, "regtest") == tmp_path / "regtest" / ".cookie"


def test_shared_between_threads(node: BitcoindServer, builder: ChainBuilder) -> None:
    """Concurrent callers each get their own answers over the shared connection (no retries)."""
    rpc = BitcoindRPC(node.url, retry_for=0)
    heights = list(range(builder.height + 1))
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for height in heights[offset::4]:
                assert rpc.getblockhash(height) == builder.block_hash(height)
                assert rpc.getblockhashes([height, 0]) == [builder.block_hash(height), builder.block_hash(0)]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_busy_node_is_retried(node: BitcoindServer) -> None:
    """HTTP 503 'Work queue depth exceeded' (not JSON) is retried like other transient trouble."""
    clock = FakeClock()
    node.busy_requests = 3
    assert client(node, clock).getblockcount() == node.tip_height
    assert clock.sleeps == [0.25, 0.5, 1.0]


def test_non_json_forever_ends_in_protocol_error(node: BitcoindServer) -> None:
    """A URL that keeps answering non-JSON is reported as probably not bitcoind's RPC port."""
    clock = FakeClock()
    node.busy_requests = 10_000
    with pytest.raises(RpcProtocolError, match="503 Service Unavailable.*really bitcoind's RPC port"):
        client(node, clock, retry_for=5.0).getblockcount()


def test_failure_logs_are_rate_limited(node: BitcoindServer, caplog: pytest.LogCaptureFixture) -> None:
    """While failing, one warning per log_every seconds; one info line on recovery."""
    clock = FakeClock()
    node.warmup_requests = 5
    rpc = client(node, clock, backoff=(1.0, 1.0), log_every=2.5)
    with caplog.at_level(logging.INFO, logger="bns_resolver.chain.rpc"):
        rpc.getblockcount()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert clock.sleeps == [1.0] * 5
    assert len(warnings) == 2  # at t=0 and t=3
    assert len(infos) == 1 and "answers again" in infos[0].getMessage()
