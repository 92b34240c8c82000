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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Location:
    path: Path
    offset: int  # of the serialized block, after magic and size
    size: int


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


def block_files(blocks_dir: Path) -> list[Path]:
    """The directory's blkNNNNN.dat files, in Core's numbering order."""
    found = [(int(match.group(1)), entry) for entry in blocks_dir.iterdir()
             if (match := _BLK_NAME.fullmatch(entry.name))]
    return [entry for _, entry in sorted(found)]


class BlockFiles:
    """Raw blocks by hash from one network's block files, with a lazily built location index."""

    def __init__(self, blocks_dir: Path, network: str) -> None:
        if not blocks_dir.is_dir():
            raise FileNotFoundError(f"{blocks_dir} is not a directory")
        self.blocks_dir, self.magic = blocks_dir, NETWORK_MAGIC[network]
        self.key = read_xor_key(blocks_dir)
        self._index: dict[str, _Location] = {}
        self._scanned: dict[Path, int] = {}  # how far each file has been indexed

    def get(self, wanted: str) -> bytes | None:
        """The serialized block whose hash is `wanted`, checked against it; None when the
        files do not hold it (yet) or what they hold does not hash to it."""
        where = self._index.get(wanted) or self._scan_until(wanted)
        if where is None:
            # Normal only for blocks newer than the files (or a damaged header: it hashes elsewhere).
            log.info("block %s is not in the block files in %s; fetching it over RPC", wanted, self.blocks_dir)
            return None
        raw = self._read(where.path, where.offset, where.size)
        if len(raw) != where.size or block_hash(raw) != wanted:
            log.warning("block %s is not intact in %s at byte %d (what is there does not hash to it); "
                        "fetching it over RPC", wanted, where.path.name, where.offset)
            return None
        return raw

    def _scan_until(self, wanted: str) -> _Location | None:
        """Index files from where each was last left (bitcoind keeps appending to the newest,
        over its preallocated zeros) until `wanted` turns up."""
        for path in block_files(self.blocks_dir):
            self._scanned[path] = self._scan_file(path, self._scanned.get(path, 0))
            if wanted in self._index:
                return self._index[wanted]
        return None

    def _scan_file(self, path: Path, position: int) -> int:
        """Headers only: magic, size, 80 bytes, then seek past the block.  Returns where it
        stopped: the end of the last whole record."""
        with path.open("rb") as handle:
            while True:
                handle.seek(position)
                prefix = self._unmask(handle.read(8 + HEADER_SIZE), position)
                if len(prefix) < 8 + HEADER_SIZE or prefix[:4] != self.magic:
                    return position  # end of file, preallocated zeros, or a record being written
                size = int.from_bytes(prefix[4:8], "little")
                if not HEADER_SIZE <= size <= _MAX_BLOCK_BYTES:
                    log.warning("%s at byte %d: record size %d is not a block's; stopped reading this file",
                                path.name, position, size)
                    return position
                self._index.setdefault(block_hash(prefix[8:]), _Location(path, position + 8, size))
                position += 8 + size

    def _read(self, path: Path, offset: int, size: int) -> bytes:
        with path.open("rb") as handle:
            handle.seek(offset)
            return self._unmask(handle.read(size), offset)

    def _unmask(self, data: bytes, position: int) -> bytes:
        return xor_at(data, self.key, position)
