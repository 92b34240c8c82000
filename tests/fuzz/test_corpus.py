"""Replay the fuzzing corpus (seeds and every input a campaign found) through the targets, without atheris."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.targets import TARGETS

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(path for path in CORPUS.glob("*/*") if path.is_file())


def test_every_target_has_a_corpus() -> None:
    assert {path.parent.name for path in CASES} == set(TARGETS)


@pytest.mark.parametrize("case", CASES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_corpus_input_is_handled(case: Path) -> None:
    """Each input is answered or rejected with the module's own one-line error: never a crash."""
    TARGETS[case.parent.name](case.read_bytes())
