"""A synthetic BNS v1 export, in the exact format of the published one, at any size.

    python3 bench/synth_export.py /tmp/bns-export-2m                      # 2,000 names, 2,200,000 subdomains
    python3 bench/synth_export.py /tmp/small --names 50 --subdomains 3000 --tar

Writes chainstate.txt (NAMESPACES, NAMES and small STX sections), name_zonefiles.txt,
subdomains.csv, subdomain_zonefiles.txt and a `.sha256` companion for each, and with
--tar also export-data.tar.gz holding them under export-data/. Every zone-file hash is the
hash160 of the exact bytes written; the same seed gives byte-identical files. Rows are
written as they are made (a registrar batch at a time), so memory stays flat whatever
the size.

What it imitates: most subdomains sit under a few registrar names (id.blockstack above
all), each with a one-line URI zone file pointing at its Gaia profile and, for some, a
TXT or an A record; registrars publish them in batches whose parent zone file lists the
batch as TXT records. Unlike the real parent zone files, ours leave out each entry's
base64 zone file (`zf0=`): the importer does not read them, and the size of the export
stays that of the files the import does read.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bns_resolver.base58 import b58check_encode  # noqa: E402
from bns_resolver.hashing import dsha256, hash160  # noqa: E402

# Namespaces of the real export (address, buckets, base, coeff, nonalpha, no-vowel, lifetime).
NAMESPACES = [
    ("blockstack", "SP355AMV5R2A5C7VQCF4YPPAS05W93HTB68574W7S", "7;6;5;4;3;2;1;1;1;1;1;1;1;1;1;1", 4, 250, 4, 4, 0),
    ("graphite", "SP3X2W6GTGVVG9RW78F1MT7M9AQFS2HWV2JETXPG2", "6;5;4;3;2;1;0;0;0;0;0;0;0;0;0;0", 4, 250, 4, 4, 52595),
    ("helloworld", "SP3TJ4WRTXW0YFWF1TWKWCG7E6Z6MZDTWAVB6SW5V", "15;14;13;12;11;10;9;8;7;6;5;4;3;2;1;0",
     2, 4, 2, 5, 0),
    ("id", "SP364R1Y0XYC8PYXEK0PE3V752RAJB2GNWF28WP90", "6;5;4;3;2;1;0;0;0;0;0;0;0;0;0;0", 4, 250, 4, 4, 52595),
    ("podcast", "SPHYHD2ZJ11HWRDKVZ160QX7FD7PCVNT2N9CT2H6", "1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1", 40, 250, 1, 1, 0),
]
# Registrar names and their share of the subdomains (the real export: nearly all under id.blockstack).
REGISTRARS = [("id.blockstack", 0.86), ("personal.id", 0.05), ("podcast.id", 0.02), ("app.id", 0.02),
              ("graphite.id", 0.02), ("stacks.id", 0.015), ("helloworld.id", 0.015)]
FROZEN_HEIGHT = 665750
BATCH = 100  # subdomains per registrar zone file (the real ones carry up to ~120 under the 40 KiB limit)
GAIA = "https://gaia.blockstack.org/hub"
FILES = ("chainstate.txt", "name_zonefiles.txt", "subdomains.csv", "subdomain_zonefiles.txt")
_C32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Sizes:
    names: int = 2000
    subdomains: int = 2_200_000
    seed: int = 2021


class DigestWriter:
    """A file written once, front to back, with its SHA-256 kept as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: BinaryIO = path.open("wb", buffering=1 << 20)
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.handle.write(data)

    def close(self) -> None:
        self.handle.close()
        self.path.with_name(self.path.name + ".sha256").write_text(self.sha.hexdigest())


def c32_address(version: int, payload: bytes) -> str:
    """A Stacks address (c32check), so NAMES rows look like the real SP... owners."""
    raw = payload + dsha256(bytes([version]) + payload)[:4]
    number, digits = int.from_bytes(raw, "big"), ""
    while number:
        number, digit = divmod(number, 32)
        digits = _C32[digit] + digits
    leading = len(raw) - len(raw.lstrip(b"\0"))
    return "S" + _C32[version] + "0" * leading + digits


