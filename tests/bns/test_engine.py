"""Tests for bns.engine.BnsEngine: TV8 chain, reorg undo, ordering and the freeze height."""

from dataclasses import replace

import pytest

from bns_resolver.chain.virtualchain import apply_block
from bns_resolver.bns.consensus import EMPTY_OPS_HASH
from bns_resolver.bns.engine import BnsEngine
from bns_resolver.bns.state import MemoryStateStore
from bns_resolver.chain.types import ChainBlock
from bns_resolver.errors import ChainError
from tests.support.corpus import corpus_dir, load_scenario

ACCOUNTS = corpus_dir() / "0.14.1" / "name_preorder_register_update_accounts.json.gz"


@pytest.fixture()
def scenario():
    if not ACCOUNTS.exists():
        pytest.skip("TV8 corpus file not present")
    return load_scenario(ACCOUNTS)


def test_tv8_chain_and_accepted_ops(scenario) -> None:
    """Blocks 256–263 give TV8's consensus hashes; 261 accepts the foo.test registration."""
    engine = BnsEngine(scenario.profile, MemoryStateStore())
    outcomes = {b.height: apply_block(engine.store, engine, b) for b in scenario.blocks}
    assert outcomes[262].consensus_hash == "9e950b332a2e20da452cf696875c7826"
    reg = outcomes[261].accepted
    assert [(a.opcode, a.fqn) for a in reg] == [("NAME_REGISTRATION", "foo.test")]
    assert reg[0].serialized.startswith("::8:foo.test,0:,")  # opchar, then the field list
    assert engine.store.get_name("foo.test")["value_hash"] is not None  # updated at 262


def test_rollback_and_replay_give_identical_hashes(scenario) -> None:
    """Undoing the newest block and feeding it again reproduces the same outcome."""
    store = MemoryStateStore()
    engine = BnsEngine(scenario.profile, store)
    blocks = scenario.blocks[:7]
    outcomes = [apply_block(store, engine, b) for b in blocks]
    before = store.get_name("foo.test")
    store.undo_block(blocks[-1].height)
    assert store.get_name("foo.test") != before
    assert apply_block(store, engine, blocks[-1]) == outcomes[-1]


def test_blocks_must_arrive_in_order(scenario) -> None:
    """A gap in heights is a chain error, not silent acceptance."""
    engine = BnsEngine(scenario.profile, MemoryStateStore())
    with pytest.raises(ChainError):
        apply_block(engine.store, engine, scenario.blocks[1])


def test_frozen_blocks_accept_nothing(scenario) -> None:
    """From the freeze height on, ops are ignored and the block hashes as empty."""
    profile = replace(scenario.profile, freeze_height=scenario.profile.first_block + 1)
    engine = BnsEngine(profile, MemoryStateStore())
    apply_block(engine.store, engine, scenario.blocks[0])
    outcome = apply_block(engine.store, engine, scenario.blocks[1])  # the NAMESPACE_PREORDER block
    assert outcome.accepted == () and outcome.ops_hash == EMPTY_OPS_HASH


def test_empty_chain_block_hash() -> None:
    """A first block without txs hashes to the documented genesis successor."""
    from bns_resolver.bns.networks import from_corpus_config

    profile = from_corpus_config({"first_block": 256, "epochs": {}}, "0.14")
    block = ChainBlock(height=256, block_hash="00" * 32, prev_hash="00" * 32, txs=())
    store = MemoryStateStore()
    outcome = apply_block(store, BnsEngine(profile, store), block)
    assert outcome.consensus_hash == "2a9148d8b13939723d2aca16c75c6d68"
