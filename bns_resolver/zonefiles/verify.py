"""The zone-file check: hash160 of the exact bytes against the claimed hash, and the size limit.

Apart from storage (store.py) so a process that only reads and checks (the importer's reader,
index/snapshot_reader.py) does not load the database layer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from bns_resolver.errors import VerificationError
from bns_resolver.hashing import hash160, hash160_hex

# RPC_MAX_ZONEFILE_LEN since blockstack-core 0.18; larger files were never accepted by Atlas.
MAX_ZONEFILE_BYTES = 40960
_HASH_RE = re.compile(r"^[0-9a-f]{40}$")


def is_zonefile_hash(value: str) -> bool:
    """True for a 40-character lower-case hex hash160."""
    return bool(_HASH_RE.match(value))


def verify_zonefile(zonefile_hash: str, content: bytes) -> None:
    """Raise VerificationError unless `content` is a storable zone file for `zonefile_hash`."""
    if not is_zonefile_hash(zonefile_hash):
        raise VerificationError(f"{zonefile_hash!r} is not a 40-hex zone-file hash")
    if len(content) > MAX_ZONEFILE_BYTES:
        raise VerificationError(
            f"zone file {zonefile_hash} is {len(content)} bytes, over the {MAX_ZONEFILE_BYTES}-byte limit"
        )
    actual = hash160(content).hex()
    if actual != zonefile_hash:
        raise VerificationError(f"zone file bytes hash to {actual}, not {zonefile_hash}")


def verifies(zonefile_hash: str, content: bytes) -> bool:
    """verify_zonefile's verdict without its reason, in one comparison: a hex digest that equals the
    claim is a well-formed lower-case hash (for the bulk paths: an import, a compile)."""
    return len(content) <= MAX_ZONEFILE_BYTES and hash160_hex(content) == zonefile_hash


def verified_stream(items: Iterable[tuple[str, bytes]],
                    failed: list[tuple[str, VerificationError]]) -> Iterator[tuple[str, bytes]]:
    """The pairs whose bytes hash to their (lower-cased) hash; the others are noted in `failed`."""
    for zonefile_hash, content in items:
        claimed = zonefile_hash.lower()
        if verifies(claimed, content):
            yield claimed, content
        else:
            failed.append((zonefile_hash, _refusal(claimed, content)))


def _refusal(zonefile_hash: str, content: bytes) -> VerificationError:
    """The error verify_zonefile gives for bytes that failed the check in _verified."""
    try:
        verify_zonefile(zonefile_hash, content)
    except VerificationError as exc:
        return exc
    return VerificationError(f"zone file {zonefile_hash} does not verify")  # the two checks disagree: refuse
