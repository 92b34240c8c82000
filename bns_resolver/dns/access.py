"""Which clients may query us: an allow-list of networks, loopback only by default."""

from __future__ import annotations

import ipaddress

DEFAULT_ALLOWED = ("127.0.0.0/8", "::1/128")


class AccessList:
    def __init__(self, networks: list[str] | tuple[str, ...] = DEFAULT_ALLOWED) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]
        self.decided: dict[str, bool] = {}

    def allows(self, client_ip: str) -> bool:
        decided = self.decided.get(client_ip)
        if decided is None:
            decided = self._check(client_ip)
            if len(self.decided) > 65536:
                self.decided.clear()
            self.decided[client_ip] = decided
        return decided

    def _check(self, client_ip: str) -> bool:
        address = client_address(client_ip)
        return address is not None and any(address in network for network in self.networks)


def client_address(client_ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's address as an IP object (scope id dropped, IPv4-mapped IPv6 unwrapped), or None."""
    try:
        address = ipaddress.ip_address(client_ip.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address
