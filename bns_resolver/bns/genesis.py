"""The 2020 STX genesis allocation the reference (v22) seeded its token accounts from.

Shipped as `bns_resolver/data/genesis.json.xz` + `genesis-airdrop.bin.xz`, derived by
`tools/genesis_data.py` from the public `blockstack==22.0.0.0` sdist (`blockstack/lib/
genesis_block.py` and `blockstack/data/blockchain-airdrop-2020.csv`); the source digests are in
the file and the script re-checks them.  Amounts are µSTX.  Account addresses are base58check,
as the reference keyed its `accounts` table (`namedb_genesis_block`: c32 -> `address_as_b58`);
rows whose address is not an address (`unallocated`, `not_distributed_...`) keep their label and
can never send.  Airdrop addresses are known by their hash160's first `prefix_bytes` bytes.
"""

from __future__ import annotations

import hashlib
import json
import lzma
from array import array
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bns_resolver.base58 import b58check_decode
from bns_resolver.errors import ConfigError

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
GENESIS_FILE = "genesis.json.xz"
AIRDROP_FILE = "genesis-airdrop.bin.xz"


@dataclass(frozen=True)
class GenesisRow:
    """One allocation: `value` liquid at once, `vesting` ((height, amount), ...) unlocked later."""

    address: str
    value: int
    lock_send: int
    receive_whitelisted: bool
    metadata: str
    vesting: tuple[tuple[int, int], ...]

    @property
    def vesting_total(self) -> int:
        return sum(amount for _, amount in self.vesting)


@dataclass(frozen=True)
class GenesisPatch:
    """A mass grant applied at the end of a block (`GENESIS_BLOCK_PATCHES`)."""

    add: tuple[GenesisRow, ...]
    delete: tuple[str, ...]


@dataclass(frozen=True)
class AirdropBatch:
    """`GENESIS_BLOCK_PATCHES_FILES` entry: airdrop lines [line_start, line_end) get `value` each."""

    line_start: int
    line_end: int
    value: int
    lock_send: int
    receive_whitelisted: bool
    metadata: str


@dataclass(frozen=True)
class GenesisAllocation:
    source: dict[str, object]
    stages: tuple[tuple[str, int], ...]  # (history hash, row count) of each signed stage
    rows: tuple[GenesisRow, ...]  # the final stage (GENESIS_BLOCK)
    patches: dict[int, GenesisPatch]
    airdrop_batches: dict[int, AirdropBatch]
    airdrop_prefixes: bytes  # prefix_bytes per address, in file order
    prefix_bytes: int

    @property
    def airdrop_count(self) -> int:
        return len(self.airdrop_prefixes) // self.prefix_bytes

    def liquid_total(self) -> int:
        return sum(r.value for r in self.rows)

    def vesting_total(self) -> int:
        return sum(r.vesting_total for r in self.rows)

    def airdrop_prefix(self, index: int) -> bytes:
        start = index * self.prefix_bytes
        return self.airdrop_prefixes[start:start + self.prefix_bytes]

    def airdrop_batch_height(self, address: str) -> int | None:
        """The block whose patch grants the airdrop to this base58check address, if any."""
        try:
            version, payload = b58check_decode(address)
        except ValueError:
            return None
        if version != 0:
            return None
        index = self._airdrop_index(payload[: self.prefix_bytes])
        if index is None:
            return None
        for height, batch in self.airdrop_batches.items():
            if batch.line_start <= index < batch.line_end:
                return height
        return None

    def _airdrop_index(self, prefix: bytes) -> int | None:
        """Line of the airdrop file with this hash160 prefix: a binary search over the prefixes
        sorted once (4.5 MB kept, instead of a 322,146-entry dict of tens of MB)."""
        blob, lines = _sorted_prefixes(self.airdrop_prefixes, self.prefix_bytes)
        size, low, high = self.prefix_bytes, 0, len(lines)
        while low < high:
            mid = (low + high) // 2
            if blob[mid * size:(mid + 1) * size] < prefix:
                low = mid + 1
            else:
                high = mid
        if low < len(lines) and blob[low * size:(low + 1) * size] == prefix:
            return lines[low]
        return None


@lru_cache(maxsize=2)
def _sorted_prefixes(prefixes: bytes, size: int) -> tuple[bytes, array]:
    order = sorted(range(len(prefixes) // size), key=lambda i: prefixes[i * size:(i + 1) * size])
    blob = b"".join(prefixes[i * size:(i + 1) * size] for i in order)
    return blob, array("I", order)


def _read_checked(path: Path) -> bytes:
    data = path.read_bytes()
    expected = path.with_name(path.name + ".sha256").read_text().strip()
    if hashlib.sha256(data).hexdigest() != expected:
        raise ConfigError(f"{path} does not match its .sha256; run tools/genesis_data.py regenerate")
    return lzma.decompress(data)


def _row(raw: list) -> GenesisRow:
    address, value, lock_send, whitelisted, metadata, vesting = raw
    return GenesisRow(address, value, lock_send, whitelisted, metadata, tuple((h, a) for h, a in vesting))


@lru_cache(maxsize=1)
def load_genesis(data_dir: Path = DATA_DIR) -> GenesisAllocation:
    doc = json.loads(_read_checked(data_dir / GENESIS_FILE))
    if doc.get("format") != "bns-genesis/1":
        raise ConfigError(f"{data_dir / GENESIS_FILE}: unknown format {doc.get('format')!r}")
    prefixes = _read_checked(data_dir / AIRDROP_FILE)
    source = doc["source"]
    if hashlib.sha256(prefixes).hexdigest() != source["airdrop_bin_sha256"]:
        raise ConfigError(f"{data_dir / AIRDROP_FILE} does not match {GENESIS_FILE}")
    patches = {int(h): GenesisPatch(tuple(_row(r) for r in p["add"]), tuple(p["del"]))
               for h, p in doc["patches"].items()}
    batches = {int(h): AirdropBatch(**b) for h, b in doc["airdrop_batches"].items()}
    return GenesisAllocation(
        source=source,
        stages=tuple((s["hash"], s["rows"]) for s in doc["stages"]),
        rows=tuple(_row(r) for r in doc["rows"]),
        patches=dict(sorted(patches.items())),
        airdrop_batches=dict(sorted(batches.items())),
        airdrop_prefixes=prefixes,
        prefix_bytes=int(source["airdrop_prefix_bytes"]),
    )
