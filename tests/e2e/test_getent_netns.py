"""End to end through glibc: `getent hosts` inside a network namespace asks bns-resolver on port 53.

The namespace gets its own resolv.conf (nameserver 127.0.0.1), nsswitch.conf
(`hosts: files dns`) and hosts file through /etc/netns/<name>/. Inside it run
`bns-resolver serve` on 127.0.0.1:53 over a data dir holding one test name with
a verified zone file, and a stub upstream on 127.0.0.2:53 that knows
`forwarded.example`. Everything runs as real processes; nothing is mocked.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import insert

from bns_resolver.hashing import hash160_hex
from bns_resolver.index import schema
from bns_resolver.index.db import open_index
from bns_resolver.index.state import write_sync_state
from tests.support.netns import NetNs, skip_or_fail, unavailable_reason, wait_until

pytestmark = pytest.mark.e2e

NAMESPACE = "bnse2e"  # a BNS namespace that is not an ICANN TLD
NAME = f"alice.{NAMESPACE}"
APEX_ADDRESS = "10.53.0.1"
WWW_ADDRESS = "10.53.0.2"
FORWARDED_NAME = "forwarded.example"
FORWARDED_ADDRESS = "192.0.2.80"
SERVER = ("127.0.0.1", 53)  # glibc's resolver only talks to port 53
UPSTREAM = ("127.0.0.2", 53)  # all of 127/8 is on lo inside the namespace
ZONEFILE = (
    f"$ORIGIN {NAME}\n$TTL 3600\n"
    f"@ IN A {APEX_ADDRESS}\n"
    f"www IN A {WWW_ADDRESS}\n"
    '_http._tcp IN URI 10 1 "https://alice.example/"\n'
).encode()
LAN_ADDRESS = "198.51.100.2/24"  # so AI_ADDRCONFIG sees IPv4 configured (see NetNs.create)
STUB = Path(__file__).with_name("upstream_stub.py")
READY_TIMEOUT = 20.0
ETC_FILES = {
    "resolv.conf": f"nameserver {SERVER[0]}\noptions timeout:2 attempts:2\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    "hosts": "127.0.0.1 localhost\n::1 localhost\n",
}


@dataclass
class Deployment:
    netns: NetNs
    server_log: Path

    def getent(self, database: str, key: str) -> subprocess.CompletedProcess[str]:
        return self.netns.run(["getent", database, key], timeout=15)

    def log_tail(self) -> str:
        return tail(self.server_log)

    def explain(self, result: subprocess.CompletedProcess[str]) -> str:
        return f"getent failed ({result.returncode}): {result.stderr}\n--- server log ---\n{self.log_tail()}"


def build_data_dir(data_dir: Path) -> None:
    """An index with one ready namespace, one name bound to the test zone file, and that file."""
    data_dir.mkdir(parents=True)
    engine = open_index(f"sqlite:///{data_dir / 'index.sqlite'}")
    with engine.begin() as conn:
        conn.execute(insert(schema.namespaces), [{
            "namespace_id": NAMESPACE, "version": 1, "lifetime": 52595, "coeff": 250, "base": 4,
            "buckets": "6,5,4,3,2,1,0,0,0,0,0,0,0,0,0,0", "nonalpha_discount": 10, "no_vowel_discount": 10,
            "reveal_block": 665000, "ready_block": 665001, "ready": True,
        }])
        conn.execute(insert(schema.names), [{
            "fqn": NAME, "namespace_id": NAMESPACE, "owner_address": "1J3PUxY5uDShUnHRrMyU6yKtoHEUPhKULs",
            "value_hash": hash160_hex(ZONEFILE), "first_registered": 665100, "last_renewed": 665100,
            "expire_block": None, "revoked": False,
        }])
        conn.execute(insert(schema.zonefiles), [{
            "zonefile_hash": hash160_hex(ZONEFILE), "content": ZONEFILE, "source": "e2e",
            "fetched_at": time.time(),
        }])
        write_sync_state(conn, {"source": "snapshot", "height": "665750", "generation": "1"})
    engine.dispose()


def server_command(data_dir: Path) -> list[str]:
    program = shutil.which("bns-resolver")
    base = [program] if program else [sys.executable, "-m", "bns_resolver.cli"]
    return base + [
        "serve", "--data-dir", str(data_dir), "--listen", f"{SERVER[0]}:{SERVER[1]}",
        "--upstream", f"{UPSTREAM[0]}:{UPSTREAM[1]}", "--allow", "127.0.0.0/8", "--log-level", "DEBUG",
    ]


def dig_short(netns: NetNs, server: tuple[str, int], name: str) -> list[str]:
    host, port = server
    command = ["dig", "+short", "+time=1", "+tries=1", f"@{host}", "-p", str(port), name, "A"]
    result = netns.run(command, timeout=5)
    return result.stdout.split() if result.returncode == 0 else []


def exited(process: subprocess.Popen[bytes], what: str) -> str | None:
    code = process.poll()
    return None if code is None else f"{what} exited with status {code}"


def start(netns: NetNs, command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log_file:
        return netns.popen(command, stdout=log_file, stderr=subprocess.STDOUT)


def await_answer(netns: NetNs, process: subprocess.Popen[bytes], server: tuple[str, int], name: str,
                 address: str, what: str, log_path: Path) -> None:
    try:
        wait_until(lambda: address in dig_short(netns, server, name), timeout=READY_TIMEOUT,
                   what=f"{what} to answer {name} on {server[0]}:{server[1]}",
                   alive=lambda: exited(process, what))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- {what} log ---\n{tail(log_path)}") from None


def tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    reason = unavailable_reason(("ip", "getent", "dig"))
    if reason:
        skip_or_fail(reason)
    base = tmp_path_factory.mktemp("netns")
    data_dir = base / "data"
    build_data_dir(data_dir)
    try:
        netns = NetNs().create(ETC_FILES, lan_address=LAN_ADDRESS)
    except (RuntimeError, OSError) as exc:
        skip_or_fail(f"cannot create a network namespace: {exc}")
    try:
        stub_log, server_log = base / "upstream.log", base / "server.log"
        stub = start(netns, [sys.executable, str(STUB), UPSTREAM[0], str(UPSTREAM[1]),
                             f"{FORWARDED_NAME}={FORWARDED_ADDRESS}"], stub_log)
        await_answer(netns, stub, UPSTREAM, FORWARDED_NAME, FORWARDED_ADDRESS, "upstream stub", stub_log)
        server = start(netns, server_command(data_dir), server_log)
        await_answer(netns, server, SERVER, NAME, APEX_ADDRESS, "bns-resolver", server_log)
        deployment = Deployment(netns, server_log)
        yield deployment
    finally:
        netns.delete()


def test_bns_name_resolves_to_zonefile_address(deployment: Deployment) -> None:
    """getent hosts alice.bnse2e returns the A record of the verified zone file bound to the name."""
    result = deployment.getent("hosts", NAME)
    assert result.returncode == 0, deployment.explain(result)
    assert result.stdout.split()[:2] == [APEX_ADDRESS, NAME]


def test_owner_inside_zonefile_resolves(deployment: Deployment) -> None:
    """www.alice.bnse2e, an owner name inside the zone file, resolves through getent ahostsv4."""
    result = deployment.getent("ahostsv4", f"www.{NAME}")
    assert result.returncode == 0, deployment.explain(result)
    addresses = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert addresses == {WWW_ADDRESS}


def test_non_bns_name_is_forwarded_upstream(deployment: Deployment) -> None:
    """forwarded.example is not a BNS name: the answer comes from the upstream stub via forwarding."""
    result = deployment.getent("hosts", FORWARDED_NAME)
    assert result.returncode == 0, deployment.explain(result)
    assert result.stdout.split()[:2] == [FORWARDED_ADDRESS, FORWARDED_NAME]


def test_unknown_bns_name_has_no_address(deployment: Deployment) -> None:
    """A name in the BNS namespace that the index does not hold gets no address (getent exit 2: not found)."""
    result = deployment.getent("hosts", f"nobody.{NAMESPACE}")
    assert result.returncode == 2, f"expected 'not found', got {result.returncode}: {result.stdout!r}"
    assert result.stdout == ""


def test_unknown_owner_under_bns_name_has_no_address(deployment: Deployment) -> None:
    """An owner the zone file does not list (nothing.alice.bnse2e) gets no address."""
    result = deployment.getent("hosts", f"nothing.{NAME}")
    assert result.returncode == 2, f"expected 'not found', got {result.returncode}: {result.stdout!r}"
    assert result.stdout == ""
