"""Block decoding: verbosity 3, the old-node fallback, the cheap scan and exact amounts."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from bitcoin.core import CBlock, CTransaction, b2lx

from bns_resolver.chain.blocks import (
    BlockDecoder,
    btc_to_sats,
    decode_block,
    is_candidate,
    op_return_data,
)
from bns_resolver.chain.rpc import BitcoindRPC, TxIndexRequiredError
from bns_resolver.chain.types import ChainBlock
from bns_resolver.errors import ChainError
from tests.support.bitcoind import BitcoindServer
from tests.support.chainbuilder import ChainBuilder, derived_prevouts, txid_of
from tests.support.corpus import REPO_ROOT

BURNCHAIN = REPO_ROOT.parent / "shared" / "data" / "bns-genesis" / "burnchain"
needs_fixtures = pytest.mark.skipif(not BURNCHAIN.is_dir(), reason=f"no burnchain fixtures at {BURNCHAIN}")


def decode_range(node: BitcoindServer, first: int, last: int, *, keep_all: bool = False) -> list[ChainBlock]:
    rpc = BitcoindRPC(node.url)
    hashes = rpc.getblockhashes(list(range(first, last + 1)))
    return BlockDecoder(rpc, keep_all=keep_all).decode(rpc.getblocks(hashes, 3))


def test_only_candidates_are_kept_at_their_position(node: BitcoindServer, builder: ChainBuilder) -> None:
    """Each block keeps its one `id` OP_RETURN tx, at vtxindex 1; other txs are dropped."""
    (block,) = decode_range(node, builder.height, builder.height)
    raw = builder.blocks[-1]
    assert block.block_hash == builder.tip_hash and block.prev_hash == builder.block_hash(builder.height - 1)
    assert [(t.vtxindex, t.txid) for t in block.txs] == [(1, txid_of(raw.vtx[1]))]
    assert block.txs[0].outputs[0].script_hex.startswith("6a176964")


def test_inputs_carry_their_spent_outputs(node: BitcoindServer, builder: ChainBuilder) -> None:
    """prevout (script and satoshis) equals the funding output in the builder's chain."""
    (block,) = decode_range(node, builder.height, builder.height, keep_all=True)
    outputs = {(txid_of(tx), n): o for b in builder.blocks for tx in b.vtx for n, o in enumerate(tx.vout)}
    assert block.txs[0].is_coinbase and block.txs[0].inputs[0].prevout is None
    for tx in block.txs[1:]:
        for txin in tx.inputs:
            funding = outputs[(txin.prev_txid, txin.prev_vout)]
            assert txin.prevout is not None
            got = (txin.prevout.value_sats, txin.prevout.script_hex)
            assert got == (funding.nValue, funding.scriptPubKey.hex())


def test_keep_all_keeps_every_tx_with_exact_values(node: BitcoindServer, builder: ChainBuilder) -> None:
    """keep_all=True returns every tx; values match the raw outputs to the satoshi."""
    blocks = decode_range(node, 100, builder.height, keep_all=True)
    for block, raw in zip(blocks, builder.blocks[100:], strict=True):
        assert [t.txid for t in block.txs] == [txid_of(tx) for tx in raw.vtx]
        assert [[o.value_sats for o in t.outputs] for t in block.txs] == [
            [o.nValue for o in tx.vout] for tx in raw.vtx]


@pytest.mark.parametrize("keep_all", [False, True])
def test_fallback_path_gives_identical_blocks(builder: ChainBuilder, keep_all: bool) -> None:
    """An old node (no verbosity 3, prevouts via getrawtransaction) yields the same ChainBlocks."""
    with BitcoindServer() as new, BitcoindServer(verbosity3=False) as old:
        new.serve_builder(builder)
        old.serve_builder(builder)
        for first in (100, builder.height):  # the tip alone needs prevouts from outside the batch
            modern = decode_range(new, first, builder.height, keep_all=keep_all)
            fallback = decode_range(old, first, builder.height, keep_all=keep_all)
            assert fallback == modern
        assert not any(m == "getrawtransaction" for m, _ in new.calls)
        assert any(m == "getrawtransaction" for m, _ in old.calls)


def test_fallback_fetches_only_prevouts_outside_the_batch(builder: ChainBuilder) -> None:
    """Parents found in the fetched blocks are not asked for again."""
    with BitcoindServer(verbosity3=False) as old:
        old.serve_builder(builder)
        decode_range(old, 100, builder.height, keep_all=True)
        asked = {params[0] for m, params in old.calls if m == "getrawtransaction"}
        in_batch = {txid_of(tx) for b in builder.blocks[100:] for tx in b.vtx}
        assert asked and not asked & in_batch


