"""Sync throughput: the indexer versus the raw transfer of the same bitcoind RPC calls.

A synthetic regtest chain of ~1 MB / ~2,000-transaction blocks with a few BNS ops each
(sync_chain.py, built once into bench/out/) is served by the test bitcoind in its own
process (sync_node.py).  For each fetcher path — `getblock <hash> 3` (the default) and
`raw=True` (`getblock <hash> 0` + `getrawtransaction <txid> 2 <blockhash>` for candidates)
— and `files` (ChainSync's default with the raw blocks read from blk*.dat files written once
from the chain, in Core's format with an XOR key, next to it in bench/out/) — it alternates,
`--reps` times:

* transfer: exactly the RPC calls the indexer made on that path (recorded once, through
  the same BitcoindRPC), replies read and JSON-decoded, nothing else;
* indexer: a full sync into a fresh SQLite index with the real wiring (ChainSync:
  BitcoindRPC -> BlockFetcher -> VirtualChain (block transactions, flush points) -> BnsEngine ->
  SqlStateStore), confirmations 1, checked against the consensus hash the build computed.

(plus an informational "bare" transfer: the same requests over http.client, plain json.loads)
and reports blocks/s, MB/s of serialized blocks, and indexer/transfer (target >= 0.8) three
ways: on median wall time, on the best run of each, and on CPU seconds (client + node: the
exchange is serial, so on a busy shared host CPU time is the steadier figure).
`--profile` adds one cProfile'd indexer run per path; `sync_pyspy.py` samples instead.
Output: stdout, bench/out/sync-latest.md and .json.

    python bench/bench_sync.py [--blocks 40] [--txs 2000] [--reps 5] [--profile] [--gc-off]
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import gc
import http.client
import io
import json
import os
import pstats
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from sync_chain import OUT, ensure_chain
from sync_node import PASSWORD, USER

from bns_resolver.chain.blkfiles import NETWORK_MAGIC, BlockFiles, xor_at
from bns_resolver.chain.fetcher import BlockFetcher
from bns_resolver.chain.rpc import BitcoindRPC
from bns_resolver.chainsync import SYNC_PREFETCH, ChainSync
from bns_resolver.config import ChainSettings
from bns_resolver.index.db import open_index, sqlite_url
from bns_resolver.index.sync_state import read_sync_state

PATHS = ("v3", "raw", "piped", "files")
FETCHER_OPTIONS: dict[str, dict[str, Any]] = {
    "v3": {}, "raw": {"raw": True}, "piped": {"raw": True, "prefetch": SYNC_PREFETCH},
    "files": {"raw": True, "prefetch": SYNC_PREFETCH}}
BLK_FILE_BYTES = 128 * 2**20  # Core starts a new blk file past 128 MiB
XOR_KEY = bytes.fromhex("3c5e1fa9027bd864")  # Core >= 28 draws one per data dir
V1_HISTORY_BLOCKS = 665_749 - 373_601 + 1  # BNS v1 on mainnet: first block to the freeze
CLK_TCK = os.sysconf("SC_CLK_TCK")
MB = 1_000_000


# -- the node ------------------------------------------------------------------------------------
class Node:
    """sync_node.py in a child process (its own interpreter, so no shared GIL)."""

    def __init__(self, folder: Path, cpu: int | None) -> None:
        cmd = [sys.executable, str(REPO / "bench" / "sync_node.py"), str(folder)]
        if cpu is not None and shutil.which("taskset"):
            cmd = ["taskset", "-c", str(cpu), *cmd]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 180)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError(f"sync_node.py did not start: {line!r}")
        _, port, self.load_seconds = line.split()
        self.url = f"http://{USER}:{PASSWORD}@127.0.0.1:{port}"

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


# -- the indexer -----------------------------------------------------------------------------------
class Recorder:
    """Passes BitcoindRPC calls through, noting (method, args) for the transfer replay."""

    def __init__(self, rpc: BitcoindRPC) -> None:
        self._rpc, self.calls = rpc, []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._rpc, name)
        if name.startswith("_") or name in ("close", "endpoint") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return attr(*args, **kwargs)
        return call


def chain_sync(engine: Any, url: str, meta: dict[str, Any], path: str,
               wrap: Callable[[BitcoindRPC], Any] | None = None) -> ChainSync:
    """What `bns-resolver sync --network regtest` wires up, with the fetcher of `path`
    ("piped" is ChainSync's own default: raw blocks prefetched on a thread; "files" the same
    with `--bitcoind-blocks-dir`)."""
    blocks_dir = Path(meta["blocks_dir"]) if path == "files" else None
    settings = ChainSettings(bitcoind=url, network="regtest", confirmations=1, blocks_dir=blocks_dir,
                             profile={"first_block": meta["first_block"]})
    sync = ChainSync(engine, settings)
    rpc = wrap(sync.rpc) if wrap else sync.rpc
    sync.rpc = rpc
    files = {"block_files": BlockFiles(blocks_dir, "regtest")} if blocks_dir else {}
    sync.virtualchain.fetcher = BlockFetcher(rpc, magic=sync.profile.magic, confirmations=1,
                                             **FETCHER_OPTIONS[path], **files)
    return sync


def ensure_block_files(folder: Path) -> Path:
    """blk*.dat for the cached chain, as Core lays them out: 128 MiB files, XOR key in xor.dat,
    neighbouring blocks swapped (Core stores them in arrival order), zero-padded tails."""
    blocks_dir = OUT / f"{folder.name}-blocks"
    if (blocks_dir / "xor.dat").exists():
        return blocks_dir
    shutil.rmtree(blocks_dir, ignore_errors=True)
    blocks_dir.mkdir(parents=True)
    raws = [bytes.fromhex(line) for line in (folder / "blocks.hex").read_text().split()]
    for i in range(0, len(raws) - 1, 2):
        raws[i], raws[i + 1] = raws[i + 1], raws[i]
    number, chunk = 0, bytearray()
    for raw in raws:
        chunk += NETWORK_MAGIC["regtest"] + len(raw).to_bytes(4, "little") + raw
        if len(chunk) >= BLK_FILE_BYTES or raw is raws[-1]:
            chunk += bytes(16 * 2**20 - len(chunk) % (16 * 2**20))  # preallocated in 16 MiB steps
            (blocks_dir / f"blk{number:05d}.dat").write_bytes(xor_at(bytes(chunk), XOR_KEY, 0))
            number, chunk = number + 1, bytearray()
    (blocks_dir / "xor.dat").write_bytes(XOR_KEY)
    return blocks_dir


def run_indexer(url: str, meta: dict[str, Any], path: str, *,
                wrap: Callable[[BitcoindRPC], Any] | None = None,
                profiler: cProfile.Profile | None = None) -> float:
    """Seconds for ChainSync construction + sync() into a fresh SQLite index (schema creation excluded)."""
    folder = Path(tempfile.mkdtemp(prefix="sync-index-", dir=OUT))
    try:
        engine = open_index(sqlite_url(folder))
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        sync = chain_sync(engine, url, meta, path, wrap)
        result = sync.sync()
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
        sync.rpc.close()
        with engine.connect() as conn:
            state = read_sync_state(conn)
        engine.dispose()
        if result.last_block != meta["tip"] or state.get("consensus_hash") != meta["expected_consensus_hash"]:
            raise AssertionError(f"{path}: index ends at {result.last_block} with consensus hash "
                                 f"{state.get('consensus_hash')}, expected {meta['tip']} / "
                                 f"{meta['expected_consensus_hash']}")
        return elapsed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the transfer ---------------------------------------------------------------------------------
def run_transfer(url: str, calls: list[tuple[str, tuple, dict]]) -> float:
    """The recorded calls again through a fresh BitcoindRPC: read + JSON-decode, no processing."""
    rpc = BitcoindRPC(url)
    started = time.perf_counter()
    for name, args, kwargs in calls:
        getattr(rpc, name)(*args, **kwargs)
    elapsed = time.perf_counter() - started
    rpc.close()
    return elapsed


_AS_RPC = {  # BitcoindRPC method -> how it puts its arguments on the wire
    "getblockhashes": lambda heights: [("getblockhash", h) for h in heights],
    "getblocks": lambda hashes, verbosity=3: [("getblock", h, verbosity) for h in hashes],
    "getrawtransactions_in_block": lambda pairs: [("getrawtransaction", t, 2, b) for t, b in pairs],
}


def run_bare(url: str, calls: list[tuple[str, tuple, dict]]) -> float:
    """The same requests over http.client, decoded by plain json.loads (floats, no Decimal):
    informational, a floor for what any Python JSON-RPC client pays."""
    user_pass = url.split("//", 1)[1].split("@", 1)[0]
    port = int(url.rsplit(":", 1)[1])
    headers = {"Authorization": "Basic " + base64.b64encode(user_pass.encode()).decode(),
               "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    for name, args, _ in calls:
        if name in _AS_RPC:
            body = [{"version": "1.1", "method": c[0], "params": list(c[1:]), "id": i}
                    for i, c in enumerate(_AS_RPC[name](*args))]
        else:
            body = {"version": "1.1", "method": name, "params": list(args), "id": 0}
        conn.request("POST", "/", json.dumps(body), headers)
        json.loads(conn.getresponse().read())
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


# -- measuring ------------------------------------------------------------------------------------
def measured(node: Node, run: Callable[[], float], gc_off: bool = False) -> dict[str, float]:
    gc.collect()  # the previous run's garbage is not this run's cost
    if gc_off:
        gc.disable()
    cpu0, node0 = time.process_time(), node.cpu_seconds()
    try:
        wall = run()
    finally:
        gc.enable()
    return {"wall": wall, "client_cpu": time.process_time() - cpu0, "node_cpu": node.cpu_seconds() - node0}


def profile_indexer(url: str, meta: dict[str, Any], path: str) -> dict[str, Any]:
    profiler = cProfile.Profile()
    wall = run_indexer(url, meta, path, profiler=profiler)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(25)
    (OUT / f"sync-profile-{path}.txt").write_text(text.getvalue())
    stats.dump_stats(OUT / f"sync-profile-{path}.pstats")
    return {"wall": wall, "groups": _groups(stats), "top": _top(stats, 12)}


_GROUPS = (  # (label, predicate on (file, function)); first match wins
    ("JSON decode (json.loads, parse_float=Decimal)", lambda f, n: "raw_decode" in n or f.endswith(("json/decoder.py", "json/__init__.py"))),
    ("socket/HTTP read", lambda f, n: f.endswith(("http/client.py", "socket.py", "authproxy.py")) or "recv_into" in n or "readinto" in n),
    ("chain/blocks.py (candidate scan, decode)", lambda f, n: "bns_resolver/chain/blocks.py" in f),
    ("hashing (dsha256, bytes.fromhex)", lambda f, n: "hashing.py" in f or "sha256" in n or "fromhex" in n),
    ("BNS engine (bns/)", lambda f, n: "bns_resolver/bns/" in f),
    ("index store + SQLAlchemy + sqlite3", lambda f, n: "sqlalchemy" in f or "sqlite3" in n or "bns_resolver/index/" in f),
    ("decimal / amounts", lambda f, n: "decimal" in n.lower() or "decimal" in f),
)


def _groups(stats: pstats.Stats) -> list[tuple[str, float, float]]:
    totals: dict[str, float] = {}
    grand = 0.0
    for (file, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        label = next((label for label, match in _GROUPS if match(file, name)), "other")
        totals[label] = totals.get(label, 0.0) + tottime
        grand += tottime
    return sorted(((label, t, t / grand) for label, t in totals.items()), key=lambda row: -row[1])


def _top(stats: pstats.Stats, count: int) -> list[tuple[str, float, float]]:
    rows = stats.stats.items()  # type: ignore[attr-defined]
    grand = sum(v[2] for _, v in rows)
    best = sorted(rows, key=lambda kv: -kv[1][2])[:count]
    return [(f"{Path(f).name}:{line}({n})" if f != "~" else n, v[2], v[2] / grand) for (f, line, n), v in best]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--txs", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--op-every", type=int, default=50,
                        help="blocks per BNS op in the synthetic chain (mainnet 2016-2020: about 50)")
    parser.add_argument("--paths", default="v3,raw,piped")
    parser.add_argument("--kinds", default="transfer,indexer,bare", help="which runs to make (for py-spy: indexer)")
    parser.add_argument("--profile", action="store_true", help="one cProfile'd indexer run per path")
    parser.add_argument("--pin", action="store_true",
                        help="pin the node to CPU 0 and us to CPU 1 (only on an otherwise idle host)")
    parser.add_argument("--gc-off", action="store_true",
                        help="what-if: Python's cyclic GC disabled during every measured run")
    args = parser.parse_args()
    paths = [p for p in args.paths.split(",") if p]
    folder, meta = ensure_chain(args.blocks, args.txs, args.op_every, with_v3="v3" in args.paths.split(","))
    if "files" in paths:
        meta = {**meta, "blocks_dir": str(ensure_block_files(folder))}
    pin = args.pin and len(os.sched_getaffinity(0)) >= 2
    if pin:
        os.sched_setaffinity(0, {1})
    node = Node(folder, 0 if pin else None)
    try:
        report = measure(node, meta, paths, args.reps, args.profile, args.gc_off, args.kinds.split(","))
    finally:
        node.stop()
    report.update(meta=meta, node_load_seconds=float(node.load_seconds), pinned=pin, gc_off=args.gc_off,
                  tree=_tree(),
                  command="python bench/" + " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]))
    (OUT / "sync-latest.json").write_text(json.dumps(report, indent=2) + "\n")
    text = render(report)
    (OUT / "sync-latest.md").write_text(text)
    print(text)


def measure(node: Node, meta: dict[str, Any], paths: list[str], reps: int, profile: bool,
            gc_off: bool, kinds_wanted: list[str]) -> dict[str, Any]:
    calls: dict[str, list] = {}
    for path in paths:  # warm-up + recording + correctness check
        recorders: list[Recorder] = []

        def recording(rpc: BitcoindRPC, recorders: list[Recorder] = recorders) -> Recorder:
            recorders.append(Recorder(rpc))
            return recorders[-1]
        run_indexer(node.url, meta, path, wrap=recording)
        calls[path] = recorders[0].calls
        print(f"{path}: {len(calls[path])} RPC calls recorded", file=sys.stderr)
    runs: dict[str, dict[str, list]] = {p: {"transfer": [], "indexer": [], "bare": []} for p in paths}
    for rep in range(reps):
        for index, path in enumerate(paths):
            kinds = ["transfer", "indexer", "bare"] if (rep + index) % 2 == 0 else ["indexer", "transfer", "bare"]
            kinds = [k for k in kinds if k in kinds_wanted]
            for kind in kinds:
                run = {"transfer": lambda path=path: run_transfer(node.url, calls[path]),
                       "bare": lambda path=path: run_bare(node.url, calls[path]),
                       "indexer": lambda path=path: run_indexer(node.url, meta, path)}[kind]
                result = measured(node, run, gc_off)
                runs[path][kind].append(result)
                print(f"rep {rep + 1} {path:>3} {kind:>8}: {result['wall']:.2f} s "
                      f"(client CPU {result['client_cpu']:.2f} s, node CPU {result['node_cpu']:.2f} s)",
                      file=sys.stderr)
    report: dict[str, Any] = {"runs": runs, "calls": {p: _call_summary(c) for p, c in calls.items()}}
    if profile:
        report["profile"] = {p: profile_indexer(node.url, meta, p) for p in paths}
    return report


def _tree() -> str:
    """The commit measured, and any uncommitted changes to the package."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10,
                              check=False).stdout.strip()
    dirty = git("status", "--porcelain", "--", "bns_resolver").splitlines()
    return git("rev-parse", "--short", "HEAD") + (f" + uncommitted {', '.join(d[3:] for d in dirty)}" if dirty else "")


