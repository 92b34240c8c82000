"""Name rules where blockstack-core v22.2.0.0 (mainnet) differs from the 2016–17 code.

Selected by the engine when `profile.generation.v22_rules`: preorders carry their
burn output (outputs[2]) and optional STX fee; registrations need a preorder
(renewals are recognised by ≥ 4 outputs, fee in outputs[3]); payments go
through `payments.check_payment`; epoch features gate value hashes, renewing to
a new owner, preorder expiry and namespace versions (bns-v1.md §3.4, §3.7).
"""

from __future__ import annotations

from dataclasses import replace

from bns_resolver.bns import ops
from bns_resolver.bns.accounts import token_transfer_values
from bns_resolver.bns.effects import Effects
from bns_resolver.bns.names import hash_name, is_name_valid, split_name
from bns_resolver.bns.payments import BURN_ADDRESS_HASH, Payment, check_payment
from bns_resolver.bns.pricing import price_namespace
from bns_resolver.bns.networks import (
    FEATURE_MULTISIG,
    FEATURE_PAY_TO_CREATOR,
    FEATURE_TOKENS,
    FEATURE_VALUE_HASH_REGISTER,
    FEATURE_ZERO_CH_TOKEN_TRANSFER,
)
from bns_resolver.bns.rules_names import registration_effects, renewal_effects, stamp
from bns_resolver.bns.senders import script_hash160, script_type
from bns_resolver.bns.view import MAX_NAMES_PER_SENDER, BlockView
from bns_resolver.chain.types import TxOutput


def _fee_output(outputs: tuple[TxOutput, ...], index: int) -> tuple[int, str] | None:
    """(value, hash160) of the fee output, if it is a p2pkh/p2sh output."""
    if len(outputs) <= index or script_type(outputs[index].script_hex) not in ("p2pkh", "p2sh"):
        return None
    return outputs[index].value_sats, script_hash160(outputs[index].script_hex).hex()


def check_preorder(view: BlockView, op: ops.CandidateOp) -> Effects | None:
    payload = op.payload
    assert isinstance(payload, ops.NamePreorder)
    ctx = op.ctx
    fee = _fee_output(ctx.outputs, 2) if len(ctx.outputs) == 3 else None
    if fee is None or view.name_preorder(payload.preorder_hash) is not None:
        return None
    if not view.is_consensus_hash_valid(payload.consensus_hash):
        return None
    if view.num_names_owned(ctx.sender) >= MAX_NAMES_PER_SENDER:
        return None
    token_fee, units = 0, "BTC"
    if view.profile.has_feature(view.height, FEATURE_TOKENS) and payload.token_units != "BTC":
        # preorder.check: the sender's STACKS account must hold the fee, burnt to the burn
        # address; it is debited when the preorder commits.
        if fee[1] != BURN_ADDRESS_HASH or payload.token_units != "STACKS":
            return None
        if not _can_pay(view, ctx.address, payload.token_fee):
            return None
        token_fee, units = payload.token_fee, "STACKS"
    record = {
        "preorder_hash": payload.preorder_hash, "consensus_hash": payload.consensus_hash,
        "sender": ctx.sender, "sender_pubkey": ctx.sender_pubkey, "address": ctx.address,
        "block_number": view.height, "op": "?", "txid": ctx.txid, "vtxindex": ctx.vtxindex,
        "op_fee": fee[0], "burn_hash": fee[1], "token_fee": token_fee, "token_units": units,
    }
    keys = ("preorder_hash", "consensus_hash", "sender", "sender_pubkey", "address", "block_number", "op",
            "txid", "vtxindex", "op_fee")
    return Effects("?", tuple(record[k] for k in keys), put_name_preorder=record,
                   token_debit=(ctx.address, token_fee) if units == "STACKS" else None)


def _can_pay(view: BlockView, address: str, amount: int) -> bool:
    """namedb account balance check of payments (the send lock does not apply to burns)."""
    return view.ledger is not None and view.ledger.can_pay(address, amount, view.height)


def _name_gate(view: BlockView, fqn: str, recipient: str) -> dict | None:
    """Checks shared by registration and renewal; returns the ready namespace."""
    namespace = view.namespace_ready(split_name(fqn)[1])
    if not is_name_valid(fqn) or view.is_revoked(fqn) or namespace is None:
        return None
    if view.num_names_owned(recipient) >= MAX_NAMES_PER_SENDER:
        return None
    return namespace


def check_registration(view: BlockView, op: ops.CandidateOp) -> Effects | None:
    payload = op.payload
    assert isinstance(payload, ops.NameRegistration)
    if payload.renewal_by_outputs:
        return check_renewal(view, op)
    fqn, ctx, profile = payload.name, op.ctx, view.profile
    namespace = _name_gate(view, fqn, payload.recipient)
    if namespace is None:
        return None
    if script_type(payload.recipient) == "p2sh" and not profile.has_feature(view.height, FEATURE_MULTISIG):
        return None
    preorder = None if view.name(fqn) is not None else view.name_preorder(
        hash_name(fqn, ctx.sender, payload.recipient_address))
    if preorder is None or view.is_registered(fqn) or _older_than_lifetime(view, preorder, namespace):
        return None
    if profile.has_feature(view.height, FEATURE_TOKENS) and preorder["block_number"] + profile.name_preorder_expire < view.height:
        return None  # epoch 4 fixed the never-expiring preorder
    if preorder["block_number"] < namespace["ready_block"] or preorder["sender"] != ctx.sender:
        return None
    payment = Payment(preorder["op_fee"], preorder.get("burn_hash"), preorder.get("token_fee", 0),
                      preorder.get("token_units", "BTC"))
    if not check_payment(fqn, namespace, payment, preorder["block_number"], view.height, profile):
        return None
    if payload.value_hash is not None and not profile.has_feature(view.height, FEATURE_VALUE_HASH_REGISTER):
        return None
    return registration_effects(view, op, preorder, namespace)


