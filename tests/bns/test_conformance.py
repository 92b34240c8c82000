"""Replay every consensus-corpus scenario through BnsEngine and compare hashes per block."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.support.corpus import best_replay, corpus_dir, corpus_files, load_scenario, serialized_accepted_ops

FILES = corpus_files()


def _diff(expected: list[str], got: list[str]) -> str:
    lines = difflib.unified_diff(sorted(expected), sorted(got), "accepted_ops (reference)", "engine", lineterm="", n=0)
    return "\n".join(lines)


@pytest.mark.skipif(not FILES, reason=f"no corpus files under {corpus_dir()}")
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(Path(p).relative_to(corpus_dir())))
def test_scenario_replays_bit_exact(path: Path) -> None:
    """Ops hash and consensus hash after every (replayable) block equal the reference's, under one
    of the rule generations the scenario's version may have been recorded with."""
    scenario = load_scenario(path)
    if not scenario.blocks or scenario.profile is None:
        pytest.skip(f"{scenario.label}: aborted log without blocks")
    result = best_replay(scenario)
    if result.divergence is not None:
        block, outcome = result.outcomes[-1]
        recorded = next(b for b in scenario.data["blocks"] if b["height"] == block.height)
        got = [a.serialized for a in outcome.accepted]
        pytest.fail(
            f"{scenario.label}: first divergence at block {block.height} under {result.profile.rules} "
            f"(consensus {outcome.consensus_hash} != {recorded['consensus_hash']}; "
            f"candidates {', '.join(p.rules for p in scenario.profiles)})\n"
            + _diff(serialized_accepted_ops(recorded), got)
        )
    assert len(result.outcomes) == len(scenario.replayable_heights())
