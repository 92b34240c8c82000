"""The gateway as a real process, queried over real UDP and TCP sockets."""

from __future__ import annotations

import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import pytest

from tests.support.dns_fixtures import ServerProcess, IndexSpec, NameSpec, make_index, require_tool
from tests.support.upstream_stub import StubUpstream

ZONE117X_URI = "https://gaia.blockstack.org/hub/1Nw25PemCRv24UQAcZdaj4uD11nkTCWRTE/profile.json"
BIG_TXT = "".join(f'big IN TXT "{"x" * 200}-{i}"\n' for i in range(12))
ALICE_ZONE = (
    "$ORIGIN alice.id\n$TTL 600\n@ IN A 192.0.2.10\nwww IN CNAME @\nmail\tIN\tA\t192.0.2.25\n"
    "@ MX 10 mail\n_http._tcp URI 10 1 \"https://alice.example/profile.json\"\n" + BIG_TXT
).encode()


@pytest.fixture
def snapshot_server(tmp_path: Path, upstream: StubUpstream) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "data", upstreams=[upstream.address]).start()
    yield server
    server.stop()


@pytest.fixture
def custom_server(tmp_path: Path) -> Iterator[ServerProcess]:
    data_dir = tmp_path / "custom"
    make_index(data_dir, IndexSpec(names=[
        NameSpec("alice.id", ALICE_ZONE),
        NameSpec("liar.id", b"$ORIGIN liar.id\n@ A 192.0.2.66\n", value_hash="ab" * 20),
        NameSpec("missing.id", b"$ORIGIN missing.id\n@ A 192.0.2.1\n", store_zonefile=False),
        NameSpec("garbage.id", b'{"name": "legacy json profile"}'),
        NameSpec("revoked.id", b"$ORIGIN revoked.id\n@ A 192.0.2.2\n", revoked=True),
        NameSpec("expired.id", b"$ORIGIN expired.id\n@ A 192.0.2.3\n", expire_block=600000),
        NameSpec("bare.id"),
    ]))
    config = "[namespaces]\nicann_tlds = { id = false }\n"
    server = ServerProcess(data_dir, config=config).start()
    yield server
    server.stop()


def test_real_uri_record_over_udp(snapshot_server: ServerProcess) -> None:
    """The embedded snapshot's zone117x.id answers its real URI record, authoritatively."""
    reply = snapshot_server.query("_http._tcp.zone117x.id", "URI")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert ZONE117X_URI in reply.answer[0].to_text()


def test_dig_reads_uri_over_udp_and_tcp(snapshot_server: ServerProcess) -> None:
    """dig gets the same URI record over UDP and over TCP."""
    dig = require_tool("dig")
    for transport in ("+notcp", "+tcp"):
        out = subprocess.run([dig, "@127.0.0.1", "-p", str(snapshot_server.port), "_http._tcp.zone117x.id",
                              "URI", "+short", transport], capture_output=True, text=True, timeout=10)
        assert f'10 1 "{ZONE117X_URI}"' in out.stdout, out.stdout + out.stderr


def test_subdomain_from_export_answers(snapshot_server: ServerProcess) -> None:
    """A real subdomain of the export answers from its own zone file."""
    reply = snapshot_server.query("_http._tcp.mymansgotabeefy1.id.blockstack", "URI")
    assert reply.rcode() == dns.rcode.NOERROR
    assert "158hjd59vxSetAiTTjzty4z7oNFVVdY3ca" in reply.answer[0].to_text()


def test_question_case_is_echoed(snapshot_server: ServerProcess) -> None:
    """Mixed-case queries (DNS 0x20) get their exact question back, from the cache too."""
    for name in ("_HTTP._tcp.Zone117X.id", "_http._TCP.zONE117x.ID"):
        reply = snapshot_server.query(name, "URI")
        assert reply.question[0].name.to_text() == name + "."
        assert reply.rcode() == dns.rcode.NOERROR and reply.answer


def test_name_without_type_is_nodata_with_soa(snapshot_server: ServerProcess) -> None:
    """A known name without the asked type: NOERROR, no answer, the namespace SOA."""
    reply = snapshot_server.query("zone117x.id", "MX")
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
    assert reply.authority[0].rdtype == dns.rdatatype.SOA and reply.authority[0].name.to_text() == "id."


def test_forwarded_name_is_answered_by_upstream(snapshot_server: ServerProcess, upstream: StubUpstream) -> None:
    """Names outside BNS namespaces go upstream and come back unchanged."""
    reply = snapshot_server.query("example.com", "A")
    assert reply.rcode() == dns.rcode.NOERROR
    assert "93.184.216.34" in reply.answer[0].to_text()
    assert upstream.count("example.com") == 1


def test_unknown_name_in_shared_namespace_goes_upstream(snapshot_server: ServerProcess) -> None:
    """With an upstream that serves TLD id, an id name BNS does not know is the upstream's."""
    reply = snapshot_server.query("kompas.id", "A")
    assert reply.rcode() == dns.rcode.NOERROR
    assert "203.0.113.7" in reply.answer[0].to_text()


