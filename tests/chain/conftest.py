"""Fixtures: a regtest chain of real transactions served by the test bitcoind over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bns_resolver.chain.rpc import BitcoindRPC
from tests.support.bitcoind import BitcoindServer
from tests.support.chainbuilder import COIN, ChainBuilder, Wallet

BURN_SCRIPT = "76a914" + "00" * 20 + "88ac"


def add_bns_blocks(builder: ChainBuilder, wallet: Wallet, count: int) -> None:
    """`count` blocks, each with one BNS-looking tx, one plain payment and one non-id OP_RETURN."""
    other = builder.new_wallet()
    for i in range(count):
        builder.op_return_tx(wallet, b"id?" + bytes([i]) * 20, [(BURN_SCRIPT, 6400 + i)])
        builder.spend(wallet, [(other.script_pubkey, 12345)])
        builder.op_return_tx(wallet, b"xx?" + bytes([i]) * 20)
        builder.mine()


@pytest.fixture
def builder() -> ChainBuilder:
    chain = ChainBuilder()
    alice = chain.new_wallet("alice")
    chain.fund(alice, 10 * COIN)
    chain.mine()
    add_bns_blocks(chain, alice, 5)
    return chain


@pytest.fixture
def node(builder: ChainBuilder) -> Iterator[BitcoindServer]:
    with BitcoindServer() as server:
        server.serve_builder(builder)
        yield server


@pytest.fixture
def rpc(node: BitcoindServer) -> Iterator[BitcoindRPC]:
    client = BitcoindRPC(node.url, retry_for=5.0, sleep=lambda _: None)
    yield client
    client.close()