def btc_address(rng: random.Random) -> str:
    return b58check_encode(0, rng.randbytes(20))


def escaped(zonefile: bytes) -> bytes:
    """The export's one-line form of a zone file: newlines written as backslash-n."""
    return zonefile.replace(b"\n", b"\\n")


def pair(zonefile: bytes) -> tuple[str, bytes]:
    """(hash160 hex, the two export lines for this zone file)."""
    digest = hash160(zonefile).hex()
    return digest, digest.encode() + b"\n" + escaped(zonefile) + b"\n"


def profile_zonefile(origin: str, owner: str, rng: random.Random) -> bytes:
    """A zone file like the registrars wrote: one URI record to the Gaia profile, sometimes more."""
    lines = [f"$ORIGIN {origin}", "$TTL 3600", f'_http._tcp\tIN\tURI\t10\t1\t"{GAIA}/{owner}/profile.json"']
    roll = rng.random()
    if roll < 0.06:
        lines.append(f'_text\tIN\tTXT\t"btc={owner}"')
    elif roll < 0.09:
        lines.append(f"@\tIN\tA\t{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
    return ("\n".join(lines) + "\n\n").encode()


def name_zonefile(fqn: str, owner: str, rng: random.Random) -> bytes:
    """An on-chain name's zone file: the profile URI, and for some a pubkey TXT and a web address."""
    lines = [f"$ORIGIN {fqn}", "$TTL 3600", f'_http._tcp\tIN\tURI\t10\t1\t"{GAIA}/{owner}/profile.json"']
    if rng.random() < 0.15:
        lines.insert(2, f'pubkey TXT "pubkey:data:02{rng.randbytes(32).hex()}"')
    if rng.random() < 0.1:
        lines.append(f"@\tIN\tA\t{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
    return ("\n".join(lines) + "\n").encode()


def name_list(count: int, rng: random.Random) -> list[str]:
    """The registrars, then unique random labels spread over the namespaces (mostly .id)."""
    names = [fqn for fqn, _share in REGISTRARS][:count]
    seen = set(names)
    while len(names) < count:
        label = "".join(rng.choice(_LETTERS) for _ in range(rng.randrange(3, 12)))
        namespace = "id" if rng.random() < 0.9 else rng.choice(["podcast", "graphite", "helloworld", "blockstack"])
        fqn = f"{label}.{namespace}"
        if fqn not in seen:
            seen.add(fqn)
            names.append(fqn)
    return sorted(names)


def write_chainstate(out: DigestWriter, names: list[tuple[str, str, str]], rng: random.Random) -> None:
    out.write(b"-----BEGIN NAMESPACES-----\n"
              b"namespace_id,address,buckets,base,coeff,nonalpha_discount,no_vowel_discount,lifetime\n")
    for row in NAMESPACES:
        out.write((",".join(str(v) for v in row) + "\n").encode())
    out.write(b"-----END NAMESPACES-----\n-----BEGIN NAMES-----\nname,address,zonefile_hash\n")
    for fqn, owner, zonefile_hash in names:
        out.write(f"{fqn},{owner},{zonefile_hash}\n".encode())
    out.write(b"-----END NAMES-----\n-----BEGIN STX BALANCES-----\naddress,balance\n")
    for _ in range(20):
        out.write(f"{btc_address(rng)},{rng.randrange(1, 10**9)}\n".encode())
    out.write(b"-----END STX BALANCES-----\n-----BEGIN STX VESTING-----\naddress,value,blocks\n")
    for blocks in range(1, 6):
        out.write(f"{btc_address(rng)},13888888889,{blocks}\n".encode())
    out.write(b"-----END STX VESTING-----\n")


def registrar_shares(total: int) -> Iterator[tuple[str, int]]:
    """How many subdomains each registrar gets (the first takes the rounding)."""
    counts = [(fqn, int(total * share)) for fqn, share in REGISTRARS]
    counts[0] = (counts[0][0], counts[0][1] + total - sum(c for _f, c in counts))
    yield from counts


def write_subdomains(folder: Path, names_out: DigestWriter, total: int, rng: random.Random) -> None:
    """subdomains.csv and subdomain_zonefiles.txt, plus each batch's parent zone file in name_zonefiles.txt."""
    rows = DigestWriter(folder / "subdomains.csv")
    zonefiles = DigestWriter(folder / "subdomain_zonefiles.txt")
    rows.write(b"zonefile_hash,parent_zonefile_hash,fully_qualified_subdomain,owner,block_height,"
               b"parent_zonefile_index,zonefile_offset,resolver\n")
    serial, inventory_index = 0, 40000
    for registrar, count in registrar_shares(total):
        resolver = f"https://registrar.{registrar.split('.')[0]}.org"
        for start in range(0, count, BATCH):
            height = 400000 + (FROZEN_HEIGHT - 400000) * (serial + start) // max(total, 1)
            batch = []
            for offset in range(min(BATCH, count - start)):
                label = "".join(rng.choice(_LETTERS) for _ in range(rng.randrange(4, 10))) + format(serial, "x")
                serial += 1
                owner = btc_address(rng)
                digest, lines = pair(profile_zonefile(f"{label}.{registrar}", owner, rng))
                zonefiles.write(lines)
                batch.append((label, owner, digest, offset))
            parent = [f"$ORIGIN {registrar}", "$TTL 3600",
                      f'_http._tcp\tIN\tURI\t10\t1\t"{GAIA}/{registrar}/profile.json"']
            parent += [f'{label}\tTXT\t"owner={owner}" "seqn=0" "parts=0"' for label, owner, _d, _o in batch]
            parent_hash, parent_lines = pair(("\n".join(parent) + "\n").encode())
            names_out.write(parent_lines)
            inventory_index += 1
            for label, owner, digest, offset in batch:
                rows.write(f"{digest},{parent_hash},{label}.{registrar},{owner},{height},{inventory_index},"
                           f"{offset},{resolver}\n".encode())
    rows.close()
    zonefiles.close()


def generate(folder: Path, sizes: Sizes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(sizes.seed)
    names_out = DigestWriter(folder / "name_zonefiles.txt")
    names = []
    for fqn in name_list(sizes.names, rng):
        owner_hash = rng.randbytes(20)
        digest, lines = pair(name_zonefile(fqn, b58check_encode(0, owner_hash), rng))
        names_out.write(lines)
        names.append((fqn, c32_address(22, owner_hash), digest))
    chainstate = DigestWriter(folder / "chainstate.txt")
    write_chainstate(chainstate, names, rng)
    chainstate.close()
    write_subdomains(folder, names_out, sizes.subdomains, rng)
    names_out.close()


def write_tarball(folder: Path) -> Path:
    """export-data.tar.gz beside the files, members under export-data/ like the published one."""
    archive = folder / "export-data.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        for name in FILES:
            for member in (name, name + ".sha256"):
                tar.add(folder / member, arcname=f"export-data/{member}")
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--names", type=int, default=Sizes.names)
    parser.add_argument("--subdomains", type=int, default=Sizes.subdomains)
    parser.add_argument("--seed", type=int, default=Sizes.seed)
    parser.add_argument("--tar", action="store_true", help="also write export-data.tar.gz")
    args = parser.parse_args(argv)
    if args.names < len(REGISTRARS):
        parser.error(f"--names must be at least {len(REGISTRARS)} (the registrars)")
    started = time.monotonic()
    generate(args.folder, Sizes(args.names, args.subdomains, args.seed))
    if args.tar:
        write_tarball(args.folder)
    print(f"wrote {args.folder}: {args.names} names, {args.subdomains} subdomains "
          f"in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
