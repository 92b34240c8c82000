"""dnsperf query files for each case, and the BNS answers both servers must serve.

The BNS answers for the embedded snapshot are taken from our own server (asked
over DNS once it is up) and handed to Unbound as `local-data:`, so both serve
byte-for-byte the same records.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

import synth_index

SEED = 20261124


def write_queries(path: Path, lines: Iterable[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def indexed_names(data_dir: Path) -> list[str]:
    """On-chain names and subdomains in an index (read-only peek at the SQLite file)."""
    with sqlite3.connect(f"file:{data_dir / 'index.sqlite'}?mode=ro", uri=True) as conn:
        names = [row[0] for row in conn.execute("SELECT fqn FROM names ORDER BY fqn")]
        names += [row[0] for row in conn.execute("SELECT fqn FROM subdomains ORDER BY fqn")]
    return names


def discover_bns_answers(port: int, names: list[str]) -> tuple[list[str], list[str]]:
    """(query lines, Unbound local-data lines) for every `_http._tcp.<name> URI` our server answers."""
    queries: list[str] = []
    local_data: list[str] = []
    for name in names:
        qname = f"_http._tcp.{name}"
        reply = dns.query.udp(dns.message.make_query(qname, dns.rdatatype.URI), "127.0.0.1", port=port,
                              timeout=5)
        if reply.rcode() != 0 or not reply.answer:
            continue
        queries.append(f"{qname} URI")
        for rrset in reply.answer:
            for line in rrset.to_text().splitlines():
                if "'" not in line:
                    local_data.append(f"local-data: '{line}'\n")
    return queries, local_data


def nxdomain_queries(namespace: str, count: int) -> list[str]:
    rng = random.Random(SEED + count)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    seen: set[str] = set()
    while len(seen) < count:
        seen.add("nx-" + "".join(rng.choice(letters) for _ in range(12)))
    return [f"{label}.{namespace} A" for label in sorted(seen, key=lambda _: rng.random())]


def synth_distinct(total: int, distinct: int) -> list[int]:
    """`distinct` different synthetic names, in a random order."""
    return random.Random(SEED).sample(range(total), distinct)


def synth_zipf(indices: list[int], length: int, exponent: float = 1.0) -> list[int]:
    """`length` queries over `indices` with Zipf-like popularity (rank r has weight 1/r^s)."""
    rng = random.Random(SEED + 1)
    weights = [1.0 / (rank + 1) ** exponent for rank in range(len(indices))]
    return rng.choices(indices, weights=weights, k=length)


def synth_lines(indices: Iterable[int]) -> list[str]:
    return [f"{synth_index.query_name(i)} URI" for i in indices]


def fifo_hit_rate(keys: list[str], capacity: int) -> float:
    """Steady-state hit rate of a FIFO cache (like the gateway's) when the file is replayed in a loop."""
    cache: dict[str, None] = {}
    hits = 0
    for lap in range(2):
        for key in keys:
            if key in cache:
                hits += lap
                continue
            if len(cache) >= capacity:
                del cache[next(iter(cache))]
            cache[key] = None
    return hits / len(keys) if keys else 0.0
