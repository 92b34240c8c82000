"""How fast does the fetcher fill an empty index from a local HTTP mirror?

Builds N synthetic zone files shaped like the real genesis ones (same templates,
new names and hub addresses), serves them from a loopback HTTP/1.1 mirror, puts
N names referencing them into a fresh SQLite index, then times one
`fetch_round` that fetches, hash-verifies and stores them all.

    python bench/bench_zonefile_fetch.py [--files 10000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bns_resolver.hashing import hash160  # noqa: E402
from bns_resolver.index.schema import metadata, names, zonefiles  # noqa: E402
from bns_resolver.zonefiles.fetcher import FetchSettings, fetch_round  # noqa: E402
from bns_resolver.zonefiles.sources import HttpSource  # noqa: E402

GENESIS = REPO.parent / "shared" / "data" / "bns-genesis" / "derived" / "zonefiles.jsonl"


def synthetic_files(count: int) -> dict[str, tuple[str, bytes]]:
    """hash -> (name, bytes), cycling through the real files as templates."""
    templates = [json.loads(line) for line in GENESIS.read_text().splitlines() if line.strip()]
    files: dict[str, tuple[str, bytes]] = {}
    for index in range(count):
        template = templates[index % len(templates)]
        name = f"bench{index}.{template['namespace']}"
        text = template["zonefile"].replace(template["name"], name, 1).replace("/hub/1", f"/hub/{index}x", 1)
        content = text.encode()
        files[hash160(content).hex()] = (name, content)
    return files


def start_mirror(files: dict[str, tuple[str, bytes]]) -> tuple[int, multiprocessing.Process]:
    """Serve `files` from a forked process (so the mirror does not share our GIL); returns its port."""
    server = _mirror_server(files)
    process = multiprocessing.get_context("fork").Process(target=server.serve_forever, daemon=True)
    process.start()
    server.socket.close()  # the child owns the listening socket now
    return int(server.server_address[1]), process


def _mirror_server(files: dict[str, tuple[str, bytes]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # http.server writes headers and body separately; without NODELAY, Nagle plus
            # delayed ACKs stall each response ~40 ms, which measures the mirror, not us.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def do_GET(self) -> None:  # noqa: N802
            entry = files.get(self.path.rsplit("/", 1)[-1])
            body = entry[1] if entry else b"not found"
            self.send_response(200 if entry else 404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    files = synthetic_files(args.files)
    port, mirror = start_mirror(files)
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/index.sqlite")
        metadata.create_all(engine)
        with engine.begin() as conn:
            rows = [{"fqn": n, "namespace_id": n.rsplit(".", 1)[1], "value_hash": h} for h, (n, _) in files.items()]
            conn.execute(insert(names), rows)
        source = HttpSource(f"http://127.0.0.1:{port}/zonefiles/{{hash}}")
        settings = FetchSettings(concurrency=args.concurrency, limit=args.files, timeout=10)
        started = time.perf_counter()
        report = fetch_round(engine, [source], settings=settings)
        elapsed = time.perf_counter() - started
        with engine.connect() as conn:
            held = conn.execute(select(func.count()).select_from(zonefiles)).scalar_one()
    mirror.terminate()
    print(f"zone-file fetch: {len(report.stored)} stored ({held} held), {len(report.rejected)} rejected, "
          f"{len(report.still_missing)} missing in {elapsed:.2f} s = {len(report.stored) / elapsed:.0f} files/s "
          f"(http mirror on loopback, concurrency {args.concurrency}, batch {source.batch_size})")
    return 0 if held == args.files else 1


if __name__ == "__main__":
    sys.exit(main())