def _call_summary(calls: list[tuple[str, tuple, dict]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, args, _ in calls:
        out[name] = out.get(name, 0) + 1
        if name in _AS_RPC:
            out[name + " (items)"] = out.get(name + " (items)", 0) + len(args[0])
    return out


def render(report: dict[str, Any]) -> str:
    meta = report["meta"]
    blocks, mb = meta["blocks"], meta["block_bytes"] / MB
    reps = max(len(rs) for kinds in report["runs"].values() for rs in kinds.values())
    notes = [f"tree {report.get('tree', '?')}", f"median of {reps} alternating runs"]
    if report["pinned"]:
        notes.append("node pinned to CPU 0, client to CPU 1")
    if report.get("gc_off"):
        notes.append("**GC disabled during the runs (what-if)**")
    lines = [
        f"Chain: {blocks} blocks (heights {meta['first_block']}..{meta['tip']}), {meta['tx_count']:,} txs, "
        f"{mb:.1f} MB serialized ({mb / blocks:.2f} MB/block), {meta['accepted_ops']} BNS ops accepted; "
        f"verbosity-3 JSON {meta['v3_json_bytes'] / MB:.0f} MB (0: not pre-encoded); " + "; ".join(notes) + ".",
        "",
        ("| path | run | wall s, median (range) | blocks/s | MB/s | client CPU s | node CPU s "
         "| indexer/transfer: median wall | best wall | CPU | v1 history (292,149 blocks) at this rate |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cpu(rs: list[dict[str, float]]) -> float:
        return statistics.median(r["client_cpu"] + r["node_cpu"] for r in rs)

    for path, kinds in report["runs"].items():
        xfer = kinds["transfer"]
        for kind in ("transfer", "indexer", "bare"):
            rs = kinds[kind]
            if not rs:
                continue
            wall = statistics.median(r["wall"] for r in rs)
            ratios = " | | |"
            if kind == "indexer" and xfer:
                best = min(r["wall"] for r in xfer) / min(r["wall"] for r in rs)
                ratios = (f" **{statistics.median(r['wall'] for r in xfer) / wall:.2f}** | {best:.2f} "
                          f"| {cpu(xfer) / cpu(rs):.2f} |")
            ratios += f" **{V1_HISTORY_BLOCKS * wall / blocks / 3600:.1f} h** |" if kind == "indexer" else " |"
            label = {"transfer": "transfer (BitcoindRPC)", "indexer": "indexer (ChainSync)",
                     "bare": "bare transfer (http.client + json.loads), info"}[kind]
            lines.append(
                f"| {path} | {label} | {wall:.2f} ({min(r['wall'] for r in rs):.2f}–{max(r['wall'] for r in rs):.2f}) "
                f"| {blocks / wall:.1f} | {mb / wall:.1f} | {statistics.median(r['client_cpu'] for r in rs):.2f} "
                f"| {statistics.median(r['node_cpu'] for r in rs):.2f} |" + ratios)
    lines.append("")
    for path, summary in report["calls"].items():
        lines.append(f"RPC calls, {path}: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    for path, prof in report.get("profile", {}).items():
        lines += ["", (f"cProfile of one indexer run, {path} ({prof['wall']:.2f} s under the profiler), "
                       "own time by group:"), "", "| group | s | share |", "|---|---|---|"]
        lines += [f"| {label} | {t:.2f} | {share:.0%} |" for label, t, share in prof["groups"]]
        lines += ["", "| function (top by own time) | s | share |", "|---|---|---|"]
        lines += [f"| `{name}` | {t:.2f} | {share:.0%} |" for name, t, share in prof["top"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
