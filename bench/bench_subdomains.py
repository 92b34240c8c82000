"""DNS queries per server CPU-second for subdomain names versus top-level names, in one run.

Usage (from the repository root):  python bench/bench_subdomains.py [--seconds 10] [--reps 3]

One bns-resolver with the embedded snapshot answers `_http._tcp.<name> URI` for its 12 on-chain
names and for its 50 `*.id.blockstack` subdomains; dnsperf runs alternate between the two query
files against the same server process. Results are printed as a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import build_query, pinned, run_dnsperf  # noqa: E402

from bns_resolver.index.snapshot import EMBEDDED_DIR, iter_sections  # noqa: E402

PORT = 15360


def query_files(folder: Path) -> dict[str, Path]:
    sections = dict(iter_sections((EMBEDDED_DIR / "chainstate.txt").read_text()))
    names = [row["name"] for row in sections["NAMES"]]
    subdomains = [line.split(",")[2] for line in (EMBEDDED_DIR / "subdomains.csv").read_text().splitlines()[1:]]
    files = {"top-level names": names, "subdomains": subdomains}
    paths = {}
    for label, fqns in files.items():
        path = folder / f"{label.replace(' ', '-')}.txt"
        path.write_text("".join(f"_http._tcp.{fqn} URI\n" for fqn in fqns))
        paths[label] = path
    return paths


def start_server(data_dir: Path) -> subprocess.Popen[bytes]:
    config = data_dir / "bench.toml"
    data_dir.mkdir(parents=True, exist_ok=True)
    config.write_text("[namespaces]\nicann_tlds = { id = true, blockstack = false }\n")
    argv = [sys.executable, "-m", "bns_resolver.cli", "serve", "--data-dir", str(data_dir), "--config", str(config),
            "--listen", f"127.0.0.1:{PORT}", "--upstream", "127.0.0.1:9", "--log-level", "WARNING"]
    proc = subprocess.Popen(pinned(1, argv))
    probe = build_query("_http._tcp.zone117x.id", 256, 1)
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.2)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sock.sendto(probe, ("127.0.0.1", PORT))
        try:
            sock.recv(4096)
            return proc
        except OSError:
            continue
    proc.kill()
    raise RuntimeError("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = query_files(Path(tmp))
        server = start_server(Path(tmp) / "data")
        try:
            results: dict[str, list[tuple[float, float]]] = {label: [] for label in files}
            for label, path in files.items():  # warm the caches
                run_dnsperf(PORT, path, seconds=2, clients=4, outstanding=20, verbose=False, server_pid=server.pid)
            for _ in range(args.reps):
                for label, path in files.items():
                    run = run_dnsperf(PORT, path, seconds=args.seconds, clients=10, outstanding=100, verbose=False,
                                      server_pid=server.pid)
                    results[label].append((run.qps, run.completed / run.cpu if run.cpu else 0.0))
        finally:
            server.terminate()
            server.wait()
    print("| query set | QPS (median) | queries per server CPU-s (median) | per CPU-s, all runs |")
    print("|---|---:|---:|---|")
    for label, runs in results.items():
        qps = statistics.median(r[0] for r in runs)
        per_cpu = statistics.median(r[1] for r in runs)
        print(f"| {label} | {qps:,.0f} | {per_cpu:,.0f} | {', '.join(f'{r[1]:,.0f}' for r in runs)} |")
    top, sub = (statistics.median(r[1] for r in results[k]) for k in ("top-level names", "subdomains"))
    print(f"\nsubdomains / top-level names, queries per CPU-second: {sub / top:.2f}x")


if __name__ == "__main__":
    main()
