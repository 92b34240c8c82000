#!/usr/bin/env python3
"""Structured random queries through the C answerer built with AddressSanitizer and UBSan.

atheris cannot see inside the extension (gcc has no libFuzzer instrumentation, and a preloaded
ASan runtime breaks atheris' own coverage), so this drives `native_answer` of
tests/fuzz/targets.py with queries built to reach every branch of `_native.c`: real and random
names under the embedded snapshot's namespaces, every label length up to 63, names up to and
past 255 bytes, upper case, EDNS with odd payloads and versions, flags, trailing bytes, and
random byte flips, cuts and appends. Any difference from the Python store path, or any
sanitizer report, stops it.

    CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1" \\
        LDFLAGS="-fsanitize=address,undefined" python3 setup.py build_ext --inplace --force
    LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \\
        ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \\
        python3 bench/fuzz/native_sanitized.py --seconds 300
    python3 setup.py build_ext --inplace --force     # the normal build again
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bns_resolver.answers import native  # noqa: E402
from tests.fuzz.targets import _embedded_gateway, _native_answerer, native_answer  # noqa: E402
from tests.support.mangle import mangle  # noqa: E402

QTYPES = (1, 2, 5, 6, 15, 16, 28, 33, 255, 256, 0, 41, 251, 252, 65535)


def _label(rng: random.Random) -> bytes:
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*" if rng.random() < 0.9 \
        else bytes(range(256))
    return bytes(rng.choice(alphabet) for _ in range(rng.choice((1, 2, 3, 8, 20, 62, 63, rng.randint(1, 63)))))


def _name(rng: random.Random, known: list[list[bytes]]) -> bytes:
    labels = list(rng.choice(known)) if rng.random() < 0.8 else []
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3, rng.randint(0, 130)))):
        labels.insert(0, _label(rng))
    if rng.random() < 0.2:
        labels = [label.upper() for label in labels]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def _query(rng: random.Random, known: list[list[bytes]]) -> bytes:
    flags = rng.choice((0x0100, 0x0000, 0x0010, 0x0110, 0x0120, rng.getrandbits(16)))
    edns = rng.random() < 0.5
    packet = struct.pack("!HHHHHH", rng.getrandbits(16), flags, 1, 0, 0, 1 if edns else 0)
    packet += _name(rng, known) + struct.pack("!HH", rng.choice(QTYPES), rng.choice((1, 1, 1, 3, 255)))
    if edns:
        payload = rng.choice((0, 511, 512, 1232, 4096, 65535, rng.getrandbits(16)))
        version = 0 if rng.random() < 0.9 else rng.getrandbits(8)
        ttl = (version << 16) | rng.choice((0, 0x8000, rng.getrandbits(16)))
        packet += b"\x00" + struct.pack("!HHIH", 41, payload, ttl, 0)
    return mangle(packet, rng, rng.randint(1, 3)) if rng.random() < 0.3 else packet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not native.available():
        sys.exit("the C extension is not built here")
    gateway = _embedded_gateway()
    suffixes = [ns.encode() for ns in sorted(gateway.authority.namespaces)]
    known = [[b"zone117x", b"id"], [b"_http", b"_tcp", b"zone117x", b"id"], [b"www", b"zone117x", b"id"],
             [b"mymansgotabeefy1", b"id", b"blockstack"], [b"use-application-dns", b"net"], [b"example", b"com"]]
    known += [[suffix] for suffix in suffixes]
    rng = random.Random(args.seed)
    deadline, count = time.monotonic() + args.seconds, 0
    while time.monotonic() < deadline:
        for _ in range(1000):
            native_answer(_query(rng, known))
        count += 1000
    udp = _native_answerer(gateway)
    answered = udp.answered if udp is not None else 0
    sanitized = "libasan" in Path("/proc/self/maps").read_text()
    print(f"{count:,} queries ({answered:,} answered in C), no difference from the Python store path"
          + (", no sanitizer report" if sanitized else "; not under ASan: see this script's docstring"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
