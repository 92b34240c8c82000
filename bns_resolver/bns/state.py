"""The engine's only window on state: a narrow, record-oriented `StateStore`.

Records are plain JSON-serializable dicts (the reference's row shapes), so a
SQL implementation can store them as rows or JSON columns.  The engine never
opens or closes blocks: the virtualchain does (`chain.virtualchain.BlockStore`),
and every read and write of the engine happens inside the block it opened.  A
store must be able to undo a whole block exactly, newest first, for reorgs.

Token (STX) accounts of epoch 4+ and the vesting schedule are records too
(bns/ledger.py reads and writes them), so a block's debits, credits and unlocks
commit and undo with the rest of the block.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

from bns_resolver.errors import ChainError

Record = dict[str, Any]

# Tables a store keeps.  Keys: names → fqn; namespaces → namespace_id;
# name_preorders / namespace_preorders → preorder_hash; consensus → height;
# keychains → namespace_id; history → fqn or namespace_id (list of records);
# block_hashes → height (the virtualchain's reorg anchors); accounts → address (STX account);
# vesting → height ({address: µSTX unlocked at the end of the block before}).
TABLES = ("names", "namespaces", "name_preorders", "namespace_preorders", "consensus", "keychains", "history",
          "block_hashes", "accounts", "vesting")


class StateStore(Protocol):
    """Everything BnsEngine reads or writes.  Records are dicts of JSON values.

    Writes are refused outside an open block; reads inside one see its own writes.
    """

    def last_block(self) -> int | None:
        """Height of the newest committed block, None before the first."""
        ...

    # Name records, keyed by fqn; expired and revoked records stay (the engine judges expiry).
    def get_name(self, fqn: str) -> Record | None: ...
    def put_name(self, record: Record) -> None:
        """Insert or replace by record["name"]; record["sender"] and ["name_hash128"] are indexed."""
        ...
    def names_by_owner(self, sender_script: str) -> list[str]:
        """fqns whose current record["sender"] == sender_script, sorted, no expiry filtering."""
        ...
    def name_by_hash128(self, name_hash128: str) -> str | None: ...

    # Namespace records (revealed or ready), keyed by namespace_id.
    def get_namespace(self, namespace_id: str) -> Record | None: ...
    def put_namespace(self, record: Record) -> None: ...

    # Outstanding preorders, keyed by preorder_hash.
    def get_name_preorder(self, preorder_hash: str) -> Record | None: ...
    def put_name_preorder(self, record: Record) -> None: ...
    def delete_name_preorder(self, preorder_hash: str) -> None: ...
    def get_namespace_preorder(self, preorder_hash: str) -> Record | None: ...
    def put_namespace_preorder(self, record: Record) -> None: ...
    def delete_namespace_preorder(self, preorder_hash: str) -> None: ...

    # Consensus hashes by height (the genesis entries below the first block included).
    def get_consensus_hash(self, height: int) -> str | None: ...
    def put_consensus_hash(self, height: int, consensus_hash: str, ops_hash: str) -> None: ...
    def block_for_consensus_hash(self, consensus_hash: str) -> int | None:
        """Lowest height whose consensus hash is this one."""
        ...

    # NAME_IMPORT keyrings (addresses allowed to import), keyed by namespace_id.
    def get_import_keychain(self, namespace_id: str) -> list[str] | None: ...
    def put_import_keychain(self, namespace_id: str, addresses: list[str]) -> None: ...

    # Per-name op history needed by quirks (TRANSFER's hashed consensus_hash):
    # key "name:<fqn>", an append-only list of {"op": <opchar>, "block": <height>}.
    def get_history(self, key: str) -> list[Record]: ...
    def append_history(self, key: str, record: Record) -> None: ...

    # STX accounts (bns/ledger.py's shape) by address, and unlocks by height; None deletes.
    def get_account(self, address: str) -> Record | None: ...
    def put_account(self, address: str, record: Record | None) -> None: ...
    def get_vesting(self, height: int) -> Record | None: ...
    def put_vesting(self, height: int, unlocks: Record | None) -> None: ...


class MemoryStateStore:
    """Dict-backed StateStore (and virtualchain BlockStore) with a per-block undo journal.

    Everything it holds is in memory, so `flush()` only marks committed blocks as durable:
    `rollback()` drops the open block, `undo_block(h)` a flushed or committed one.
    """

    def __init__(self) -> None:
        self._tables: dict[str, dict[Any, Any]] = {t: {} for t in TABLES}
        self._owners: dict[str, set[str]] = {}
        self._hash128: dict[str, str] = {}
        self._ch_blocks: dict[str, list[int]] = {}
        self._journals: dict[int, list[tuple[str, Any, Any]]] = {}
        self._open: int | None = None
        self._last: int | None = None
        self._first: int | None = None

    # -- block framing (driven by the virtualchain) -----------------------
    def begin_block(self, height: int, block_hash: str = "") -> None:
        if self._open is not None:
            raise ChainError(f"block {self._open} is still open")
        self._open = height
        self._journals[height] = []
        if block_hash:
            self._set("block_hashes", height, block_hash)

    def commit_block(self) -> None:
        height = self._require_open()
        self._open = None
        self._last = height if self._last is None else max(self._last, height)
        if self._first is None:
            self._first = height

    def rollback(self) -> None:
        """Discard the open block's changes (a no-op when no block is open)."""
        if self._open is not None:
            self._undo(self._open)
            self._open = None

    def flush(self) -> None:
        return None

    def undo_block(self, height: int) -> None:
        """Undo every change made by the committed block `height`, which must be the newest."""
        if self._open is not None:
            raise ChainError(f"cannot undo block {height} while block {self._open} is open")
        newest = max(self._journals) if self._journals else None
        if newest != height:
            raise ChainError(f"can only undo the newest block {newest}, not {height}")
        self._undo(height)
        self._last = height - 1 if self._last is not None and height - 1 >= self._floor() else None

    def _undo(self, height: int) -> None:
        for table, key, old in reversed(self._journals.pop(height)):
            self._raw_set(table, key, old)

    def discard_undo(self, before_height: int) -> None:
        for height in [h for h in self._journals if h < before_height]:
            del self._journals[height]

    def last_block(self) -> int | None:
        return self._last

    def get_block_hash(self, height: int) -> str | None:
        return self._tables["block_hashes"].get(height)

    def _floor(self) -> int:
        """Lowest height that was ever committed (blocks are contiguous)."""
        return self._first if self._first is not None else 0

    def _require_open(self) -> int:
        if self._open is None:
            raise ChainError("no block is open")
        return self._open

    # -- generic journaled access ------------------------------------
    def _get(self, table: str, key: Any) -> Any:
        return copy.deepcopy(self._tables[table].get(key))

    def _set(self, table: str, key: Any, value: Any) -> None:
        if self._open is None:
            raise ChainError("state changed outside begin_block/commit_block")
        old = copy.deepcopy(self._tables[table].get(key))
        self._journals[self._open].append((table, key, old))
        self._raw_set(table, key, copy.deepcopy(value))

    def _raw_set(self, table: str, key: Any, value: Any) -> None:
        old = self._tables[table].get(key)
        self._unindex(table, key, old)
        if value is None:
            self._tables[table].pop(key, None)
        else:
            self._tables[table][key] = value
            self._index(table, key, value)

    def _index(self, table: str, key: Any, value: Any) -> None:
        if table == "names":
            self._owners.setdefault(value["sender"], set()).add(key)
            self._hash128[value["name_hash128"]] = key
        elif table == "consensus":
            self._ch_blocks.setdefault(value[0], []).append(key)

    def _unindex(self, table: str, key: Any, old: Any) -> None:
        if old is None:
            return
        if table == "names":
            self._owners.get(old["sender"], set()).discard(key)
            self._hash128.pop(old["name_hash128"], None)
        elif table == "consensus":
            self._ch_blocks.get(old[0], []).remove(key)

    # -- names ------------------------------------------------------------
    def get_name(self, fqn: str) -> Record | None:
        return self._get("names", fqn)

    def put_name(self, record: Record) -> None:
        self._set("names", record["name"], record)

    def names_by_owner(self, sender_script: str) -> list[str]:
        return sorted(self._owners.get(sender_script, ()))

    def name_by_hash128(self, name_hash128: str) -> str | None:
        return self._hash128.get(name_hash128)

    # -- namespaces -------------------------------------------------------
    def get_namespace(self, namespace_id: str) -> Record | None:
        return self._get("namespaces", namespace_id)

    def put_namespace(self, record: Record) -> None:
        self._set("namespaces", record["namespace_id"], record)

    # -- preorders --------------------------------------------------------
    def get_name_preorder(self, preorder_hash: str) -> Record | None:
        return self._get("name_preorders", preorder_hash)

    def put_name_preorder(self, record: Record) -> None:
        self._set("name_preorders", record["preorder_hash"], record)

    def delete_name_preorder(self, preorder_hash: str) -> None:
        self._set("name_preorders", preorder_hash, None)

    def get_namespace_preorder(self, preorder_hash: str) -> Record | None:
        return self._get("namespace_preorders", preorder_hash)

    def put_namespace_preorder(self, record: Record) -> None:
        self._set("namespace_preorders", record["preorder_hash"], record)

    def delete_namespace_preorder(self, preorder_hash: str) -> None:
        self._set("namespace_preorders", preorder_hash, None)

    # -- consensus hashes -------------------------------------------------
    def get_consensus_hash(self, height: int) -> str | None:
        entry = self._tables["consensus"].get(height)
        return entry[0] if entry else None

    def put_consensus_hash(self, height: int, consensus_hash: str, ops_hash: str) -> None:
        self._set("consensus", height, (consensus_hash, ops_hash))

    def get_ops_hash(self, height: int) -> str | None:
        """Convenience of this store (not part of StateStore): the block's ops hash."""
        entry = self._tables["consensus"].get(height)
        return entry[1] if entry else None

    def block_for_consensus_hash(self, consensus_hash: str) -> int | None:
        heights = self._ch_blocks.get(consensus_hash)
        return min(heights) if heights else None

    # -- import keychains and history ------------------------------------
    def get_import_keychain(self, namespace_id: str) -> list[str] | None:
        return self._get("keychains", namespace_id)

    def put_import_keychain(self, namespace_id: str, addresses: list[str]) -> None:
        self._set("keychains", namespace_id, list(addresses))

    def get_history(self, key: str) -> list[Record]:
        return self._get("history", key) or []

    def append_history(self, key: str, record: Record) -> None:
        self._set("history", key, self.get_history(key) + [record])

    # -- STX accounts and vesting ------------------------------------------
    def get_account(self, address: str) -> Record | None:
        return self._get("accounts", address)

    def put_account(self, address: str, record: Record | None) -> None:
        self._set("accounts", address, record)

    def get_vesting(self, height: int) -> Record | None:
        return self._get("vesting", height)

    def put_vesting(self, height: int, unlocks: Record | None) -> None:
        self._set("vesting", height, unlocks)