def test_zone_file_records_and_labels(custom_server: ServerProcess) -> None:
    """A, MX and a label's CNAME chased inside the zone come from the verified file."""
    assert "192.0.2.10" in custom_server.query("alice.id", "A").answer[0].to_text()
    www = custom_server.query("www.alice.id", "A")
    assert [r.rdtype for r in www.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    assert "mail.alice.id." in custom_server.query("alice.id", "MX").answer[0].to_text()


def test_unknown_label_and_name_are_nxdomain_with_soa(custom_server: ServerProcess) -> None:
    """In a namespace only BNS has: unknown names and labels get NXDOMAIN, AA and the SOA."""
    for name in ("nobody.id", "nothere.alice.id", "revoked.id", "expired.id"):
        reply = custom_server.query(name, "A")
        assert reply.rcode() == dns.rcode.NXDOMAIN, name
        assert reply.flags & dns.flags.AA
        assert reply.authority and reply.authority[0].rdtype == dns.rdatatype.SOA


def test_registered_name_without_zone_file_is_nodata(custom_server: ServerProcess) -> None:
    """A registration with no value hash: the name exists but has no records (beyond the gateway's A)."""
    reply = custom_server.query("bare.id", "TXT")
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer and reply.authority
    assert custom_server.query("sub.bare.id", "A").rcode() == dns.rcode.NXDOMAIN


@pytest.mark.parametrize("name,code,words", [
    ("liar.id", 24, "hash mismatch"),
    ("missing.id", 22, "not obtained"),
    ("garbage.id", 24, "JSON profile"),
])
def test_unverifiable_zone_file_is_servfail_with_ede(custom_server: ServerProcess, name: str, code: int,
                                                     words: str) -> None:
    """Never answer from a file that does not hash to the chain's value hash; say why (RFC 8914)."""
    reply = custom_server.query(name, "A", use_edns=0)
    assert reply.rcode() == dns.rcode.SERVFAIL
    ede = [o for o in reply.options if o.otype == dns.edns.EDE]
    assert ede and ede[0].code == code and words in (ede[0].text or "")


def test_udp_truncation_and_full_tcp_answer(custom_server: ServerProcess) -> None:
    """A large RRset sets TC over plain UDP, fits with EDNS 4096, and is whole over TCP."""
    small = custom_server.query("big.alice.id", "TXT")
    assert small.flags & dns.flags.TC and not small.answer
    large = custom_server.query("big.alice.id", "TXT", use_edns=0, payload=4096)
    assert not large.flags & dns.flags.TC and len(large.answer[0]) == 12
    over_tcp = custom_server.query("big.alice.id", "TXT", tcp=True)
    assert len(over_tcp.answer[0]) == 12


def test_edns_version_other_than_zero_gets_badvers(custom_server: ServerProcess) -> None:
    """EDNS version 1 is answered with BADVERS (RFC 6891)."""
    reply = custom_server.query("alice.id", "A", use_edns=1)
    assert reply.rcode() == dns.rcode.BADVERS


def test_any_gets_a_minimal_answer(custom_server: ServerProcess) -> None:
    """ANY returns one RRset, not the whole node (RFC 8482)."""
    reply = custom_server.query("alice.id", "ANY")
    assert reply.rcode() == dns.rcode.NOERROR and len(reply.answer) == 1


def test_non_query_opcode_is_notimp(custom_server: ServerProcess) -> None:
    """NOTIFY and other opcodes are not implemented."""
    message = dns.message.make_query("alice.id", "SOA")
    message.set_opcode(dns.opcode.NOTIFY)
    reply = dns.query.udp(message, "127.0.0.1", port=custom_server.port, timeout=3)
    assert reply.rcode() == dns.rcode.NOTIMP


def test_malformed_packets_never_stop_the_server(custom_server: ServerProcess) -> None:
    """Garbage gets FORMERR or silence, and the server keeps answering."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    header_only = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for packet in (b"", b"\x00", b"\xff" * 11, header_only, header_only + b"\x05abc", b"\x12\x34" + b"\xff" * 40):
        sock.sendto(packet, ("127.0.0.1", custom_server.port))
    sock.sendto(header_only + b"\x3fxx", ("127.0.0.1", custom_server.port))
    data, _ = sock.recvfrom(4096)
    assert data[:2] == b"\x12\x34" and data[3] & 0x0F == dns.rcode.FORMERR
    sock.close()
    assert custom_server.alive()
    assert custom_server.query("alice.id", "A").rcode() == dns.rcode.NOERROR


def test_tcp_pipelining(custom_server: ServerProcess) -> None:
    """Several queries written at once on one TCP connection all get their answers."""
    queries = [dns.message.make_query(n, "A") for n in ("alice.id", "mail.alice.id", "nobody.id")]
    with socket.create_connection(("127.0.0.1", custom_server.port), timeout=3) as conn:
        conn.sendall(b"".join(len(w).to_bytes(2, "big") + w for w in (q.to_wire() for q in queries)))
        answers = {}
        for _ in queries:
            size = int.from_bytes(_recv_exact(conn, 2), "big")
            reply = dns.message.from_wire(_recv_exact(conn, size))
            answers[reply.id] = reply
    assert {q.id for q in queries} == set(answers)
    assert answers[queries[2].id].rcode() == dns.rcode.NXDOMAIN


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def test_clients_outside_the_allow_list_are_refused(tmp_path: Path) -> None:
    """Not an open resolver: a client outside the allowed networks gets REFUSED."""
    server = ServerProcess(tmp_path / "data", extra=["--allow", "192.0.2.0/24"]).start()
    try:
        reply = server.query("example.com", "A")
        assert reply.rcode() == dns.rcode.REFUSED and not reply.answer
    finally:
        server.stop()