def _older_than_lifetime(view: BlockView, preorder: dict, namespace: dict) -> bool:
    """namedb.get_name_preorder (v22): a preorder must be younger than the namespace lifetime,
    judged at lastblock with that block's multiplier, else it is "too old" and not found."""
    mult = view.profile.lifetime_multiplier(view.lastblock, namespace["namespace_id"])
    return preorder["block_number"] + namespace["lifetime"] * mult <= view.lastblock


def check_renewal(view: BlockView, op: ops.CandidateOp) -> Effects | None:
    payload = op.payload
    assert isinstance(payload, ops.NameRegistration)
    fqn, ctx, profile = payload.name, op.ctx, view.profile
    new_owner_ok = profile.has_feature(view.height, FEATURE_VALUE_HASH_REGISTER)  # epoch 3 renew+transfer
    if (payload.recipient != ctx.sender or payload.recipient_address != ctx.address) and not new_owner_ok:
        return None
    namespace = _name_gate(view, fqn, payload.recipient)
    fee = _fee_output(ctx.outputs, 3)
    if namespace is None or fee is None or not view.is_registered(fqn):
        return None
    if not view.is_owner(fqn, ctx.sender) or (not view.is_owner(fqn, payload.recipient) and not new_owner_ok):
        return None
    token_fee = payload.token_fee or 0
    payment = Payment(fee[0], fee[1], token_fee, "STACKS" if token_fee else "BTC")
    if not check_payment(fqn, namespace, payment, view.height, view.height, profile):
        return None
    # check_renewal: a renewal paid in STX (token_fee > 0) is debited from the owner's account.
    paid_in_stacks = token_fee > 0 and profile.has_feature(view.height, FEATURE_TOKENS)
    if paid_in_stacks and not _can_pay(view, ctx.address, token_fee):
        return None
    record = view.record(fqn)
    assert record is not None
    record = stamp(record, op, "::")
    record.update(last_renewed=view.height, op_fee=fee[0], sender=payload.recipient,
                  address=payload.recipient_address)
    if payload.value_hash is not None and new_owner_ok:
        record["value_hash"] = payload.value_hash
    effects = renewal_effects(view, fqn, record)
    if paid_in_stacks:
        effects = replace(effects, token_debit=(ctx.address, token_fee))
    return effects


def check_namespace_preorder(view: BlockView, op: ops.CandidateOp) -> Effects | None:
    payload = op.payload
    assert isinstance(payload, ops.NamespacePreorder)
    ctx = op.ctx
    fee = _fee_output(ctx.outputs, 2)
    if fee is None or fee[1] != BURN_ADDRESS_HASH:
        return None
    if view.store.get_namespace_preorder(payload.preorder_hash) is not None:
        return None
    if not view.is_consensus_hash_valid(payload.consensus_hash):
        return None
    debit = None
    if view.profile.has_feature(view.height, FEATURE_TOKENS):
        # namespacepreorder.check (STACKS_BUY_NAMESPACES): tokens must be paid, from an account
        # that holds them; debited when the preorder commits.
        if payload.token_fee is None or not _can_pay(view, ctx.address, payload.token_fee):
            return None
        debit = (ctx.address, payload.token_fee)
    record = {
        "preorder_hash": payload.preorder_hash, "consensus_hash": payload.consensus_hash, "op": "*",
        "op_fee": fee[0], "txid": ctx.txid, "vtxindex": ctx.vtxindex, "block_number": view.height,
        "sender": ctx.sender, "sender_pubkey": ctx.sender_pubkey, "address": ctx.address,
        "token_fee": payload.token_fee or 0,
    }
    keys = ("preorder_hash", "consensus_hash", "op", "op_fee", "txid", "vtxindex", "block_number", "sender",
            "sender_pubkey", "address")
    return Effects("*", tuple(record[k] for k in keys), put_namespace_preorder=record, token_debit=debit)


def check_token_transfer(view: BlockView, op: ops.CandidateOp) -> Effects | None:
    """tokentransfer.check (epoch 4+): STX from the sender's account to the recipient's."""
    if view.ledger is None or not view.profile.has_feature(view.height, FEATURE_TOKENS):
        return None
    payload = op.payload
    assert isinstance(payload, ops.TokenTransfer)
    zero_ch = view.profile.has_feature(view.height, FEATURE_ZERO_CH_TOKEN_TRANSFER)
    values = token_transfer_values(view.ledger, op, view.height, view.is_consensus_hash_valid, zero_ch)
    if values is None:
        return None
    return Effects("$", values, token_debit=(op.ctx.address, payload.amount),
                   token_credit=(payload.recipient_address, payload.amount))


def namespace_version_allowed(view: BlockView, version: int) -> bool:
    """1 always; 2 (pay-to-creator) from epoch 3; 3 (pay-in-STX) from epoch 4."""
    if version == 1:
        return True
    if version == 2:
        return view.profile.has_feature(view.height, FEATURE_PAY_TO_CREATOR)
    return version == 3 and view.profile.has_feature(view.height, FEATURE_TOKENS)


def namespace_fee_ok(view: BlockView, namespace_id: str, preorder: dict) -> bool:
    """BTC-paid preorders must cover the BTC price; STX-paid ones (epoch 4+) the STX price."""
    price = price_namespace(namespace_id, view.height, view.profile)
    if view.profile.has_feature(view.height, FEATURE_TOKENS):
        return preorder.get("token_fee", 0) >= price
    return preorder["op_fee"] >= price
