"""Shared set-up for the network-namespace tests: a BNS data dir, the upstream stub, the gateway.

Inside each namespace: `lo` (all of 127/8) plus a LAN-looking veth address, its
own resolv.conf / nsswitch.conf / hosts, a stub upstream on 127.0.0.2:53 and
`bns-resolver serve` as a real process.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import insert

from bns_resolver.hashing import hash160_hex
from bns_resolver.index import schema
from bns_resolver.index.db import open_index
from bns_resolver.index.sync_state import write_sync_state
from tests.support.netns import NetNs, await_answer, skip_or_fail, start, unavailable_reason

REPO_ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ("127.0.0.2", 53)  # all of 127/8 is on lo inside the namespace
LAN_ADDRESS = "198.51.100.2/24"  # so AI_ADDRCONFIG sees IPv4 configured (see NetNs.create)
STUB = Path(__file__).with_name("upstream_stub.py")
INDEXED_HEIGHT = "665750"


def etc_files(nameserver: str) -> dict[str, str]:
    """/etc overrides: glibc asks `nameserver` on port 53; only files and DNS in nsswitch."""
    return {
        "resolv.conf": f"nameserver {nameserver}\noptions timeout:2 attempts:2\n",
        "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
        "hosts": "127.0.0.1 localhost\n::1 localhost\n",
    }


def zonefile(name: str, *records: str) -> bytes:
    return (f"$ORIGIN {name}\n$TTL 3600\n" + "".join(f"{r}\n" for r in records)).encode()


def build_data_dir(data_dir: Path, zonefiles: dict[str, bytes]) -> None:
    """An index whose names (fqn → zone file) are bound by value hash to the exact bytes given."""
    data_dir.mkdir(parents=True)
    engine = open_index(f"sqlite:///{data_dir / 'index.sqlite'}")
    namespaces = sorted({fqn.rsplit(".", 1)[1] for fqn in zonefiles})
    with engine.begin() as conn:
        conn.execute(insert(schema.namespaces), [{
            "namespace_id": ns, "version": 1, "lifetime": 52595, "coeff": 250, "base": 4,
            "buckets": "6,5,4,3,2,1,0,0,0,0,0,0,0,0,0,0", "nonalpha_discount": 10, "no_vowel_discount": 10,
            "reveal_block": 665000, "ready_block": 665001, "ready": True,
        } for ns in namespaces])
        conn.execute(insert(schema.names), [{
            "fqn": fqn, "namespace_id": fqn.rsplit(".", 1)[1], "owner_address": "1J3PUxY5uDShUnHRrMyU6yKtoHEUPhKULs",
            "value_hash": hash160_hex(content), "first_registered": 665100, "last_renewed": 665100,
            "expire_block": None, "revoked": False,
        } for fqn, content in zonefiles.items()])
        conn.execute(insert(schema.zonefiles), [{
            "zonefile_hash": hash160_hex(content), "content": content, "source": "e2e", "fetched_at": time.time(),
        } for content in zonefiles.values()])
        write_sync_state(conn, {"source": "snapshot", "height": INDEXED_HEIGHT, "generation": "1"})
    engine.dispose()


def create_netns(nameserver: str) -> NetNs:
    """A fresh namespace, or skip (fail under CI=true) when this machine cannot make one."""
    reason = unavailable_reason(("ip", "getent", "dig"))
    if reason:
        skip_or_fail(reason)
    try:
        return NetNs().create(etc_files(nameserver), lan_address=LAN_ADDRESS)
    except (RuntimeError, OSError) as exc:
        skip_or_fail(f"cannot create a network namespace: {exc}")


def start_upstream(netns: NetNs, records: dict[str, str], log_path: Path, *,
                   address: tuple[str, int] = UPSTREAM) -> subprocess.Popen[bytes]:
    """A stub upstream (default 127.0.0.2:53) answering `records` (name → IPv4); waits until it answers."""
    pairs = [f"{name}={ip}" for name, ip in records.items()]
    stub = start(netns, [sys.executable, str(STUB), address[0], str(address[1]), *pairs], log_path)
    name, ip = next(iter(records.items()))
    await_answer(netns, stub, address, name, ip, what=f"upstream stub on {address[0]}", log_path=log_path)
    return stub


def server_command(data_dir: Path, listen: tuple[str, int], extra: Sequence[str] = ()) -> list[str]:
    """`bns-resolver serve` (the installed console script, else the module) forwarding to the stub."""
    program = shutil.which("bns-resolver")
    base = [program] if program else [sys.executable, "-m", "bns_resolver.cli"]
    return base + [
        "serve", "--data-dir", str(data_dir), "--listen", f"{listen[0]}:{listen[1]}",
        "--upstream", f"{UPSTREAM[0]}:{UPSTREAM[1]}", "--allow", "127.0.0.0/8", "--log-level", "DEBUG", *extra,
    ]


def start_gateway(netns: NetNs, data_dir: Path, listen: tuple[str, int], log_path: Path,
                  ready: tuple[str, str], extra: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """bns-resolver inside `netns`; returns once it answers ready=(name, address)."""
    server = start(netns, server_command(data_dir, listen, extra), log_path)
    await_answer(netns, server, listen, ready[0], ready[1], what="bns-resolver", log_path=log_path)
    return server


def require_program(program: str) -> str:
    """Path of an optional front-end resolver; a plain skip if absent (see the module docstrings)."""
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program!r} is not installed")
    return path
