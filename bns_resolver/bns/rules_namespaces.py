"""NAME_IMPORT and the namespace operations (bns-v1.md §3.4), 0.14-era semantics.

Imports live here because they belong to a namespace's launch: they are only
valid while the namespace is revealed but not ready.
"""

from __future__ import annotations

from bns_resolver.bns import ops
from bns_resolver.bns.effects import Effects
from bns_resolver.bns.keychain import import_keychain
from bns_resolver.bns.names import hash_name, is_name_valid, name_hash128, split_name
from bns_resolver.bns.pricing import price_name, price_namespace
from bns_resolver.bns.rules_names import namerec_values
from bns_resolver.bns import rules_v22
from bns_resolver.bns.senders import b58check_encode, script_hash160
from bns_resolver.bns.state import Record
from bns_resolver.bns.view import BlockView
from bns_resolver.hashing import hash160

REVEAL_FIELDS = (
    "namespace_id", "preorder_hash", "version", "sender", "sender_pubkey", "address", "recipient",
    "recipient_address", "block_number", "reveal_block", "op", "txid", "vtxindex", "lifetime", "coeff", "base",
    "buckets", "nonalpha_discount", "no_vowel_discount",
)
BLOCKSTACK_VERSION = 1


def check_namespace_preorder(view: BlockView, op: ops.CandidateOp) -> Effects | None:
    payload = op.payload
    assert isinstance(payload, ops.NamespacePreorder)
    ctx = op.ctx
    if view.store.get_namespace_preorder(payload.preorder_hash) is not None:
        return None
    if not view.is_consensus_hash_valid(payload.consensus_hash) or ctx.burn_fee is None:
        return None
    record = {
        "preorder_hash": payload.preorder_hash, "consensus_hash": payload.consensus_hash, "op": "*",
        "op_fee": ctx.burn_fee, "txid": ctx.txid, "vtxindex": ctx.vtxindex, "block_number": view.height,
        "sender": ctx.sender, "sender_pubkey": ctx.sender_pubkey, "address": ctx.address,
        "token_fee": payload.token_fee,
    }
    keys = ("preorder_hash", "consensus_hash", "op", "op_fee", "txid", "vtxindex", "block_number", "sender",
            "sender_pubkey", "address")
    return Effects("*", tuple(record[k] for k in keys), put_namespace_preorder=record)


def check_namespace_reveal(view: BlockView, op: ops.CandidateOp) -> Effects | None:
    payload = op.payload
    assert isinstance(payload, ops.NamespaceReveal)
    ctx = op.ctx
    # has_key('sender_pubkey'): from 0.14.1 on tx_extract always set the key (maybe None),
    # so only Sept-2016 code demanded a p2pkh revealer.
    needs_pubkey = view.profile.generation.sept2016
    if (needs_pubkey and ctx.sender_pubkey is None) or len(ctx.outputs) != 3:
        return None
    if not _version_allowed(view, payload.version):
        return None
    nsid = payload.namespace_id
    if view.namespace_revealed(nsid) is not None or view.namespace_ready(nsid) is not None:
        return None
    preorder_hash = hash_name(nsid, ctx.sender, payload.recipient_address)
    preorder = view.store.get_namespace_preorder(preorder_hash)
    if preorder is None or preorder["sender"] != ctx.sender or preorder.get("op_fee") is None:
        return None
    if not _fee_ok(view, nsid, preorder):
        return None
    # A re-reveal keeps the first block_number (0.14.1 prior history); Sept-2016 code took the preorder's.
    old = None if view.profile.generation.sept2016 else view.store.get_namespace(nsid)
    record = {
        "namespace_id": nsid, "preorder_hash": preorder_hash, "version": payload.version,
        "sender": ctx.sender, "sender_pubkey": ctx.sender_pubkey, "address": ctx.address,
        "recipient": payload.recipient, "recipient_address": payload.recipient_address,
        "block_number": old["block_number"] if old else preorder["block_number"],
        "reveal_block": view.height, "op": "&", "txid": ctx.txid, "vtxindex": ctx.vtxindex,
        "lifetime": payload.lifetime, "coeff": payload.coeff, "base": payload.base,
        "buckets": list(payload.buckets), "nonalpha_discount": payload.nonalpha_discount,
        "no_vowel_discount": payload.no_vowel_discount, "ready_block": 0, "ready": False,
        "op_fee": preorder["op_fee"], "address_hash": script_hash160(ctx.sender).hex(),
    }
    values = tuple(record[k] for k in REVEAL_FIELDS)
    return Effects("&", values, namespace_id=nsid, namespace_record=record, delete_namespace_preorder=preorder_hash)


