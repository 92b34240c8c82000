"""Validity rules and effects of the name operations (bns-v1.md §3.4).

Each `check_*` takes the block view and a decoded op, and returns `Effects`
(accepted) or None (rejected).  They follow the 2016–17 reference code
(blockstack-core 0.14.x `lib/operations/*.py`), which is what the consensus
corpus pins down; v22-only rules (grace periods, value-hash registrations)
are gated on profile epochs and features.
"""

from __future__ import annotations

from typing import Any

from bns_resolver.bns import ops
from bns_resolver.bns.effects import Effects
from bns_resolver.bns.names import (
    hash_name,
    in_grace_period,
    is_name_valid,
    name_consensus_hash,
    name_hash128,
    split_name,
)
from bns_resolver.bns.pricing import price_name
from bns_resolver.bns.networks import FEATURE_MULTISIG
from bns_resolver.bns.senders import script_type
from bns_resolver.bns.state import Record
from bns_resolver.bns.view import MAX_NAMES_PER_SENDER, BlockView

NAMEREC_FIELDS = (
    "name", "value_hash", "sender", "sender_pubkey", "address", "block_number", "preorder_block_number",
    "first_registered", "last_renewed", "revoked", "op", "txid", "vtxindex", "op_fee", "importer", "importer_address",
)


def namerec_values(record: Record) -> list[object]:
    """NAMEREC field values; imported names hash op_fee as a float (op_canonicalize quirk)."""
    values = [record.get(f) for f in NAMEREC_FIELDS]
    if record.get("last_creation_op") == ";" and record.get("op_fee") is not None:
        values[NAMEREC_FIELDS.index("op_fee")] = float(record["op_fee"])
    return values


def stamp(record: Record, op: ops.CandidateOp, opstr: str) -> Record:
    record = dict(record)
    record.update(op=opstr, txid=op.ctx.txid, vtxindex=op.ctx.vtxindex)
    return record


def _in_grace(view: BlockView, fqn: str) -> bool:
    record = view.record(fqn)
    namespace = view.store.get_namespace(split_name(fqn)[1])
    if record is None or namespace is None:
        return False
    return in_grace_period(record, namespace, view.profile, view.height)


def check_preorder(view: BlockView, op: ops.CandidateOp) -> Effects | None:
    payload = op.payload
    assert isinstance(payload, ops.NamePreorder)
    ctx = op.ctx
    if view.name_preorder(payload.preorder_hash) is not None:
        return None
    if not view.is_consensus_hash_valid(payload.consensus_hash):
        return None
    if view.num_names_owned(ctx.sender) >= MAX_NAMES_PER_SENDER or ctx.burn_fee is None:
        return None
    record = {
        "preorder_hash": payload.preorder_hash, "consensus_hash": payload.consensus_hash,
        "sender": ctx.sender, "sender_pubkey": ctx.sender_pubkey, "address": ctx.address,
        "block_number": view.height, "op": "?", "txid": ctx.txid, "vtxindex": ctx.vtxindex,
        "op_fee": ctx.burn_fee, "token_fee": payload.token_fee, "token_units": payload.token_units,
    }
    values = [record[k] for k in ("preorder_hash", "consensus_hash", "sender", "sender_pubkey", "address",
                                  "block_number", "op", "txid", "vtxindex", "op_fee")]
    return Effects("?", tuple(values), put_name_preorder=record)


def check_registration(view: BlockView, op: ops.CandidateOp) -> Effects | None:
    """A ':' is a registration when a matching preorder exists, else a renewal attempt (0.14)."""
    payload = op.payload
    assert isinstance(payload, ops.NameRegistration)
    if payload.renewal_by_outputs:
        return check_renewal(view, op)
    fqn, ctx = payload.name, op.ctx
    namespace = view.namespace_ready(split_name(fqn)[1])
    if not is_name_valid(fqn) or view.is_revoked(fqn) or namespace is None:
        return None
    if view.num_names_owned(payload.recipient) >= MAX_NAMES_PER_SENDER:
        return None
    if script_type(payload.recipient) == "p2sh" and not view.profile.has_feature(view.height, FEATURE_MULTISIG):
        return None
    preorder = None
    if view.name(fqn) is None:
        preorder = view.name_preorder(hash_name(fqn, ctx.sender, payload.recipient_address))
    if preorder is None:
        if not view.profile.generation.renewal_by_outputs and view.is_registered(fqn):
            return check_renewal(view, op)
        return None
    if view.is_registered(fqn) or preorder["block_number"] < namespace["ready_block"]:
        return None
    if preorder["sender"] != ctx.sender or preorder.get("op_fee") is None:
        return None
    label = split_name(fqn)[0]
    if preorder["op_fee"] < price_name(label, namespace, preorder["block_number"], view.profile):
        return None
    return registration_effects(view, op, preorder, namespace)


