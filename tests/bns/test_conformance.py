"""Replay every consensus-corpus scenario through BnsEngine and compare hashes per block."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from bns_resolver.chain.virtualchain import apply_block
from bns_resolver.bns.engine import BnsEngine
from bns_resolver.bns.state import MemoryStateStore
from tests.support.corpus import corpus_dir, corpus_files, load_scenario, serialized_accepted_ops

FILES = corpus_files()


def _diff(expected: list[str], got: list[str]) -> str:
    lines = difflib.unified_diff(sorted(expected), sorted(got), "accepted_ops (reference)", "engine", lineterm="", n=0)
    return "\n".join(lines)


@pytest.mark.skipif(not FILES, reason=f"no corpus files under {corpus_dir()}")
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(Path(p).relative_to(corpus_dir())))
def test_scenario_replays_bit_exact(path: Path) -> None:
    """Ops hash and consensus hash after every (replayable) block equal the reference's."""
    scenario = load_scenario(path)
    if not scenario.blocks or scenario.profile is None:
        pytest.skip(f"{scenario.label}: aborted log without blocks")
    engine = BnsEngine(scenario.profile, MemoryStateStore())
    heights = scenario.replayable_heights()
    for block, recorded in zip(scenario.blocks, scenario.data["blocks"]):
        if block.height not in heights:
            break
        outcome = apply_block(engine.store, engine, block)
        if (outcome.ops_hash, outcome.consensus_hash) != (recorded["ops_hash"], recorded["consensus_hash"]):
            got = [a.serialized for a in outcome.accepted]
            pytest.fail(
                f"{scenario.label}: first divergence at block {block.height} "
                f"(consensus {outcome.consensus_hash} != {recorded['consensus_hash']})\n"
                + _diff(serialized_accepted_ops(recorded), got)
            )
    assert engine.store.last_block() == max(heights)
