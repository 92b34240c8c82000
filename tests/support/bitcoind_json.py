"""Bitcoin Core's JSON shapes for the test bitcoind: amounts, script asm, descriptors, tx objects.

Split from tests/support/bitcoind.py so the server module holds only the server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bitcoin import base58, segwit_addr
from bitcoin.core import CTransaction, b2lx
from bitcoin.core.script import CScript, CScriptInvalidError

COIN = 100_000_000
_ADDRESS_VERSIONS = {"main": (0, 5, "bc"), "test": (111, 196, "tb"), "signet": (111, 196, "tb"),
                     "regtest": (111, 196, "bcrt")}


_TXIDS: dict[int, tuple[CTransaction, bytes]] = {}


def txid_bytes(tx: CTransaction) -> bytes:
    """tx.GetTxid(), memoised for immutable txs (it re-serializes the tx on every call)."""
    hit = _TXIDS.get(id(tx))
    if hit is not None and hit[0] is tx:
        return hit[1]
    txid = tx.GetTxid()
    if type(tx) is CTransaction:  # a CMutableTransaction may still change
        if len(_TXIDS) > 500_000:
            _TXIDS.clear()
        _TXIDS[id(tx)] = (tx, txid)  # holding tx keeps its id from being reused
    return txid

class _Amount:
    """Satoshis printed the way Core's ValueFromAmount does: a JSON number with 8 decimals."""

    def __init__(self, sats: int) -> None:
        self.sats = sats


def _encode_json(obj: Any) -> bytes:
    def default(o: Any) -> Any:
        if isinstance(o, _Amount):
            return f"\x00AMT{o.sats}\x00"
        raise TypeError(type(o))

    text = json.dumps(obj, default=default, ensure_ascii=False, separators=(",", ":"))
    return re.sub(r'"\\u0000AMT(-?\d+)\\u0000"', lambda m: _amount_text(int(m.group(1))), text).encode()


def _amount_text(sats: int) -> str:
    sign, sats = ("-", -sats) if sats < 0 else ("", sats)
    return f"{sign}{sats // COIN}.{sats % COIN:08d}"


_SIGHASH_NAMES = {1: "ALL", 2: "NONE", 3: "SINGLE", 0x81: "ALL|ANYONECANPAY",
                  0x82: "NONE|ANYONECANPAY", 0x83: "SINGLE|ANYONECANPAY"}


def _script_num(data: bytes) -> int:
    if not data:
        return 0
    value = int.from_bytes(data, "little")
    if data[-1] & 0x80:
        return -(value & ~(0x80 << (8 * (len(data) - 1))))
    return value


def script_asm(script: bytes, *, sighash_decode: bool = False) -> str:
    """Core's ScriptToAsmStr: small pushes as numbers, others hex, opcodes by name."""
    words = []
    try:
        for opcode, data, _ in CScript(script).raw_iter():
            if data is None:
                words.append(_op_name(opcode))
            elif len(data) <= 4:
                words.append(str(_script_num(data)))
            elif sighash_decode and data[0] == 0x30 and data[-1] in _SIGHASH_NAMES and len(data) >= 9:
                words.append(data[:-1].hex() + f"[{_SIGHASH_NAMES[data[-1]]}]")
            else:
                words.append(data.hex())
    except CScriptInvalidError:  # truncated push: Core prints "[error]"
        words.append("[error]")
    return " ".join(words)


def _op_name(opcode: int) -> str:
    from bitcoin.core.script import CScriptOp

    if opcode == 0x4F:
        return "-1"
    if 0x51 <= opcode <= 0x60:
        return str(opcode - 0x50)
    name = str(CScriptOp(opcode))
    return name if name.startswith("OP_") and "UNKNOWN" not in name else "OP_UNKNOWN"


def _classify(script: bytes) -> tuple[str, bytes | None, int | None]:
    """(Core script type, address payload, witness version or None)."""
    if len(script) == 25 and script[:3] == b"\x76\xa9\x14" and script[23:] == b"\x88\xac":
        return "pubkeyhash", script[3:23], None
    if len(script) == 23 and script[:2] == b"\xa9\x14" and script[22:] == b"\x87":
        return "scripthash", script[2:22], None
    if script[:1] == b"\x6a":
        return "nulldata", None, None
    if len(script) in (35, 67) and script[-1] == 0xAC and script[0] in (33, 65):
        return "pubkey", None, None
    witness_op = len(script) >= 4 and (script[0] == 0 or 0x51 <= script[0] <= 0x60)
    if witness_op and len(script) <= 42 and script[1] + 2 == len(script):
        version = 0 if script[0] == 0 else script[0] - 0x50
        program = script[2:]
        if version == 0 and len(program) == 20:
            return "witness_v0_keyhash", program, 0
        if version == 0 and len(program) == 32:
            return "witness_v0_scripthash", program, 0
        if version == 1 and len(program) == 32:
            return "witness_v1_taproot", program, 1
        return "witness_unknown", program, version
    if script[-1:] == b"\xae":
        return "multisig", None, None
    return "nonstandard", None, None


