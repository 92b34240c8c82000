"""Rule generations: one object per reference code generation, chosen once per profile."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from bns_resolver.bns.generations import GENERATIONS, generation
from bns_resolver.bns.networks import mainnet
from bns_resolver.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[2] / "bns_resolver"


def test_known_generations() -> None:
    assert list(GENERATIONS) == ["0.14.0", "0.14.0-sqlite-early", "0.14.0-sqlite", "0.14.1", "v22"]
    assert mainnet().generation is generation("v22")
    assert generation("v22").v22_rules and generation("v22").renewal_by_outputs
    assert [g.flatfile_db for g in GENERATIONS.values()] == [True, False, False, False, False]
    assert [g.sept2016 for g in GENERATIONS.values()] == [True, True, True, False, False]
    assert [g.tx_pubkey_on_renew_revoke for g in GENERATIONS.values()] == [False, True, False, False, False]


def test_unknown_generation_fails_when_the_profile_is_made() -> None:
    with pytest.raises(ConfigError, match="unknown rules generation '0.15'"):
        replace(mainnet(), rules="0.15")


def test_no_generation_name_comparisons_outside_the_interface() -> None:
    """Rules ask the generation object; only bns/generations.py names generations."""
    pattern = re.compile(r"""rules\s*[!=]=|\.rules\.startswith|\.rules\s+in\s""")
    offenders = [f"{p.relative_to(PACKAGE)}:{n}" for p in PACKAGE.rglob("*.py")
                 for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []
