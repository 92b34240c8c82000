"""Response rate limiting (RRL) for UDP: a token bucket per client prefix.

UDP source addresses can be forged, so a resolver's answers can be aimed at a
victim, and one client can take the whole server. Each client prefix (IPv4 /24,
IPv6 /56, as BIND's RRL does) gets `rate` responses per second with bursts of
`burst`. Past that, responses are dropped, except every `slip`-th one, which goes
out as a small TC=1 reply: a real client then retries over TCP (which cannot be
forged), a victim gets no amplification. Loopback clients are not limited.
"""

from __future__ import annotations

import ipaddress
import struct

from bns_resolver.dns.access import client_address
from bns_resolver.dns.wire import skip_plain_name

DEFAULT_RATE = 1000.0  # responses per second per prefix: a whole home LAN shares one /24
DEFAULT_SLIP = 2
EXEMPT_NETWORKS = ("127.0.0.0/8", "::1/128")
_MAX_TRACKED = 65536


class Bucket:
    """Tokens for one client prefix; `admit` spends one if there is one."""

    __slots__ = ("_burst", "_rate", "limited", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self._rate = rate
        self._burst = burst
        self.tokens = burst
        self.stamp = now
        self.limited = 0  # responses held back so far, for the slip count

    def admit(self, now: float) -> bool:
        tokens = self.tokens + (now - self.stamp) * self._rate
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = min(tokens, self._burst) - 1.0
            return True
        self.tokens = tokens
        self.limited += 1
        return False


class ResponseRateLimiter:
    def __init__(self, *, rate: float = DEFAULT_RATE, burst: float | None = None, slip: int = DEFAULT_SLIP,
                 ipv4_prefix: int = 24, ipv6_prefix: int = 56,
                 exempt: tuple[str, ...] | list[str] = EXEMPT_NETWORKS) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else 2 * rate
        self.slip = slip
        self._prefixes = {4: ipv4_prefix, 6: ipv6_prefix}
        self._exempt = [ipaddress.ip_network(n, strict=False) for n in exempt]
        self._buckets: dict[str, Bucket] = {}  # prefix -> bucket
        # Client address -> its prefix's bucket, or None when exempt: one dictionary read per response.
        self.by_client: dict[str, Bucket | None] = {}

    def bucket_for(self, client_ip: str, now: float) -> Bucket | None:
        """The bucket this client spends from, or None when it is not limited."""
        if client_ip in self.by_client:
            return self.by_client[client_ip]
        if len(self.by_client) >= _MAX_TRACKED:
            self.by_client.clear()
        if len(self._buckets) >= _MAX_TRACKED:
            self._buckets.clear()
        prefix = self._prefix(client_ip)
        bucket = None
        if prefix is not None:
            bucket = self._buckets.get(prefix)
            if bucket is None:
                bucket = self._buckets[prefix] = Bucket(self.rate, self.burst, now)
        self.by_client[client_ip] = bucket
        return bucket

    def slips(self, bucket: Bucket) -> bool:
        """Whether this held-back response goes out as a TC=1 reply instead of nothing."""
        return self.slip > 0 and bucket.limited % self.slip == 0

    def _prefix(self, client_ip: str) -> str | None:
        address = client_address(client_ip)
        if address is None or any(address in network for network in self._exempt):
            return None
        return str(ipaddress.ip_network(f"{address}/{self._prefixes[address.version]}", strict=False))


def slip_reply(query: bytes) -> bytes | None:
    """A TC=1 reply with the query's ID, RD bit and question, and nothing else: "ask again over TCP"."""
    if len(query) < 12 or query[2] & 0xF8 or struct.unpack_from("!H", query, 4)[0] != 1:
        return None  # a response, another opcode, or not one question: nothing to say
    end = skip_plain_name(query, 12)
    if end < 0 or end + 4 > len(query):
        return None
    flags = 0x8000 | 0x0200 | 0x0080 | (query[2] & 0x01) << 8  # QR, TC, RA, and the client's RD
    return query[0:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 0) + query[12:end + 4]
