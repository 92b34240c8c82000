#!/usr/bin/env python3
"""Derive the shipped STX genesis allocation from the public `blockstack==22.0.0.0` sdist.

The reference (blockstack-core v22) seeds its token accounts from `blockstack/lib/genesis_block.py`
(4 signed stages; patches at 599865 and 613249) and grants 100 STX to each address of
`blockstack/data/blockchain-airdrop-2020.csv` in 33 batches at 613250-613282
(`config.get_genesis_block_patches`, `load_genesis_bulk_patch`).  This script turns those two
files into what the package ships:

* `bns_resolver/data/genesis.json.xz`: the final stage's rows, the patches and the airdrop
  batch table, addresses as the reference keys its accounts (c32 -> base58check mainnet,
  `address_as_b58`; unspendable labels such as `unallocated` kept as they are), with the source
  digests;
* `bns_resolver/data/genesis-airdrop.bin.xz`: the airdrop addresses in file order, each as the
  first PREFIX bytes of its hash160 (all are p2pkh; 10 bytes keep the chance that any other
  address matches one below 1e-18 while the file stays ~3 MB instead of 6).

    python3 tools/genesis_data.py regenerate [--sdist blockstack-22.0.0.0.tar.gz]
    python3 tools/genesis_data.py check      [--sdist ...]   # rebuild in memory, compare bytes

Without --sdist the sdist is fetched with `pip download --no-deps --no-binary :all:
blockstack==22.0.0.0`.  Every input is checked against the digests recorded below first.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import lzma
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bns_resolver" / "data"
JSON_OUT = DATA / "genesis.json.xz"
AIRDROP_OUT = DATA / "genesis-airdrop.bin.xz"

SDIST = "blockstack-22.0.0.0.tar.gz"
SDIST_SHA256 = "d699abd3015367537d1a63b1f76a66a937dbc5f58a0151079b56b82c0fd96d46"
GENESIS_PY = "blockstack-22.0.0.0/blockstack/lib/genesis_block.py"
GENESIS_PY_SHA256 = "9f3d4dc1f39fe4ab8ec2d0f70b561aec9bc72af2d157c4df888754ee589ac63d"
GENESIS_PY_SIZE = 13_266_568
AIRDROP_CSV = "blockstack-22.0.0.0/blockstack/data/blockchain-airdrop-2020.csv"
AIRDROP_SHA256 = "7151d07424aef17201e57e81b6150caa6b66e0e62f909ae5b6238ec713db74e1"
PREFIX = 10

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
C32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
C32_TO_B58_VERSION = {22: 0, 20: 5, 26: 111, 21: 196}


def _dsha256(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def b58check_decode(text: str) -> tuple[int, bytes]:
    number = 0
    for char in text:
        number = number * 58 + B58.index(char)
    raw = number.to_bytes(25, "big")
    if _dsha256(raw[:-4])[:4] != raw[-4:]:
        raise ValueError(f"bad base58check checksum: {text}")
    return raw[0], raw[1:-4]


def b58check_encode(version: int, payload: bytes) -> str:
    raw = bytes([version]) + payload
    raw += _dsha256(raw)[:4]
    number, out = int.from_bytes(raw, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        out = B58[digit] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def c32_to_b58(address: str) -> str:
    """A Stacks c32check address as the base58check address the reference keyed accounts by."""
    if len(address) < 3 or address[0] != "S" or address[1] not in C32:
        raise ValueError(f"not a c32 address: {address}")
    version = C32.index(address[1])
    number = 0
    for char in address[2:]:
        number = number * 32 + C32.index(char)
    raw = number.to_bytes(24, "big")
    payload, checksum = raw[:20], raw[20:]
    if _dsha256(bytes([version]) + payload)[:4] != checksum:
        raise ValueError(f"bad c32check checksum: {address}")
    return b58check_encode(C32_TO_B58_VERSION[version], payload)


def _account_address(address: str) -> str:
    try:
        return c32_to_b58(address)
    except ValueError:
        return address  # an unspendable label ("unallocated", "not_distributed_..."): kept verbatim


# -- reading the sdist -----------------------------------------------------------------------------
def fetch_sdist(workdir: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    "blockstack==22.0.0.0", "-d", str(workdir)], check=True)
    return workdir / SDIST


def _checked(data: bytes, sha256: str, what: str) -> bytes:
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise SystemExit(f"{what}: sha256 {digest}, expected {sha256}")
    return data


def read_sources(sdist: Path) -> tuple[bytes, bytes]:
    _checked(sdist.read_bytes(), SDIST_SHA256, sdist.name)
    with tarfile.open(sdist) as tar:
        genesis = tar.extractfile(GENESIS_PY).read()  # type: ignore[union-attr]
        airdrop = tar.extractfile(AIRDROP_CSV).read()  # type: ignore[union-attr]
    if len(genesis) != GENESIS_PY_SIZE:
        raise SystemExit(f"{GENESIS_PY}: {len(genesis)} bytes, expected {GENESIS_PY_SIZE}")
    return _checked(genesis, GENESIS_PY_SHA256, GENESIS_PY), _checked(airdrop, AIRDROP_SHA256, AIRDROP_CSV)


class _JsonNames(ast.NodeTransformer):
    """genesis_block.py defines `true = True; false = False` and uses the lowercase names."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        values = {"true": True, "false": False, "null": None}
        if node.id in values:
            return ast.copy_location(ast.Constant(values[node.id]), node)
        return node


