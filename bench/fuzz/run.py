"""Coverage-guided fuzzing of one target in tests/fuzz/targets.py with atheris (`pip install '.[fuzz]'`).

    nice -n 19 python3 bench/fuzz/run.py query_path -runs=1000000 -print_final_stats=1

Starts from the target's regression corpus (tests/fuzz/corpus/<target>/, read only); new
interesting inputs go to a scratch folder (bench/out/fuzz/<target>/); a crash is written as
crash-<sha1> in the working directory: add it to the corpus once fixed. Any other libFuzzer
flag (-max_total_time, -max_len, -timeout) passes through.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["bns_resolver"]):
    from tests.fuzz.targets import TARGETS  # noqa: E402


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: run.py {{{','.join(TARGETS)}}} [libFuzzer flags]")
    name = sys.argv[1]
    logging.disable(logging.CRITICAL)  # rejected inputs are logged as warnings: millions of lines
    scratch = ROOT / "bench" / "out" / "fuzz" / name
    scratch.mkdir(parents=True, exist_ok=True)
    corpus = ROOT / "tests" / "fuzz" / "corpus" / name
    argv = [sys.argv[0], *sys.argv[2:], str(scratch), str(corpus)]
    atheris.Setup(argv, TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
