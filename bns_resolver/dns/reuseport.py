"""Listen sockets for several DNS processes on one address (SO_REUSEPORT).

With `[dns] workers = N`, `serve` binds N UDP sockets and N listening TCP sockets on each
listen address, all with SO_REUSEPORT, before it drops privileges (port 53 needs them). The
kernel then spreads datagrams and connections over the N sockets by a hash of the client's
address and port, so each process reads its own socket and no process wakes for another's
queries. Every copy is created by the same process (the kernel only groups sockets of one
owner), and the copies for worker processes are handed to them as inherited descriptors.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from twisted.internet.error import CannotListenError

TCP_BACKLOG = 1024  # as dns/server.py's own listeners


@dataclass(frozen=True)
class ListenCopy:
    """One process's share of one listen address: its UDP socket and its listening TCP socket."""

    host: str
    port: int  # the bound port (the kernel's pick when the configured port was 0)
    udp: socket.socket
    tcp: socket.socket

    def fds(self) -> tuple[int, int]:
        return self.udp.fileno(), self.tcp.fileno()

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


def bind_copies(host: str, port: int, copies: int) -> list[ListenCopy]:
    """`copies` UDP+TCP socket pairs on host:port, grouped by SO_REUSEPORT; port 0 picks one free
    port for all of them. CannotListenError (as Twisted's listeners raise) when the address is taken."""
    made: list[ListenCopy] = []
    try:
        for _ in range(copies):
            udp = _bound(host, port, socket.SOCK_DGRAM)
            port = udp.getsockname()[1]
            try:
                tcp = _bound(host, port, socket.SOCK_STREAM)
            except CannotListenError:
                udp.close()
                raise
            tcp.listen(TCP_BACKLOG)
            made.append(ListenCopy(host, port, udp, tcp))
    except CannotListenError:
        for copy in made:
            copy.close()
        raise
    return made


def _bound(host: str, port: int, kind: socket.SocketKind) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if kind == socket.SOCK_STREAM:
            # As Twisted's own TCP ports: a restart binds again while old connections linger.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CannotListenError(host, port, exc) from None
    sock.setblocking(False)
    return sock


def adopt(host: str, port: int, udp_fd: int, tcp_fd: int) -> ListenCopy:
    """A worker's inherited descriptors as sockets again."""
    udp = socket.socket(fileno=udp_fd)
    tcp = socket.socket(fileno=tcp_fd)
    return ListenCopy(host, port, udp, tcp)
