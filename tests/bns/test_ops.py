"""Tests for bns.ops: decoding of real transactions (TV5/TV6, stacks-core burnchain fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bitcoin.core import CTransaction, b2lx, x

from bns_resolver.bns import ops
from bns_resolver.bns.networks import from_corpus_config, mainnet
from bns_resolver.bns.senders import p2pkh_script, parse_pushes
from bns_resolver.chain.types import ChainTx, TxInput, TxOutput
from bns_resolver.hashing import hash160

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "data" / "bns-genesis" / "burnchain"
REGTEST = from_corpus_config({"first_block": 256, "epochs": {}}, "0.14")

TV5 = (
    "0100000001a04c85c1e6ce35a22930b8e7dd45af2781328867327591728fa79185e2c16f45000000008b483045022100c29dba5a9405a46a"
    "c73e6bf2c1ebc710e8955ff7a26e2c2207cb41c5bf8555d8022004db27a73daf41eea723612190667fb8da93aa3db201e3b47af0f7cc8cb48f"
    "b20141046a6582a6566aa4059b7361536e7e4ac3df4d77bf6e843c4c8207eaa12e0ca19e15fc59c959b4a5d6d1de975ab059d9255a795dd57b"
    "9c78656a070ea5002efe87ffffffff030000000000000000296a2769643f47c3d2a95655aab92f0764c1cfc205814e8a3d4279e67e1f936152"
    "bdca80c174b79aeb09636fa329010000001976a9147144b3fef9fe537e2445f1c0dfb4ce007c51461288ac00a8610000000000197"
    "6a914000000000000000000000000000000000000000088ac00000000"
)
TV6 = (
    "0100000001c9630d5609ca313af59faed8dcbf3cb82ad8983801553877800b8866419e718d010000008a473044022027a45b1f4ba294504bf5"
    "9f37d8277f531d48767756b9f7d56c9a51b33f0735de02203c9edcf32462a0589d42ddbe2e7ba53168e38d659709ff2e6dc4913b3d8a674f01"
    "41046a6582a6566aa4059b7361536e7e4ac3df4d77bf6e843c4c8207eaa12e0ca19e15fc59c959b4a5d6d1de975ab059d9255a795dd57b9c78"
    "656a070ea5002efe87ffffffff0300000000000000000d6a0b69643a666f6f2e746573747c150000000000001976a914f75b20399d771f515a"
    "3cd80f941aa7461d92518c88ac656aa229010000001976a9147144b3fef9fe537e2445f1c0dfb4ce007c51461288ac00000000"
)


def chain_tx(raw: str, vtxindex: int = 1) -> ChainTx:
    """Decode raw hex; derive p2pkh prevouts from each scriptSig's pubkey (corpus README rule)."""
    tx = CTransaction.deserialize(x(raw))
    inputs = []
    for txin in tx.vin:
        pushes = parse_pushes(bytes(txin.scriptSig)) or []
        prevout = TxOutput(0, p2pkh_script(hash160(pushes[-1]))) if len(pushes) == 2 else None
        inputs.append(TxInput(b2lx(txin.prevout.hash), txin.prevout.n, txin.scriptSig.hex(), prevout))
    outputs = tuple(TxOutput(o.nValue, o.scriptPubKey.hex()) for o in tx.vout)
    return ChainTx(b2lx(tx.GetTxid()), vtxindex, tuple(inputs), outputs)


def test_tv5_name_preorder() -> None:
    """TV5: `id?`, preorder hash, CH(259), burn fee 6400000, sender and pubkey from input 0."""
    op = ops.decode_tx(chain_tx(TV5), 260, REGTEST)
    assert op is not None and op.opchar == "?"
    assert isinstance(op.payload, ops.NamePreorder)
    assert op.payload.preorder_hash.startswith("47c3d2a9") and op.payload.preorder_hash.endswith("3d42")
    assert op.payload.consensus_hash == "79e67e1f936152bdca80c174b79aeb09"
    assert op.ctx.burn_fee == 6_400_000
    assert op.ctx.sender == "76a9147144b3fef9fe537e2445f1c0dfb4ce007c51461288ac"
    assert op.ctx.sender_pubkey is not None and op.ctx.sender_pubkey.startswith("046a6582")


def test_tv6_name_registration() -> None:
    """TV6: `id:foo.test`, recipient = first non-OP_RETURN output (n44rMy…)."""
    op = ops.decode_tx(chain_tx(TV6), 261, REGTEST)
    assert op is not None and op.opcode == "NAME_REGISTRATION"
    assert isinstance(op.payload, ops.NameRegistration)
    assert op.payload.name == "foo.test"
    assert op.payload.recipient_address == "n44rMyQ9rhTf7KjFdRwDNMWUSJ3MWLsDQ4"
    assert op.payload.value_hash is None


