"""Tests for bns.networks: mainnet epochs and corpus-config mapping."""

import pytest

from bns_resolver.bns.networks import FEATURE_MULTISIG, corpus_generations, from_corpus_config, mainnet
from bns_resolver.errors import ConfigError


def test_mainnet_epoch_boundaries() -> None:
    """Epoch i covers (end_{i-1}, end_i]; freeze at 665750."""
    profile = mainnet()
    assert profile.epoch_number(436650) == 1
    assert profile.epoch_number(436651) == 2
    assert profile.epoch_number(488501) == 3
    assert profile.epoch_number(599866) == 4
    assert profile.epoch_number(613250) == 6
    assert profile.grace_period(488501) == 5000 and profile.grace_period(488500) == 0
    assert profile.is_frozen(665750) and not profile.is_frozen(665749)


def test_corpus_0141_epoch_table_applies_to_id_and_test_only() -> None:
    """Logged EPOCH_1_END_BLOCK and per-namespace multipliers come from the config."""
    config = {
        "first_block": 256,
        "address_version_bytes": {"p2pkh": 111, "p2sh": 196},
        "logged_settings": {"EPOCH_1_END_BLOCK": "262", "NAMESPACE_REVEAL_EXPIRE": "3"},
        "epochs": {
            "EPOCH_1_END_BLOCK": 262, "EPOCH_1_NAMESPACE_LIFETIME_MULTIPLIER": 1,
            "EPOCH_2_NAMESPACE_LIFETIME_MULTIPLIER": 2, "EPOCH_1_PRICE_MULTIPLIER": 1.0,
            "EPOCH_2_PRICE_MULTIPLIER": 1.0, "EPOCH_2_FEATURES": ["BLOCKSTACK_MULTISIG"],
        },
        "test_mode_constants": {"NAMESPACE_1_CHAR_COST_satoshis": {"value": 4100000000}},
    }
    profile = from_corpus_config(config, "0.14.1")
    assert profile.rules == "0.14.1" and corpus_generations(config, "0.14.1") == ("0.14.1",)
    assert profile.lifetime_multiplier(263, "test") == 2
    assert profile.lifetime_multiplier(263, "other") == 1
    assert not profile.has_feature(262, FEATURE_MULTISIG) and profile.has_feature(263, FEATURE_MULTISIG)
    assert profile.namespace_reveal_expire == 3
    assert profile.namespace_1char_cost == 4_100_000_000
    assert profile.p2pkh_version == 111


def test_corpus_0140_has_no_epochs() -> None:
    """0.13/0.14 logs ran pre-epoch code: one open epoch."""
    profile = from_corpus_config({"first_block": 256, "epochs": {"note": "none"}}, "0.13")
    assert profile.rules == "0.14.0" and len(profile.epochs) == 1


def test_corpus_014_scenarios_have_both_sqlite_generations_as_candidates() -> None:
    """The 0.14 set ran the op rules of before and from blockstack-core c4abd401e, and its files do
    not say which (logged settings included): both are candidates, c4abd401e's first."""
    base = {"first_block": 256, "epochs": {"note": "none"}}
    for logged in ({}, {"FIRST_BLOCK_MAINNET": "256", "TX_MIN_CONFIRMATIONS": "0", "NUM_CONFIRMATIONS": "0"}):
        config = dict(base, logged_settings=logged)
        assert corpus_generations(config, "0.14") == ("0.14.0-sqlite", "0.14.0-sqlite-early")
        assert from_corpus_config(config, "0.14").rules == "0.14.0-sqlite"
        assert from_corpus_config(config, "0.14", "0.14.0-sqlite-early").rules == "0.14.0-sqlite-early"
    assert corpus_generations(base, "0.13") == ("0.14.0",)


def test_corpus_generation_must_be_a_candidate_of_the_version() -> None:
    with pytest.raises(ConfigError, match="0.14.0-sqlite-early"):
        from_corpus_config({"first_block": 256, "epochs": {}}, "0.13", "0.14.0-sqlite-early")
