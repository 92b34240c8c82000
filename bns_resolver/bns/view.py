"""Read-side queries over a StateStore, as the reference's namedb answered them.

Every "current state" question is asked at `lastblock` (h-1) unless a rule says
otherwise (bns-v1.md §3.1); expiry predicates mirror db.py's SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bns_resolver.bns.names import LIFETIME_INFINITE, is_name_registered_at, split_name
from bns_resolver.bns.networks import NetworkProfile
from bns_resolver.bns.state import Record, StateStore

if TYPE_CHECKING:
    from bns_resolver.bns.ledger import StoredLedger

CONSENSUS_WINDOW = 24
MAX_NAMES_PER_SENDER = 25


@dataclass
class BlockView:
    """State as seen while processing block `height` (lookups default to h-1)."""

    store: StateStore
    profile: NetworkProfile
    height: int
    registrations: list[Record] = field(default_factory=list)  # accepted this block
    ledger: StoredLedger | None = None  # STX accounts, on networks with a genesis allocation

    @property
    def lastblock(self) -> int:
        return self.height - 1

    # -- namespaces -------------------------------------------------------
    def namespace_ready(self, namespace_id: str) -> Record | None:
        ns = self.store.get_namespace(namespace_id)
        return ns if ns is not None and ns.get("ready") else None

    def namespace_revealed(self, namespace_id: str, block: int | None = None) -> Record | None:
        """A revealed, not-yet-ready namespace whose reveal has not expired at `block`."""
        block = self.lastblock if block is None else block
        ns = self.store.get_namespace(namespace_id)
        if ns is None or ns.get("ready"):
            return None
        if self.legacy:
            return ns if self._reveal_alive_0140(ns, block) else None
        reveal = ns["reveal_block"]
        return ns if reveal <= block < reveal + self.profile.namespace_reveal_expire else None

    # -- names ------------------------------------------------------------
    @property
    def legacy(self) -> bool:
        """0.14.0 (Sept 2016) rules: in-memory namedb with per-sync secondary indexes."""
        return self.profile.generation.flatfile_db

    def record(self, fqn: str) -> Record | None:
        """The stored record, with 0.14.0's expiry side effect on `revoked` applied."""
        record = self.store.get_name(fqn)
        if record is None or not self.legacy or not record.get("revoked"):
            return record
        namespace = self.store.get_namespace(split_name(fqn)[1])
        if namespace is None or namespace["lifetime"] == LIFETIME_INFINITE:
            return record
        # commit_name_expire ran at the end of block last_renewed + lifetime and cleared
        # `revoked` for good; it only undoes revocations made at or before that block.
        scheduled = record["last_renewed"] + namespace["lifetime"]
        if record.get("revoked_block", scheduled) <= scheduled <= self.lastblock:
            record = dict(record, revoked=False)
        return record

    def name(self, fqn: str, block: int | None = None) -> Record | None:
        """The name if unexpired at `block` (revoked names included), as get_name()."""
        block = self.lastblock if block is None else block
        record = self.record(fqn)
        if record is None:
            return None
        namespace = self.store.get_namespace(split_name(fqn)[1])
        if namespace is None:
            return None
        if self.legacy:
            return record if self._unexpired_0140(record, namespace, block) else None
        if not is_name_registered_at(record, namespace, self.profile, block):
            return None
        return record

    def _unexpired_0140(self, record: Record, namespace: Record, block: int) -> bool:
        """0.14.0 namedb.is_name_expired: max(ready, renewed) + lifetime·multiplier(2) ≥ block."""
        if not namespace.get("ready"):
            return self._reveal_alive_0140(namespace, block)
        if namespace["lifetime"] == LIFETIME_INFINITE:
            return True
        mult = self.profile.lifetime_multiplier(block, namespace["namespace_id"])
        return max(namespace["ready_block"], record["last_renewed"]) + namespace["lifetime"] * mult >= block

    def _reveal_alive_0140(self, namespace: Record, block: int) -> bool:
        """0.14.0 kept a reveal (usable at once, even in its own block) until the end of block
        `block_number + NAMESPACE_REVEAL_EXPIRE` (commit_namespace_reveal_expire_all)."""
        return block < namespace["block_number"] + self.profile.namespace_reveal_expire

    def is_registered(self, fqn: str) -> bool:
        record = self.name(fqn)
        return record is not None and not record["revoked"]

    def is_revoked(self, fqn: str) -> bool:
        """0.14.0 read the flag alone; later code only for unexpired names."""
        record = self.record(fqn) if self.legacy else self.name(fqn)
        return record is not None and bool(record["revoked"])

    def is_expired(self, fqn: str, block: int) -> bool:
        return self.name(fqn, block) is None

    def is_owner(self, fqn: str, sender: str) -> bool:
        record = self.record(fqn) if self.legacy else self.name(fqn)
        return record is not None and record["sender"] == sender

    def names_owned(self, sender: str) -> list[str]:
        """Names owned by a script: 0.14.0's raw owner index, else unexpired unrevoked at h-1."""
        if self.legacy:
            return self.store.names_by_owner(sender)
        owned = []
        for fqn in self.store.names_by_owner(sender):
            record = self.name(fqn)
            if record is not None and not record["revoked"] and record["first_registered"] <= self.lastblock:
                owned.append(fqn)
        return owned

    def num_names_owned(self, sender: str) -> int:
        """Names owned at h-1 plus registrations accepted earlier in this block."""
        if self.legacy:
            return len(self.names_owned(sender))
        pending = sum(1 for reg in self.registrations if reg["sender"] == sender)
        return len(self.names_owned(sender)) + pending

    # -- consensus hashes -------------------------------------------------
    def valid_consensus_hashes(self) -> list[str]:
        hashes = []
        for block in range(self.height - CONSENSUS_WINDOW, self.height + 1):
            ch = self.store.get_consensus_hash(block)
            if ch is not None and ch not in hashes:
                hashes.append(ch)
        return hashes

    def is_consensus_hash_valid(self, consensus_hash: str) -> bool:
        return consensus_hash in self.valid_consensus_hashes()

    # -- preorders --------------------------------------------------------
    def name_preorder(self, preorder_hash: str) -> Record | None:
        """An outstanding name preorder (registrations delete the ones they consume)."""
        return self.store.get_name_preorder(preorder_hash)
