"""Namespaces shared with the ICANN root: bns-first, bns-only and icann-first, against a real upstream."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import dns.flags
import dns.rcode

from tests.support.dns_fixtures import ServerProcess
from tests.support.upstream_stub import StubUpstream, UpstreamBehaviour

URI_NAME = "_http._tcp.zone117x.id"


def _serve(tmp_path: Path, upstream: StubUpstream, config: str = "") -> ServerProcess:
    return ServerProcess(tmp_path / "data", upstreams=[upstream.address], config=config).start()


def test_bns_first_answers_bns_names_and_forwards_the_rest(tmp_path: Path, upstream: StubUpstream) -> None:
    """Default policy: a registered name comes from BNS, an unknown one in the same TLD from upstream."""
    server = _serve(tmp_path, upstream)
    try:
        assert server.query(URI_NAME, "URI").flags & dns.flags.AA
        assert upstream.count(URI_NAME) == 0
        assert "203.0.113.7" in server.query("kompas.id", "A").answer[0].to_text()
        assert upstream.count("kompas.id") == 1
    finally:
        server.stop()


def test_bns_only_is_authoritative_for_the_whole_namespace(tmp_path: Path, upstream: StubUpstream) -> None:
    """bns-only: names BNS does not know get NXDOMAIN with SOA and never reach upstream."""
    server = _serve(tmp_path, upstream, '[namespaces]\nmodes = { id = "bns-only" }\n')
    try:
        reply = server.query("kompas.id", "A")
        assert reply.rcode() == dns.rcode.NXDOMAIN and reply.flags & dns.flags.AA and reply.authority
        assert upstream.count("kompas.id") == 0
    finally:
        server.stop()


def test_icann_first_asks_upstream_and_falls_back_to_bns(tmp_path: Path, upstream: StubUpstream) -> None:
    """icann-first: upstream's answer wins; where upstream says NXDOMAIN, BNS answers."""
    server = _serve(tmp_path, upstream, '[namespaces]\ndefault_mode = "icann-first"\n')
    try:
        assert "203.0.113.7" in server.query("kompas.id", "A").answer[0].to_text()
        reply = server.query(URI_NAME, "URI")
        assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
        assert upstream.count(URI_NAME) == 1
    finally:
        server.stop()


def test_namespace_missing_from_the_root_becomes_authoritative(tmp_path: Path, upstream: StubUpstream) -> None:
    """When upstream says TLD `podcast` does not exist, unknown podcast names get our NXDOMAIN."""
    server = _serve(tmp_path, upstream)
    try:
        deadline = time.monotonic() + 5
        reply = server.query("nobody.podcast", "A")
        while not reply.flags & dns.flags.AA and time.monotonic() < deadline:
            reply = server.query(f"nobody{int(time.monotonic() * 1000)}.podcast", "A")
        assert reply.rcode() == dns.rcode.NXDOMAIN and reply.flags & dns.flags.AA
        assert upstream.count("podcast") >= 1  # the probe asked for the TLD's SOA
        status = json.loads(subprocess.run(
            [sys.executable, "-m", "bns_resolver.cli", "status", "--json", "--data-dir", str(tmp_path / "data")],
            capture_output=True, text=True, timeout=60).stdout)
        assert status["namespace_policy"]["podcast"] == {"tld": "not in the ICANN root", "mode": "bns-only"}
        assert status["namespace_policy"]["id"] == {"tld": "exists upstream", "mode": "bns-first"}
    finally:
        server.stop()


def test_apex_of_a_shared_namespace_is_forwarded(tmp_path: Path, upstream: StubUpstream) -> None:
    """`id.` SOA belongs to the ICANN TLD when `id` is shared; BNS does not invent it."""
    server = _serve(tmp_path, upstream)
    try:
        reply = server.query("id", "SOA")
        assert "ns.id." in reply.answer[0].to_text() and upstream.count("id") >= 1
    finally:
        server.stop()


def test_a_refusing_upstream_gives_no_verdict_and_status_says_why(tmp_path: Path, stubs: list[StubUpstream]) -> None:
    """REFUSED to the TLD probe is not "the TLD does not exist": the namespace stays unknown (so
    unknown names are forwarded, never our NXDOMAIN), and `status` names the failure."""
    stubs.append(StubUpstream(UpstreamBehaviour(rcode=dns.rcode.REFUSED)).start())
    server = _serve(tmp_path, stubs[0])
    try:
        deadline = time.monotonic() + 15
        policy: dict[str, dict[str, str]] = {}
        while time.monotonic() < deadline:
            status = json.loads(subprocess.run(
                [sys.executable, "-m", "bns_resolver.cli", "status", "--json", "--data-dir", str(tmp_path / "data")],
                capture_output=True, text=True, timeout=60).stdout)
            policy = status.get("namespace_policy") or {}
            if "probe_error" in policy.get("podcast", {}):
                break
            time.sleep(0.3)
        assert policy["podcast"]["tld"] == "unknown" and policy["podcast"]["mode"] == "bns-first"
        assert "REFUSED" in policy["podcast"]["probe_error"]
        assert "could not ask upstream whether TLD podcast exists (asking again in 60 s)" in server.log()
        assert server.query("nobody.podcast", "A").rcode() == dns.rcode.SERVFAIL  # forwarded, refused: SERVFAIL
    finally:
        server.stop()
