#!/usr/bin/env python3
"""Start-up time and private memory of `serve`, as it is and without the STX supply in its start-up log.

`serve` logs a summary before its reactor runs, and that summary (`lookup_report.index_status`)
includes the genesis STX supply, which loads the whole genesis allocation (kept by an lru_cache).
This starts `serve` alternately as is and with `describe_supply` replaced by a function returning
None (a what-if: the package is not changed), on a data dir whose store is current, and reads
exec → first good answer and /proc/PID/status after that answer.

    python bench/startup_whatif.py --data-dir DIR --probe _http._tcp.NAME [--starts 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import memory_mib  # noqa: E402
from run_dns_bench import ICANN_TLDS, SERVER_CPU, TYPE_URI  # noqa: E402
from servers import Processes, ours_argv, ours_config  # noqa: E402

WITHOUT_SUPPLY = ("import sys; import bns_resolver.lookup_report as report; "
                  "report.describe_supply = lambda *args: None; "
                  "from bns_resolver.cli import main; sys.exit(main())")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--probe", required=True, help="a name with a URI record")
    p.add_argument("--starts", type=int, default=4, help="starts per variant, alternating (default 4)")
    p.add_argument("--port", type=int, default=25470)
    args = p.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"as is": [], "without the STX supply": []}
    procs = Processes()
    with tempfile.TemporaryDirectory() as tmp:
        config = ours_config(Path(tmp) / "bns-resolver.toml", ICANN_TLDS)
        argv = ours_argv(args.data_dir, args.port, 9, config)
        variants = {"as is": argv, "without the STX supply": [sys.executable, "-c", WITHOUT_SUPPLY, *argv[-9:]]}
        try:
            for start in range(args.starts):
                for label in (list(variants) if start % 2 == 0 else list(reversed(variants))):
                    server = procs.start(label, variants[label], args.port, Path(tmp) / "serve.log", cpu=SERVER_CPU,
                                         probe=(args.probe, TYPE_URI))
                    results[label].append((server.startup or 0.0, memory_mib(server.pid)["RssAnon"]))
                    procs.stop(server)
        finally:
            procs.stop_all()
    print("| serve | start-up s, median (all) | RssAnon MiB after the first answer, median |")
    print("|---|---:|---:|")
    for label, runs in results.items():
        startups = [s for s, _ in runs]
        print(f"| {label} | {statistics.median(startups):.3f} ({', '.join(f'{s:.3f}' for s in startups)}) "
              f"| {statistics.median(m for _, m in runs):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
