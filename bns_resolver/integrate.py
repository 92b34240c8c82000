"""`bns-resolver integrate TOOL`: split-DNS snippets for the namespaces this index serves now.

Each snippet sends the BNS namespaces to bns-resolver and leaves every other name
to the tool's usual upstreams. Namespaces that are also ICANN TLDs (`id`: Indonesia)
are marked, since routing them costs something; see the comments each snippet carries.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from bns_resolver.config import Settings
from bns_resolver.index.lookup import IndexReader

TOOLS = ("unbound", "dnsmasq", "resolved", "pihole")


@dataclass(frozen=True)
class Namespace:
    name: str
    shared: bool  # also an ICANN TLD (or not known to be absent from the root)
    known: bool = True  # False: nobody could tell whether it is an ICANN TLD; treated as shared
    names: tuple[str, ...] = ()  # registered names, listed for per-name exemptions in shared namespaces


@dataclass(frozen=True)
class Integration:
    host: str
    port: int
    namespaces: tuple[Namespace, ...]

    @property
    def bns_only(self) -> list[Namespace]:
        return [ns for ns in self.namespaces if not ns.shared]

    @property
    def shared(self) -> list[Namespace]:
        return [ns for ns in self.namespaces if ns.shared]


# Asks upstream DNS whether a TLD exists: True / False, or None when no upstream could tell.
TldProbe = Callable[[str], "bool | None"]
PROBED_BY_SERVE = {"exists upstream": True, "not in the ICANN root": False}


def gather(index: IndexReader, settings: Settings, probe: TldProbe) -> Integration:
    """What the snippets need: our DNS address and each namespace's TLD status."""
    recorded = json.loads(index.sync_state().get("namespace_policy") or "{}")
    namespaces = []
    for ns in sorted(index.namespace_ids()):
        shared = settings.icann_tlds.get(ns, PROBED_BY_SERVE.get(recorded.get(ns, {}).get("tld", "")))
        if shared is None:
            shared = probe(ns)
        # Nobody could tell: assume shared, as serve does (forwarding costs little, hiding a real TLD a lot).
        known = shared is not None
        shared = shared is not False
        namespaces.append(Namespace(ns, shared, known, _names_under(index, ns) if shared else ()))
    host, port = settings.listen[0]
    return Integration("127.0.0.1" if host in ("", "0.0.0.0", "::") else host, port, tuple(namespaces))


def _names_under(index: IndexReader, namespace: str) -> tuple[str, ...]:
    """Registered names plus the names that hold subdomains (an exemption covers what lies below)."""
    holders = {domain for domain in index.subdomain_domains() if domain.endswith("." + namespace)}
    return tuple(sorted(set(index.names_in(namespace)) | holders))


def upstream_tld_probe(upstreams: tuple[tuple[str, int], ...], timeout: float = 2.0) -> TldProbe:
    """A probe asking these resolvers for `<tld>. SOA` (NXDOMAIN: not an ICANN TLD)."""
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode

    def probe(tld: str) -> bool | None:
        for host, port in upstreams:
            try:
                reply = dns.query.udp(dns.message.make_query(tld + ".", "SOA"), host, port=port, timeout=timeout)
            except (dns.exception.DNSException, OSError):
                continue
            if reply.rcode() == dns.rcode.NXDOMAIN:
                return False
            if reply.rcode() == dns.rcode.NOERROR:
                return True
        return None

    return probe


def render(tool: str, facts: Integration) -> str:
    return {"unbound": unbound, "dnsmasq": dnsmasq, "pihole": pihole, "resolved": resolved}[tool](facts)


def _address(facts: Integration, separator: str) -> str:
    host = f"[{facts.host}]" if ":" in facts.host and separator == ":" else facts.host
    return f"{host}{separator}{facts.port}"


def unbound(facts: Integration) -> str:
    lines = [
        "# Unbound: BNS namespaces to bns-resolver, everything else as usual (from `bns-resolver integrate unbound`).",
        "# Install as /etc/unbound/unbound.conf.d/bns-resolver.conf, then `unbound-checkconf` and reload.",
        "# bns-resolver must not use this Unbound as its upstream: unknown names would loop back here.",
        "server:",
        "    do-not-query-localhost: no",
        "    # BNS answers are unsigned: validation is switched off below these names only",
        "    # (for a shared TLD such as id, real domains under it lose validation too).",
        *(f'    domain-insecure: "{ns.name}"' for ns in facts.namespaces),
        "    # The web gateway's address and LAN addresses in zone files are private: allow them here.",
        *(f'    private-domain: "{ns.name}"' for ns in facts.namespaces),
    ]
    for ns in facts.namespaces:
        lines += ["forward-zone:", f'    name: "{ns.name}."', f"    forward-addr: {_address(facts, '@')}"]
        if ns.shared:
            lines.append("    forward-first: yes  # (maybe) an ICANN TLD too: resolve directly if bns-resolver is down")
    return "\n".join(lines) + "\n"


def dnsmasq(facts: Integration, *, header: str = "") -> str:
    target = _address(facts, "#")
    lines = [
        header or "# dnsmasq: BNS namespaces to bns-resolver (from `bns-resolver integrate dnsmasq`).",
        "# Install as /etc/dnsmasq.d/bns-resolver.conf and restart dnsmasq.",
        "# bns-resolver must not use this dnsmasq as its upstream: unknown names would loop back here.",
        *(f"server=/{ns.name}/{target}" for ns in facts.namespaces),
    ]
    if facts.bns_only:
        lines += ["# Rebind protection (stop-dns-rebind) would drop the web gateway's private address and",
                  "# LAN addresses in zone files; these namespaces exist only in BNS, so exempt them whole:",
                  "rebind-domain-ok=/" + "/".join(ns.name for ns in facts.bns_only) + "/"]
    for ns in facts.shared:
        why = "is also an ICANN TLD" if ns.known else "may be an ICANN TLD (no upstream could tell)"
        lines += [f"# {ns.name} {why}: exempting all of it would switch rebind protection off for",
                  f"# every real .{ns.name} domain, so only the {len(ns.names)} BNS names are exempted, one by one:",
                  *(f"rebind-domain-ok=/{name}/" for name in ns.names)]
    return "\n".join(lines) + "\n"


def pihole(facts: Integration) -> str:
    header = ("# Pi-hole (its FTL is dnsmasq): BNS namespaces to bns-resolver (from `bns-resolver integrate pihole`).\n"
              "# Pi-hole v5: save as /etc/dnsmasq.d/05-bns-resolver.conf, then `pihole restartdns`.\n"
              "# Pi-hole v6: set misc.etc_dnsmasq_d = true (or paste these lines into misc.dnsmasq_lines).")
    return dnsmasq(facts, header=header).replace(
        "# Install as /etc/dnsmasq.d/bns-resolver.conf and restart dnsmasq.\n", "")


def resolved(facts: Integration) -> str:
    domains = " ".join(f"~{ns.name}" for ns in facts.namespaces)
    return "\n".join([
        "# systemd-resolved: BNS namespaces to bns-resolver (from `bns-resolver integrate resolved`).",
        "# Install as /etc/systemd/resolved.conf.d/bns-resolver.conf, then `systemctl restart systemd-resolved`.",
        "# The ~domains are routing-only: other names keep going to your usual DNS servers.",
        "# Shared TLDs (such as id) then go to bns-resolver entirely; it forwards what BNS does not know.",
        "[Resolve]",
        f"DNS={_address(facts, ':')}",
        f"Domains={domains}",
        "",
    ])
