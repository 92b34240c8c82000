"""`[limits] responses_per_second` and `slip` on a real server, asked from a LAN address.

Loopback clients are never rate-limited, so the client here is a LAN-looking address in a
network namespace (198.51.100.2 on a veth inside it), where `bns-resolver serve` listens with
the limits set in its configuration file. Without root or `ip netns` the module skips, but
fails under CI=true.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.gateway_env import LAN_ADDRESS, build_data_dir, create_netns, start_gateway, zonefile
from tests.support.netns import NetNs

pytestmark = pytest.mark.e2e

NAME = "alice.bnse2e"
ADDRESS = "10.53.0.1"
LAN_IP = LAN_ADDRESS.split("/")[0]
SERVER = (LAN_IP, 5353)
RATE, SLIP, QUERIES = 5, 2, 120

# Sends QUERIES queries at once from the LAN address, then counts what came back.
FLOOD = """
import json, socket, sys
import dns.flags, dns.message
server, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((server, 0))
for _ in range(count):
    sock.sendto(dns.message.make_query(%r, "A").to_wire(), (server, port))
sock.settimeout(1.0)
answers = truncated = 0
try:
    while True:
        reply = dns.message.from_wire(sock.recv(65535))
        answers += bool(reply.answer)
        truncated += bool(reply.flags & dns.flags.TC)
except TimeoutError:
    pass
print(json.dumps({"answers": answers, "truncated": truncated}))
""" % NAME


@pytest.fixture
def netns(tmp_path: Path) -> Iterator[NetNs]:
    build_data_dir(tmp_path / "data", {NAME: zonefile(NAME, f"@ IN A {ADDRESS}")})
    namespace = create_netns(SERVER[0])
    try:
        config = tmp_path / "limits.toml"
        config.write_text(f"[limits]\nresponses_per_second = {RATE}\nslip = {SLIP}\n")
        start_gateway(namespace, tmp_path / "data", SERVER, tmp_path / "server.log", ready=(NAME, ADDRESS),
                      extra=["--allow", "198.51.100.0/24", "--config", str(config)])
        yield namespace
    finally:
        namespace.delete()


def test_configured_rate_limit_holds_back_a_lan_flood_with_tc_slips(netns: NetNs) -> None:
    """At 5 responses/s (bursts of 10), 120 queries at once get about 10 answers; every 2nd held back is TC=1."""
    result = netns.run([sys.executable, "-c", FLOOD, SERVER[0], str(SERVER[1]), str(QUERIES)], timeout=30)
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    # The start-up probe spent a token or two; the flood takes well under a second.
    assert 5 <= counts["answers"] <= 2 * RATE + RATE, counts
    held_back = QUERIES - counts["answers"]
    assert abs(counts["truncated"] - held_back / SLIP) <= 2, counts
