"""ChainBuilder makes real regtest blocks: valid signatures, merkle roots, PoW and links."""

from __future__ import annotations

import gzip
import json

import pytest
from bitcoin.core import CheckBlock, b2lx
from bitcoin.core.scripteval import SCRIPT_VERIFY_P2SH, VerifyScript

from tests.support.chainbuilder import (
    COIN,
    REGTEST_BITS,
    ChainBuilder,
    corpus_chain,
    derive_prevout_script,
    txid_of,
)
from tests.support.corpus import corpus_dir

CORPUS = corpus_dir()


def test_starts_on_regtest_genesis_with_mature_coins() -> None:
    """Block 0 is the real regtest genesis; after 101 blocks, consensus lets block 102 spend
    the coinbases of blocks 1 and 2 (maturity 100)."""
    builder = ChainBuilder()
    assert builder.block_hash(0) == "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    assert builder.height == 101 and builder.balance(builder.miner) == 100 * COIN


def test_blocks_are_valid_and_linked(builder: ChainBuilder) -> None:
    """Every block passes python-bitcoinlib's CheckBlock (merkle root, PoW at 0x207fffff)."""
    for height in range(1, builder.height + 1):
        block = builder.blocks[height]
        assert block.hashPrevBlock == builder.blocks[height - 1].GetHash()
        assert block.nBits == REGTEST_BITS
        CheckBlock(block, fCheckPoW=True, cur_time=block.nTime + 1)


def test_spends_are_signed(builder: ChainBuilder) -> None:
    """Every non-coinbase input's signature verifies against the output it spends."""
    outputs = {(txid_of(tx), n): o for b in builder.blocks for tx in b.vtx for n, o in enumerate(tx.vout)}
    checked = 0
    for block in builder.blocks[1:]:
        for tx in block.vtx[1:]:
            for index, txin in enumerate(tx.vin):
                spent = outputs[(b2lx(txin.prevout.hash), txin.prevout.n)]
                VerifyScript(txin.scriptSig, spent.scriptPubKey, tx, index, (SCRIPT_VERIFY_P2SH,))
                checked += 1
    assert checked >= 15


def test_op_return_tx_layout() -> None:
    """Output 0 is OP_RETURN <payload>, then the extra outputs, then change; fee as asked."""
    builder = ChainBuilder()
    wallet = builder.new_wallet("w")
    builder.fund(wallet, COIN)
    burn = "76a914" + "00" * 20 + "88ac"
    tx = builder.op_return_tx(wallet, b"id?" + b"\x01" * 20, [(burn, 6400)], fee=1000)
    assert tx.vout[0].scriptPubKey.hex() == "6a17" + (b"id?" + b"\x01" * 20).hex()
    assert tx.vout[1].nValue == 6400 and tx.vout[2].scriptPubKey == wallet.script_pubkey
    assert tx.vout[2].nValue == COIN - 6400 - 1000
    block = builder.mine()[0]
    assert [txid_of(t) for t in block.vtx[1:]] == [txid_of(builder.blocks[-1].vtx[1]), txid_of(tx)]
    assert block.vtx[0].vout[0].nValue == 50 * COIN + 10_000 + 1000


def test_coinbase_pays_subsidy_plus_fees() -> None:
    builder = ChainBuilder()
    wallet = builder.new_wallet("w")
    builder.fund(wallet, COIN, fee=777)
    block = builder.mine()[0]
    assert block.vtx[0].vout[0].nValue == 50 * COIN + 777


def test_insufficient_funds() -> None:
    builder = ChainBuilder()
    with pytest.raises(ValueError, match="needs"):
        builder.spend(builder.new_wallet("poor"), [("51", 1)])


def test_fork_makes_a_different_branch(builder: ChainBuilder) -> None:
    """A fork shares history below the fork point and differs from it on."""
    branch = builder.fork(3)
    branch.mine(3)
    assert branch.height == builder.height
    assert branch.block_hash(builder.height - 3) == builder.block_hash(builder.height - 3)
    changed = range(builder.height - 2, builder.height + 1)
    assert all(branch.block_hash(h) != builder.block_hash(h) for h in changed)


def test_derive_prevout_script() -> None:
    """p2pkh from (sig, pubkey); p2sh from the redeem script."""
    pubkey = bytes.fromhex("02" + "11" * 32)
    p2pkh = derive_prevout_script(bytes([71]) + b"\x30" * 71 + bytes([33]) + pubkey)
    assert p2pkh is not None and p2pkh.hex().startswith("76a914") and p2pkh.hex().endswith("88ac")
    p2sh = derive_prevout_script(bytes.fromhex("00") + bytes([3]) + b"\x51\x51\xae")
    assert p2sh is not None and p2sh.hex().startswith("a914")


def test_corpus_chain_places_txs_and_prevouts() -> None:
    """A recorded scenario becomes blocks with each raw tx at its vtxindex from first_block on."""
    path = CORPUS / "0.14.1" / "name_import_renew_transfer.json.gz"
    if not path.exists():
        pytest.skip(f"corpus scenario {path} not available")
    with gzip.open(path) as handle:
        scenario = json.load(handle)
    builder = corpus_chain(scenario)
    assert builder.height == scenario["blocks"][-1]["height"]
    for block in scenario["blocks"]:
        raw = builder.blocks[block["height"]]
        for vtxindex, txid in zip(block["tx_vtxindex"], block["txids"], strict=True):
            assert txid_of(raw.vtx[vtxindex]) == txid
    for key, prevout in scenario["external_prevouts"].items():
        txid, vout = key.split(":")
        assert builder.external_prevouts[(txid, int(vout))][0] == prevout["script_pubkey"]