def registration_effects(view: BlockView, op: ops.CandidateOp, preorder: Record, namespace: Record) -> Effects:
    payload = op.payload
    assert isinstance(payload, ops.NameRegistration)
    old = view.store.get_name(payload.name)
    record = {
        "name": payload.name, "namespace_id": namespace["namespace_id"], "name_hash128": name_hash128(payload.name),
        "value_hash": payload.value_hash, "sender": payload.recipient, "sender_pubkey": op.ctx.sender_pubkey,
        "address": payload.recipient_address,
        "block_number": old["block_number"] if old else preorder["block_number"],
        "preorder_block_number": preorder["block_number"], "first_registered": view.height,
        "last_renewed": view.height, "revoked": False, "op_fee": preorder["op_fee"],
        "importer": None, "importer_address": None, "preorder_hash": preorder["preorder_hash"],
        "consensus_hash": None, "last_creation_op": "?", "namespace_block_number": namespace["block_number"],
        "transfer_send_block_id": old.get("transfer_send_block_id") if old else None,
    }
    record = stamp(record, op, ":")
    values = namerec_values(record) + [record["sender"], record["address"]]
    history = (("name:" + payload.name, {"op": "?", "block": view.height}),)
    return Effects(":", tuple(values), fqn=payload.name, name_record=record, is_registration=True,
                   delete_name_preorder=preorder["preorder_hash"], history=history)


def check_renewal(view: BlockView, op: ops.CandidateOp) -> Effects | None:
    payload = op.payload
    assert isinstance(payload, ops.NameRegistration)
    fqn, ctx = payload.name, op.ctx
    if payload.recipient != ctx.sender or payload.recipient_address != ctx.address:
        return None
    namespace = view.namespace_ready(split_name(fqn)[1])
    if not is_name_valid(fqn) or view.is_revoked(fqn) or namespace is None:
        return None
    if view.num_names_owned(payload.recipient) >= MAX_NAMES_PER_SENDER:
        return None
    if not view.is_registered(fqn) or not view.is_owner(fqn, ctx.sender) or ctx.burn_fee is None:
        return None
    if ctx.burn_fee < price_name(split_name(fqn)[0], namespace, view.height, view.profile):
        return None
    record = view.record(fqn)
    assert record is not None
    record = stamp(record, op, "::")
    record["last_renewed"] = view.height
    if not view.profile.generation.sept2016:
        # Sept-2016 renewals kept the record's op_fee; 0.14.1 mutates it (RENEWAL_MUTATE_FIELDS).
        record["op_fee"] = ctx.burn_fee
    if view.profile.generation.tx_pubkey_on_renew_revoke:
        record["sender_pubkey"] = ctx.sender_pubkey

    if payload.value_hash is not None:
        record["value_hash"] = payload.value_hash
    return renewal_effects(view, fqn, record)


def renewal_effects(view: BlockView, fqn: str, record: dict[str, Any]) -> Effects:
    """A renewal's hashed values (NAMEREC + sender, address) and its history entry."""
    values = namerec_values(record) + [record["sender"], record["address"]]
    history = (("name:" + fqn, {"op": ":", "block": view.height}),)
    return Effects(":", tuple(values), fqn=fqn, name_record=record, history=history)


def check_update(view: BlockView, op: ops.CandidateOp) -> Effects | None:
    payload = op.payload
    assert isinstance(payload, ops.NameUpdate)
    sender = op.ctx.sender
    owned = view.names_owned(sender)
    if len(owned) > MAX_NAMES_PER_SENDER:
        return None
    found = _find_update_target(view, owned, payload.name_consensus_hash)
    if found is None:
        return None
    fqn, consensus_hash = found
    if not _live_and_owned(view, fqn, sender, view.lastblock):
        return None
    record = view.record(fqn)
    assert record is not None
    record = stamp(record, op, "+")
    record.update(value_hash=payload.value_hash, consensus_hash=consensus_hash)
    values = namerec_values(record) + [name_consensus_hash(fqn, consensus_hash), consensus_hash]
    history = (("name:" + fqn, {"op": "+", "block": view.height}),)
    return Effects("+", tuple(values), fqn=fqn, name_record=record, history=history)


