"""Bitcoin Core's HTTP face for the regtest node: auth, statuses, batches, dropped connections."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from tests.support.bitcoind_json import _encode_json

if TYPE_CHECKING:
    from tests.support.bitcoind import BitcoindServer


class RpcHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    node: BitcoindServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.node._lock:
            self.node._conns.add(self.connection)

    def finish(self) -> None:
        with self.node._lock:
            self.node._conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._send(405, b"JSONRPC server handles only POST requests", content_type="text/html")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.node._consume_drop():
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if self.node._consume_busy():
            self._send(503, b"Work queue depth exceeded", content_type="text/html")
            return
        if not self.node.allow_client:
            self._send(403, b"")
            return
        if not self.node.check_auth(self.headers.get("Authorization")):
            self._send(401, b"", extra={"WWW-Authenticate": 'Basic realm="jsonrpc"'})
            return
        with self.node._lock:
            self.node.http_posts += 1
        try:
            request = json.loads(body)
        except ValueError:
            error = {"code": -32700, "message": "Parse error"}
            self._send_json(500, {"result": None, "error": error, "id": None})
            return
        if isinstance(request, list):
            self._send_json(200, self.node.handle_batch(request))
            return
        reply = self.node.handle_one(request, warming=self.node._consume_warmup())
        if reply is None:
            self._send(204, b"")
        else:
            self._send_json(*reply)

    def _send_json(self, status: int, obj: Any) -> None:
        self._send(status, _encode_json(obj) + b"\n", content_type="application/json")

    def _send(self, status: int, body: bytes, *, content_type: str | None = None,
              extra: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