def _version_allowed(view: BlockView, version: int) -> bool:
    if view.profile.generation.v22_rules:
        return rules_v22.namespace_version_allowed(view, version)
    return version == BLOCKSTACK_VERSION


def _fee_ok(view: BlockView, namespace_id: str, preorder: Record) -> bool:
    if view.profile.generation.v22_rules:
        return rules_v22.namespace_fee_ok(view, namespace_id, preorder)
    return preorder["op_fee"] >= price_namespace(namespace_id, view.height, view.profile)


def check_namespace_ready(view: BlockView, op: ops.CandidateOp) -> Effects | None:
    payload = op.payload
    assert isinstance(payload, ops.NamespaceReady)
    revealed = view.namespace_revealed(payload.namespace_id)
    if revealed is None or revealed["recipient"] != op.ctx.sender:
        return None
    record = dict(revealed)
    # The ready tx's sender, op, txid and vtxindex overwrite the reveal's; pubkey/address stay.
    record.update(sender=op.ctx.sender, op="!", txid=op.ctx.txid, vtxindex=op.ctx.vtxindex,
                  ready_block=view.height, ready=True)
    values = tuple(record[k] for k in REVEAL_FIELDS) + (record["ready_block"],)
    return Effects("!", values, namespace_id=payload.namespace_id, namespace_record=record)


def check_import(view: BlockView, op: ops.CandidateOp, imported: dict[str, Record]) -> Effects | None:
    """`imported` holds this block's accepted imports by name (a later import overwrites)."""
    payload = op.payload
    assert isinstance(payload, ops.NameImport)
    ctx, fqn = op.ctx, payload.name
    if ctx.sender_pubkey is None or not is_name_valid(fqn):
        return None
    namespace = view.namespace_revealed(split_name(fqn)[1])
    if namespace is None:
        return None
    version = view.profile.p2pkh_version
    sender_address = b58check_encode(version, hash160(bytes.fromhex(ctx.sender_pubkey)))
    nsid = namespace["namespace_id"]
    keychain = view.store.get_import_keychain(nsid)
    new_keychain = None
    if keychain is None:
        if sender_address != namespace["recipient_address"]:
            return None
        try:
            keychain = new_keychain = import_keychain(ctx.sender_pubkey, view.profile.import_keyring_size, version)
        except ValueError:  # not a valid secp256k1 point: no keyring can be derived
            return None
    if sender_address not in keychain:
        return None
    # 0.14.0 overwrote any stored record; later code only an unexpired one.
    prev = imported.get(fqn) or (view.record(fqn) if view.legacy else view.name(fqn))
    return _import_effects(view, op, namespace, sender_address, prev, new_keychain)


def _import_effects(view: BlockView, op: ops.CandidateOp, namespace: Record, sender_address: str,
                    prev: Record | None, new_keychain: list[str] | None) -> Effects:
    payload = op.payload
    assert isinstance(payload, ops.NameImport)
    ctx, fqn = op.ctx, payload.name
    record = {
        "name": fqn, "namespace_id": namespace["namespace_id"], "name_hash128": name_hash128(fqn),
        "value_hash": payload.value_hash, "sender": payload.recipient, "sender_pubkey": ctx.sender_pubkey,
        "address": payload.recipient_address, "block_number": view.height,
        "preorder_block_number": view.height, "first_registered": view.height, "last_renewed": view.height,
        "revoked": False, "importer": ctx.sender, "importer_address": sender_address,
        "op_fee": float(price_name(split_name(fqn)[0], namespace, view.height, view.profile)),
        "preorder_hash": hash_name(fqn, ctx.sender, payload.recipient_address), "consensus_hash": None,
        "last_creation_op": ";", "namespace_block_number": namespace["block_number"],
        "transfer_send_block_id": None, "op": ";", "txid": ctx.txid, "vtxindex": ctx.vtxindex,
    }
    if prev is not None:
        kept = ["preorder_block_number", "block_number", "first_registered", "last_renewed",
                "preorder_hash", "transfer_send_block_id"]
        if view.legacy:
            # commit_name_import only replaced owner, value hash, pubkey, txid and importer.
            kept += ["op", "op_fee", "consensus_hash", "revoked", "last_creation_op"]
        for key in kept:
            record[key] = prev.get(key)
    values = namerec_values(record) + [record["sender"], record["address"]]
    keychain = (namespace["namespace_id"], tuple(new_keychain)) if new_keychain is not None else None
    return Effects(";", tuple(values), fqn=fqn, name_record=record, import_keychain=keychain,
                   history=(("name:" + fqn, {"op": ";", "block": view.height}),))
