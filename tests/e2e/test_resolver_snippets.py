"""The deploy/ snippets for unbound and dnsmasq, used as shipped, in front of bns-resolver.

In a network namespace: the front-end resolver on 127.0.0.1:53 (what glibc asks)
includes deploy/unbound/bns-resolver.conf or deploy/dnsmasq/bns-resolver.conf and
uses a "direct" stub on 127.0.0.3 for everything else; bns-resolver listens on
127.0.0.1:5354 as the snippets expect and forwards to its own stub on 127.0.0.2,
the only one that knows `www.example.id`. So a real .id name resolving proves
the route front end → bns-resolver → upstream, and a BNS name with a private
address proves the rebind exemption (dnsmasq runs with --stop-dns-rebind).
Unbound runs with DNSSEC validation on: BNS answers pass only because of the
snippet's domain-insecure lines.

Root and `ip netns` are required (skip, or fail under CI=true); unbound and
dnsmasq are optional tools, so a missing one is a plain skip.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.gateway_env import (
    REPO_ROOT,
    build_data_dir,
    create_netns,
    require_program,
    start_gateway,
    start_upstream,
    zonefile,
)
from tests.support.netns import NetNs, await_answer, start, tail

pytestmark = pytest.mark.e2e

FRONT = ("127.0.0.1", 53)
GATEWAY = ("127.0.0.1", 5354)  # the address both snippets forward to
DIRECT_UPSTREAM = ("127.0.0.3", 53)
UNBOUND_SNIPPET = REPO_ROOT / "deploy" / "unbound" / "bns-resolver.conf"
DNSMASQ_SNIPPET = REPO_ROOT / "deploy" / "dnsmasq" / "bns-resolver.conf"

HELLO_NAME, HELLO_ADDRESS = "alice.helloworld", "10.53.1.1"  # a namespace that is not an ICANN TLD
ID_NAME, ID_ADDRESS = "bob.id", "10.53.1.2"  # `id`, shared with Indonesia's ccTLD
ICANN_ID_NAME, ICANN_ID_ADDRESS = "www.example.id", "93.184.216.99"  # a real .id name BNS does not hold
REBIND_ID_NAME, REBIND_ID_ADDRESS = "rebind.example.id", "10.9.9.9"  # a real .id name pointing into a LAN
DIRECT_NAME, DIRECT_ADDRESS = "direct.example", "93.184.216.34"  # public: passes rebind checks
# Root KSK-2017 (IANA), so validation is configured without depending on a package's key file.
ROOT_TRUST_ANCHOR = ". DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"


@dataclass
class Stack:
    netns: NetNs
    logs: dict[str, Path]
    front_end: str

    def getent(self, name: str) -> subprocess.CompletedProcess[str]:
        return self.netns.run(["getent", "hosts", name], timeout=15)

    def explain(self, result: subprocess.CompletedProcess[str]) -> str:
        logs = "\n".join(f"--- {what} ---\n{tail(path, 15)}" for what, path in self.logs.items())
        return f"getent exit {result.returncode}: {result.stdout!r} {result.stderr!r}\n{logs}"


def unbound_command(base: Path, snippet: Path = UNBOUND_SNIPPET) -> list[str]:
    config = base / "unbound.conf"
    config.write_text(f"""server:
    interface: {FRONT[0]}
    port: {FRONT[1]}
    do-daemonize: no
    use-syslog: no
    logfile: ""
    username: ""
    chroot: ""
    directory: "{base}"
    pidfile: ""
    module-config: "validator iterator"
    trust-anchor: "{ROOT_TRUST_ANCHOR}"
    # This namespace has no route to the real root: the "direct" names cannot validate.
    domain-insecure: "example"
forward-zone:
    name: "."
    forward-addr: {DIRECT_UPSTREAM[0]}@{DIRECT_UPSTREAM[1]}
include: "{snippet}"
""")
    check = subprocess.run(["unbound-checkconf", str(config)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, f"unbound-checkconf rejects the snippet: {check.stdout}{check.stderr}"
    return [require_program("unbound"), "-d", "-c", str(config)]


def dnsmasq_command(base: Path, snippet: Path = DNSMASQ_SNIPPET) -> list[str]:
    return [
        require_program("dnsmasq"), "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces",
        f"--listen-address={FRONT[0]}", f"--port={FRONT[1]}", f"--server={DIRECT_UPSTREAM[0]}",
        "--stop-dns-rebind", "--user=root", "--pid-file", "--log-queries", "--log-facility=-",
        f"--conf-file={snippet}",
    ]


def integrate_snippet(tool: str, base: Path) -> Path:
    """`bns-resolver integrate TOOL` for the test's data dir (no upstream: TLD status unknown)."""
    result = subprocess.run([sys.executable, "-m", "bns_resolver.cli", "integrate", tool, "--data-dir",
                             str(base / "data"), "--upstream", "127.0.0.1:9"],
                            capture_output=True, text=True, check=True, timeout=60)
    path = base / f"integrate-{tool}.conf"
    path.write_text(result.stdout)
    return path


