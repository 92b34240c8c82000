"""What an accepted operation does: the records it writes and the values it hashes."""

from __future__ import annotations

from dataclasses import dataclass, field

from bns_resolver.bns.state import Record, StateStore


@dataclass(frozen=True)
class Effects:
    """Planned writes of one accepted op plus the field values the reference serialized."""

    opchar: str
    serialized_values: tuple[object, ...]
    fqn: str | None = None
    namespace_id: str | None = None
    name_record: Record | None = None
    namespace_record: Record | None = None
    put_name_preorder: Record | None = None
    put_namespace_preorder: Record | None = None
    delete_name_preorder: str | None = None
    delete_namespace_preorder: str | None = None
    history: tuple[tuple[str, Record], ...] = field(default=())
    import_keychain: tuple[str, tuple[str, ...]] | None = None  # (namespace_id, addresses)
    is_registration: bool = False
    # STX moved by the op (address, µSTX): the engine applies them through its ledger.
    token_debit: tuple[str, int] | None = None
    token_credit: tuple[str, int] | None = None

    def apply(self, store: StateStore) -> None:
        if self.delete_name_preorder is not None:
            store.delete_name_preorder(self.delete_name_preorder)
        if self.delete_namespace_preorder is not None:
            store.delete_namespace_preorder(self.delete_namespace_preorder)
        if self.put_name_preorder is not None:
            store.put_name_preorder(self.put_name_preorder)
        if self.put_namespace_preorder is not None:
            store.put_namespace_preorder(self.put_namespace_preorder)
        if self.name_record is not None:
            store.put_name(self.name_record)
        if self.namespace_record is not None:
            store.put_namespace(self.namespace_record)
        for key, record in self.history:
            store.append_history(key, record)
        if self.import_keychain is not None:
            store.put_import_keychain(self.import_keychain[0], list(self.import_keychain[1]))
