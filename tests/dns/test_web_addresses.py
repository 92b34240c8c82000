"""A/AAAA for address-less BNS names point at the web gateway, only where it really listens."""

from collections.abc import Iterator
from pathlib import Path

import dns.rcode
import dns.rdatatype
import pytest

from tests.support.dns_fixtures import ServerProcess
from tests.support.snapshot_builder import import_export, write_export
from tests.support.upstream_stub import StubUpstream


@pytest.fixture
def server(tmp_path: Path, upstream: StubUpstream) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "data", upstreams=[upstream.address]).start()
    yield server
    server.stop()


def _addresses(reply: dns.message.Message, rdtype: int) -> list[str]:
    return [r.to_text() for rrset in reply.answer if rrset.rdtype == rdtype for r in rrset]


@pytest.mark.parametrize("name", ["zone117x.id", "www.zone117x.id", "WWW.Zone117x.ID",
                                  "mymansgotabeefy1.id.blockstack"])
def test_address_less_names_answer_with_the_gateway_address(server: ServerProcess, name: str) -> None:
    reply = server.query(name, "A")
    assert reply.rcode() == dns.rcode.NOERROR
    assert _addresses(reply, dns.rdatatype.A) == ["127.0.0.1"]
    assert reply.flags & dns.flags.AA


def test_the_other_family_is_nodata_not_nxdomain(server: ServerProcess) -> None:
    for name in ("zone117x.id", "www.zone117x.id"):
        reply = server.query(name, "AAAA")
        assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
        assert reply.authority[0].rdtype == dns.rdatatype.SOA


def test_other_labels_and_unknown_names_keep_their_answers(server: ServerProcess) -> None:
    assert server.query("ftp.zone117x.id", "A").rcode() == dns.rcode.NXDOMAIN
    assert server.query("nosuchname-bns-test.blockstack", "A").rcode() == dns.rcode.NXDOMAIN
    uri = server.query("_http._tcp.zone117x.id", "URI")
    assert uri.answer and uri.answer[0].rdtype == dns.rdatatype.URI


def test_names_with_their_own_address_keep_it(tmp_path: Path, upstream: StubUpstream) -> None:
    export = write_export(tmp_path / "export", {"hasaddr.id": "$ORIGIN hasaddr.id\n$TTL 3600\n@ IN A 192.0.2.7\n",
                                                "nozonefile.id": None})
    import_export(tmp_path / "data", export)
    server = ServerProcess(tmp_path / "data", upstreams=[upstream.address]).start()
    try:
        assert _addresses(server.query("hasaddr.id", "A"), dns.rdatatype.A) == ["192.0.2.7"]
        assert _addresses(server.query("www.hasaddr.id", "A"), dns.rdatatype.A) == ["127.0.0.1"]
        # Registered without a zone file: still a verified name with an owner, so it gets the page.
        assert _addresses(server.query("nozonefile.id", "A"), dns.rdatatype.A) == ["127.0.0.1"]
    finally:
        server.stop()


def test_without_a_web_listener_no_address_is_synthesized(tmp_path: Path, upstream: StubUpstream) -> None:
    server = ServerProcess(tmp_path / "data", upstreams=[upstream.address], config="[web]\nenabled = false\n")
    server.start()
    try:
        reply = server.query("zone117x.id", "A")
        assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
    finally:
        server.stop()


def test_doh_canary_is_nxdomain_and_can_be_turned_off(tmp_path: Path, server: ServerProcess,
                                                       upstream: StubUpstream) -> None:
    assert server.query("use-application-dns.net", "A").rcode() == dns.rcode.NXDOMAIN
    assert upstream.count("use-application-dns.net") == 0
    relaxed = ServerProcess(tmp_path / "relaxed", upstreams=[upstream.address],
                            config="[dns]\ndoh_canary = false\n").start()
    try:
        relaxed.query("use-application-dns.net", "A")
        assert upstream.count("use-application-dns.net") == 1
    finally:
        relaxed.stop()


def test_without_privilege_for_port_80_it_says_so_and_hands_out_no_address(tmp_path: Path,
                                                                           upstream: StubUpstream) -> None:
    import os
    import shutil

    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to start the server without CAP_NET_BIND_SERVICE")
    server = ServerProcess(tmp_path / "data", upstreams=[upstream.address], extra=["--web-listen", "127.0.0.1:80"])
    # Root without the one capability port 80 needs: what an unprivileged user has.
    server.args = ["setpriv", "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service", *server.args]
    server.start()
    try:
        reply = server.query("zone117x.id", "A")
        assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
        assert server.log().count("no privilege to listen on 127.0.0.1:80") == 1
        assert "net_bind_service" in server.log()
    finally:
        server.stop()
