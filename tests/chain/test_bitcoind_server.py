"""The test bitcoind speaks like Bitcoin Core: statuses, error shapes, field names."""

from __future__ import annotations

import base64
import http.client
import json
from decimal import Decimal
from typing import Any

import pytest
from bitcoin.core import CBlock, b2lx

from tests.support.bitcoind import BitcoindServer
from tests.support.bitcoind_json import descriptor, script_asm, segwit_address
from tests.support.chainbuilder import ChainBuilder, txid_of


def post(node: BitcoindServer, payload: Any, *, auth: str | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=5)
    token = base64.b64encode((auth or f"{node.rpcuser}:{node.rpcpassword}").encode()).decode()
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    conn.request("POST", "/", body, {"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def call(node: BitcoindServer, method: str, *params: Any) -> tuple[int, Any]:
    status, _, body = post(node, {"version": "1.1", "method": method, "params": list(params), "id": 7})
    return status, json.loads(body, parse_float=Decimal)


def test_success_reply_shape(node: BitcoindServer) -> None:
    """Legacy replies carry result, error=null and the request id, with HTTP 200."""
    status, reply = call(node, "getblockcount")
    assert status == 200 and reply == {"result": node.tip_height, "error": None, "id": 7}


@pytest.mark.parametrize(("method", "params", "status", "code", "message"), [
    ("getblockhash", [10_000], 500, -8, "Block height out of range"),
    ("getblock", ["11" * 32], 500, -5, "Block not found"),
    ("getfoo", [], 404, -32601, "Method not found"),
])
def test_error_reply_shape_and_status(node: BitcoindServer, method: str, params: list[Any], status: int,
                                      code: int, message: str) -> None:
    """Errors: HTTP 500 (404 for unknown methods) with Core's error object."""
    got_status, reply = call(node, method, *params)
    assert got_status == status
    assert reply == {"result": None, "error": {"code": code, "message": message}, "id": 7}


def test_warmup_reply(node: BitcoindServer) -> None:
    """While warming up every call gets -28 with HTTP 500."""
    node.warmup_requests = 1
    status, reply = call(node, "getblockcount")
    assert status == 500 and reply["error"]["code"] == -28
    assert call(node, "getblockcount")[0] == 200


def test_jsonrpc2_strict_replies(node: BitcoindServer) -> None:
    """JSON-RPC 2.0 (Core >= 28): HTTP 200, result xor error; notifications get 204."""
    status, _, body = post(node, {"jsonrpc": "2.0", "method": "getfoo", "params": [], "id": 1})
    assert status == 200 and json.loads(body) == {
        "jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": 1}
    status, _, body = post(node, {"jsonrpc": "2.0", "method": "getblockcount", "id": 2})
    assert json.loads(body) == {"jsonrpc": "2.0", "result": node.tip_height, "id": 2}
    assert post(node, {"jsonrpc": "2.0", "method": "getblockcount"})[0] == 204


def test_batch_replies(node: BitcoindServer) -> None:
    """A batch is HTTP 200 with one reply per request, errors inline."""
    status, _, body = post(node, [{"method": "getblockhash", "params": [0], "id": 1},
                                  {"method": "getblockhash", "params": [99999], "id": 2}])
    replies = json.loads(body)
    assert status == 200 and [r["id"] for r in replies] == [1, 2]
    assert replies[0]["result"] == node.block_hash(0) and replies[0]["error"] is None
    assert replies[1]["error"] == {"code": -8, "message": "Block height out of range"}


def test_bad_credentials_get_bare_401(node: BitcoindServer) -> None:
    """401 with WWW-Authenticate and an empty body, as bitcoind sends it."""
    status, headers, body = post(node, {"method": "getblockcount", "id": 1}, auth="bns:nope")
    assert status == 401 and body == b"" and headers["WWW-Authenticate"] == 'Basic realm="jsonrpc"'


def test_parse_error(node: BitcoindServer) -> None:
    status, _, body = post(node, b"{not json")
    assert status == 500 and json.loads(body)["error"]["code"] == -32700


def test_amounts_printed_with_eight_decimals(node: BitcoindServer, builder: ChainBuilder) -> None:
    """Values are JSON numbers like 50.00010000, as Core's ValueFromAmount prints them."""
    _, _, body = post(node, {"method": "getblock", "params": [builder.tip_hash, 2], "id": 1})
    coinbase_value = builder.blocks[-1].vtx[0].vout[0].nValue
    assert f'"value":{coinbase_value // 10**8}.{coinbase_value % 10**8:08d},'.encode() in body
    assert b'"value":0.00000000,' in body


def test_getblock_verbosities(node: BitcoindServer, builder: ChainBuilder) -> None:
    """0: raw hex; 1: txids; 2: txs; 3: txs with prevout."""
    tip = builder.tip_hash
    raw = call(node, "getblock", tip, 0)[1]["result"]
    assert CBlock.deserialize(bytes.fromhex(raw)).GetHash() == builder.blocks[-1].GetHash()
    v1 = call(node, "getblock", tip, 1)[1]["result"]
    assert v1["tx"] == [txid_of(tx) for tx in builder.blocks[-1].vtx] and v1["nTx"] == len(v1["tx"])
    assert v1["previousblockhash"] == builder.block_hash(builder.height - 1) and "nextblockhash" not in v1
    v2 = call(node, "getblock", tip, 2)[1]["result"]
    assert "prevout" not in v2["tx"][1]["vin"][0] and "fee" in v2["tx"][1]
    v3 = call(node, "getblock", tip, 3)[1]["result"]
    prevout = v3["tx"][1]["vin"][0]["prevout"]
    assert set(prevout) == {"generated", "height", "value", "scriptPubKey"}
    assert prevout["scriptPubKey"]["type"] == "pubkeyhash"
    assert prevout["scriptPubKey"]["address"].startswith(("m", "n"))


def test_old_node_has_no_verbosity_3(builder: ChainBuilder) -> None:
    """An old node treats verbosity 3 as 2 and reports an old version."""
    with BitcoindServer(verbosity3=False) as old:
        old.serve_builder(builder)
        block = call(old, "getblock", builder.tip_hash, 3)[1]["result"]
        assert "prevout" not in block["tx"][1]["vin"][0]
        assert call(old, "getnetworkinfo")[1]["result"]["version"] < 230000


def test_getrawtransaction(node: BitcoindServer, builder: ChainBuilder) -> None:
    """Verbose txs carry block info; with a block hash no txindex is needed."""
    tx = builder.blocks[-1].vtx[1]
    reply = call(node, "getrawtransaction", txid_of(tx), 1)[1]["result"]
    assert (reply["txid"], reply["blockhash"], reply["confirmations"]) == (txid_of(tx), builder.tip_hash, 1)
    node.txindex = False
    assert call(node, "getrawtransaction", txid_of(tx))[1]["error"]["code"] == -5
    in_block = call(node, "getrawtransaction", txid_of(tx), 0, builder.tip_hash)[1]["result"]
    assert in_block == tx.serialize().hex()


def test_reorg_leaves_stale_blocks_known(node: BitcoindServer, builder: ChainBuilder) -> None:
    """After a reorg the old tip is still served, with confirmations -1."""
    old_tip = builder.tip_hash
    branch = builder.fork(2)
    branch.mine(3)
    node.stage_reorg(2, branch.blocks[-3:])
    assert call(node, "getbestblockhash")[1]["result"] == branch.tip_hash
    assert call(node, "getblockheader", old_tip)[1]["result"]["confirmations"] == -1
    assert call(node, "getblockhash", builder.height)[1]["result"] == branch.block_hash(builder.height)


def test_blockchaininfo_and_headers(node: BitcoindServer, builder: ChainBuilder) -> None:
    info = call(node, "getblockchaininfo")[1]["result"]
    assert info["chain"] == "regtest" and info["blocks"] == builder.height and info["pruned"] is False
    header = call(node, "getblockheader", builder.block_hash(5))[1]["result"]
    assert header["nextblockhash"] == builder.block_hash(6) and header["bits"] == "207fffff"
    assert header["merkleroot"] == b2lx(builder.blocks[5].hashMerkleRoot)
    assert int(header["chainwork"], 16) == 2 * 6
    assert isinstance(call(node, "uptime")[1]["result"], int)


def test_script_rendering() -> None:
    """asm and descriptors follow Core (checksum from Core's descriptor docs)."""
    assert script_asm(bytes.fromhex("6a03696421")) == "OP_RETURN 2188393"
    assert script_asm(bytes.fromhex("0051")) == "0 1"
    assert descriptor("addr(mkmZxiEcEd8ZqjQWVZuC6so5dFMKEFpN2j)").startswith("addr(")
    assert descriptor("raw(deadbeef)") == "raw(deadbeef)#89f8spxm"
    generator_x = bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    assert segwit_address("bc", 1, generator_x) == "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"
