"""While the index is not ready, names under BNS namespaces are SERVFAIL, never an upstream's NXDOMAIN."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.rcode
import pytest

from tests.support.dns_fixtures import ServerProcess, free_port
from tests.support.upstream_stub import StubUpstream, UpstreamBehaviour


@pytest.fixture
def upstream() -> Iterator[StubUpstream]:
    # The upstream knows `newns` as a TLD: NXDOMAIN for every name under it.
    stub = StubUpstream(UpstreamBehaviour(
        records={("example.com", "A"): ["example.com. 300 IN A 93.184.216.34"]}, tlds={"com", "newns"})).start()
    yield stub
    stub.stop()


@pytest.fixture
def syncing_server(tmp_path: Path, upstream: StubUpstream) -> Iterator[ServerProcess]:
    """A fresh data dir whose bitcoind never answers: the index stays "not caught up"."""
    config = (f'[namespaces]\nicann_tlds = {{ newns = true }}\n'
              f'[chain]\nbitcoind = "http://u:p@127.0.0.1:{free_port()}"\nnetwork = "regtest"\npoll_interval = 0.5\n')
    server = ServerProcess(tmp_path / "data", upstreams=[upstream.address], config=config).start()
    yield server
    server.stop()


def test_name_in_a_namespace_the_sync_has_not_reached_is_servfail(syncing_server: ServerProcess,
                                                                   upstream: StubUpstream) -> None:
    """`alice.newns` while syncing: SERVFAIL + EDE 14 (Not Ready), and the upstream is not asked."""
    for tcp in (False, True):
        reply = syncing_server.query("alice.newns", "A", use_edns=0, tcp=tcp)
        assert reply.rcode() == dns.rcode.SERVFAIL
        assert [o.code for o in reply.options if o.otype == dns.edns.EDE] == [14]
    assert upstream.count("alice.newns") == 0


def test_names_outside_bns_are_still_forwarded_while_syncing(syncing_server: ServerProcess,
                                                             upstream: StubUpstream) -> None:
    """The readiness gate covers BNS namespaces only; a shared namespace's apex stays ICANN's."""
    assert "93.184.216.34" in syncing_server.query("example.com", "A").answer[0].to_text()
    apex = syncing_server.query("newns", "SOA")
    assert apex.rcode() == dns.rcode.NOERROR and apex.answer
    assert upstream.count("newns") >= 1
