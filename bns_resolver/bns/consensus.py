"""Op serialization and consensus hashes, bit-exact with blockstack-core + virtualchain.

This is the one place that reproduces Python 2 string formatting, because the
reference hashed `str(value)` of each field (bns-v1.md §4.2).  Everything else in
the package uses ordinary Python 3 values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bns_resolver.hashing import dsha256, hash160

GENESIS_CONSENSUS_HASH = "17ac43c1d8549c3181b200f1bf97eb7d"
EMPTY_OPS_HASH = "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456"


def py2_str(value: object) -> str:
    """`str(value)` as Python 2.7 printed it (None becomes "", as virtualchain did)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return _py2_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_py2_repr(v) for v in value) + "]"
    return str(value)


def _py2_float(value: float) -> str:
    # Python 2's str(float) is '%.12g', with '.0' appended when it looks integral.
    text = "%.12g" % value
    if text.lstrip("-").isdigit():
        text += ".0"
    return text


def _py2_repr(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    return py2_str(value)


def serialize_op(opchar: str, values: Iterable[object]) -> str:
    """The netstring form the reference hashed: `op:len:value,len:value,...`."""
    parts = []
    for value in values:
        text = py2_str(value)
        parts.append(f"{len(text)}:{text}")
    return opchar + ":" + ",".join(parts)


def merkle_root(hex_leaves: Sequence[str]) -> str:
    """pybitcoin's MerkleTree root: leaves byte-reversed, odd levels duplicate the last node."""
    nodes = [bytes.fromhex(h)[::-1] for h in hex_leaves]
    if not nodes:
        raise ValueError("merkle root of no leaves")
    while len(nodes) > 1:
        if len(nodes) % 2 == 1:
            nodes.append(nodes[-1])
        nodes = [dsha256(nodes[i] + nodes[i + 1]) for i in range(0, len(nodes), 2)]
    return nodes[0][::-1].hex()


def ops_hash(serialized_ops: Sequence[str]) -> str:
    """Merkle root over the sorted double-SHA256 hashes of a block's serialized ops."""
    leaves = sorted(dsha256(s.encode("utf-8")).hex() for s in serialized_ops)
    if not leaves:
        leaves = [dsha256(b"").hex()]
    return merkle_root(leaves)


def prev_consensus_heights(height: int, first_block: int) -> list[int]:
    """Heights h-1, h-3, h-7, ... that are still >= first_block (the skip list)."""
    heights = []
    i = 1
    while height - (2**i - 1) >= first_block:
        heights.append(height - (2**i - 1))
        i += 1
    return heights


def consensus_hash(block_ops_hash: str, prev_hashes: Sequence[str]) -> str:
    """CH(k) = hash160(merkle(sorted(prev + [ops_hash])))[:16] as 32 hex chars."""
    root = merkle_root(sorted(list(prev_hashes) + [block_ops_hash]))
    return hash160(bytes.fromhex(root))[:16].hex()
