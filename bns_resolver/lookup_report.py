"""Human- and script-readable reports on the index, for `lookup` and `status`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bns_resolver.bns.accounts import describe_supply
from bns_resolver.config import Settings
from bns_resolver.errors import VerificationError, ZoneFileError
from bns_resolver.index.db import Engine
from bns_resolver.index.lookup import IndexReader
from bns_resolver.zonefiles.parse import parse_zonefile
from bns_resolver.zonefiles.store import verify_zonefile


def describe_name(engine: Engine, fqn: str) -> tuple[str, bool]:
    """The name's record, its zone file and whether the file verifies; (text, found)."""
    reader = IndexReader(engine)
    subdomain = reader.subdomain(fqn)
    if subdomain is not None:
        header = [f"subdomain {fqn}", f"  owner        {subdomain.owner_address}",
                  f"  sequence     {subdomain.sequence}"]
        return "\n".join(header + _zonefile_lines(reader, fqn, subdomain.zonefile_hash)), True
    record = reader.name(fqn)
    if record is None:
        return f"{fqn}: not in the index", False
    lines = [
        f"name {record.fqn}",
        f"  namespace    {record.namespace_id}",
        f"  owner        {record.owner_address}",
        f"  revoked      {record.revoked}",
        f"  expires at   {record.expire_block if record.expire_block is not None else 'never'}",
        f"  value hash   {record.value_hash or '-'}",
    ]
    if record.value_hash:
        lines += _zonefile_lines(reader, fqn, record.value_hash)
    return "\n".join(lines), True


def _zonefile_lines(reader: IndexReader, fqn: str, value_hash: str) -> list[str]:
    content = reader.zonefile(value_hash)
    if content is None:
        return ["  zone file    not obtained yet"]
    try:
        verify_zonefile(value_hash, content)
        verdict = "verified: hash160 matches the value hash"
    except VerificationError as exc:
        verdict = f"NOT VERIFIED: {exc}"
    try:
        parsed = parse_zonefile(content, fqn)
        verdict += f"; {len(parsed.records)} records"
    except ZoneFileError as exc:
        verdict += f"; unparsable: {exc}"
    body = content.decode("utf-8", "replace").rstrip("\n").splitlines()
    return [f"  zone file    {verdict}"] + [f"    | {line}" for line in body]


def index_status(engine: Engine, settings: Settings, *, with_supply: bool = True) -> dict[str, Any]:
    """What the index holds. `with_supply` adds the STX supply at its height, which means reading the
    genesis allocation (about a second and 50 MiB kept): `status` wants it, `serve`'s start-up does not."""
    reader = IndexReader(engine)
    state = reader.sync_state()
    counts = reader.counts()
    height = int(state["height"]) if state.get("height") else None
    tip = int(state["tip"]) if state.get("tip") else None
    return {
        "database": engine.url.render_as_string(hide_password=True),
        "source": state.get("source", "empty"),
        "network": state.get("network", settings.chain.network),
        "height": height,
        "tip": tip,
        "lag": (tip - height) if tip is not None and height is not None else None,
        "consensus_hash": state.get("consensus_hash"),
        "stx_supply": describe_supply(state.get("network", settings.chain.network), height) if with_supply else None,
        "namespaces": counts.namespaces,
        "names": counts.names,
        "subdomains": counts.subdomains,
        "zonefiles": counts.zonefiles,
        "namespace_ids": sorted(reader.namespace_ids()),
        # Written by a running `serve` after it asked its upstreams about each namespace.
        "namespace_policy": json.loads(state["namespace_policy"]) if state.get("namespace_policy") else None,
    }


def running_server_status(data_dir: Path) -> dict[str, Any]:
    """What the data dir's running server says of itself, or why nothing can be said ({"running": False})."""
    from bns_resolver.runtime import ask_running, find_running

    server, why_not = find_running(data_dir)
    if server is None:
        return {"running": False, "reason": why_not}
    try:
        return {"running": True} | ask_running(server)
    except OSError as exc:
        return {"running": True, "pid": server.pid, "reason": str(exc)}


def running_server_lines(server: dict[str, Any]) -> list[str]:
    """The running server's part of `status`, a few aligned lines."""
    if not server["running"] or "uptime_seconds" not in server:
        return [f"{'server':>16}: {server['reason']}"]
    last_probe = server.get("last_probe_at")
    probed = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(last_probe)) if last_probe else "not yet"
    namespaces = ", ".join(f"{ns} ({d['mode']}, {d['tld']})" for ns, d in server.get("namespaces", {}).items())
    return [
        f"{'server':>16}: running, pid {server['pid']}, up {_duration(server['uptime_seconds'])}, "
        f"version {server.get('version')}",
        f"{'serving':>16}: " + ("ready" if server.get("ready") else f"not ready: {server.get('not_ready')}")
        + f" at block {server.get('height')}",
        f"{'dns':>16}: {', '.join(server.get('dns', [])) or 'none'}",
        f"{'web gateway':>16}: {', '.join(server.get('web', [])) or 'not listening'}",
        f"{'upstreams':>16}: {', '.join(server.get('upstreams', [])) or 'none (BNS only)'}",
        f"{'tld probes':>16}: {probed}; {namespaces or 'no namespaces'}",
        f"{'queries':>16}: " + ", ".join(f"{k} {v}" for k, v in sorted(server.get("queries", {}).items())),
    ]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h {minutes}m"
    return f"{hours}h {minutes}m {secs}s" if hours else f"{minutes}m {secs}s"
