"""Where the web gateway listens, and which address DNS hands out for it per DNS listener.

The rule that ties the two planes together: an A/AAAA for an address-less BNS name
is synthesized only where a web listener is really bound, so a browser is never
sent to an address where nothing answers.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
from typing import Any

from twisted.internet.error import CannotListenError

from bns_resolver.config import HTTP_PORT, Settings

log = logging.getLogger(__name__)

WILDCARDS = ("", "0.0.0.0", "::")
PRIVILEGE_RECIPE = (
    "grant the capability instead of running as root: `sudo setpriv --inh-caps +net_bind_service "
    "--ambient-caps +net_bind_service …` or the systemd unit's AmbientCapabilities=CAP_NET_BIND_SERVICE "
    "(deploy/systemd); or choose another port with [web] listen / --web-listen"
)


def web_listen_addresses(settings: Settings) -> tuple[tuple[str, int], ...]:
    if settings.web.listen is not None:
        return settings.web.listen
    return tuple(dict.fromkeys((host, HTTP_PORT) for host, _port in settings.listen))


def bind_web(site: Any, addresses: tuple[tuple[str, int], ...], reactor: Any) -> list[Any]:
    """Listen on each address that can be had; say once, with the recipe, why others cannot."""
    ports = []
    for host, port in addresses:
        try:
            ports.append(reactor.listenTCP(port, site, interface=host, backlog=128))
        except CannotListenError as exc:
            if getattr(exc.socketError, "errno", None) == errno.EACCES:
                log.warning("web gateway: no privilege to listen on %s:%s, so BNS names get no synthesized "
                            "addresses there; %s", host or "*", port, PRIVILEGE_RECIPE)
            else:
                log.warning("web gateway: cannot listen on %s:%s (%s); BNS names get no synthesized addresses "
                            "there", host or "*", port, exc.socketError)
    return ports


def web_address_for(dns_host: str, bound_hosts: set[str], configured: str | None) -> str | None:
    """The address A/AAAA answers give to clients that asked on dns_host, or None (no synthesis)."""
    if not bound_hosts:
        return None
    if configured is not None:
        return configured
    if dns_host in WILDCARDS:
        return None  # the arrival address is unknown on a wildcard socket: [web] address must say it
    if dns_host in bound_hosts or (bound_hosts & set(WILDCARDS) and _same_family(dns_host, bound_hosts)):
        return dns_host
    return None


def _same_family(dns_host: str, bound_hosts: set[str]) -> bool:
    version = ipaddress.ip_address(dns_host).version
    return ("::" in bound_hosts) or (version == 4 and bool(bound_hosts & {"", "0.0.0.0"}))
