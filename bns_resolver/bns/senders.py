"""Bitcoin-side helpers: script classification, base58check addresses, senders.

virtualchain only admits txs whose every spent output is p2pkh or p2sh with one
address (`check_tx_sender_types`), and takes the op's sender from input 0.
"""

from __future__ import annotations

from bns_resolver.base58 import b58check_decode, b58check_encode  # noqa: F401 - re-exported
from bns_resolver.chain.types import ChainTx
from bns_resolver.hashing import hash160


def script_type(script_hex: str) -> str | None:
    """'p2pkh', 'p2sh', 'nulldata' or None (anything else)."""
    script = bytes.fromhex(script_hex)
    if len(script) == 25 and script[:3] == b"\x76\xa9\x14" and script[23:] == b"\x88\xac":
        return "p2pkh"
    if len(script) == 23 and script[:2] == b"\xa9\x14" and script[22] == 0x87:
        return "p2sh"
    if script[:1] == b"\x6a":
        return "nulldata"
    return None


def script_hash160(script_hex: str) -> bytes:
    """The 20-byte hash inside a p2pkh or p2sh script."""
    kind = script_type(script_hex)
    script = bytes.fromhex(script_hex)
    if kind == "p2pkh":
        return script[3:23]
    if kind == "p2sh":
        return script[2:22]
    raise ValueError(f"not a p2pkh/p2sh script: {script_hex}")


def script_to_address(script_hex: str, p2pkh_version: int, p2sh_version: int) -> str | None:
    kind = script_type(script_hex)
    if kind == "p2pkh":
        return b58check_encode(p2pkh_version, script_hash160(script_hex))
    if kind == "p2sh":
        return b58check_encode(p2sh_version, script_hash160(script_hex))
    return None


def p2pkh_script(hash20: bytes) -> str:
    return "76a914" + hash20.hex() + "88ac"


def parse_pushes(script: bytes) -> list[bytes] | None:
    """Data pushes of a push-only script (OP_0 counts as an empty push); None otherwise."""
    pushes: list[bytes] = []
    i = 0
    while i < len(script):
        op = script[i]
        i += 1
        if op == 0:
            pushes.append(b"")
            continue
        if op <= 0x4B:
            size = op
        elif op in (0x4C, 0x4D, 0x4E):
            width = {0x4C: 1, 0x4D: 2, 0x4E: 4}[op]
            if i + width > len(script):
                return None
            size = int.from_bytes(script[i : i + width], "little")
            i += width
        else:
            return None
        if i + size > len(script):
            return None
        pushes.append(script[i : i + size])
        i += size
    return pushes


def nulldata_payload(tx: ChainTx) -> bytes | None:
    """virtualchain's rule: the last OP_RETURN output decides; it must be `OP_RETURN <one push>`."""
    payload = None
    for output in tx.outputs:
        script = bytes.fromhex(output.script_hex)
        if script[:1] != b"\x6a":
            continue
        pushes = parse_pushes(script[1:])
        payload = pushes[0] if pushes is not None and len(pushes) == 1 and pushes[0] else None
    return payload


def senders_ok(tx: ChainTx) -> bool:
    """Every input must spend a p2pkh or p2sh output (`check_tx_sender_types`)."""
    if not tx.inputs:
        return False
    for txin in tx.inputs:
        if txin.prevout is None or script_type(txin.prevout.script_hex) not in ("p2pkh", "p2sh"):
            return False
    return True


def sender_pubkey(tx: ChainTx, sender_hash160: bytes) -> str | None:
    """First scriptSig whose second push is a pubkey hashing to the sender (`get_public_key_hex_from_tx`)."""
    for txin in tx.inputs:
        pushes = parse_pushes(bytes.fromhex(txin.script_sig_hex))
        if pushes is None or len(pushes) < 2 or not pushes[1]:
            continue
        if hash160(pushes[1]) == sender_hash160:
            return pushes[1].hex()
    return None
