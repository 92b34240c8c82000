"""End to end through glibc: `getent hosts` inside a network namespace asks bns-resolver on port 53.

The namespace gets its own resolv.conf (nameserver 127.0.0.1), nsswitch.conf
(`hosts: files dns`) and hosts file through /etc/netns/<name>/. Inside it run
`bns-resolver serve` on 127.0.0.1:53 (glibc's resolver only speaks to port 53)
over a data dir holding one test name with a verified zone file, and a stub
upstream on 127.0.0.2:53 that knows `forwarded.example`. Everything runs as real
processes; nothing is mocked. Without root or `ip netns` the module skips, but
fails under CI=true.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.gateway_env import build_data_dir, create_netns, start_gateway, start_upstream, zonefile
from tests.support.netns import NetNs, tail

pytestmark = pytest.mark.e2e

NAMESPACE = "bnse2e"  # a BNS namespace that is not an ICANN TLD
NAME = f"alice.{NAMESPACE}"
APEX_ADDRESS = "10.53.0.1"
WWW_ADDRESS = "10.53.0.2"
FORWARDED_NAME = "forwarded.example"
FORWARDED_ADDRESS = "192.0.2.80"
SERVER = ("127.0.0.1", 53)
ZONEFILE = zonefile(NAME, f"@ IN A {APEX_ADDRESS}", f"www IN A {WWW_ADDRESS}",
                    '_http._tcp IN URI 10 1 "https://alice.example/"')


@dataclass
class Deployment:
    netns: NetNs
    server_log: Path

    def getent(self, database: str, key: str) -> subprocess.CompletedProcess[str]:
        return self.netns.run(["getent", database, key], timeout=15)

    def explain(self, result: subprocess.CompletedProcess[str]) -> str:
        return f"getent failed ({result.returncode}): {result.stderr}\n--- server log ---\n{tail(self.server_log)}"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("getent")
    build_data_dir(base / "data", {NAME: ZONEFILE})
    netns = create_netns(SERVER[0])
    try:
        start_upstream(netns, {FORWARDED_NAME: FORWARDED_ADDRESS}, base / "upstream.log")
        start_gateway(netns, base / "data", SERVER, base / "server.log", ready=(NAME, APEX_ADDRESS))
        yield Deployment(netns, base / "server.log")
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
