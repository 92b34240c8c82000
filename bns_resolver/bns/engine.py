"""BnsEngine: one block in, the BNS state transition and its consensus hash out.

Per block (virtualchain `StateEngine.process_ops` + blockstack `db_scan_block`,
bns-v1.md §3.1): decode candidate ops in tx order; pre-scan the state-creating
ops (registrations, namespace reveals) against the pre-block state and reject
every one whose name/namespace another passing creation op also targets; then
check and commit ops one at a time; finally hash the accepted ops (§4).

Which reference code generation to mimic is `profile.generation` (bns/generations.py:
0.14.0, 0.14.0-sqlite, 0.14.1, v22), chosen once per network profile.

STX (epoch 4+, networks with a genesis allocation): the ledger (bns/ledger.py) opens
the genesis accounts at the first block, debits STX-paid preorders and renewals,
moves TOKEN_TRANSFERs, and after each block applies the next block's genesis patch
and unlocks, as v22's db_save does.  From the freeze height (665750) no op
is accepted; the block still gets an (empty-ops) consensus hash so callers
always receive a BlockOutcome.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from bns_resolver.bns import consensus, ops, rules_v22
from bns_resolver.bns.effects import Effects
from bns_resolver.bns.ledger import StoredLedger
from bns_resolver.bns.networks import NetworkProfile
from bns_resolver.bns.rules_names import (
    check_preorder, check_registration, check_revoke, check_transfer, check_update,
)
from bns_resolver.bns.rules_namespaces import (
    check_import, check_namespace_preorder, check_namespace_ready, check_namespace_reveal,
)
from bns_resolver.bns.state import Record, StateStore
from bns_resolver.bns.view import BlockView
from bns_resolver.chain.types import ChainBlock
from bns_resolver.errors import ChainError

log = logging.getLogger(__name__)

GENESIS_BLOCKS = 4  # GENESIS_SNAPSHOT covers first_block-4 .. first_block-1

Check = Callable[[BlockView, ops.CandidateOp], "Effects | None"]
_CHECKS: dict[str, Check] = {
    "?": check_preorder,
    ":": check_registration,
    "+": check_update,
    ">": check_transfer,
    "~": check_revoke,
    "*": check_namespace_preorder,
    "&": check_namespace_reveal,
    "!": check_namespace_ready,
}

# Where v22 (mainnet) rules differ from the 2016-17 code the corpus pins down.
_V22_CHECKS: dict[str, Check] = {
    "?": rules_v22.check_preorder,
    ":": rules_v22.check_registration,
    "*": rules_v22.check_namespace_preorder,
    "$": rules_v22.check_token_transfer,
}


@dataclass(frozen=True)
class AcceptedOp:
    txid: str
    vtxindex: int
    opcode: str
    opchar: str
    fqn: str | None
    namespace_id: str | None
    serialized: str


@dataclass(frozen=True)
class BlockOutcome:
    height: int
    consensus_hash: str
    ops_hash: str
    accepted: tuple[AcceptedOp, ...]


class BnsEngine:
    def __init__(self, profile: NetworkProfile, store: StateStore) -> None:
        self.profile = profile
        self.store = store
        self._checks = dict(_CHECKS)
        if profile.generation.v22_rules:
            self._checks.update(_V22_CHECKS)
        self._ledger = StoredLedger(store, profile.genesis()) if profile.genesis is not None else None

    @property
    def _legacy(self) -> bool:
        return self.profile.generation.flatfile_db

    def process_block(self, block: ChainBlock) -> BlockOutcome:
        """Apply `block` to the store's open block (the virtualchain opens and commits it)."""
        height = block.height
        self._check_sequence(height)
        if height == self.profile.first_block:
            self._seed_genesis()
            if self._ledger is not None:
                self._ledger.seed()
        accepted: list[AcceptedOp] = []
        if not self.profile.is_frozen(height):
            candidates = self.decode_block(block)
            accepted = self._run_ops(height, candidates)
        if self._ledger is not None:
            self._ledger.end_block(height)
        return self._snapshot(height, accepted)

    def decode_block(self, block: ChainBlock) -> list[ops.CandidateOp]:
        candidates = []
        for tx in sorted(block.txs, key=lambda t: t.vtxindex):
            if tx.is_coinbase:
                continue
            try:
                op = ops.decode_tx(tx, block.height, self.profile)
            except (ValueError, IndexError, UnicodeError) as exc:
                # The reference's db_parse turned any extraction failure into "not an op".
                log.warning("undecodable tx %s at %s: %s", tx.txid, block.height, exc)
                op = None
            if op is not None:
                candidates.append(op)
        return candidates

    def _check_sequence(self, height: int) -> None:
        last = self.store.last_block()
        expected = self.profile.first_block if last is None else last + 1
        if height != expected:
            raise ChainError(f"expected block {expected}, got {height}")

    def _seed_genesis(self) -> None:
        first = self.profile.first_block
        genesis = self.profile.genesis_consensus_hash
        for height in range(first - GENESIS_BLOCKS, first):
            self.store.put_consensus_hash(height, genesis, "")

    def _run_ops(self, height: int, candidates: list[ops.CandidateOp]) -> list[AcceptedOp]:
        collided = self._collisions(height, candidates)
        view = BlockView(self.store, self.profile, height, ledger=self._ledger)
        imported: dict[str, Record] = {}
        created: set[str] = set()
        accepted = []
        for op in candidates:
            effects = self._check(view, op, imported)
            if effects is None:
                continue
            key = _creation_key(op, effects, self._legacy)
            # The SQLite namedbs also record each accepted creation (and, before v22, each
            # renewal) in the block's collision state (check_collision_state), so a second
            # ':' or '&' for the same id collides.
            if key is None and op.opchar == ":" and self.profile.generation.renewals_collide:
                key = "name:" + str(effects.fqn)
            if key is not None and (key in collided or (key in created and not self._legacy)):
                log.debug("collision on %s at %s", key, height)
                continue
            if key is not None:
                created.add(key)
            effects.apply(self.store)
            self._move_tokens(effects)
            if effects.is_registration and effects.name_record is not None:
                view.registrations.append(effects.name_record)
            if op.opchar == ";" and effects.name_record is not None:
                imported[effects.name_record["name"]] = effects.name_record
            accepted.append(_accepted(op, effects))
        return accepted

    def _move_tokens(self, effects: Effects) -> None:
        if self._ledger is None:
            return
        if effects.token_debit is not None:
            self._ledger.debit(*effects.token_debit)
        if effects.token_credit is not None:
            self._ledger.credit(*effects.token_credit)

    def _check(self, view: BlockView, op: ops.CandidateOp, imported: dict[str, Record]) -> Effects | None:
        if op.opchar == ";":
            return check_import(view, op, imported)
        check = self._checks.get(op.opchar)
        return check(view, op) if check is not None else None

    def _collisions(self, height: int, candidates: list[ops.CandidateOp]) -> set[str]:
        """Names/namespaces targeted by two or more creation ops that pass on pre-block state."""
        view = BlockView(self.store, self.profile, height)
        seen: set[str] = set()
        collided: set[str] = set()
        for op in candidates:
            if op.opchar not in (":", "&"):
                continue
            effects = self._checks[op.opchar](view, op)
            key = _creation_key(op, effects, self._legacy) if effects is not None else None
            if key is None:
                continue
            if key in seen:
                collided.add(key)
            seen.add(key)
        return collided

    def _snapshot(self, height: int, accepted: list[AcceptedOp]) -> BlockOutcome:
        block_ops_hash = consensus.ops_hash([a.serialized for a in accepted])
        prev = []
        for prev_height in consensus.prev_consensus_heights(height, self.profile.first_block):
            ch = self.store.get_consensus_hash(prev_height)
            if ch is None:
                raise ChainError(f"no consensus hash stored for block {prev_height}")
            prev.append(ch)
        ch = consensus.consensus_hash(block_ops_hash, prev)
        self.store.put_consensus_hash(height, ch, block_ops_hash)
        return BlockOutcome(height, ch, block_ops_hash, tuple(accepted))


def _creation_key(op: ops.CandidateOp, effects: Effects, legacy: bool) -> str | None:
    """The name/namespace a creation op targets.  0.14.0's prescan (log_prescan_find_collisions)
    ran log_registration, which also passes renewals, so there a renewal can collide too."""
    if op.opchar == ":" and (effects.is_registration or legacy):
        return "name:" + str(effects.fqn)
    if op.opchar == "&":
        return "namespace:" + str(effects.namespace_id)
    return None


def _accepted(op: ops.CandidateOp, effects: Effects) -> AcceptedOp:
    return AcceptedOp(
        txid=op.ctx.txid,
        vtxindex=op.ctx.vtxindex,
        opcode="NAME_RENEWAL" if op.opchar == ":" and not effects.is_registration else op.opcode,
        opchar=effects.opchar,
        fqn=effects.fqn,
        namespace_id=effects.namespace_id,
        serialized=consensus.serialize_op(effects.opchar, effects.serialized_values),
    )
