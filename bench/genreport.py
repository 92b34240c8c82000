#!/usr/bin/env python3
"""ISC's DNS compliance tester (`genreport`, the tool behind ednscomp.isc.org) against `serve`.

    python bench/genreport.py --source PATH [--port 25390]

PATH is a checkout of ISC's DNS-Compliance-Testing (gitlab.isc.org/isc-projects/DNS-Compliance-Testing,
or a mirror of it). genreport is built from it with gcc and OpenSSL's headers (libssl-dev): on glibc
an empty config.h is all autotools would add. Then `bns-resolver serve` starts on the embedded
snapshot with every namespace served as BNS's own (so each namespace apex is a zone we answer for,
SOA and NS included), and `genreport -P PORT -f -c` (full mode plus the common queries) runs for
each namespace. Exit status 1 when any test is not "ok". Not part of the test suite: the machines
CI runs on cannot fetch the tester's source.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import Processes, ours_argv, ours_config  # noqa: E402

# The embedded snapshot's namespaces (bns_resolver/data/bns-genesis, chainstate.txt NAMESPACES).
NAMESPACES = ("blockstack", "graphite", "helloworld", "id", "podcast")
TYPE_SOA = 6


def build_genreport(source: Path, work: Path) -> Path:
    """genreport compiled from `source` into `work`; CalledProcessError when it does not build."""
    (work / "config.h").write_text("/* glibc has everything genreport's configure would look for */\n")
    binary = work / "genreport"
    subprocess.run(["gcc", "-O1", "-w", f"-I{work}", "-o", str(binary), str(source / "genreport.c"),
                    "-lssl", "-lcrypto", "-lresolv"], check=True)
    return binary


def run_genreport(binary: Path, port: int, zone: str) -> dict[str, str]:
    """test name -> result for one zone served on 127.0.0.1:port."""
    line = f"{zone}. ns.{zone}. 127.0.0.1\n"
    out = subprocess.run([str(binary), "-P", str(port), "-f", "-c"], input=line, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    report = next((row for row in out.splitlines() if row.startswith(f"{zone}. @127.0.0.1")), None)
    if report is None:
        raise RuntimeError(f"genreport printed no report for {zone}: {out!r}")
    return dict(item.split("=", 1) for item in report.split("): ", 1)[1].split())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, help="a DNS-Compliance-Testing checkout")
    parser.add_argument("--port", type=int, default=25390)
    args = parser.parse_args()
    processes = Processes()
    with tempfile.TemporaryDirectory(prefix="genreport-") as scratch:
        work = Path(scratch)
        binary = build_genreport(args.source.resolve(), work)
        config = ours_config(work / "bns.toml", {ns: False for ns in NAMESPACES})
        # Nothing listens on the upstream port: every answer below is the server's own.
        argv = ours_argv(work / "data", args.port, 9, config)
        try:
            processes.start("ours", argv, args.port, work / "serve.log", cpu=None, probe=("id.", TYPE_SOA))
            failures = 0
            for zone in NAMESPACES:
                results = run_genreport(binary, args.port, zone)
                bad = {test: result for test, result in results.items() if result != "ok"}
                failures += len(bad)
                print(f"{zone}.: {len(results)} tests, {len(results) - len(bad)} ok"
                      + (f"; not ok: {bad}" if bad else ""))
        finally:
            processes.stop_all()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
