"""The process's file-descriptor budget, which every limit that spends descriptors shares.

Each TCP client may need an upstream socket besides its own, and the index, zone files, logs
and listening sockets need some too: a limit gets half of what the soft RLIMIT_NOFILE leaves
after a reserve. The TCP connection caps (dns/server.py), the upstream socket cap
(dns/forwarder.py) and the check of a configured `[limits] tcp_connections` read it here.
"""

from __future__ import annotations

import resource

RESERVE = 64  # the index, zone files, logs and listening sockets
UNLIMITED_AS = 65536  # what an unlimited soft limit is counted as


def soft_limit() -> int | None:
    """The soft RLIMIT_NOFILE, or None when it is unlimited."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def share(soft: int | None) -> int:
    """Descriptors one kind of connection may hold: half of what `soft` leaves after the reserve."""
    return ((UNLIMITED_AS if soft is None else soft) - RESERVE) // 2
