#!/usr/bin/env python3
"""The change feed's costs, side by side in one run: an incremental store update of K changed
names against a full compile of the same index, and one poll of the change log.

Builds (or reuses) the synthetic index of `synth_index.py`, compiles its answer store, then logs
K of its names as changed (as a block or the fetcher would) and times `update_store` bringing the
store up to date (wall and process CPU), then a full `compile_store` of the same index. A poll
is `changes_since` with nothing new, the query every `serve` runs twice a second.

    python bench/bench_store_update.py [--names 20000] [--changed 1 10 100 1000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lmdb  # noqa: E402
from synth_index import NAMESPACE, ensure_index  # noqa: E402

from bns_resolver.answers.compile import compile_store  # noqa: E402
from bns_resolver.answers.store import open_current  # noqa: E402
from bns_resolver.answers.update import update_store  # noqa: E402
from bns_resolver.index.changes import changes_since, latest_seq, record_changes  # noqa: E402
from bns_resolver.index.db import open_index  # noqa: E402
from bns_resolver.index.lookup import IndexReader  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def timed(job):  # type: ignore[no-untyped-def]
    wall, cpu = time.monotonic(), time.process_time()
    result = job()
    return result, time.monotonic() - wall, time.process_time() - cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--names", type=int, default=20_000)
    p.add_argument("--changed", type=int, nargs="+", default=[1, 10, 100, 1000])
    p.add_argument("--polls", type=int, default=2000)
    args = p.parse_args()
    data_dir, how = ensure_index(OUT, args.names)
    print(f"index: {args.names:,} names in {data_dir} ({how})")
    engine = open_index(f"sqlite:///{data_dir / 'index.sqlite'}")
    reader = IndexReader(engine)
    root = data_dir / "answers-update-bench"
    _, full_wall, full_cpu = timed(lambda: compile_store(reader, root))
    store = open_current(root)
    assert store is not None
    names = reader.names_in(NAMESPACE)
    rng = random.Random(1)
    print(f"full compile: {full_wall:.2f} s wall, {full_cpu:.2f} s CPU\n")
    print(f"{'changed names':>14s} {'update wall':>12s} {'update CPU':>11s} {'compile CPU / update CPU':>25s}")
    for count in args.changed:
        with engine.begin() as conn:
            record_changes(conn, rng.sample(names, min(count, len(names))))
        result, wall, cpu = timed(lambda: update_store(reader, store))
        assert not result.full_reason, result.full_reason
        store.renew()
        print(f"{count:14,d} {wall * 1000:10.1f} ms {cpu * 1000:9.1f} ms {full_cpu / cpu:24.0f}×")
    store.close()
    with engine.connect() as conn:
        last = latest_seq(conn)
        started = time.process_time()
        for _ in range(args.polls):
            assert changes_since(conn, last) is None
        per_poll = (time.process_time() - started) / args.polls
    print(f"\none poll of the change log with nothing new: {per_poll * 1e6:.0f} µs CPU "
          f"(twice a second: {per_poll * 2 * 100:.4f} % of one core)")
    lookups(root)
    return 0


def lookups(root: Path, count: int = 200_000, reps: int = 5) -> None:
    """ns of process CPU per `get` of a random stored key: read-only/lock-free vs writable/locked."""
    copies = {"read-only, lock=False (before)": root / "copy-ro", "writable, lock=True (now)": root / "copy-rw"}
    for path in copies.values():
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree((root / "current").resolve(), path)
        (path / "lock.mdb").unlink(missing_ok=True)
    size = (copies["read-only, lock=False (before)"] / "data.mdb").stat().st_size
    ro = lmdb.open(str(copies["read-only, lock=False (before)"]), readonly=True, lock=False, readahead=False,
                   map_size=size)
    rw = lmdb.open(str(copies["writable, lock=True (now)"]), readahead=False, map_size=1 << 36)
    with ro.begin() as txn:
        keys = [bytes(key) for key, _ in txn.cursor()]
    sample = [random.Random(2).choice(keys) for _ in range(count)]
    gets = {label: env.begin().get for label, env in zip(copies, (ro, rw))}
    runs: dict[str, list[float]] = {label: [] for label in copies}
    for _ in range(reps):
        for label, get in gets.items():
            started = time.process_time()
            for key in sample:
                get(key)
            runs[label].append((time.process_time() - started) / count * 1e9)
    print()
    for label, values in runs.items():
        print(f"lookup, {label}: median {sorted(values)[reps // 2]:.0f} ns CPU per get "
              f"({', '.join(f'{v:.0f}' for v in values)})")


if __name__ == "__main__":
    raise SystemExit(main())
