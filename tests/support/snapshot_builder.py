"""Small final-state exports made in a test: our own names, owners and zone files, in the real format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bns_resolver.hashing import hash160_hex

NAMESPACE_HEADER = "namespace_id,address,buckets,base,coeff,nonalpha_discount,no_vowel_discount,lifetime"
BUCKETS = ";".join(["1"] * 16)
# A valid mainnet P2PKH address whose key nobody in the tests holds.
DEFAULT_OWNER = "1J3PUxY5uDShUnHRrMyU6yKtoHEUPhKULs"


def write_export(folder: Path, zonefiles: dict[str, str | None], owners: dict[str, str] | None = None,
                 withheld: frozenset[str] = frozenset()) -> Path:
    """chainstate.txt + name_zonefiles.txt for these names; None registers a name without a zone file.

    Names in `withheld` are bound to their zone file's hash, but the file itself is left out.
    """
    folder.mkdir(parents=True, exist_ok=True)
    owners = owners or {}
    namespaces = sorted({name.rsplit(".", 1)[1] for name in zonefiles})
    name_rows, pairs = [], []
    for name, text in sorted(zonefiles.items()):
        value_hash = hash160_hex(text.encode()) if text is not None else ""
        name_rows.append(f"{name},{owners.get(name, DEFAULT_OWNER)},{value_hash}")
        if text is not None and name not in withheld:
            pairs += [value_hash, text.replace("\n", "\\n")]
    chainstate = ["-----BEGIN NAMESPACES-----", NAMESPACE_HEADER,
                  *(f"{ns},{DEFAULT_OWNER},{BUCKETS},4,250,4,4,0" for ns in namespaces),
                  "-----END NAMESPACES-----", "-----BEGIN NAMES-----", "name,address,zonefile_hash",
                  *name_rows, "-----END NAMES-----"]
    (folder / "chainstate.txt").write_text("\n".join(chainstate) + "\n")
    (folder / "name_zonefiles.txt").write_text("".join(line + "\n" for line in pairs))
    return folder


def import_export(data_dir: Path, export: Path) -> None:
    subprocess.run([sys.executable, "-m", "bns_resolver.cli", "import-snapshot", str(export),
                    "--data-dir", str(data_dir)], check=True, capture_output=True)
