"""SO_REUSEPORT socket copies (dns/reuseport.py), on real loopback sockets."""

from __future__ import annotations

import select
import socket

import pytest
from twisted.internet.error import CannotListenError

from bns_resolver.dns.reuseport import adopt, bind_copies


def test_copies_share_one_port_and_the_kernel_spreads_clients_over_them() -> None:
    copies = bind_copies("127.0.0.1", 0, 3)
    try:
        port = copies[0].port
        assert port != 0 and all(copy.port == port for copy in copies)
        assert {copy.udp.getsockname()[1] for copy in copies} == {copy.tcp.getsockname()[1] for copy in copies} == {port}
        received = [0, 0, 0]
        for _ in range(64):  # a new source port each time: the kernel hashes on it
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.sendto(b"hello", ("127.0.0.1", port))
                ready, _, _ = select.select([copy.udp for copy in copies], [], [], 2.0)
                assert len(ready) == 1
                received[[copy.udp for copy in copies].index(ready[0])] += 1
                ready[0].recvfrom(512)
        assert sum(received) == 64
        assert sum(1 for count in received if count) >= 2, received  # 64 draws all landing on one copy: ~1e-11
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # one of the listening copies accepts it
    finally:
        for copy in copies:
            copy.close()


def test_a_taken_address_is_cannot_listen_and_leaves_nothing_bound() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:  # no SO_REUSEPORT: nobody may join it
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(CannotListenError):
            bind_copies("127.0.0.1", port, 2)


def test_adopted_descriptors_are_the_same_sockets() -> None:
    copies = bind_copies("127.0.0.1", 0, 1)
    copy = copies[0]
    again = adopt(copy.host, copy.port, copy.udp.detach(), copy.tcp.detach())
    try:
        assert again.udp.type == socket.SOCK_DGRAM and again.tcp.type == socket.SOCK_STREAM
        assert again.udp.getsockname() == ("127.0.0.1", copy.port)
    finally:
        again.close()