_DESC_INPUT = ("0123456789()[],'/*abcdefgh@:$%{}"
               "IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ")
_DESC_CHECKSUM = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _desc_polymod(c: int, val: int) -> int:
    c0 = c >> 35
    c = ((c & 0x7FFFFFFFF) << 5) ^ val
    for bit, gen in enumerate((0xF5DEE51989, 0xA9FDCA3312, 0x1BAB10E32D, 0x3706B1677A, 0x644D626FFD)):
        if c0 >> bit & 1:
            c ^= gen
    return c


def descriptor(body: str) -> str:
    c, cls, count = 1, 0, 0
    for ch in body:
        pos = _DESC_INPUT.find(ch)
        c = _desc_polymod(c, pos & 31)
        cls, count = cls * 3 + (pos >> 5), count + 1
        if count == 3:
            c, cls, count = _desc_polymod(c, cls), 0, 0
    if count:
        c = _desc_polymod(c, cls)
    for _ in range(8):
        c = _desc_polymod(c, 0)
    c ^= 1
    return body + "#" + "".join(_DESC_CHECKSUM[(c >> (5 * (7 - j))) & 31] for j in range(8))


def segwit_address(hrp: str, version: int, program: bytes) -> str:
    """BIP173 (v0) or BIP350 bech32m (v1+) address."""
    if version == 0:
        return str(segwit_addr.encode(hrp, 0, program))
    data = [version, *segwit_addr.convertbits(program, 8, 5)]
    polymod = segwit_addr.bech32_polymod(segwit_addr.bech32_hrp_expand(hrp) + data + [0] * 6) ^ 0x2BC830A3
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(segwit_addr.CHARSET[d] for d in data + checksum)


def script_pubkey_json(script: bytes, chain: str) -> dict[str, Any]:
    kind, payload, witver = _classify(script)
    p2pkh, p2sh, hrp = _ADDRESS_VERSIONS[chain]
    address = None
    if kind == "pubkeyhash":
        address = str(base58.CBase58Data.from_bytes(payload, p2pkh))
    elif kind == "scripthash":
        address = str(base58.CBase58Data.from_bytes(payload, p2sh))
    elif witver is not None and payload is not None:
        address = segwit_address(hrp, witver, payload)
    out: dict[str, Any] = {"asm": script_asm(script)}
    if kind == "pubkey":
        out["desc"] = descriptor(f"pk({script[1:-1].hex()})")
    else:
        out["desc"] = descriptor(f"addr({address})" if address else f"raw({script.hex()})")
    out["hex"] = script.hex()
    if address:
        out["address"] = address
    out["type"] = kind
    return out


@dataclass(frozen=True)
class Prevout:
    script: bytes
    value: int
    height: int
    generated: bool


def tx_json(tx: CTransaction, chain: str, *, prevouts: Sequence[Prevout | None] | None,
            verbosity: int) -> dict[str, Any]:
    """Core's TxToUniv; `prevouts` (one per input, None for a coinbase) enables fee/prevout."""
    stripped = len(tx.serialize({"include_witness": False}))
    size = len(tx.serialize())
    weight = stripped * 3 + size
    vin = [_vin_json(tx, i, prevouts[i] if prevouts else None, chain, verbosity) for i in range(len(tx.vin))]
    vout = [{"value": _Amount(o.nValue), "n": n,
             "scriptPubKey": script_pubkey_json(bytes(o.scriptPubKey), chain)}
            for n, o in enumerate(tx.vout)]
    out: dict[str, Any] = {
        "txid": b2lx(txid_bytes(tx)), "hash": b2lx(tx.GetHash()), "version": tx.nVersion,
        "size": size, "vsize": (weight + 3) // 4, "weight": weight, "locktime": tx.nLockTime,
        "vin": vin, "vout": vout,
    }
    if prevouts and not tx.is_coinbase() and all(p is not None for p in prevouts):
        out["fee"] = _Amount(sum(p.value for p in prevouts if p) - sum(o.nValue for o in tx.vout))
    out["hex"] = tx.serialize().hex()
    return out


def _vin_json(tx: CTransaction, index: int, prevout: Prevout | None, chain: str,
              verbosity: int) -> dict[str, Any]:
    txin = tx.vin[index]
    witness = [bytes(w).hex() for w in tx.wit.vtxinwit[index].scriptWitness.stack] if tx.has_witness() else []
    if tx.is_coinbase():
        entry: dict[str, Any] = {"coinbase": bytes(txin.scriptSig).hex()}
    else:
        sig = bytes(txin.scriptSig)
        entry = {"txid": b2lx(txin.prevout.hash), "vout": txin.prevout.n,
                 "scriptSig": {"asm": script_asm(sig, sighash_decode=True), "hex": sig.hex()}}
    if witness:
        entry["txinwitness"] = witness
    if verbosity >= 3 and prevout is not None and not tx.is_coinbase():
        entry["prevout"] = {"generated": prevout.generated, "height": prevout.height,
                            "value": _Amount(prevout.value),
                            "scriptPubKey": script_pubkey_json(prevout.script, chain)}
    entry["sequence"] = txin.nSequence
    return entry
