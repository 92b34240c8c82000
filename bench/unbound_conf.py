"""Unbound configurations: the comparison server and the tiny upstream authoritative stub.

Both are self-contained files (no include of /etc/unbound), single-threaded,
loopback only, no DNSSEC validation, no remote control, nothing that reaches
the Internet: every name a benchmark asks for is local data or forwarded to the
stub on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

FORWARD_ZONE = "test"
FORWARD_TTL = 86400


def _server_block(port: int, workdir: Path) -> str:
    return f"""server:
    num-threads: 1
    interface: 127.0.0.1
    port: {port}
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "{workdir}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    log-queries: no
    log-replies: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    do-not-query-localhost: no
    so-reuseport: no
    statistics-interval: 0
    extended-statistics: no
    minimal-responses: yes
    prefetch: no
"""


def comparison_conf(port: int, upstream_port: int, workdir: Path, *, static_zones: Iterable[str],
                    transparent_zones: Iterable[str], local_data: Iterable[str],
                    local_data_file: Path | None = None) -> str:
    """The Unbound we compare against: BNS data as local-data, `test.` forwarded to the stub.

    `local_data_file` holds more `local-data:` lines, included rather than copied (millions of them).
    """
    parts = [_server_block(port, workdir)]
    # `test.` is one of Unbound's built-in blocked zones (RFC 6761); lift that so it forwards.
    parts.append(f'    local-zone: "{FORWARD_ZONE}." nodefault\n')
    parts.extend(f'    local-zone: "{zone}." static\n' for zone in static_zones)
    parts.extend(f'    local-zone: "{zone}." transparent\n' for zone in transparent_zones)
    parts.append("".join(f"    {line}" for line in local_data))
    if local_data_file is not None:
        parts.append(f'    include: "{local_data_file}"\n')
    parts.append(f"""remote-control:
    control-enable: no
forward-zone:
    name: "{FORWARD_ZONE}."
    forward-addr: 127.0.0.1@{upstream_port}
""")
    return "".join(parts)


def forward_names(count: int) -> list[str]:
    return [f"host{i:05d}.example.{FORWARD_ZONE}" for i in range(count)]


def forward_address(i: int) -> str:
    return f"192.0.2.{i % 250 + 1}" if i < 250 else f"198.51.100.{i % 250 + 1}"


def stub_conf(port: int, workdir: Path, names: list[str]) -> str:
    """The upstream authoritative stub: `test.` names as local data, REFUSED for everything else."""
    parts = [_server_block(port, workdir)]
    parts.append('    local-zone: "." refuse\n')
    parts.append(f'    local-zone: "{FORWARD_ZONE}." static\n')
    parts.append(f'    local-data: "{FORWARD_ZONE}. {FORWARD_TTL} IN SOA ns.{FORWARD_ZONE}. '
                 f'hostmaster.{FORWARD_ZONE}. 1 3600 600 86400 3600"\n')
    for i, name in enumerate(names):
        parts.append(f'    local-data: "{name}. {FORWARD_TTL} IN A {forward_address(i)}"\n')
    parts.append("remote-control:\n    control-enable: no\n")
    return "".join(parts)
