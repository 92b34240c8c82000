"""Real BNS data for zone-file tests (see shared/data/bns-genesis/README.md)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from bns_resolver.index.schema import metadata

REPO_ROOT = Path(__file__).resolve().parents[2]


def genesis_dir() -> Path:
    return Path(os.environ.get("BNS_GENESIS_DIR", REPO_ROOT.parent / "shared" / "data" / "bns-genesis"))


def read_pairs(path: Path) -> dict[str, bytes]:
    """A `hash` / escaped-zone-file line-pair file, with `\\n` turned back into LF."""
    lines = path.read_bytes().splitlines()
    return {lines[i].decode("ascii"): lines[i + 1].replace(b"\\n", b"\n") for i in range(0, len(lines) - 1, 2)}


def genesis_zonefiles() -> dict[str, bytes]:
    return read_pairs(genesis_dir() / "stx-genesis" / "name_zonefiles.txt")


def derived_zonefiles() -> list[dict[str, Any]]:
    with (genesis_dir() / "derived" / "zonefiles.jsonl").open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def sqlite_engine(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'index.sqlite'}")
    metadata.create_all(engine)
    return engine