def test_fallback_without_txindex_says_so(builder: ChainBuilder) -> None:
    """Old node + no txindex -> TxIndexRequiredError."""
    with BitcoindServer(verbosity3=False, txindex=False) as old:
        old.serve_builder(builder)
        with pytest.raises(TxIndexRequiredError, match="-txindex=1"):
            decode_range(old, builder.height, builder.height)


def test_verbosity_1_block_is_refused() -> None:
    """A block without transaction details cannot be decoded."""
    with pytest.raises(ChainError, match="verbosity"):
        decode_block({"hash": "00" * 32, "height": 1, "tx": ["ab" * 32]})


@pytest.mark.parametrize(("value", "sats"), [
    (Decimal("0.00000029"), 29),
    (Decimal("0.29"), 29_000_000),
    (Decimal("20999999.97690000"), 2_099_999_997_690_000),
    (Decimal("0E-8"), 0),
    (0.00000029, 29),  # int(0.00000029 * 1e8) would be 28
    (1.1, 110_000_000),
    (50, 5_000_000_000),
    ("0.00006400", 6400),
])
def test_btc_to_sats_is_exact(value: Any, sats: int) -> None:
    """Amounts convert without float rounding."""
    assert btc_to_sats(value) == sats


def test_btc_to_sats_rejects_fractions_of_a_satoshi() -> None:
    with pytest.raises(ChainError):
        btc_to_sats(Decimal("0.000000001"))


@pytest.mark.parametrize(("script_hex", "data"), [
    ("6a03696421", b"id!"),
    ("6a4c03696421", b"id!"),
    ("6a4d0300696421", b"id!"),
    ("6a", None),  # bare OP_RETURN
    ("6a51", None),  # OP_RETURN OP_1
    ("6a0369642100", None),  # trailing byte
    ("6a0269640121", None),  # two pushes
    ("6a05696421", None),  # truncated push
    ("76a914" + "00" * 20 + "88ac", None),
])
def test_op_return_data(script_hex: str, data: bytes | None) -> None:
    """Only `OP_RETURN <exactly one push>` yields data."""
    assert op_return_data(bytes.fromhex(script_hex)) == data


def test_candidate_scan_any_output_and_magic() -> None:
    """Any output may carry the payload; the magic must match."""
    tx = {"vout": [{"scriptPubKey": {"hex": "76a914" + "00" * 20 + "88ac"}},
                   {"scriptPubKey": {"hex": "6a03696421"}}]}
    assert is_candidate(tx)
    assert not is_candidate(tx, magic=b"Xi")
    assert is_candidate({"vout": [{"scriptPubKey": {"hex": "6a035869ff"}}]}, magic=b"Xi")


# -- real transactions from stacks-core's burnchain fixtures ----------------------------------
def _serve_raw_txs(txs: list[CTransaction]) -> tuple[ChainBuilder, dict[str, int]]:
    builder = ChainBuilder(premine=1)
    builder.external_prevouts.update(derived_prevouts(txs, value=123_456))
    builder.mine_at_positions(dict(enumerate(txs, start=1)))
    return builder, {txid_of(tx): i for i, tx in enumerate(txs, start=1)}


@needs_fixtures
def test_burnchain_tx_fixtures_decode_exactly() -> None:
    """Real mainnet-style txs: txid, candidate status, payload, outputs and witnesses as raw."""
    fixtures = [f for f in json.loads((BURNCHAIN / "burnchain_tx_fixtures.json").read_text())
                if f["comment"] != "coinbase"]
    txs = [CTransaction.deserialize(bytes.fromhex(f["raw_tx_hex"])) for f in fixtures]
    builder, position = _serve_raw_txs(txs)
    with BitcoindServer() as node:
        node.serve_builder(builder)
        (block,) = decode_range(node, builder.height, builder.height, keep_all=True)
    by_txid = {t.txid: t for t in block.txs}
    for fixture, raw in zip(fixtures, txs, strict=True):
        tx = by_txid[fixture["computed_txid"]]
        assert tx.vtxindex == position[tx.txid]
        assert [(o.value_sats, o.script_hex) for o in tx.outputs] == [
            (o.nValue, o.scriptPubKey.hex()) for o in raw.vout]
        assert [i.script_sig_hex for i in tx.inputs] == [i.scriptSig.hex() for i in raw.vin]
        witnesses = [tuple(bytes(w).hex() for w in wit.scriptWitness.stack) for wit in raw.wit.vtxinwit]
        assert [i.witness for i in tx.inputs] == (witnesses or [()] * len(raw.vin))
        assert all(i.prevout is not None and i.prevout.value_sats == 123_456 for i in tx.inputs)
        payloads = [op_return_data(bytes.fromhex(o.script_hex)) for o in tx.outputs]
        expected = fixture["expected_payload_hex"]
        assert is_candidate_tx(tx) == (expected is not None), fixture["comment"]
        if expected is not None:
            payload = b"id" + fixture["expected_opcode"].encode() + bytes.fromhex(expected)
            assert payload in payloads


