"""Tests for bns.senders: base58check, script types, OP_RETURN selection."""

from bns_resolver.bns import senders
from bns_resolver.chain.types import ChainTx, TxOutput


def test_burn_address_round_trip() -> None:
    """hash160 of 20 zero bytes is the mainnet burn address."""
    assert senders.b58check_encode(0, b"\0" * 20) == "1111111111111111111114oLvT2"
    assert senders.b58check_decode("1111111111111111111114oLvT2") == (0, b"\0" * 20)


def test_testnet_address_of_p2pkh_script() -> None:
    """Regtest p2pkh version 111 (TV5's recipient)."""
    script = "76a914f75b20399d771f515a3cd80f941aa7461d92518c88ac"
    assert senders.script_type(script) == "p2pkh"
    assert senders.script_to_address(script, 111, 196) == "n44rMyQ9rhTf7KjFdRwDNMWUSJ3MWLsDQ4"
    assert senders.script_type("0014" + "00" * 20) is None


def test_last_op_return_wins() -> None:
    """virtualchain keeps the last OP_RETURN output; a bare OP_RETURN resets it."""
    outs = (TxOutput(0, "6a03696421"), TxOutput(0, "6a"))
    assert senders.nulldata_payload(ChainTx("t", 1, (), outs)) is None
    outs = (TxOutput(0, "6a"), TxOutput(0, "6a03696421"))
    assert senders.nulldata_payload(ChainTx("t", 1, (), outs)) == b"id!"
