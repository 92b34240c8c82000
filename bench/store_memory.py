#!/usr/bin/env python3
"""Memory and start-up of `serve` answering from the compiled store, private vs file-backed.

Starts `bns-resolver serve` on the synthetic index of `synth_index.py` (its store already
compiled, e.g. by `run_dns_bench.py` or `bns-resolver compile`), asks every name once, and
reads /proc/PID/status: RssAnon is the process's own memory (the issue's target), RssFile
the store's pages in the page cache (shared, reclaimable).

    python bench/store_memory.py [--names 300000] [--queries 50000] [--port 25499]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import build_query, status_kib  # noqa: E402
from servers import Processes, ours_argv, ours_config  # noqa: E402
from synth_index import NAMESPACE, ensure_index, query_name  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
TYPE_URI = 256


def ask_all(port: int, names: int, queries: int) -> int:
    """Each of `queries` names once, a few in flight; returns how many got an answer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    answered = 0
    step = max(names // queries, 1)
    for n in range(queries):
        sock.sendto(build_query(query_name((n * step) % names), TYPE_URI, n & 0xFFFF), ("127.0.0.1", port))
        try:
            reply, _ = sock.recvfrom(4096)
            answered += reply[3] & 0x0F == 0 and reply[7] > 0
        except OSError:
            pass
    return answered


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--names", type=int, default=300_000)
    p.add_argument("--queries", type=int, default=50_000)
    p.add_argument("--port", type=int, default=25499)
    args = p.parse_args()
    data_dir, _ = ensure_index(OUT, args.names)
    procs = Processes()
    with tempfile.TemporaryDirectory() as tmp:
        config = ours_config(Path(tmp) / "bench.toml", {NAMESPACE: False})
        try:
            argv = ours_argv(data_dir, args.port, 9, config)
            server = procs.start("ours", argv, args.port, Path(tmp) / "ours.log", cpu=None,
                                 probe=(query_name(0), TYPE_URI))
            log = (Path(tmp) / "ours.log").read_text()
            from_store = "matches the index" in log
            started = time.monotonic()
            answered = ask_all(args.port, args.names, args.queries)
            seconds = time.monotonic() - started
            kib = {key: status_kib(server.pid, key) for key in ("VmRSS", "RssAnon", "RssFile")}
        finally:
            procs.stop_all()
    print(f"{args.names:,} names; store current at start: {from_store}; start-up {server.startup:.3f} s")
    print(f"{answered:,} of {args.queries:,} distinct names answered in {seconds:.1f} s (one at a time)")
    print(", ".join(f"{key} {value / 1024:.1f} MiB" for key, value in kib.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