def is_candidate_tx(tx: Any) -> bool:
    return any((d := op_return_data(bytes.fromhex(o.script_hex))) is not None and d.startswith(b"id")
               for o in tx.outputs)


@needs_fixtures
@pytest.mark.parametrize("index", [0, 1])
def test_burnchain_block_fixtures_decode_exactly(index: int) -> None:
    """Real regtest blocks (one segwit): hash, parent and the candidate txs at their vtxindex."""
    fixture = json.loads((BURNCHAIN / "burnchain_block_fixtures.json").read_text())[index]
    raw = CBlock.deserialize(bytes.fromhex(fixture["raw_block_hex"]))
    genesis = ChainBuilder(premine=0).blocks[0]
    with BitcoindServer() as node:
        node.set_chain([genesis, raw], derived_prevouts(raw.vtx))
        (block,) = decode_range(node, 1, 1)
        (every,) = decode_range(node, 1, 1, keep_all=True)
    assert block.block_hash == fixture["expected_block_hash"]
    assert block.prev_hash == b2lx(raw.hashPrevBlock)
    expected = [(b["vtxindex"], b["txid"]) for b in fixture["bns_txs"]]
    assert [(t.vtxindex, t.txid) for t in block.txs] == expected
    assert len(every.txs) == fixture["tx_count"] and every.txs[0].is_coinbase
    assert every.txs[0].outputs[0].value_sats == raw.vtx[0].vout[0].nValue


# -- the raw path ------------------------------------------------------------------------------
def fetch_both(node: BitcoindServer, first: int, last: int) -> tuple[list[ChainBlock], list[ChainBlock]]:
    from bns_resolver.chain.fetcher import BlockFetcher

    rpc = BitcoindRPC(node.url)
    verbose = BlockFetcher(rpc, confirmations=1).fetch(first, last)
    raw = BlockFetcher(rpc, confirmations=1, raw=True).fetch(first, last)
    return verbose, raw


def test_raw_path_equals_verbose_path(node: BitcoindServer, builder: ChainBuilder) -> None:
    """Serialized blocks scanned locally give the same ChainBlocks as getblock 3."""
    verbose, raw = fetch_both(node, 0, builder.height)
    assert raw == verbose and sum(len(b.txs) for b in raw) == 5
    asked = [p for m, p in node.calls if m == "getrawtransaction"]
    assert len(asked) == 5 and all(p[1] == 2 for p in asked)


@needs_fixtures
def test_raw_path_on_real_segwit_blocks() -> None:
    """The fixture blocks (one with segwit txs) scan to the same candidates and txids."""
    genesis = ChainBuilder(premine=0).blocks[0]
    for fixture in json.loads((BURNCHAIN / "burnchain_block_fixtures.json").read_text()):
        raw = CBlock.deserialize(bytes.fromhex(fixture["raw_block_hex"]))
        with BitcoindServer() as node:
            node.set_chain([genesis, raw], derived_prevouts(raw.vtx))
            verbose, scanned = fetch_both(node, 1, 1)
        assert scanned == verbose
        assert [(t.vtxindex, t.txid) for t in scanned[0].txs] == [
            (b["vtxindex"], b["txid"]) for b in fixture["bns_txs"]]


def test_raw_path_old_node_uses_txindex_for_prevouts(builder: ChainBuilder) -> None:
    """Without prevouts in getrawtransaction 2, parents come from getrawtransaction 1."""
    with BitcoindServer(verbosity3=False) as old, BitcoindServer() as new:
        old.serve_builder(builder)
        new.serve_builder(builder)
        assert fetch_both(old, 100, builder.height)[1] == fetch_both(new, 100, builder.height)[0]


def test_scan_rejects_truncated_blocks(builder: ChainBuilder) -> None:
    from bns_resolver.chain.blocks import scan_raw_block

    raw = builder.blocks[-1].serialize()
    assert scan_raw_block(raw).block_hash == builder.tip_hash
    for cut in (3, 40, len(raw) - 85):
        with pytest.raises(ChainError, match="ends inside"):
            scan_raw_block(raw[:-cut])
    with pytest.raises(ChainError, match="after its last tx"):
        scan_raw_block(raw + b"\x00")
