"""A bitcoind-compatible JSON-RPC server for tests (real HTTP on 127.0.0.1).

It serves blocks made of real transactions (see `chainbuilder.py`) with Bitcoin Core's
field names, error codes and HTTP statuses:

* single JSON-RPC 1.x requests: HTTP 200 on success; on error HTTP 500 with the JSON
  error body, 404 for -32601 "Method not found", 400 for -32600;
* JSON-RPC 2.0 requests (Core >= 28, `jsonrpc2_strict=True`): HTTP 200 with either
  `result` or `error`, never both;
* batches: HTTP 200 with one reply per request, each in its own request's dialect;
* HTTP 401 with no body and `WWW-Authenticate` on bad credentials.

Test knobs: chain name, pruned heights, txindex on/off, an old node without getblock
verbosity 3, warm-up (-28), going down and up again (a fresh cookie each start, like
bitcoind), dropping connections, and staging a reorg.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from bitcoin.core import CBlock, b2lx

from tests.support.bitcoind_chain import NodeChain, difficulty
from tests.support.bitcoind_http import RpcHandler
from tests.support.bitcoind_json import (
    _Amount,
    tx_json,
    txid_bytes,
)

CORE_VERSION = 280100
OLD_CORE_VERSION = 220000
WARMUP_MESSAGE = "Loading block index…"
_COOKIE_SUBDIR = {"main": "", "test": "testnet3", "regtest": "regtest", "signet": "signet"}


class RpcFailure(Exception):
    """An RPC error the handler turns into Core's `{"code", "message"}` object."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message




