"""The export download: a cut connection resumes with an HTTP Range request, a wrong digest keeps nothing."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bns_resolver.errors import SnapshotError
from bns_resolver.index.download import download_export

BLOB = bytes(range(256)) * 4096  # 1 MiB


class RangeServer(http.server.ThreadingHTTPServer):
    """Serves BLOB; honours `Range: bytes=N-`; the first full reply is cut after half the bytes."""

    cut_first = True
    ranges: list[str]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        server: RangeServer = self.server  # type: ignore[assignment]
        wanted = self.headers.get("Range")
        start = int(wanted.split("=")[1].rstrip("-")) if wanted else 0
        server.ranges.append(wanted or "")
        self.send_response(206 if wanted else 200)
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{len(BLOB) - 1}/{len(BLOB)}")
        self.send_header("Content-Length", str(len(BLOB) - start))
        self.end_headers()
        if server.cut_first and not wanted:
            server.cut_first = False
            self.wfile.write(BLOB[: len(BLOB) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection drops mid-file
            return
        self.wfile.write(BLOB[start:])

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[RangeServer]:
    running = RangeServer(("127.0.0.1", 0), Handler)
    running.ranges = []
    threading.Thread(target=running.serve_forever, daemon=True).start()
    yield running
    running.shutdown()


def _url(server: RangeServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/export-data.tar.gz"


def test_a_cut_download_resumes_where_it_stopped(server: RangeServer, tmp_path: Path) -> None:
    digest = hashlib.sha256(BLOB).hexdigest()
    path = download_export(_url(server), tmp_path, sha256=digest, progress=False, retry_delay=0)
    assert path.read_bytes() == BLOB and not (tmp_path / "export-data.tar.gz.part").exists()
    assert server.ranges == ["", f"bytes={len(BLOB) // 2}-"]


def test_partial_file_is_kept_for_the_next_run(server: RangeServer, tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="run the command again to resume"):
        download_export(_url(server), tmp_path, attempts=1, progress=False, retry_delay=0)
    assert (tmp_path / "export-data.tar.gz.part").stat().st_size == len(BLOB) // 2
    path = download_export(_url(server), tmp_path, progress=False, retry_delay=0)
    assert path.read_bytes() == BLOB and server.ranges[-1] == f"bytes={len(BLOB) // 2}-"


def test_a_tampered_file_is_rejected_and_deleted(server: RangeServer, tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="does not match the pinned .*nothing was loaded") as raised:
        download_export(_url(server), tmp_path, sha256="ab" * 32, progress=False, retry_delay=0)
    assert "\n" not in str(raised.value)
    assert not list(tmp_path.iterdir())
