"""Settings: one typed, validated object built from defaults, a TOML file, the environment and flags.

Precedence, lowest to highest: built-in defaults, the TOML file (`--config`),
environment variables `BNS_RESOLVER_<KEY>` for the top-level keys, command-line flags.
Every value is checked as it is read: an unknown key, a wrong type or an impossible value
is a ConfigError naming the file (or variable, or flag), the key and the reason, before
anything starts.

The pieces: settings.py (the types and defaults), config_file.py (the TOML file), config_table.py
(one table's keys), config_values.py (one value), config_checks.py (the whole, and this machine),
config_render.py (the effective settings as TOML); this module puts them in order.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from bns_resolver import config_values as v
from bns_resolver.config_checks import check_whole
from bns_resolver.config_file import settings_from_file, settings_from_text, zonefile_source
from bns_resolver.config_table import checked
from bns_resolver.errors import ConfigError
from bns_resolver.settings import (
    DEFAULT_LISTEN,
    DEFAULT_METRICS_LISTEN,
    DNS_PORT,
    HTTP_PORT,
    WORKERS_AUTO,
    ZONEFILE_HTTP_PORT,
    ChainSettings,
    LimitSettings,
    LogLevel,
    NamespaceMode,
    Network,
    ProfileOverrides,
    Rules,
    Settings,
    WebSettings,
    default_data_dir,
    parse_hostport,
)

# The settings types live in settings.py; they are importable from here too, as the one settings API.
__all__ = ["DEFAULT_LISTEN", "DEFAULT_METRICS_LISTEN", "DNS_PORT", "HTTP_PORT", "WORKERS_AUTO", "ZONEFILE_HTTP_PORT",
           "ChainSettings", "LimitSettings", "LogLevel", "NamespaceMode", "Network", "ProfileOverrides", "Rules",
           "Settings", "WebSettings", "default_data_dir", "effective_upstreams", "is_own_address",
           "load_settings", "parse_hostport", "system_upstreams"]

T = TypeVar("T")


def load_settings(config_file: Path | None = None, env: Mapping[str, str] | None = None, *,
                  check_environment: bool = True, config_text: str | None = None, **flags: Any) -> Settings:
    """The effective settings. `check_environment` also checks this machine: data dir, DB driver.

    `config_text` stands for the file's content when the settings come whole from another process
    (render_settings' output, as `serve` hands it to its DNS workers)."""
    env = os.environ if env is None else env
    settings = Settings(data_dir=default_data_dir(env))
    origins = {"data_dir": "data_dir (default)", "db_url": "db", "bitcoind": "[chain] bitcoind",
               "run_as_user": "[dns] run_as_user",
               "blocks_dir": "[chain] blocks_dir", "tcp_connections": "[limits] tcp_connections"}
    if config_file is not None:
        settings = settings_from_file(settings, config_file, origins)
    if config_text is not None:
        settings = settings_from_text(settings, config_text, "settings handed over by serve", origins)
    settings = _from_env(settings, env, origins)
    settings = _from_flags(settings, flags, origins)
    check_whole(settings, origins, check_environment)
    return settings


# --- environment and flags --------------------------------------------------------------------

ENV_VARIABLES = ("BNS_RESOLVER_DATA_DIR", "BNS_RESOLVER_DB", "BNS_RESOLVER_LOG_LEVEL", "BNS_RESOLVER_BITCOIND",
                 "BNS_RESOLVER_WEB_ADDRESS", "BNS_RESOLVER_NATIVE")


def _from_env(settings: Settings, env: Mapping[str, str], origins: dict[str, str]) -> Settings:
    for name in env:
        if name.startswith("BNS_RESOLVER_") and name not in ENV_VARIABLES:
            near = difflib.get_close_matches(name, ENV_VARIABLES, n=1)
            hint = f"did you mean {near[0]}?" if near else f"known: {', '.join(ENV_VARIABLES)}"
            raise ConfigError(f"environment {name}: unknown variable ({hint})")

    def read(name: str, parse: Callable[[Any], T]) -> T | None:
        value = env.get(name)
        return checked(f"environment {name}", parse, value) if value else None

    # Read where it acts (answers/native.py, at import); checked here so a typo is an error, not a no-op.
    if env.get("BNS_RESOLVER_NATIVE", "1") not in ("0", "1"):
        raise ConfigError(f"environment BNS_RESOLVER_NATIVE={env['BNS_RESOLVER_NATIVE']!r}: expected 0 (the C "
                          "extension off) or 1 (on where it was built)")
    changes: dict[str, Any] = {}
    if (data_dir := read("BNS_RESOLVER_DATA_DIR", v.path)) is not None:
        changes["data_dir"], origins["data_dir"] = data_dir, "environment BNS_RESOLVER_DATA_DIR"
    if (db := read("BNS_RESOLVER_DB", v.string)) is not None:
        changes["db_url"], origins["db_url"] = db, "environment BNS_RESOLVER_DB"
    if (level := read("BNS_RESOLVER_LOG_LEVEL", v.choice(LogLevel))) is not None:
        changes["log_level"] = level
    if (bitcoind := read("BNS_RESOLVER_BITCOIND", v.url("http", "https"))) is not None:
        changes["chain"] = replace(settings.chain, bitcoind=bitcoind)
        origins["bitcoind"] = "environment BNS_RESOLVER_BITCOIND"
    if (web_address := read("BNS_RESOLVER_WEB_ADDRESS", v.ip_literal)) is not None:
        changes["web"] = replace(settings.web, address=web_address)  # a container's host address (compose)
    return replace(settings, **changes)


def _flag(flags: Mapping[str, Any], name: str, parse: Callable[[Any], T]) -> T | None:
    """A flag's value, parsed; None when the flag was not given."""
    value = flags.get(name)
    return None if value is None else checked(f"--{name.replace('_', '-')} {value!r}", parse, value)


def _flags(flags: Mapping[str, Any], name: str, parse: Callable[[Any], T]) -> tuple[T, ...] | None:
    """A repeatable flag's values (a list), each parsed; None when the flag was not given."""
    values = flags.get(name)
    if values is None:
        return None
    return tuple(checked(f"--{name.replace('_', '-')} {value!r}", parse, value) for value in values)


def _from_flags(settings: Settings, flags: Mapping[str, Any], origins: dict[str, str]) -> Settings:
    changes: dict[str, Any] = {
        "data_dir": _flag(flags, "data_dir", v.path),
        "db_url": _flag(flags, "db", v.string),
        "listen": _flags(flags, "listen", v.address(DNS_PORT, allow_port_zero=True)),
        "upstreams": _flags(flags, "upstream", v.address(DNS_PORT)),
        "allow": _flags(flags, "allow", v.network),
        "log_level": _flag(flags, "log_level", v.choice(LogLevel)),
        "zonefile_sources": _flags(flags, "zonefile_source", zonefile_source),
    }
    for key, flag in (("data_dir", "data_dir"), ("db_url", "db")):
        if changes[key] is not None:
            origins[key] = f"--{flag.replace('_', '-')} {flags[flag]!r}"
    if flags.get("query_log"):
        changes["query_log"] = True
    metrics_listen = _flags(flags, "metrics_listen", v.address(HTTP_PORT, allow_port_zero=True))
    if metrics_listen is not None:
        changes["metrics_listen"] = metrics_listen
    web_listen = _flags(flags, "web_listen", v.address(HTTP_PORT, allow_port_zero=True))
    if web_listen is not None:
        changes["web"] = replace(settings.web, listen=web_listen)
    chain = {"bitcoind": _flag(flags, "bitcoind", v.url("http", "https")),
             "network": _flag(flags, "network", v.choice(Network)),
             "blocks_dir": _flag(flags, "bitcoind_blocks_dir", v.path)}
    if chain["bitcoind"] is not None:
        origins["bitcoind"] = f"--bitcoind {flags['bitcoind']!r}"
    if chain["blocks_dir"] is not None:
        origins["blocks_dir"] = f"--bitcoind-blocks-dir {flags['bitcoind_blocks_dir']!r}"
    if any(value is not None for value in chain.values()):
        changes["chain"] = _checked_chain(settings.chain, {k: val for k, val in chain.items() if val is not None})
    return replace(settings, **{k: val for k, val in changes.items() if val is not None})


def _checked_chain(chain: ChainSettings, changes: dict[str, Any]) -> ChainSettings:
    try:
        return replace(chain, **changes)
    except ConfigError as exc:
        raise ConfigError(f"--network {changes.get('network', chain.network)}: {exc}") from None


def system_upstreams(listen: tuple[tuple[str, int], ...], resolv_conf: Path = Path("/etc/resolv.conf")
                     ) -> tuple[tuple[str, int], ...]:
    """The system's resolvers, minus ourselves (so we never forward to our own socket)."""
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return ()
    servers = [line.split()[1] for line in lines if line.startswith("nameserver") and len(line.split()) > 1]
    return tuple((s, DNS_PORT) for s in servers if not is_own_address((s, DNS_PORT), listen))


def is_own_address(upstream: tuple[str, int], listen: tuple[tuple[str, int], ...]) -> bool:
    """Whether a query sent to `upstream` would arrive at one of our own listen sockets."""
    import ipaddress

    host, port = upstream
    try:
        upstream_ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    for listen_host, listen_port in listen:
        if listen_port != port:
            continue
        listen_ip = ipaddress.ip_address(listen_host.split("%", 1)[0])
        if listen_ip == upstream_ip or (listen_ip.is_unspecified and upstream_ip.is_loopback):
            return True
    return False


def effective_upstreams(settings: Settings, resolv_conf: Path = Path("/etc/resolv.conf")
                        ) -> tuple[tuple[str, int], ...]:
    """Where `serve` forwards; ConfigError when there is nowhere usable and forwarding was not turned off.

    `[dns] upstreams = []` says "BNS only, no forwarding" and is honoured as such.
    """
    hint = ("pass --upstream ADDR[:PORT] (e.g. --upstream 9.9.9.9) or set [dns] upstreams; "
            "[dns] upstreams = [] means BNS only, no forwarding")
    if settings.upstreams is not None:
        for upstream in settings.upstreams:
            if is_own_address(upstream, settings.listen):
                raise ConfigError(f"upstream {upstream[0]}:{upstream[1]} is this server's own listen address: "
                                  f"forwarding to it would loop; {hint}")
        return settings.upstreams
    found = system_upstreams(settings.listen, resolv_conf)
    if not found:
        raise ConfigError(f"no upstream resolver to forward to: {resolv_conf} lists none besides this server "
                          f"itself; {hint}")
    return found
