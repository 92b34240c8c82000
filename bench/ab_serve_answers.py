#!/usr/bin/env python3
"""Byte-for-byte A/B of two trees' `serve` over UDP: every reply must be identical.

    git archive main | tar -x -C /tmp/base
    python bench/ab_serve_answers.py --base /tmp/base --export /path/to/work-dir [--per-case 2000]

Starts `bns-resolver serve` of the other tree (`--base`, a checkout or `git archive`) and of
this one on the same data dir (the synthetic export of `run_dns_bench.py --export`: its
index and compiled store), then sends both the same queries, one at a time with the same ID,
and compares the replies byte for byte. Each query goes three times (new, then with another
ID, then in another letter case), so the store's path, the replay table and a 0x20 variant are
all compared. Cases: URI of existing names, other types of existing names and their `www`,
random names under a registrar of a BNS-only namespace, in `podcast` and under an on-chain
name, EDNS shapes (buffer sizes, DO, RD/CD/AD), and unusual queries the fast path must leave
to the full one (another class, AXFR, the apex, a non-plain label, two questions, a cookie).
Names under the shared `id` namespace that BNS does not hold are not sent: they would be
forwarded to an upstream, which this script does not run.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import datasets  # noqa: E402
import synth_export  # noqa: E402
from run_dns_bench import ICANN_TLDS, NX_NAMESPACE  # noqa: E402
from servers import ensure_free, ours_config, wait_for_answer  # noqa: E402

TYPE_A, TYPE_NS, TYPE_SOA, TYPE_MX, TYPE_TXT, TYPE_AAAA, TYPE_URI = 1, 2, 6, 15, 16, 28, 256
OTHER_TYPES = (TYPE_A, TYPE_NS, TYPE_SOA, TYPE_MX, TYPE_TXT, TYPE_AAAA, TYPE_URI, 255, 65280)
Query = Callable[[int], bytes]  # the query's bytes for an ID


def wire_name(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label for label in name.encode("latin-1").split(b".") if label) + b"\x00"


def query(name: str, qtype: int, *, flags: int = 0x0100, edns: tuple[int, int] | None = None,
          qclass: int = 1, extra: bytes = b"", qdcount: int = 1) -> Query:
    """A query builder; `edns` is (payload, OPT TTL field), `extra` is appended to the OPT rdata."""
    question = wire_name(name) + struct.pack("!HH", qtype, qclass)
    opt = b""
    if edns is not None:
        opt = b"\x00" + struct.pack("!HHIH", 41, edns[0], edns[1], len(extra)) + extra
    body = struct.pack("!HHHH", qdcount, 0, 0, 1 if opt else 0) + question * qdcount + opt
    return lambda qid: struct.pack("!HH", qid, flags) + body


def mixed_case(name: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in name)


def random_label(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randint(6, 12)))


def cases(export_dir: Path, per_case: int, rng: random.Random) -> dict[str, list[tuple[str, Query]]]:
    names = list(_sample_names(export_dir, per_case, rng))
    registrar = datasets.NX_PARENT
    edns_shapes = [(512, 0), (1232, 0), (4096, 0x8000), (65000, 0), (100, 0x8000)]
    flag_shapes = [0x0000, 0x0100, 0x0110, 0x0120, 0x0130]
    return {
        "URI of existing names": [(n, query(f"_http._tcp.{n}", TYPE_URI)) for n in names],
        "other types of existing names, and www": [
            (n, query(rng.choice((n, f"www.{n}")), rng.choice(OTHER_TYPES))) for n in names],
        f"random names under {registrar}": [
            (n, query(f"{random_label(rng)}.{registrar}", rng.choice((TYPE_A, TYPE_URI, TYPE_TXT))))
            for n in range(per_case)],
        f"random names in {NX_NAMESPACE} and under names": [
            (n, query(rng.choice((f"{random_label(rng)}.{NX_NAMESPACE}", f"{random_label(rng)}.{n}")), TYPE_A))
            for n in names],
        "EDNS and flag shapes": [
            (n, query(rng.choice((f"_http._tcp.{n}", f"{random_label(rng)}.{registrar}")), TYPE_URI,
                      flags=rng.choice(flag_shapes), edns=rng.choice(edns_shapes)))
            for n in names],
        "unusual queries (the full path's)": list(_unusual(names[:max(per_case // 10, 10)], rng)),
    }


def _unusual(names: list[str], rng: random.Random) -> Iterator[tuple[str, Query]]:
    cookie = struct.pack("!HH", 10, 8) + bytes(8)
    for n in names:
        yield n, query(n, TYPE_A, qclass=3)  # CHAOS
        yield n, query(n, 252)  # AXFR
        yield n, query(n.rsplit(".", 1)[-1], rng.choice(OTHER_TYPES))  # the namespace apex
        yield n, query(f"a\u00e9b.{n}", TYPE_A)  # a label of non-plain bytes
        yield n, query(n, TYPE_A, qdcount=2)
        yield n, query(n, TYPE_A, edns=(1232, 0), extra=cookie)
        yield n, query(n, TYPE_A, flags=0x2900)  # opcode UPDATE
        yield n, query(n, TYPE_A, edns=(1232, 0x00010000))  # EDNS version 1


def _sample_names(export_dir: Path, count: int, rng: random.Random) -> Iterator[str]:
    """`count` names of the export (on-chain names and subdomains), spread over the whole file."""
    size = synth_export.Sizes().names + synth_export.Sizes().subdomains
    wanted = set(rng.sample(range(size), count))
    shared = tuple(f".{ns}" for ns in datasets.SHARED_NAMESPACES)  # their unknown names go upstream
    yield from (name for i, name in enumerate(datasets.export_names(export_dir))
                if i in wanted and not name.endswith(shared))


def start(tree: Path, data_dir: Path, port: int, config: Path, log: Path, probe: str) -> subprocess.Popen[bytes]:
    ensure_free(port)
    env = dict(os.environ, PYTHONPATH=str(tree))
    argv = [sys.executable, "-m", "bns_resolver.cli", "serve", "--config", str(config), "--data-dir", str(data_dir),
            "--listen", f"127.0.0.1:{port}", "--upstream", "127.0.0.1:9",
            "--web-listen", "127.0.0.1:0"]  # each its own web port: both synthesize the web address
    with log.open("wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wait_for_answer(port, probe, TYPE_URI, started, proc=proc, limit=120.0)
    return proc


def ask(sock: socket.socket, port: int, packet: bytes) -> bytes | None:
    """The reply to packet (a late reply to an earlier query, with another ID, is skipped)."""
    sock.sendto(packet, ("127.0.0.1", port))
    try:
        while True:
            reply = sock.recv(65535)
            if reply[:2] == packet[:2]:
                return reply
    except TimeoutError:
        return None


def compare(ports: dict[str, int], checks: dict[str, list[tuple[str, Query]]], rng: random.Random) -> int:
    socks = {label: socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for label in ports}
    for sock in socks.values():
        sock.settimeout(3.0)
    failures = 0
    for case, queries in checks.items():
        compared = answered = 0
        for _name, build in queries:
            for attempt in range(3):
                packet = build(rng.randrange(65536))
                if attempt == 2:  # the same question in another letter case (0x20)
                    end = packet.index(b"\x00", 12)
                    packet = packet[:12] + mixed_case(packet[12:end].decode("latin-1"), rng).encode("latin-1") \
                        + packet[end:]
                replies = {label: ask(socks[label], ports[label], packet) for label in ports}
                base, ours = replies.values()
                compared += 1
                answered += ours is not None
                if base != ours:
                    failures += 1
                    if failures <= 10:
                        print(f"DIFFERENT ({case}): query {packet!r}\n  base {base!r}\n  this {ours!r}")
        print(f"{case:48s} {compared:7,d} queries compared, {answered:7,d} answered", flush=True)
    return failures


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", type=Path, required=True, help="the other tree (holds bns_resolver/)")
    p.add_argument("--export", type=Path, required=True, metavar="DIR", help="run_dns_bench.py's --export dir")
    p.add_argument("--per-case", type=int, default=2000)
    p.add_argument("--port-base", type=int, default=25600)
    p.add_argument("--out", type=Path, default=Path("/tmp/ab_serve_answers"))
    args = p.parse_args()
    dataset, _how = datasets.export_dataset(args.export, synth_export.Sizes())
    if not datasets.store_is_current(dataset.data_dir):
        raise SystemExit("ab_serve_answers: compile the store first (run_dns_bench.py --export or bns-resolver compile)")
    args.out.mkdir(parents=True, exist_ok=True)
    config = ours_config(args.out / "serve.toml", ICANN_TLDS)
    rng = random.Random(10)
    checks = cases(dataset.export_dir or args.export / "export", args.per_case, rng)
    ports = {"base": args.port_base, "this": args.port_base + 1}
    procs = []
    try:
        for (label, port), tree in zip(ports.items(), (args.base, ROOT), strict=True):
            procs.append(start(tree, dataset.data_dir, port, config, args.out / f"{label}.log", dataset.probe))
        failures = compare(ports, checks, rng)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    print("all replies identical" if failures == 0 else f"{failures} replies differ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