def parse_genesis(source: bytes) -> dict[str, Any]:
    """The module's literal assignments (GENESIS_BLOCK_STAGES, _PATCHES, _PATCHES_FILES)."""
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("GENESIS_BLOCK_STAGES", "GENESIS_BLOCK_PATCHES", "GENESIS_BLOCK_PATCHES_FILES"):
                out[name] = ast.literal_eval(_JsonNames().visit(node.value))
    return out


# -- the derived files -----------------------------------------------------------------------------
def _row(row: dict[str, Any]) -> list[Any]:
    """[address, value, lock_send, receive_whitelisted, metadata, [[height, amount], ...]] (µSTX)."""
    if row["type"] != "STACKS" or sum(row["vesting"].values()) != row["vesting_total"]:
        raise SystemExit(f"unexpected genesis row {row['address']}")
    vesting = sorted([int(h), int(v)] for h, v in row["vesting"].items())
    return [_account_address(row["address"]), int(row["value"]), int(row.get("lock_send", 0)),
            bool(row.get("receive_whitelisted", True)), row.get("metadata") or "", vesting]


def derive(genesis_py: bytes, airdrop_csv: bytes) -> tuple[bytes, bytes]:
    parsed = parse_genesis(genesis_py)
    stages = parsed["GENESIS_BLOCK_STAGES"]
    patches = {height: {"add": [_row(r) for r in patch["add"]], "del": [_account_address(a) for a in patch["del"]]}
               for height, patch in sorted(parsed["GENESIS_BLOCK_PATCHES"].items())}
    batches = {}
    for height, batch in sorted(parsed["GENESIS_BLOCK_PATCHES_FILES"].items()):
        if batch["sha256"] != AIRDROP_SHA256 or batch["vesting"] or batch["type"] != "STACKS":
            raise SystemExit(f"unexpected airdrop batch at {height}")
        batches[height] = {k: batch[k] for k in ("line_start", "line_end", "value", "lock_send",
                                                 "receive_whitelisted", "metadata")}
    lines = airdrop_csv.decode("ascii").split("\n")
    addresses = [line.strip() for line in lines if line.strip()]
    prefixes = bytearray()
    for text in addresses:
        version, payload = b58check_decode(text)
        if version != 0:
            raise SystemExit(f"airdrop address {text} is not p2pkh")
        prefixes += payload[:PREFIX]
    doc = {
        "format": "bns-genesis/1",
        "source": {"sdist": SDIST, "sdist_sha256": SDIST_SHA256, "genesis_block_py_sha256": GENESIS_PY_SHA256,
                   "genesis_block_py_bytes": GENESIS_PY_SIZE, "airdrop_csv_sha256": AIRDROP_SHA256,
                   "airdrop_csv_lines": len(addresses), "airdrop_prefix_bytes": PREFIX,
                   "airdrop_bin_sha256": hashlib.sha256(bytes(prefixes)).hexdigest()},
        "stages": [{"hash": s["history"][-1]["hash"], "rows": len(s["rows"])} for s in stages],
        "rows": [_row(r) for r in stages[-1]["rows"]],
        "patches": patches,
        "airdrop_batches": batches,
    }
    encoded = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return _xz(encoded), _xz(bytes(prefixes))


def _xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=9 | lzma.PRESET_EXTREME)


def build(sdist: Path | None) -> tuple[bytes, bytes]:
    if sdist is not None:
        return derive(*read_sources(sdist))
    with tempfile.TemporaryDirectory() as tmp:
        return derive(*read_sources(fetch_sdist(Path(tmp))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("regenerate", "check"))
    parser.add_argument("--sdist", type=Path, help=f"a local {SDIST} (default: pip download it)")
    args = parser.parse_args(argv)
    json_xz, airdrop_xz = build(args.sdist)
    if args.command == "regenerate":
        for path, data in ((JSON_OUT, json_xz), (AIRDROP_OUT, airdrop_xz)):
            path.write_bytes(data)
            path.with_name(path.name + ".sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
            print(f"wrote {path.relative_to(ROOT)} ({len(data):,} bytes)")
        return 0
    stale = [p.name for p, d in ((JSON_OUT, json_xz), (AIRDROP_OUT, airdrop_xz))
             if not p.exists() or p.read_bytes() != d]
    if stale:
        print("differs from the sdist-derived data: " + ", ".join(stale))
        return 1
    print("shipped genesis data matches the sdist")
    return 0


if __name__ == "__main__":
    sys.exit(main())