def test_tx_without_prevout_is_not_an_op() -> None:
    """A tx whose input spends an unknown (non-p2pkh/p2sh) output is discarded."""
    tx = chain_tx(TV6)
    bare = ChainTx(tx.txid, 1, tuple(TxInput(i.prev_txid, i.prev_vout, i.script_sig_hex, TxOutput(0, "51"))
                                     for i in tx.inputs), tx.outputs)
    assert ops.decode_tx(bare, 261, REGTEST) is None


def _tx_fixtures() -> list[dict]:
    path = FIXTURES / "burnchain_tx_fixtures.json"
    return json.loads(path.read_text()) if path.exists() else []


@pytest.mark.parametrize("fixture", _tx_fixtures(), ids=lambda f: f["comment"][:40])
def test_burnchain_fixture_opcode_and_payload(fixture: dict) -> None:
    """stacks-core burnchain fixtures: exact opcode and payload, or no op for invalid ones."""
    tx = CTransaction.deserialize(x(fixture["raw_tx_hex"]))
    if fixture.get("expected_txid"):
        assert b2lx(tx.GetTxid()) == fixture["expected_txid"]
    outputs = tuple(TxOutput(o.nValue, o.scriptPubKey.hex()) for o in tx.vout)
    found = ops.op_return_payload(ChainTx(b2lx(tx.GetTxid()), 1, (), outputs), mainnet())
    if fixture.get("expected_opcode") is None:
        assert found is None
    else:
        assert found == (fixture["expected_opcode"], bytes.fromhex(fixture["expected_payload_hex"]))


def test_namespace_reveal_layout() -> None:
    """Buckets are 16 nibbles high-first; discounts high=nonalpha, low=no-vowel."""
    payload = bytes.fromhex("0000cd73" "fa" "04" "6543210000000000" "aa" "0001") + b"test"
    ctx = ops.TxContext("00" * 32, 1, "76a914" + "11" * 20 + "88ac", "addr", None,
                        (TxOutput(0, "6a00"), TxOutput(1, "76a914" + "22" * 20 + "88ac")), None)
    reveal = ops._namespace_reveal(payload, ctx, 300, REGTEST)
    assert reveal is not None
    assert reveal.lifetime == 52595 and reveal.coeff == 250 and reveal.base == 4
    assert reveal.buckets[:6] == (6, 5, 4, 3, 2, 1) and reveal.nonalpha_discount == 10


def _block_fixtures() -> list[dict]:
    path = FIXTURES / "burnchain_block_fixtures.json"
    return json.loads(path.read_text()) if path.exists() else []


@pytest.mark.parametrize("fixture", _block_fixtures(), ids=lambda f: f["comment"][:40])
def test_burnchain_block_fixture_finds_exactly_the_bns_txs(fixture: dict) -> None:
    """Scanning every tx of a real (regtest, segwit) block finds exactly the listed BNS txs."""
    from bitcoin.core import CBlock

    block = CBlock.deserialize(x(fixture["raw_block_hex"]))
    assert b2lx(block.GetHash()) == fixture["expected_block_hash"]
    found = []
    for vtxindex, tx in enumerate(block.vtx):
        outputs = tuple(TxOutput(o.nValue, o.scriptPubKey.hex()) for o in tx.vout)
        hit = ops.op_return_payload(ChainTx(b2lx(tx.GetTxid()), vtxindex, (), outputs), mainnet())
        if hit is not None:
            found.append({"vtxindex": vtxindex, "txid": b2lx(tx.GetTxid()), "bns_opcode": hit[0],
                          "op_return_hex": (b"id" + hit[0].encode() + hit[1]).hex()})
    assert found == fixture["bns_txs"]


def test_token_transfer_payload_layout() -> None:
    """`$`: CH (16) · units (19, NUL-padded) · big-endian amount (8) · scratch; epoch 4+ only."""
    data = bytes.fromhex("7c503a2e30a905cb515cfbc291766dfa") + b"STACKS".ljust(19, b"\0") + (100).to_bytes(8, "big")
    ctx = ops.TxContext("00" * 32, 1, "76a914" + "11" * 20 + "88ac", "addr", None,
                        (TxOutput(0, "6a00"), TxOutput(5500, "76a914" + "22" * 20 + "88ac")), None)
    transfer = ops._token_transfer(data, ctx, 560000, mainnet())
    assert transfer is not None and transfer.amount == 100 and transfer.token_units == "STACKS"
    assert ops._token_transfer(data, ctx, 500000, mainnet()) is None
