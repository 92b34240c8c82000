"""Read-side queries over a StateStore, as the reference's namedb answered them.

Every "current state" question is asked at `lastblock` (h-1) unless a rule says
otherwise (bns-v1.md §3.1); expiry predicates mirror db.py's SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bns_resolver.bns.names import LIFETIME_INFINITE, is_name_registered_at, split_name
from bns_resolver.bns.profiles import NetworkProfile
from bns_resolver.bns.state import Record, StateStore

CONSENSUS_WINDOW = 24
MAX_NAMES_PER_SENDER = 25


@dataclass
class BlockView:
    """State as seen while processing block `height` (lookups default to h-1)."""

    store: StateStore
    profile: NetworkProfile
    height: int
    registrations: list[Record] = field(default_factory=list)  # accepted this block

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
        reveal = ns["reveal_block"]
        return ns if reveal <= block < reveal + self.profile.namespace_reveal_expire else None

    # -- names ------------------------------------------------------------
    def name(self, fqn: str, block: int | None = None) -> Record | None:
        """The name if unexpired at `block` (revoked names included), as get_name()."""
        block = self.lastblock if block is None else block
        record = self.store.get_name(fqn)
        if record is None:
            return None
        namespace = self.store.get_namespace(split_name(fqn)[1])
        if namespace is None:
            return None
        if self.profile.rules == "0.14.0":
            return record if self._unexpired_0140(record, namespace, block) else None
        if not is_name_registered_at(record, namespace, self.profile, block):
            return None
        return record

    def _unexpired_0140(self, record: Record, namespace: Record, block: int) -> bool:
        """0.14.0 (Sept 2016) namedb.is_name_expired: max(ready, renewed) + 2·lifetime ≥ block."""
        if not namespace.get("ready"):
            reveal = namespace["reveal_block"]
            return reveal <= block < reveal + self.profile.namespace_reveal_expire
        if namespace["lifetime"] == LIFETIME_INFINITE:
            return True
        return max(namespace["ready_block"], record["last_renewed"]) + namespace["lifetime"] * 2 >= block

    def indexed(self, fqn: str) -> bool:
        """0.14.0 dropped a name from its owner/hash indexes (and cleared `revoked`) at the end of
        block last_renewed + lifetime (commit_name_expire_all), before is_name_expired said so."""
        record = self.store.get_name(fqn)
        if record is None:
            return False
        if self.profile.rules != "0.14.0":
            return True
        namespace = self.store.get_namespace(split_name(fqn)[1])
        if namespace is None or namespace["lifetime"] == LIFETIME_INFINITE:
            return namespace is not None
        return self.lastblock < record["last_renewed"] + namespace["lifetime"]

    def is_registered(self, fqn: str) -> bool:
        record = self.name(fqn)
        return record is not None and not record["revoked"]

    def is_revoked(self, fqn: str) -> bool:
        record = self.name(fqn)
        return record is not None and bool(record["revoked"]) and self.indexed(fqn)

    def is_expired(self, fqn: str, block: int) -> bool:
        return self.name(fqn, block) is None

    def is_owner(self, fqn: str, sender: str) -> bool:
        record = self.name(fqn)
        return record is not None and record["sender"] == sender

    def names_owned(self, sender: str) -> list[str]:
        """Unexpired, unrevoked names owned by a script at h-1."""
        owned = []
        for fqn in self.store.names_by_owner(sender):
            record = self.name(fqn)
            if record is not None and not record["revoked"] and self.indexed(fqn):
                owned.append(fqn)
        return owned

    def num_names_owned(self, sender: str) -> int:
        """Names owned at h-1 plus registrations accepted earlier in this block."""
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