# -- the server -------------------------------------------------------------------------
class BitcoindServer:
    """A bitcoind stand-in on 127.0.0.1:<ephemeral port>. Use as a context manager."""

    def __init__(self, *, chain: str = "regtest", rpcuser: str | None = "bns",
                 rpcpassword: str | None = "s3cret", datadir: Path | None = None,
                 txindex: bool = True, verbosity3: bool = True, jsonrpc2_strict: bool = True,
                 version: int | None = None) -> None:
        self.chain = chain
        self.rpcuser, self.rpcpassword = rpcuser, rpcpassword
        self.datadir = datadir
        self.txindex = txindex
        self.verbosity3 = verbosity3
        self.jsonrpc2_strict = jsonrpc2_strict
        self.version = version or (CORE_VERSION if verbosity3 else OLD_CORE_VERSION)
        self.pruned_heights: set[int] = set()
        # False: refuse getblock verbosity 0 (-8), as a restricting RPC proxy in front of a node
        # can; Core itself always serves raw blocks. Exercises the fetcher's verbose fallback.
        self.raw_blocks = True
        self.warmup_requests = 0
        self.busy_requests = 0  # answer 503 "Work queue depth exceeded" (text/html), as a busy bitcoind
        self.allow_client = True  # False: answer 403 as bitcoind does for addresses outside rpcallowip
        self.drop_requests = 0
        self.calls: list[tuple[str, list[Any]]] = []
        self.http_posts = 0
        self._state = NodeChain()
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._cookie: str | None = None
        self._started_at = 0.0
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        import time

        handler = type("Handler", (RpcHandler,), {"node": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd, self.port = httpd, httpd.server_address[1]
        self._write_cookie()
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"bitcoind-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns, self._conns = set(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        if self._thread is not None:
            self._thread.join()
        if self.cookie_path is not None:
            self.cookie_path.unlink(missing_ok=True)

    def go_down(self) -> None:
        """Stop listening and drop every connection (the port refuses connections)."""
        self.stop()

    def come_up(self) -> None:
        """Listen again on the same port; like bitcoind, with a fresh cookie."""
        self.start()

    @property
    def is_up(self) -> bool:
        return self._httpd is not None

    # -- addresses and credentials ---------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.rpcuser}:{self.rpcpassword}@127.0.0.1:{self.port}"

    @property
    def url_without_auth(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cookie_path(self) -> Path | None:
        if self.datadir is None:
            return None
        sub = _COOKIE_SUBDIR[self.chain]
        return (self.datadir / sub if sub else self.datadir) / ".cookie"

    def _write_cookie(self) -> None:
        path = self.cookie_path
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._cookie = "__cookie__:" + secrets.token_hex(32)
        path.write_text(self._cookie)

    def check_auth(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            pair = base64.b64decode(header[6:]).decode()
        except ValueError:
            return False
        userpass = f"{self.rpcuser}:{self.rpcpassword}" if self.rpcuser else None
        good = [c for c in (self._cookie, userpass) if c]
        return any(hmac.compare_digest(pair, c) for c in good)

    # -- chain knobs ------------------------------------------------------------------------
    def set_chain(self, blocks: Sequence[CBlock],
                  external_prevouts: Mapping[tuple[str, int], tuple[str, int]] | None = None) -> None:
        """Make `blocks` (genesis first) the active chain; `external_prevouts` maps
        (txid, vout) -> (script hex, sats) for outputs of transactions not in any block."""
        with self._lock:
            if external_prevouts is not None:
                self._state.external = {k: (bytes.fromhex(s), v) for k, (s, v) in external_prevouts.items()}
            self._state.set_active(blocks)

    def serve_builder(self, builder: Any) -> None:
        """Serve a ChainBuilder's current chain (and its external prevouts)."""
        self.set_chain(builder.blocks, builder.external_prevouts)

    def stage_reorg(self, depth: int, new_blocks: Sequence[CBlock]) -> None:
        """Replace the last `depth` active blocks with `new_blocks` (a competing branch)."""
        with self._lock:
            keep = self._state.active[: len(self._state.active) - depth]
            if new_blocks and b2lx(new_blocks[0].hashPrevBlock) != b2lx(keep[-1].GetHash()):
                raise ValueError("the new branch does not fork from the kept chain")
            self._state.set_active(keep + list(new_blocks))

    def prune(self, heights: Iterable[int]) -> None:
        with self._lock:
            self.pruned_heights.update(heights)

    @property
    def tip_height(self) -> int:
        return len(self._state.active) - 1

    def block_hash(self, height: int) -> str:
        return self._state.hashes[height]

    # -- request handling ---------------------------------------------------------------------
    def handle_batch(self, requests: list[Any]) -> list[dict[str, Any]]:
        replies = []
        warming = self._consume_warmup()
        for request in requests:
            reply = self.handle_one(request, warming=warming)
            if reply is not None:
                replies.append(reply[1])
        return replies

    def handle_one(self, request: Any, *, warming: bool) -> tuple[int, dict[str, Any]] | None:
        """(HTTP status Core would use for this single request, reply), or None for a notification."""
        if not isinstance(request, dict):
            return 400, self._reply(None, None, RpcFailure(-32600, "Invalid Request object"), v2=False)
        v2 = self.jsonrpc2_strict and request.get("jsonrpc") == "2.0"
        rid = request.get("id")
        try:
            if warming:
                raise RpcFailure(-28, WARMUP_MESSAGE)
            method = request.get("method")
            if not isinstance(method, str):
                raise RpcFailure(-32600, "Method must be a string")
            params = request.get("params") or []
            with self._lock:
                self.calls.append((method, list(params) if isinstance(params, list) else [params]))
            result, error = self._dispatch(method, params), None
        except RpcFailure as failure:
            result, error = None, failure
        if v2 and "id" not in request:
            return None
        status = 200 if error is None or v2 else {-32600: 400, -32601: 404}.get(error.code, 500)
        return status, self._reply(result, rid, error, v2=v2)

    @staticmethod
    def _reply(result: Any, rid: Any, error: RpcFailure | None, *, v2: bool) -> dict[str, Any]:
        err = {"code": error.code, "message": error.message} if error else None
        if v2:
            return {"jsonrpc": "2.0", **({"error": err} if err else {"result": result}), "id": rid}
        return {"result": result, "error": err, "id": rid}

    def _consume_warmup(self) -> bool:
        with self._lock:
            if self.warmup_requests > 0:
                self.warmup_requests -= 1
                return True
            return False

    def _consume_busy(self) -> bool:
        with self._lock:
            if self.busy_requests > 0:
                self.busy_requests -= 1
                return True
            return False

    def _consume_drop(self) -> bool:
        with self._lock:
            if self.drop_requests > 0:
                self.drop_requests -= 1
                return True
            return False

    def _dispatch(self, method: str, params: Any) -> Any:
        handler = getattr(self, f"rpc_{method}", None)
        if handler is None:
            raise RpcFailure(-32601, "Method not found")
        if isinstance(params, dict):
            params = list(params.values())
        try:
            with self._lock:
                return handler(*params)
        except TypeError as exc:
            raise RpcFailure(-1, f"{method}: wrong number of parameters ({exc})") from exc

    # -- RPC methods (names and shapes as in Bitcoin Core) ---------------------------------
    def rpc_getblockcount(self) -> int:
        return self.tip_height

    def rpc_getbestblockhash(self) -> str:
        return self._state.hashes[-1]

    def rpc_getblockhash(self, height: Any) -> str:
        if not isinstance(height, int) or isinstance(height, bool):
            raise RpcFailure(-3, f"JSON value of type {type(height).__name__} is not of expected type number")
        if not 0 <= height <= self.tip_height:
            raise RpcFailure(-8, "Block height out of range")
        return self._state.hashes[height]

    def rpc_getblockchaininfo(self) -> dict[str, Any]:
        tip = self._state.active[-1]
        info: dict[str, Any] = {
            "chain": self.chain, "blocks": self.tip_height, "headers": self.tip_height,
            "bestblockhash": self._state.hashes[-1], "bits": f"{tip.nBits:08x}",
            "difficulty": difficulty(tip.nBits), "time": tip.nTime,
            "mediantime": self._state.median_time(self.tip_height), "verificationprogress": 1,
            "initialblockdownload": False, "chainwork": self._state.chainwork(self.tip_height),
            "size_on_disk": sum(len(b.serialize()) for b in self._state.active),
            "pruned": bool(self.pruned_heights), "warnings": [],
        }
        if self.pruned_heights:
            unpruned = [h for h in range(self.tip_height + 1) if h not in self.pruned_heights]
            info["pruneheight"] = min(unpruned, default=self.tip_height + 1)
            info["automatic_pruning"] = False
        return info

    def rpc_getblockheader(self, block_hash: str, verbose: bool = True) -> Any:
        block = self._known_block(block_hash)
        if not verbose:
            return block.get_header().serialize().hex()
        return self._header_json(block_hash, block)

    def rpc_getblock(self, block_hash: str, verbosity: Any = 1) -> Any:
        verbosity = int(verbosity)  # older nodes also took true/false
        block = self._known_block(block_hash)
        height = self._state.known_height[block_hash]
        if height in self.pruned_heights:
            raise RpcFailure(-1, "Block not available (pruned data)")
        if verbosity <= 0:
            if not self.raw_blocks:
                raise RpcFailure(-8, "getblock verbosity 0 is not allowed by this endpoint")
            return block.serialize().hex()
        if not self.verbosity3:
            verbosity = min(verbosity, 2)
        out = self._header_json(block_hash, block)
        stripped = len(block.serialize({"include_witness": False}))
        size = len(block.serialize())
        out.update({"strippedsize": stripped, "size": size, "weight": stripped * 3 + size})
        if verbosity == 1:
            out["tx"] = [b2lx(txid_bytes(tx)) for tx in block.vtx]
        else:
            out["tx"] = [tx_json(tx, self.chain, prevouts=self._state.prevouts(tx), verbosity=verbosity)
                         for tx in block.vtx]
        return out

    def rpc_getrawtransaction(self, txid: str, verbose: Any = 0, block_hash: str | None = None) -> Any:
        found = self._state.txindex.get(txid)
        if block_hash is not None:
            if found is None or self._state.hashes[found[1]] != block_hash:
                raise RpcFailure(-5, "No such transaction found in the provided block. "
                                     "Use gettransaction for wallet transactions.")
        elif not self.txindex:
            raise RpcFailure(-5, "No such mempool transaction. Use -txindex or provide a block hash to "
                                 "enable blockchain transaction queries. Use gettransaction for wallet "
                                 "transactions.")
        elif found is None:
            raise RpcFailure(-5, "No such mempool or blockchain transaction. Use gettransaction for "
                                 "wallet transactions.")
        tx, height, _ = found
        verbosity = int(verbose)
        if verbosity <= 0:
            return tx.serialize().hex()
        if verbosity >= 2 and self.verbosity3:  # Core >= 25: prevouts and fee, like getblock 3
            out = tx_json(tx, self.chain, prevouts=self._state.prevouts(tx), verbosity=3)
        else:
            out = tx_json(tx, self.chain, prevouts=None, verbosity=1)
        block = self._state.active[height]
        out.update({"blockhash": self._state.hashes[height], "confirmations": self.tip_height - height + 1,
                    "time": block.nTime, "blocktime": block.nTime})
        return out

    def rpc_getnetworkinfo(self) -> dict[str, Any]:
        major, minor = self.version // 10000, self.version // 100 % 100
        return {"version": self.version, "subversion": f"/Satoshi:{major}.{minor}.0/",
                "protocolversion": 70016, "localservices": "0000000000000409",
                "localservicesnames": ["NETWORK", "WITNESS", "NETWORK_LIMITED"], "localrelay": True,
                "timeoffset": 0, "networkactive": True, "connections": 0, "connections_in": 0,
                "connections_out": 0, "networks": [], "relayfee": _Amount(1000),
                "incrementalfee": _Amount(1000), "localaddresses": [], "warnings": []}

    def rpc_uptime(self) -> int:
        import time

        return int(time.monotonic() - self._started_at)

    # -- helpers ----------------------------------------------------------------------------
    def _known_block(self, block_hash: Any) -> CBlock:
        if not isinstance(block_hash, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", block_hash):
            raise RpcFailure(-8, f"blockhash must be of length 64 (not {len(str(block_hash))}, for "
                                 f"'{block_hash}')")
        block = self._state.known.get(block_hash.lower())
        if block is None:
            raise RpcFailure(-5, "Block not found")
        return block

    def _header_json(self, block_hash: str, block: CBlock) -> dict[str, Any]:
        height = self._state.known_height[block_hash]
        active = self._state.height_of(block_hash) is not None
        out: dict[str, Any] = {
            "hash": block_hash, "confirmations": self.tip_height - height + 1 if active else -1,
            "height": height, "version": block.nVersion, "versionHex": f"{block.nVersion:08x}",
            "merkleroot": b2lx(block.hashMerkleRoot), "time": block.nTime,
            "mediantime": self._state.median_time(height) if active else block.nTime, "nonce": block.nNonce,
            "bits": f"{block.nBits:08x}", "difficulty": difficulty(block.nBits),
            "chainwork": self._state.chainwork(height), "nTx": len(block.vtx),
        }
        if height > 0:
            out["previousblockhash"] = b2lx(block.hashPrevBlock)
        if active and height < self.tip_height:
            out["nextblockhash"] = self._state.hashes[height + 1]
        return out


