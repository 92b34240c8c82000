"""Read raw blocks straight from a local bitcoind's `blocks/blk*.dat` files.

Bitcoin Core appends each block it stores to the current `blkNNNNN.dat` as a record:
the network's 4-byte message start, the block's size (4 bytes, little-endian), then the
serialized block.  Blocks land in the order they arrived, not in height order, and Core
preallocates files in chunks, so a file may end in zeros.  Since Core 28 the files are
XORed with the 8-byte key in `blocks/xor.dat` (repeating from each file's byte 0); an
all-zero key, or no file, means plain.

The files say nothing about which blocks are in the best chain: the node's
`getblockhash` still decides that.  This module only answers "the bytes of block H":
the index hash → (file, offset) is built lazily, one file at a time, reading headers only,
and every block served is checked (double-SHA256 of its 80-byte header equals H), so a
torn or corrupted record is reported as missing and the caller asks RPC instead.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

# Message start bytes per network, as bitcoind writes them in front of each stored block.
NETWORK_MAGIC = {
    "mainnet": bytes.fromhex("f9beb4d9"),
    "testnet": bytes.fromhex("0b110907"),
    "regtest": bytes.fromhex("fabfbfda"),
    "signet": bytes.fromhex("0a03cf40"),
}
HEADER_SIZE = 80
XOR_KEY_SIZE = 8
_BLK_NAME = re.compile(r"blk(\d{5})\.dat")
# Core refuses blocks over 4 MB of weight; a size field beyond this is garbage, not a block.
_MAX_BLOCK_BYTES = 4_000_000


def block_hash(header: bytes) -> str:
    """The block hash as RPC spells it (double SHA-256 of the header, byte-reversed hex)."""
    return hashlib.sha256(hashlib.sha256(header[:HEADER_SIZE]).digest()).digest()[::-1].hex()


def read_xor_key(blocks_dir: Path) -> bytes | None:
    """The obfuscation key from `xor.dat`, or None when there is none or it is all zeros."""
    try:
        key = (blocks_dir / "xor.dat").read_bytes()
    except FileNotFoundError:
        return None
    if len(key) != XOR_KEY_SIZE:
        raise ValueError(f"{blocks_dir / 'xor.dat'}: expected {XOR_KEY_SIZE} bytes, found {len(key)}")
    return key if any(key) else None


def xor_at(data: bytes, key: bytes | None, position: int) -> bytes:
    """`data`, read at file offset `position`, with the file's key undone (or applied: XOR is its own inverse)."""
    if key is None or not data:
        return data
    shift = position % len(key)
    rotated = key[shift:] + key[:shift]
    stream = rotated * (len(data) // len(rotated) + 1)
    # Whole-buffer integer XOR: a per-byte Python loop would cost more than the RPC it replaces.
    masked = int.from_bytes(data, "little") ^ int.from_bytes(stream[:len(data)], "little")
    return masked.to_bytes(len(data), "little")


def block_files(blocks_dir: Path) -> list[tuple[int, Path]]:
    """The directory's blkNNNNN.dat files with their numbers, in Core's numbering order."""
    return sorted((int(match.group(1)), entry) for entry in blocks_dir.iterdir()
                  if (match := _BLK_NAME.fullmatch(entry.name)))


def _short_key(digest: bytes) -> int:
    """8 bytes of a block hash (internal byte order, where the random bytes are) as the index
    key: a mainnet index holds ~900k blocks, and a full hex key would cost twice the memory.
    A collision is harmless: every block read is checked against its full hash."""
    return int.from_bytes(digest[:8], "little")


class BlockFiles:
    """Raw blocks by hash from one network's block files, with a lazily built location index."""

    def __init__(self, blocks_dir: Path, network: str) -> None:
        if not blocks_dir.is_dir():
            raise FileNotFoundError(f"{blocks_dir} is not a directory")
        self.blocks_dir, self.magic = blocks_dir, NETWORK_MAGIC[network]
        self.key = read_xor_key(blocks_dir)
        self._index: dict[int, int] = {}  # short key -> file number << 32 | offset of the record
        self._scanned: dict[int, int | None] = {}  # file number -> indexed up to; None: unreadable
        self._warned_empty = False

    def get(self, wanted: str) -> bytes | None:
        """The serialized block whose hash is `wanted`, checked against it; None when the
        files do not hold it (yet) or what they hold does not hash to it.  A block served is
        dropped from the index: sync asks for each block once."""
        key = _short_key(bytes.fromhex(wanted)[::-1])
        where = self._index.get(key)
        if where is None:
            where = self._scan_until(key)
        if where is None:
            # Normal only for blocks newer than the files (or a damaged header: it hashes elsewhere).
            log.info("block %s is not in the block files in %s; fetching it over RPC", wanted, self.blocks_dir)
            return None
        number, offset = divmod(where, 1 << 32)
        raw = self._read_record(number, offset)
        if raw is None or block_hash(raw) != wanted:
            log.warning("block %s is not intact in blk%05d.dat at byte %d (what is there does not hash to it); "
                        "fetching it over RPC", wanted, number, offset + 8)
            return None
        del self._index[key]
        return raw

    def _scan_until(self, key: int) -> int | None:
        """Index files from where each was last left (bitcoind keeps appending to the newest,
        over its preallocated zeros) until `key` turns up."""
        for number, path in block_files(self.blocks_dir):
            position = self._scanned.get(number, 0)
            if position is not None:
                self._scanned[number] = self._scan_file(number, path, position)
            if key in self._index:
                return self._index[key]
        if not self._index and not self._warned_empty:
            self._warned_empty = True
            log.warning("%s holds no block files of this network (magic %s): every block comes over RPC",
                        self.blocks_dir, self.magic.hex())
        return None

    def _scan_file(self, number: int, path: Path, position: int) -> int | None:
        """Headers only: magic, size, 80 bytes, then seek past the block.  Returns where it
        stopped (the end of the last whole record), None when the file holds garbage."""
        with path.open("rb") as handle:
            while True:
                handle.seek(position)
                prefix = self._unmask(handle.read(8 + HEADER_SIZE), position)
                if len(prefix) < 8 + HEADER_SIZE or prefix[:4] != self.magic:
                    return position  # end of file, preallocated zeros, or a record being written
                size = int.from_bytes(prefix[4:8], "little")
                if not HEADER_SIZE <= size <= _MAX_BLOCK_BYTES:
                    log.warning("%s at byte %d: record size %d is not a block's; its later blocks come over RPC",
                                path.name, position, size)
                    return None
                digest = hashlib.sha256(hashlib.sha256(prefix[8:]).digest()).digest()
                self._index.setdefault(_short_key(digest), number << 32 | position)
                position += 8 + size

    def _read_record(self, number: int, offset: int) -> bytes | None:
        """The block in the record at `offset` of blk`number`.dat; None if the file ends first."""
        try:
            with (self.blocks_dir / f"blk{number:05d}.dat").open("rb") as handle:
                handle.seek(offset + 4)
                size = int.from_bytes(self._unmask(handle.read(4), offset + 4), "little")
                raw = self._unmask(handle.read(size), offset + 8)
        except FileNotFoundError:  # pruned or reindexed since we scanned it
            return None
        return raw if len(raw) == size >= HEADER_SIZE else None

    def _unmask(self, data: bytes, position: int) -> bytes:
        return xor_at(data, self.key, position)
