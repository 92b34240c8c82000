#!/usr/bin/env python3
"""`serve`'s first start on a big index without a compiled store: how long until the store serves, and
how DNS answers meanwhile (the slow path answers while the store compiles).

    python3 bench/first_compile.py --data-dir /work/tmp-bench22/data [--tree /tmp/base] [--runs 1]

Removes the data dir's answer store, starts `serve` from `--tree` (a checkout or `git archive` of
another commit; default: this one), and asks it, one query at a time over UDP, for the URI of a
random existing subdomain and for a random nonexistent name under `id.blockstack`, until its log
says the store is in use. Reports the compile's wall time (serve's start to "answer store in use"),
the latency percentiles of those answers and how many got no answer within 2 s.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TYPE_A, TYPE_URI = 1, 256
CONFIG = ("[namespaces]\nicann_tlds = { id = true, blockstack = false, graphite = false, helloworld = false, "
          "podcast = false, synth = false }\n")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, required=True, help="an imported index (its answers/ is removed)")
    p.add_argument("--tree", type=Path, default=ROOT, help="source tree whose serve runs (default: this one)")
    p.add_argument("--port", type=int, default=25390)
    p.add_argument("--runs", type=int, default=1)
    return p.parse_args()


def wire_query(name: str, qtype: int, query_id: int) -> bytes:
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)


def subdomains(data_dir: Path, count: int) -> list[str]:
    with sqlite3.connect(f"file:{data_dir / 'index.sqlite'}?mode=ro", uri=True) as conn:
        return [row[0] for row in conn.execute("SELECT fqn FROM subdomains ORDER BY random() LIMIT ?", (count,))]


def one_run(args: argparse.Namespace, names: list[str], label: str) -> dict[str, float]:
    shutil.rmtree(args.data_dir / "answers", ignore_errors=True)
    config = args.data_dir.parent / "first_compile.toml"
    config.write_text(CONFIG)
    log_path = args.data_dir.parent / f"first_compile-{label}.log"
    env = dict(os.environ, PYTHONPATH=str(args.tree), PYTHONUNBUFFERED="1")
    argv = [sys.executable, "-m", "bns_resolver.cli", "serve", "--config", str(config), "--data-dir",
            str(args.data_dir), "--listen", f"127.0.0.1:{args.port}", "--upstream", "127.0.0.1:9"]
    started = time.monotonic()
    with log_path.open("wb") as log:
        server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=args.tree)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    rng = random.Random(11)
    latencies: list[float] = []
    lost = 0
    store_at = None
    try:
        while time.monotonic() - started < 600:
            if "answer store in use" in log_path.read_text(errors="replace"):
                store_at = time.monotonic() - started
                break
            for name, qtype in ((f"_http._tcp.{rng.choice(names)}", TYPE_URI),
                                (f"{rng.getrandbits(40):x}.id.blockstack", TYPE_A)):
                query_id = rng.getrandbits(16)
                sent = time.monotonic()
                try:
                    sock.sendto(wire_query(name, qtype, query_id), ("127.0.0.1", args.port))
                    while True:
                        reply = sock.recv(65535)
                        if reply[:2] == struct.pack("!H", query_id):
                            break
                    latencies.append((time.monotonic() - sent) * 1000)
                except TimeoutError:
                    lost += 1
                except ConnectionRefusedError:
                    time.sleep(0.05)  # not listening yet
            time.sleep(0.05)
    finally:
        server.terminate()
        server.wait(timeout=30)
        sock.close()
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    return {"store_in_use_s": store_at or float("nan"), "answered": len(latencies), "lost": lost,
            "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": latencies[-1] if latencies else float("nan"),
            "mean_ms": statistics.fmean(latencies) if latencies else float("nan")}


def main() -> int:
    args = parse_args()
    names = subdomains(args.data_dir, 5000)
    label = args.tree.name or "tree"
    print(f"serve from {args.tree}, data dir {args.data_dir}")
    print("| run | store in use after | answered | no answer in 2 s | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run in range(1, args.runs + 1):
        r = one_run(args, names, f"{label}-{run}")
        print(f"| {run} | {r['store_in_use_s']:.1f} s | {r['answered']} | {r['lost']} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['max_ms']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