def _find_update_target(view: BlockView, owned: list[str], target: str) -> tuple[str, str] | None:
    hashes = view.valid_consensus_hashes()
    for fqn in owned:
        for consensus_hash in hashes:
            if name_consensus_hash(fqn, consensus_hash) == target:
                return fqn, consensus_hash
    return None


def _live_and_owned(view: BlockView, fqn: str, sender: str, expiry_block: int) -> bool:
    """Shared gate of update/transfer/revoke: ready namespace, unrevoked, unexpired, owned."""
    if view.name(fqn) is None or view.namespace_ready(split_name(fqn)[1]) is None:
        return False
    if view.is_revoked(fqn) or view.is_expired(fqn, expiry_block) or _in_grace(view, fqn):
        return False
    return view.is_registered(fqn) and view.is_owner(fqn, sender)


def check_transfer(view: BlockView, op: ops.CandidateOp) -> Effects | None:
    payload = op.payload
    assert isinstance(payload, ops.NameTransfer)
    ctx = op.ctx
    fqn = view.store.name_by_hash128(payload.name_hash128)
    if fqn is None or view.is_revoked(fqn) or view.name(fqn) is None:
        return None
    if not view.is_consensus_hash_valid(payload.consensus_hash) or ctx.sender == payload.recipient:
        return None
    if not _live_and_owned(view, fqn, ctx.sender, view.lastblock):
        return None
    recipient_names = view.names_owned(payload.recipient)
    if fqn in recipient_names or len(recipient_names) >= MAX_NAMES_PER_SENDER:
        return None
    if script_type(ctx.sender) == "p2sh" and not view.profile.has_feature(view.height, FEATURE_MULTISIG):
        return None
    send_block = view.store.block_for_consensus_hash(payload.consensus_hash)
    if send_block is None:
        return None
    return _transfer_effects(view, op, fqn, send_block)


def _last_transfer_consensus_hash(view: BlockView, fqn: str, record: Record) -> str | None:
    """transfer.py find_last_transfer_consensus_hash: the record's CH unless only transfers
    happened since the name was (re)registered from a preorder."""
    for entry in reversed(view.store.get_history("name:" + fqn)):
        if entry["op"] == ">":
            continue
        if entry["op"] == "?":
            return None
        if record.get("consensus_hash") is not None:
            return record["consensus_hash"]
    return None


def _transfer_effects(view: BlockView, op: ops.CandidateOp, fqn: str, send_block: int) -> Effects:
    payload = op.payload
    assert isinstance(payload, ops.NameTransfer)
    record = view.record(fqn)
    assert record is not None
    transfer_ch = _last_transfer_consensus_hash(view, fqn, record)
    record = stamp(record, op, ">>" if payload.keep_data else ">~")
    record.update(sender=payload.recipient, address=payload.recipient_address, sender_pubkey=None,
                  transfer_send_block_id=send_block, consensus_hash=transfer_ch)
    if not payload.keep_data:
        record["value_hash"] = None
    hashed_ch = transfer_ch if transfer_ch is not None else view.store.get_consensus_hash(send_block)
    values = namerec_values(record) + [name_hash128(fqn), hashed_ch, payload.keep_data]
    history = (("name:" + fqn, {"op": ">", "block": view.height}),)
    return Effects(">", tuple(values), fqn=fqn, name_record=record, history=history)


def check_revoke(view: BlockView, op: ops.CandidateOp) -> Effects | None:
    payload = op.payload
    assert isinstance(payload, ops.NameRevoke)
    fqn = payload.name
    expiry_block = view.lastblock if view.legacy else view.height
    if not is_name_valid(fqn) or not _live_and_owned(view, fqn, op.ctx.sender, expiry_block):
        return None
    record = view.record(fqn)
    assert record is not None
    record = stamp(record, op, "~")
    record.update(revoked=True, value_hash=None, revoked_block=view.height)
    if view.profile.generation.tx_pubkey_on_renew_revoke:
        record["sender_pubkey"] = op.ctx.sender_pubkey
    history = (("name:" + fqn, {"op": "~", "block": view.height}),)
    return Effects("~", tuple(namerec_values(record)), fqn=fqn, name_record=record, history=history)
