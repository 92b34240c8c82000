"""Loopback zone-file servers for tests: an HTTP mirror with scripted behaviour and an Atlas XML-RPC stub.

Both bind 127.0.0.1 on an ephemeral port, serve from a daemon thread and are
context managers. The HTTP mirror's `mode` decides how it answers:

    good   the file for the hash, 404 if unknown
    lying  a different file (valid text, wrong hash) for every request
    slow   holds the request until the test releases it (an Event, not a sleep)
    error  HTTP 500
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer


class ZonefileHttpMirror:
    def __init__(self, files: Mapping[str, bytes], *, mode: str = "good", prefix: str = "/zonefiles/") -> None:
        self.files = dict(files)
        self.mode = mode
        self.prefix = prefix
        self.requests: list[str] = []
        self.release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def template(self, suffix: str = "{hash}") -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}{suffix}"

    def __enter__(self) -> ZonefileHttpMirror:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
                return

            def do_GET(self) -> None:  # noqa: N802 (stdlib name)
                mirror.requests.append(self.path)
                mirror.answer(self)

        return Handler

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        key = handler.path[len(self.prefix) :] if handler.path.startswith(self.prefix) else ""
        key = key.removesuffix(".txt")
        if self.mode == "slow":
            self.release.wait(30)
        if self.mode == "error":
            _reply(handler, 500, b"boom")
        elif self.mode == "lying":
            _reply(handler, 200, b"$ORIGIN evil.id\n$TTL 3600\n_http._tcp URI 10 1 \"https://evil.example/\"\n")
        elif key in self.files:
            _reply(handler, 200, self.files[key])
        else:
            _reply(handler, 404, b"not found")


def _reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str = "text/plain") -> None:
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (timeout tests); nothing to answer


class _QuietXmlRpcHandler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/", "/RPC2")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


class AtlasStub:
    """Answers `get_zonefiles` the way blockstackd does: a JSON text inside the XML-RPC string.

    `tamper` maps a hash to bytes to serve instead of the real file.
    """

    def __init__(self, files: Mapping[str, bytes], *, tamper: Mapping[str, bytes] | None = None) -> None:
        self.files = dict(files)
        self.tamper = dict(tamper or {})
        self.calls: list[list[str]] = []
        self._server = SimpleXMLRPCServer(
            ("127.0.0.1", 0), requestHandler=_QuietXmlRpcHandler, allow_none=True, logRequests=False
        )
        self._server.register_function(self.get_zonefiles, "get_zonefiles")
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def get_zonefiles(self, hashes: list[str]) -> str:
        self.calls.append(list(hashes))
        if len(hashes) > 100:
            return json.dumps({"error": "Too many requests (no more than 100 allowed)", "http_status": 400})
        found = {}
        for zonefile_hash in hashes:
            content = self.tamper.get(zonefile_hash, self.files.get(zonefile_hash))
            if content is not None:
                found[zonefile_hash] = base64.b64encode(content).decode("ascii")
        return json.dumps({"status": True, "indexing": False, "lastblock": 665749, "zonefiles": found})

    def __enter__(self) -> AtlasStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
