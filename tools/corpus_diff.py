#!/usr/bin/env python3
"""Replay consensus-corpus recordings and show, field by field, where the engine first differs.

    python3 tools/corpus_diff.py RECORDING.json.gz [...] [--rules 0.14.1]

For each file: the rule generation it replays under (picked from the recording's config), the
first block whose ops hash differs, then for every op of that block matched by txid the fields
whose values differ (named as the reference logged them), and the ops only one side accepted.
`--rules` replays under another rule generation (bns/generations.py) to see which generation a
recording agrees with.  Exit status 1 if any file diverges.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bns_resolver.bns.engine import BnsEngine
from bns_resolver.bns.state import MemoryStateStore
from bns_resolver.chain.virtualchain import apply_block
from tests.support.corpus import load_scenario


def _values(serialized: str) -> list[str]:
    body, out = serialized[2:], []
    while body:
        length, rest = body.split(":", 1)
        out.append(rest[: int(length)])
        body = rest[int(length) + 1:]
    return out


def first_divergence(path: Path, rules: str | None = None) -> tuple[str, list[str]]:
    """(the rule generation replayed, the first diverging block's description or [])."""
    scenario = load_scenario(path)
    if scenario.profile is None:
        return "-", []
    profile = replace(scenario.profile, rules=rules) if rules else scenario.profile
    engine = BnsEngine(profile, MemoryStateStore())
    heights = scenario.replayable_heights()
    for block, recorded in zip(scenario.blocks, scenario.data["blocks"]):
        if block.height not in heights:
            break
        outcome = apply_block(engine.store, engine, block)
        if outcome.ops_hash == recorded["ops_hash"]:
            continue
        return profile.rules, _describe(block.height, recorded["accepted_ops"], outcome.accepted)
    return profile.rules, []


def _describe(height: int, recorded: list[dict], accepted: tuple) -> list[str]:
    lines = [f"block {height}: reference accepted {len(recorded)} ops, engine {len(accepted)}"]
    ours = {a.txid: a for a in accepted}
    for op in recorded:
        mine = ours.pop(op["txid"], None)
        label = f"  vtx {op['vtxindex']} {op['op']} {op['txid'][:16]}"
        if mine is None:
            lines.append(f"{label}: accepted by the reference only")
            continue
        theirs = [v for _, v in op["fields"]]
        values = _values(mine.serialized)
        diffs = [f"{name}={want!r} (engine {got!r})"
                 for (name, want), got in zip(op["fields"], values + [""] * len(theirs)) if want != got]
        if len(values) != len(theirs):
            diffs.append(f"{len(theirs)} fields (engine {len(values)})")
        if diffs:
            lines.append(f"{label}: " + "; ".join(diffs))
    for txid, mine in ours.items():
        lines.append(f"  vtx {mine.vtxindex} {mine.opchar} {txid[:16]}: accepted by the engine only")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recordings", nargs="+", type=Path)
    parser.add_argument("--rules", help="replay under this rule generation instead of the recording's")
    args = parser.parse_args(argv)
    diverged = 0
    for path in args.recordings:
        rules, lines = first_divergence(path, args.rules)
        print(f"{path} (rules {rules}): " + ("matches at every block" if not lines else "DIVERGES"))
        for line in lines:
            print(line)
        diverged += bool(lines)
    return 1 if diverged else 0


if __name__ == "__main__":
    sys.exit(main())
