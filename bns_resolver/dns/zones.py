"""Verified, parsed zone files, cached by (name, value hash).

A zone file is used only if hash160 of its exact bytes equals the value hash
the chain (or the verified export) binds to the name. Parsing happens once per
(name, hash); the bounded cache keeps a router's memory small.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from bns_resolver.errors import (
    EDE_INVALID_DATA,
    EDE_NO_REACHABLE_AUTHORITY,
    VerificationError,
    ZoneFileError,
    ZoneUnavailable,
)
from bns_resolver.index.lookup import IndexReader
from bns_resolver.zonefiles.parse import ParsedZone, parse_zonefile
from bns_resolver.zonefiles.store import verify_zonefile


@dataclass(frozen=True)
class VerifiedZone:
    name: str
    value_hash: str
    zone: ParsedZone


class ZoneCache:
    def __init__(self, index: IndexReader, *, max_entries: int = 512) -> None:
        self._index = index
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], VerifiedZone | ZoneUnavailable] = OrderedDict()

    def get(self, name: str, value_hash: str) -> VerifiedZone:
        key = (name, value_hash)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._load(name, value_hash)
            self._remember(key, entry)
        else:
            self._entries.move_to_end(key)
        if isinstance(entry, ZoneUnavailable):
            raise entry
        return entry

    def clear(self) -> None:
        self._entries.clear()

    def _remember(self, key: tuple[str, str], entry: VerifiedZone | ZoneUnavailable) -> None:
        # A missing file may arrive any moment (fetcher); only remember final outcomes.
        if isinstance(entry, ZoneUnavailable) and entry.info_code == EDE_NO_REACHABLE_AUTHORITY:
            return
        self._entries[key] = entry
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def _load(self, name: str, value_hash: str) -> VerifiedZone | ZoneUnavailable:
        content = self._index.zonefile(value_hash)
        if content is None:
            return ZoneUnavailable(EDE_NO_REACHABLE_AUTHORITY, f"zone file {value_hash} for {name} not obtained yet")
        try:
            verify_zonefile(value_hash, content)
            return VerifiedZone(name, value_hash, parse_zonefile(content, name))
        except VerificationError as exc:
            return ZoneUnavailable(EDE_INVALID_DATA, f"{name}: zone file hash mismatch: {exc}")
        except ZoneFileError as exc:
            return ZoneUnavailable(EDE_INVALID_DATA, f"{name}: zone file unparsable: {exc}")

