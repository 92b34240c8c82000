"""EDNS and header edge cases over real UDP: duplicate or misplaced OPT, other opcodes, overlong names."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import pytest

from tests.support.dns_fixtures import IndexSpec, NameSpec, ServerProcess, bns_only_config, make_index


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("edges") / "data"
    make_index(data_dir, IndexSpec(names=[NameSpec("alice.id", b"$ORIGIN alice.id\n@ A 192.0.2.10\n")]))
    started = ServerProcess(data_dir, config=bns_only_config(["id"])).start()
    yield started
    started.stop()


def _exchange(server: ServerProcess, packet: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(packet, ("127.0.0.1", server.port))
        return sock.recv(65535)


def _with_edns(name: str = "alice.id") -> bytes:
    return dns.message.make_query(name, "A", use_edns=0).to_wire()


def test_two_opt_records_are_a_format_error(server: ServerProcess) -> None:
    """RFC 6891 §6.1.1: a second OPT record makes the query FORMERR, answered without OPT."""
    wire = _with_edns()
    doubled = wire[:10] + struct.pack("!H", 2) + wire[12:] + wire[-11:]
    reply = dns.message.from_wire(_exchange(server, doubled))
    assert reply.rcode() == dns.rcode.FORMERR and reply.edns < 0 and not reply.answer


def test_opt_owned_by_a_non_root_name_is_a_format_error(server: ServerProcess) -> None:
    """An OPT record whose owner is not the root is FORMERR."""
    wire = _with_edns()
    misplaced = wire[:-11] + b"\x01a\x00" + wire[-10:]
    reply = dns.message.from_wire(_exchange(server, misplaced))
    assert reply.rcode() == dns.rcode.FORMERR and not reply.answer


def test_notimp_for_other_opcodes_carries_no_query_flags(server: ServerProcess) -> None:
    """RA, RD, CD and AD are defined only for QUERY: a NOTIMP reply to another opcode has none of them."""
    message = dns.message.make_query("alice.id", "SOA")
    message.set_opcode(15)  # an unassigned opcode, as ISC's genreport sends
    message.flags |= dns.flags.RD | dns.flags.CD | dns.flags.AD
    reply = dns.message.from_wire(_exchange(server, message.to_wire()))
    assert reply.rcode() == dns.rcode.NOTIMP and reply.opcode() == 15
    assert not reply.flags & (dns.flags.RA | dns.flags.RD | dns.flags.CD | dns.flags.AD)
    # and QUERY still echoes RD, with RA set
    normal = dns.query.udp(dns.message.make_query("alice.id", "A"), "127.0.0.1", port=server.port, timeout=3)
    assert normal.flags & dns.flags.RD and normal.flags & dns.flags.RA


@pytest.mark.parametrize("tld", ["id", "com"])
def test_names_over_255_bytes_are_formerr_without_a_traceback(server: ServerProcess, tld: str) -> None:
    """A 269-byte name is FORMERR (header only), and a flood of them leaves no traceback in the log."""
    name = b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x05alice" + bytes([len(tld)]) + tld.encode() + b"\x00"
    packet = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + name + b"\x00\x01\x00\x01"
    for _ in range(20):
        reply = _exchange(server, packet)
        assert reply[:2] == b"\x42\x42" and reply[3] & 0x0F == dns.rcode.FORMERR
    assert "Traceback" not in server.log()
    assert server.query("alice.id", "A").rcode() == dns.rcode.NOERROR


@pytest.mark.parametrize("length", [0x40, 0x42, 0xBF])
def test_labels_over_63_bytes_are_formerr(server: ServerProcess, length: int) -> None:
    """A length byte of 0x40-0xBF (an extended label type, RFC 6891 §5, in no use) read as a long
    label: found by fuzzing, it once raised while the error reply was packed and the client got nothing."""
    name = bytes([length]) + b"b" * length + b"\x05alice\x02id\x00"
    packet = struct.pack("!HHHHHH", 0x4343, 0x0100, 1, 0, 0, 0) + name + b"\x00\x01\x00\x03"  # class CH
    reply = _exchange(server, packet)
    assert reply[:2] == b"\x43\x43" and reply[3] & 0x0F == dns.rcode.FORMERR
    assert "Traceback" not in server.log()
