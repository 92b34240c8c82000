"""Decoding BNS operations from transactions (bns-v1.md §1), per opcode and epoch.

`decode_tx` returns a `CandidateOp` — the tx context (sender, outputs) plus a
frozen payload dataclass — or None when the tx carries no well-formed BNS op.
Validity against state is the engine's business, not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from bns_resolver.bns import senders as tx_senders
from bns_resolver.bns.names import is_name_valid, is_namespace_id_valid
from bns_resolver.bns.networks import FEATURE_TOKENS, FEATURE_VALUE_HASH_REGISTER, NetworkProfile
from bns_resolver.chain.types import ChainTx, TxOutput

OPCODES = {
    "?": "NAME_PREORDER",
    ":": "NAME_REGISTRATION",
    "+": "NAME_UPDATE",
    ">": "NAME_TRANSFER",
    "~": "NAME_REVOKE",
    ";": "NAME_IMPORT",
    "*": "NAMESPACE_PREORDER",
    "&": "NAMESPACE_REVEAL",
    "!": "NAMESPACE_READY",
    "#": "ANNOUNCE",
    "$": "TOKEN_TRANSFER",
}
BURN_SCRIPT = "76a914" + "00" * 20 + "88ac"


@dataclass(frozen=True)
class TxContext:
    """What every op takes from its tx: identity, sender (input 0's spent output), outputs."""

    txid: str
    vtxindex: int
    sender: str
    address: str
    sender_pubkey: str | None
    outputs: tuple[TxOutput, ...]
    burn_fee: int | None  # value of the first output paying the burn address


@dataclass(frozen=True)
class NamePreorder:
    preorder_hash: str
    consensus_hash: str
    token_fee: int = 0
    token_units: str = "BTC"


@dataclass(frozen=True)
class NameRegistration:
    name: str
    recipient: str
    recipient_address: str
    value_hash: str | None = None
    token_fee: int | None = None
    renewal_by_outputs: bool = False  # v22: a ':' with >= 4 outputs is a renewal


@dataclass(frozen=True)
class NameUpdate:
    name_consensus_hash: str
    value_hash: str


@dataclass(frozen=True)
class NameTransfer:
    keep_data: bool
    name_hash128: str
    consensus_hash: str
    recipient: str
    recipient_address: str


@dataclass(frozen=True)
class NameRevoke:
    name: str


@dataclass(frozen=True)
class NameImport:
    name: str
    recipient: str
    recipient_address: str
    value_hash: str


@dataclass(frozen=True)
class NamespacePreorder:
    preorder_hash: str
    consensus_hash: str
    token_fee: int | None = None


@dataclass(frozen=True)
class NamespaceReveal:
    namespace_id: str
    lifetime: int
    coeff: int
    base: int
    buckets: tuple[int, ...]
    nonalpha_discount: int
    no_vowel_discount: int
    version: int
    recipient: str
    recipient_address: str


@dataclass(frozen=True)
class NamespaceReady:
    namespace_id: str


@dataclass(frozen=True)
class Announce:
    message_hash: str


@dataclass(frozen=True)
class TokenTransfer:
    """Epoch 4+ STX transfer (checked by rules_v22.check_token_transfer against the ledger)."""

    consensus_hash: str
    token_units: str
    amount: int
    scratch_area: str
    recipient: str
    recipient_address: str


Payload = Union[
    NamePreorder, NameRegistration, NameUpdate, NameTransfer, NameRevoke, NameImport,
    NamespacePreorder, NamespaceReveal, NamespaceReady, Announce, TokenTransfer,
]


@dataclass(frozen=True)
class CandidateOp:
    opchar: str
    ctx: TxContext
    payload: Payload

    @property
    def opcode(self) -> str:
        return OPCODES[self.opchar]


def op_return_payload(tx: ChainTx, profile: NetworkProfile) -> tuple[str, bytes] | None:
    """(opchar, payload after magic+opcode) if the tx carries a BNS OP_RETURN."""
    data = tx_senders.nulldata_payload(tx)
    if data is None or len(data) < 3 or not data.startswith(profile.magic):
        return None
    opchar = chr(data[2])
    if opchar not in OPCODES:
        return None
    return opchar, data[3:]


def decode_tx(tx: ChainTx, block: int, profile: NetworkProfile) -> CandidateOp | None:
    """Decode one tx; None if it is not a (well-formed) BNS operation."""
    found = op_return_payload(tx, profile)
    if found is None or not tx_senders.senders_ok(tx):
        return None
    opchar, data = found
    ctx = _context(tx, profile)
    if ctx is None:
        return None
    decoder = _DECODERS.get(opchar)
    if decoder is None:
        return None
    payload = decoder(data, ctx, block, profile)
    if payload is None:
        return None
    return CandidateOp(opchar=opchar, ctx=ctx, payload=payload)


def _context(tx: ChainTx, profile: NetworkProfile) -> TxContext | None:
    prevout = tx.inputs[0].prevout
    assert prevout is not None  # senders_ok() guarantees it
    sender = prevout.script_hex
    address = tx_senders.script_to_address(sender, profile.p2pkh_version, profile.p2sh_version)
    if address is None:
        return None
    pubkey = None
    if tx_senders.script_type(sender) == "p2pkh":
        pubkey = tx_senders.sender_pubkey(tx, tx_senders.script_hash160(sender))
    burn_fee = next((o.value_sats for o in tx.outputs if o.script_hex == BURN_SCRIPT), None)
    return TxContext(tx.txid, tx.vtxindex, sender, address, pubkey, tx.outputs, burn_fee)


def _recipient(ctx: TxContext, profile: NetworkProfile) -> tuple[str, str] | None:
    """The first non-OP_RETURN output: the new owner / reveal address."""
    for output in ctx.outputs:
        if tx_senders.script_type(output.script_hex) == "nulldata":
            continue
        address = tx_senders.script_to_address(output.script_hex, profile.p2pkh_version, profile.p2sh_version)
        if address is None:
            return None
        return output.script_hex, address
    return None


def _ascii(data: bytes) -> str | None:
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        return None


def _preorder(data: bytes, ctx: TxContext, block: int, profile: NetworkProfile) -> NamePreorder | None:
    if len(data) == 36:
        return NamePreorder(data[:20].hex(), data[20:36].hex())
    if len(data) == 63 and profile.has_feature(block, FEATURE_TOKENS):
        units = data[44:63].rstrip(b"\0").decode("ascii", "replace")
        return NamePreorder(data[:20].hex(), data[20:36].hex(), int.from_bytes(data[36:44], "big"), units)
    return None


def _registration(data: bytes, ctx: TxContext, block: int, profile: NetworkProfile) -> NameRegistration | None:
    recipient = _recipient(ctx, profile)
    if recipient is None:
        return None
    value_hash = None
    token_fee = None
    raw_name = data
    if profile.has_feature(block, FEATURE_VALUE_HASH_REGISTER) and len(data) >= 57:
        allowed = (57, 65) if profile.has_feature(block, FEATURE_TOKENS) else (57,)
        if len(data) not in allowed:
            return None
        raw_name, value_hash = data[:37].rstrip(b"\0"), data[37:57].hex()
        if len(data) == 65:
            token_fee = int.from_bytes(data[57:65], "big")
    name = _ascii(raw_name)
    if name is None or not is_name_valid(name):
        return None
    by_outputs = profile.generation.renewal_by_outputs and len(ctx.outputs) >= 4
    return NameRegistration(name, recipient[0], recipient[1], value_hash, token_fee, by_outputs)


def _update(data: bytes, ctx: TxContext, block: int, profile: NetworkProfile) -> NameUpdate | None:
    if len(data) != 36:
        return None
    return NameUpdate(data[:16].hex(), data[16:36].hex())


def _transfer(data: bytes, ctx: TxContext, block: int, profile: NetworkProfile) -> NameTransfer | None:
    recipient = _recipient(ctx, profile)
    if len(data) != 33 or recipient is None or chr(data[0]) not in "~>":
        return None
    return NameTransfer(chr(data[0]) == ">", data[1:17].hex(), data[17:33].hex(), recipient[0], recipient[1])


def _revoke(data: bytes, ctx: TxContext, block: int, profile: NetworkProfile) -> NameRevoke | None:
    name = _ascii(data)
    return NameRevoke(name) if name is not None and is_name_valid(name) else None


def _import(data: bytes, ctx: TxContext, block: int, profile: NetworkProfile) -> NameImport | None:
    name = _ascii(data)
    recipient = _recipient(ctx, profile)
    if name is None or not is_name_valid(name) or recipient is None:
        return None
    # The value hash is the address payload of the first non-OP_RETURN output that is not
    # the recipient (nameimport.py get_import_update_hash_from_outputs).
    carrier = next((o for o in ctx.outputs if tx_senders.script_type(o.script_hex) != "nulldata"
                    and o.script_hex != recipient[0]), None)
    if carrier is None or tx_senders.script_type(carrier.script_hex) not in ("p2pkh", "p2sh"):
        return None
    value_hash = tx_senders.script_hash160(carrier.script_hex).hex()
    return NameImport(name, recipient[0], recipient[1], value_hash)


def _namespace_preorder(data: bytes, ctx: TxContext, block: int, profile: NetworkProfile) -> NamespacePreorder | None:
    if profile.has_feature(block, FEATURE_TOKENS):
        if len(data) != 44:
            return None
        return NamespacePreorder(data[:20].hex(), data[20:36].hex(), int.from_bytes(data[36:44], "big"))
    if len(data) != 36:
        return None
    return NamespacePreorder(data[:20].hex(), data[20:36].hex())


def _namespace_reveal(data: bytes, ctx: TxContext, block: int, profile: NetworkProfile) -> NamespaceReveal | None:
    recipient = _recipient(ctx, profile)
    if len(data) < 18 or recipient is None:
        return None
    namespace_id = _ascii(data[17:])
    if namespace_id is None or not is_namespace_id_valid(namespace_id):
        return None
    buckets = tuple(n for byte in data[6:14] for n in (byte >> 4, byte & 0x0F))
    nonalpha, novowel = data[14] >> 4, data[14] & 0x0F
    if nonalpha == 0 or novowel == 0:
        return None
    return NamespaceReveal(
        namespace_id=namespace_id,
        lifetime=int.from_bytes(data[0:4], "big"),
        coeff=data[4],
        base=data[5],
        buckets=buckets,
        nonalpha_discount=nonalpha,
        no_vowel_discount=novowel,
        version=int.from_bytes(data[15:17], "big"),
        recipient=recipient[0],
        recipient_address=recipient[1],
    )


def _namespace_ready(data: bytes, ctx: TxContext, block: int, profile: NetworkProfile) -> NamespaceReady | None:
    text = _ascii(data)
    if text is None or not text.startswith(".") or not is_namespace_id_valid(text[1:]):
        return None
    return NamespaceReady(text[1:])


def _announce(data: bytes, ctx: TxContext, block: int, profile: NetworkProfile) -> Announce | None:
    return Announce(data.hex()) if len(data) == 20 else None


def _token_transfer(data: bytes, ctx: TxContext, block: int, profile: NetworkProfile) -> TokenTransfer | None:
    recipient = _recipient(ctx, profile)
    if not profile.has_feature(block, FEATURE_TOKENS) or len(data) < 43 or recipient is None:
        return None
    units = data[16:35].rstrip(b"\0").decode("ascii", "replace")
    # Amount is big-endian in the source and blockstack.js (docs/wire-format.md says otherwise).
    amount = int.from_bytes(data[35:43], "big")
    return TokenTransfer(data[:16].hex(), units, amount, data[43:].hex(), recipient[0], recipient[1])


_DECODERS = {
    "?": _preorder,
    ":": _registration,
    "+": _update,
    ">": _transfer,
    "~": _revoke,
    ";": _import,
    "*": _namespace_preorder,
    "&": _namespace_reveal,
    "!": _namespace_ready,
    "#": _announce,
    "$": _token_transfer,
}
