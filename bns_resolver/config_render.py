"""The effective settings as TOML (`bns-resolver config check`): a file that loads back to the same settings."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from bns_resolver.config import Settings


def render_settings(settings: Settings) -> str:
    """The effective settings as a TOML file that loads back to the same settings."""

    def addresses(pairs: tuple[tuple[str, int], ...]) -> list[str]:
        return [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in pairs]

    chain, web, limits = settings.chain, settings.web, settings.limits
    overrides = {f.name: getattr(chain.profile, f.name) for f in fields(chain.profile)}
    sections: list[tuple[str, dict[str, Any]]] = [
        ("", {"data_dir": settings.data_dir, "db": settings.database_url, "log_level": settings.log_level}),
        ("dns", {"listen": addresses(settings.listen),
                 "upstreams": None if settings.upstreams is None else addresses(settings.upstreams),
                 "allow": list(settings.allow), "cache_entries": settings.cache_entries,
                 "tld_probe_interval": settings.tld_probe_interval, "run_as_user": settings.run_as_user,
                 "doh_canary": settings.doh_canary, "answer_store": settings.answer_store,
                 "workers": settings.workers, "compile_processes": settings.compile_processes}),
        ("namespaces", {"default_mode": settings.default_mode, "modes": settings.namespace_modes,
                        "icann_tlds": settings.icann_tlds}),
        ("zonefiles", {"sources": list(settings.zonefile_sources),
                       "serve_http": settings.zonefile_http and addresses((settings.zonefile_http,))[0]}),
        ("chain", {"bitcoind": chain.bitcoind, "cookie_file": chain.cookie_file, "blocks_dir": chain.blocks_dir,
                   "network": chain.network,
                   "confirmations": chain.confirmations, "max_lag": chain.max_lag,
                   "poll_interval": chain.poll_interval, **overrides}),
        ("log", {"queries": settings.query_log, "queries_per_second": settings.query_log_lines_per_second}),
        ("metrics", {"listen": addresses(settings.metrics_listen)}),
        ("web", {"enabled": web.enabled, "listen": web.listen and addresses(web.listen), "address": web.address,
                 "redirect_to_website": web.redirect_to_website, "profile_mirrors": web.profile_mirrors,
                 "profile_timeout": web.profile_timeout, "profile_max_bytes": web.profile_max_bytes,
                 "profile_cache_ttl": web.profile_cache_ttl, "profile_concurrency": web.profile_concurrency}),
        ("limits", {f.name: getattr(limits, f.name) for f in fields(limits)}),
    ]
    lines: list[str] = []
    for name, values in sections:
        lines += [f"\n[{name}]"] if name else []
        for key, value in values.items():
            unset = _UNSET.get(key, "the network profile's own" if key in overrides else "unset")
            lines.append(f"{key} = {_toml(value)}" if value is not None else f"# {key}: {unset}")
    return "\n".join(lines) + "\n"


_UNSET = {
    "upstreams": "the system's resolvers (/etc/resolv.conf, minus our own listen addresses)",
    "listen": "port 80 on each [dns] listen address",
    "address": "the address each query arrived on",
    "confirmations": "the network profile's own",
    "tcp_connections": "from the descriptor limit: half of what is left after a reserve, at most 1024",
    "tcp_connections_per_client": "an eighth of tcp_connections' default, at most 64",
}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, bytes):
        value = value.decode("ascii")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{_toml_key(k)} = {_toml(item)}" for k, item in value.items())
        return "{ " + pairs + " }" if value else "{}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_key(key: str) -> str:
    return key if key.replace("-", "").replace("_", "").isalnum() else _toml(key)