FRONT_ENDS = {
    "unbound": lambda base: unbound_command(base),
    "dnsmasq": lambda base: dnsmasq_command(base),
    "unbound-integrate": lambda base: unbound_command(base, integrate_snippet("unbound", base)),
    "dnsmasq-integrate": lambda base: dnsmasq_command(base, integrate_snippet("dnsmasq", base)),
}


@pytest.fixture(scope="module", params=sorted(FRONT_ENDS))
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    front_end = request.param
    base = tmp_path_factory.mktemp(front_end)
    build_data_dir(base / "data", {
        HELLO_NAME: zonefile(HELLO_NAME, f"@ IN A {HELLO_ADDRESS}"),
        ID_NAME: zonefile(ID_NAME, f"@ IN A {ID_ADDRESS}"),
    })
    front_command = FRONT_ENDS[front_end](base)
    logs = {"bns-resolver": base / "server.log", front_end: base / "front.log"}
    netns = create_netns(FRONT[0])
    try:
        direct = start_upstream(netns, {DIRECT_NAME: DIRECT_ADDRESS}, base / "direct.log",
                                address=DIRECT_UPSTREAM)
        assert direct.poll() is None
        start_upstream(netns, {ICANN_ID_NAME: ICANN_ID_ADDRESS, REBIND_ID_NAME: REBIND_ID_ADDRESS},
                       base / "upstream.log")
        start_gateway(netns, base / "data", GATEWAY, logs["bns-resolver"], ready=(HELLO_NAME, HELLO_ADDRESS))
        front = start(netns, front_command, logs[front_end])
        await_answer(netns, front, FRONT, DIRECT_NAME, DIRECT_ADDRESS, what=front_end, log_path=logs[front_end])
        yield Stack(netns, logs, front_end)
    finally:
        netns.delete()


def test_bns_namespace_is_routed_to_the_gateway(stack: Stack) -> None:
    """alice.helloworld resolves through the front end to its zone file's (private) address."""
    result = stack.getent(HELLO_NAME)
    assert result.returncode == 0, stack.explain(result)
    assert result.stdout.split()[:2] == [HELLO_ADDRESS, HELLO_NAME]


def test_bns_name_under_id_resolves(stack: Stack) -> None:
    """bob.id, a BNS name in the namespace shared with Indonesia's ccTLD, gets BNS's address."""
    result = stack.getent(ID_NAME)
    if stack.front_end == "dnsmasq":
        # The shipped snippet keeps rebind protection on for all of .id (exempting `id` would expose
        # every Indonesian domain): a BNS .id name with a private address needs its own exemption.
        assert result.returncode == 2 and result.stdout == "", stack.explain(result)
        return
    assert result.returncode == 0, stack.explain(result)
    assert result.stdout.split()[:2] == [ID_ADDRESS, ID_NAME]


def test_icann_id_name_goes_through_the_gateway_upstream(stack: Stack) -> None:
    """www.example.id, unknown to BNS, is forwarded by bns-resolver (bns-first) to the only upstream knowing it."""
    result = stack.getent(ICANN_ID_NAME)
    assert result.returncode == 0, stack.explain(result)
    assert result.stdout.split()[:2] == [ICANN_ID_ADDRESS, ICANN_ID_NAME]


def test_other_names_bypass_the_gateway(stack: Stack) -> None:
    """direct.example still resolves through the front end's own upstream."""
    result = stack.getent(DIRECT_NAME)
    assert result.returncode == 0, stack.explain(result)
    assert result.stdout.split()[:2] == [DIRECT_ADDRESS, DIRECT_NAME]


def test_unknown_name_in_bns_only_namespace_has_no_address(stack: Stack) -> None:
    """nobody.helloworld: not in BNS and helloworld is no ICANN TLD, so no address at all."""
    result = stack.getent(f"nobody.{HELLO_NAME.split('.')[1]}")
    assert result.returncode == 2, stack.explain(result)
    assert result.stdout == ""


def test_shipped_dnsmasq_snippet_keeps_rebind_protection_for_real_id_domains(stack: Stack) -> None:
    """deploy/dnsmasq exempts only the BNS-only namespaces: a private answer for a real .id domain is dropped."""
    if stack.front_end != "dnsmasq":
        pytest.skip("the shipped dnsmasq snippet")
    result = stack.getent(REBIND_ID_NAME)
    assert result.returncode == 2 and result.stdout == "", stack.explain(result)


def test_integrate_keeps_rebind_protection_for_real_id_domains(stack: Stack) -> None:
    """The generated dnsmasq snippet exempts BNS names one by one, never all of .id."""
    if stack.front_end != "dnsmasq-integrate":
        pytest.skip("only the generated dnsmasq snippet narrows the rebind exemption to BNS names")
    assert stack.getent(REBIND_ID_NAME).returncode == 2  # a private answer for a real .id domain is dropped
    result = stack.getent(ID_NAME)  # while the BNS name's private address passes
    assert result.returncode == 0 and result.stdout.split()[0] == ID_ADDRESS, stack.explain(result)
