"""TCP clients that do not read, hold many connections, or are outside the allow-list, over real sockets."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from tests.support.dns_fixtures import IndexSpec, NameSpec, ServerProcess, bns_only_config, free_port, make_index

BIG_ZONE = ("$ORIGIN alice.id\n@ A 192.0.2.10\n"
            + "".join(f'big TXT "{"x" * 200}-{i}"\n' for i in range(6))).encode()
TCP_ESTABLISHED = 1
NOFILE = 256  # with this descriptor limit: at most 96 TCP clients in all, 12 per client address


def _start(tmp_path: Path, *, extra: tuple[str, ...] = (), nofile: int | None = None,
           config: str = "") -> ServerProcess:
    data_dir = tmp_path / "data"
    make_index(data_dir, IndexSpec(names=[NameSpec("alice.id", BIG_ZONE)]))
    server = ServerProcess(data_dir, config=bns_only_config(["id"]) + config, extra=extra)
    if nofile is not None:
        server.args = ["prlimit", f"--nofile={nofile}:{nofile}", "--"] + server.args
    return server.start()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    started = _start(tmp_path, nofile=NOFILE)
    yield started
    started.stop()


def _framed(name: str, rdtype: str = "A") -> bytes:
    wire = dns.message.make_query(name, rdtype).to_wire()
    return len(wire).to_bytes(2, "big") + wire


def _ask(conn: socket.socket, name: str = "alice.id") -> dns.message.Message | None:
    """One query on an open connection; None when the server closed it instead of answering."""
    try:
        conn.sendall(_framed(name))
        size = _recv_exact(conn, 2)
        return dns.message.from_wire(_recv_exact(conn, int.from_bytes(size, "big"))) if size else None
    except (ConnectionResetError, BrokenPipeError):
        return None


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    conn.settimeout(5)
    conn.bind((source, 0))
    conn.connect(("127.0.0.1", port))
    return conn


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _server_pid(server: ServerProcess) -> int:
    """The Python process (under prlimit, which execs it, the PID is the same)."""
    assert server.process is not None
    return server.process.pid


def test_client_that_never_reads_is_cut_off_with_bounded_memory(server: ServerProcess) -> None:
    """3 MB of pipelined queries for 1.3 KB answers, never read: the server stops reading and then closes."""
    pid = _server_pid(server)
    before = _rss_kib(pid)
    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.connect(("127.0.0.1", server.port))
    conn.settimeout(2)
    batch = _framed("big.alice.id", "TXT") * 1000
    try:
        for _ in range(100):
            conn.sendall(batch)
    except (TimeoutError, ConnectionResetError, BrokenPipeError):
        pass  # the server stopped reading (or already closed): exactly what should happen
    deadline = time.monotonic() + 25
    state = TCP_ESTABLISHED
    while state == TCP_ESTABLISHED and time.monotonic() < deadline:
        state = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
        time.sleep(0.1)  # polling the kernel's view of the connection; there is no event to await
    grown_mib = (_rss_kib(pid) - before) / 1024
    conn.close()
    assert state != TCP_ESTABLISHED, "the server kept the connection of a client that reads nothing"
    assert grown_mib < 40, f"RSS grew by {grown_mib:.0f} MiB"
    with _connect(server.port) as fresh:
        reply = _ask(fresh)
        assert reply is not None and reply.rcode() == dns.rcode.NOERROR


def test_tcp_connections_are_capped_per_client_and_in_all(server: ServerProcess) -> None:
    """12 connections per client address and 96 in all (a 256-descriptor limit); more are closed at once."""
    held: list[socket.socket] = []
    try:
        for source in range(1, 9):  # 8 client addresses x 12 connections = the total cap
            for _ in range(12):
                conn = _connect(server.port, f"127.0.0.{source}")
                held.append(conn)
                assert _ask(conn) is not None, f"connection {len(held)} was refused"
            with _connect(server.port, f"127.0.0.{source}") as over_client_cap:
                assert _ask(over_client_cap) is None
        with _connect(server.port, "127.0.0.20") as over_total_cap:
            assert _ask(over_total_cap) is None
        held.pop().close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the server learns of the close asynchronously
            with _connect(server.port, "127.0.0.20") as again:
                if _ask(again) is not None:
                    break
        else:
            pytest.fail("a freed connection slot was not reusable")
        assert server.query("alice.id", "A").rcode() == dns.rcode.NOERROR  # UDP is unaffected
        assert "closed a new TCP connection" in server.log()
    finally:
        for conn in held:
            conn.close()


def test_refused_tcp_client_gets_one_answer_and_the_connection_closes(tmp_path: Path) -> None:
    """A client outside the allow-list gets REFUSED once; its other pipelined queries are not read."""
    server = _start(tmp_path, extra=("--allow", "192.0.2.0/24"))
    try:
        with _connect(server.port) as conn:
            conn.sendall(_framed("alice.id") * 50)
            size = _recv_exact(conn, 2)
            reply = dns.message.from_wire(_recv_exact(conn, int.from_bytes(size, "big")))
            assert reply.rcode() == dns.rcode.REFUSED
            try:
                assert conn.recv(65535) == b""
            except ConnectionResetError:
                pass  # unread queries in the server's buffer turn the close into a reset: also closed
    finally:
        server.stop()


def test_listen_backlog_is_large(server: ServerProcess) -> None:
    """The TCP listen backlog is 1,024 (Twisted's default is 50), within the kernel's somaxconn."""
    listing = subprocess.run(["ss", "-ltnH", f"sport = :{server.port}"], capture_output=True, text=True,
                             check=True).stdout.split()
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert int(listing[2]) == min(1024, somaxconn)


def test_connection_caps_are_shared_by_all_listeners(tmp_path: Path) -> None:
    """Descriptors are per process: 12 connections on one listener use up the client's cap on the other too."""
    second_port = free_port()
    server = _start(tmp_path, extra=("--listen", f"127.0.0.1:{second_port}"), nofile=NOFILE)
    held: list[socket.socket] = []
    try:
        for _ in range(12):
            held.append(_connect(server.port))
            assert _ask(held[-1]) is not None
        with _connect(second_port) as other_listener:
            assert _ask(other_listener) is None
    finally:
        for conn in held:
            conn.close()
        server.stop()


def test_connection_caps_come_from_the_config(tmp_path: Path) -> None:
    """`[limits] tcp_connections = 5, tcp_connections_per_client = 3`, whatever the descriptor limit."""
    server = _start(tmp_path, config="[limits]\ntcp_connections = 5\ntcp_connections_per_client = 3\n")
    held: list[socket.socket] = []
    try:
        for _ in range(3):
            held.append(_connect(server.port, "127.0.0.1"))
            assert _ask(held[-1]) is not None
        with _connect(server.port, "127.0.0.1") as over_client_cap:
            assert _ask(over_client_cap) is None
        for _ in range(2):
            held.append(_connect(server.port, "127.0.0.2"))
            assert _ask(held[-1]) is not None
        with _connect(server.port, "127.0.0.3") as over_total_cap:
            assert _ask(over_total_cap) is None
    finally:
        for conn in held:
            conn.close()
        server.stop()
