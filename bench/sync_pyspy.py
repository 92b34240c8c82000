"""Where the indexer's time goes, by sampling (py-spy), without cProfile's per-call overhead.

    python bench/sync_pyspy.py [--path raw|v3] [--reps 3] [--blocks 40] [--txs 2000]

Runs `py-spy record --format raw` over `bench_sync.py --kinds indexer` (the recording
run plus `--reps` measured indexer syncs of one fetcher path), keeps the samples taken
inside `ChainSync.sync`, and prints the share of those samples spent under each stage.
Stages are matched on the innermost listed frame of a stack, so shares add up to 100 %.
The collapsed stacks stay in bench/out/sync-pyspy-<path>.txt (flamegraph.pl input).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"

# (label, frame-name fragments); a sample goes to the listed stage whose frame is innermost.
STAGES = (
    ("RPC: bitcoind reply read + JSON decode (BitcoindRPC._post)", ("_post (bns_resolver/chain/rpc.py",)),
    ("raw scan: scan_raw_block", ("scan_raw_block (",)),
    ("v3 candidate filter: selected_txs / is_candidate", ("selected_txs (",)),
    ("block decode to ChainBlock (decode_block / decode_tx)", ("decode_block (", "decode_tx (")),
    ("engine: consensus-hash window checks (get_consensus_hash)", ("get_consensus_hash (",)),
    ("store: commit_block (namespace refresh)", ("commit_block (bns_resolver/index",)),
    ("store: flush (sync_state, generation, COMMIT)", ("flush (bns_resolver/index",)),
    ("store: begin_block (connect + BEGIN once per flush)", ("begin_block (bns_resolver/index",)),
    ("engine + store: other (ops, records, history, undo log)", ("process_block (bns_resolver/bns/engine.py",)),
    ("fetcher/virtualchain: other (incl. freeing last batch)", ("iter_blocks (", "_extend (")),
    ("ChainSync setup + check_network + record_tip", ("sync (bns_resolver/chainsync.py",)),
)


def summarize(raw: Path) -> list[tuple[str, int, float]]:
    counts: dict[str, int] = {}
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if "sync (bns_resolver/chainsync.py" not in stack:
            continue
        frames = stack.split(";")
        best, depth = "other", -1
        for label, fragments in STAGES:
            for i, frame in enumerate(frames):
                if any(f in frame for f in fragments) and i > depth:
                    best, depth = label, i
        counts[best] = counts.get(best, 0) + int(n)
    total = sum(counts.values()) or 1
    return sorted(((k, v, v / total) for k, v in counts.items()), key=lambda r: -r[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", default="raw", choices=("raw", "v3"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--txs", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    args = parser.parse_args()
    raw = OUT / f"sync-pyspy-{args.path}.txt"
    subprocess.run(["py-spy", "record", "--format", "raw", "--rate", str(args.rate), "--output", str(raw),
                    "--", sys.executable, str(REPO / "bench" / "bench_sync.py"), "--paths", args.path,
                    "--kinds", "indexer", "--reps", str(args.reps), "--blocks", str(args.blocks),
                    "--txs", str(args.txs)], check=True, timeout=600, stdout=subprocess.DEVNULL)
    rows = summarize(raw)
    total = sum(n for _, n, _ in rows)
    print(f"py-spy, {args.path} path, {total} samples inside ChainSync.sync ({args.reps + 1} syncs):\n")
    print("| stage | samples | share |\n|---|---|---|")
    for label, n, share in rows:
        print(f"| {label} | {n} | {share:.0%} |")


if __name__ == "__main__":
    main()
