"""Serve a cached synthetic chain (see sync_chain.py) with the test bitcoind, in its own process.

    python bench/sync_node.py bench/out/sync-chain-40x2000-v1 [--port 0]

Prints `READY <port> <pid>` on stdout once it answers, then serves until stdin closes
(the benchmark holds the pipe) or SIGTERM.  It is `tests.support.bitcoind.BitcoindServer`
(Core >= 25 shapes: getblock verbosity 0..3, getrawtransaction with a block hash) with
the replies the benchmark asks for encoded ahead of time, the way a node has its blocks
on disk: `getblock` at verbosity 0 and 3 and `getblockchaininfo` (whose `size_on_disk`
the test server recomputes by re-serializing the whole chain) cost a dictionary lookup,
so the figures measure the client, not this stand-in's Python JSON builder (about
1.5 ms per transaction at verbosity 3).  The replies are byte-for-byte what the test
server would send.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bitcoin.core import CBlock

import tests.support.bitcoind_http as test_bitcoind_http
from tests.support.bitcoind import BitcoindServer

USER, PASSWORD = "bench", "bench"


class Encoded:
    """A JSON value already encoded (spliced into the reply as is)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


_plain_encode = test_bitcoind_http._encode_json


def _encode_json(obj: Any) -> bytes:
    """The test server's encoder, splicing pre-encoded results into replies."""
    if isinstance(obj, list):
        return b"[" + b",".join(_encode_json(item) for item in obj) + b"]"
    if isinstance(obj, dict) and isinstance(obj.get("result"), Encoded):
        parts = [json.dumps(key).encode() + b":" + (value.data if isinstance(value, Encoded) else _plain_encode(value))
                 for key, value in obj.items()]
        return b"{" + b",".join(parts) + b"}"
    return _plain_encode(obj)


class PreencodedNode(BitcoindServer):
    def __init__(self, folder: Path, **kwargs: Any) -> None:
        super().__init__(chain="regtest", rpcuser=USER, rpcpassword=PASSWORD, **kwargs)
        meta = json.loads((folder / "meta.json").read_text())
        lines = (folder / "blocks.hex").read_text().split()
        blocks = [CBlock.deserialize(bytes.fromhex(line)) for line in lines]
        self.set_chain(blocks)
        self._encoded: dict[tuple[str, int], Encoded] = {}
        for height in range(meta["first_block"], meta["tip"] + 1):
            block_hash = self.block_hash(height)
            self._encoded[(block_hash, 0)] = Encoded(b'"' + lines[height].encode() + b'"')
            v3 = folder / "v3" / f"{height}.json"
            if v3.exists():  # else built on request, ~1.5 ms per tx (only the v3 path asks)
                self._encoded[(block_hash, 3)] = Encoded(v3.read_bytes())
        self._info: Encoded | None = None

    def rpc_getblock(self, block_hash: str, verbosity: Any = 1) -> Any:
        hit = self._encoded.get((block_hash, int(verbosity))) if isinstance(block_hash, str) else None
        return hit if hit is not None else super().rpc_getblock(block_hash, verbosity)

    def rpc_getblockchaininfo(self) -> Any:
        if self._info is None:  # the chain never changes here
            self._info = Encoded(_plain_encode(super().rpc_getblockchaininfo()))
        return self._info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    test_bitcoind_http._encode_json = _encode_json  # this process only: the handler looks it up per reply
    started = time.monotonic()
    node = PreencodedNode(args.folder)
    node.port = args.port
    node.start()
    print(f"READY {node.port} {time.monotonic() - started:.1f}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()
    node.stop()


if __name__ == "__main__":
    main()
