"""The TOML configuration file (`--config`): each table read, checked and turned into settings changes."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from bns_resolver import config_values as v
from bns_resolver.config_table import Table, given
from bns_resolver.errors import ConfigError
from bns_resolver.settings import (
    DNS_PORT,
    HTTP_PORT,
    MAX_COMPILE_PROCESSES,
    MAX_WORKERS,
    ZONEFILE_HTTP_PORT,
    ChainSettings,
    LimitSettings,
    LogLevel,
    Network,
    NamespaceMode,
    PROFILE_FIELDS,
    ProfileOverrides,
    Settings,
    WebSettings,
)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def settings_from_file(settings: Settings, path: Path, origins: dict[str, str]) -> Settings:
    """`settings` with what the file at `path` sets; `origins` learns the file's name for later checks."""
    return settings_from_document(settings, _read_toml(path), str(path), origins)


def settings_from_text(settings: Settings, text: str, where: str, origins: dict[str, str]) -> Settings:
    """The same, from TOML handed over whole (a DNS worker gets `serve`'s effective settings this way)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    return settings_from_document(settings, document, where, origins)


def settings_from_document(settings: Settings, document: dict[str, Any], path: str,
                           origins: dict[str, str]) -> Settings:
    top = Table(document, path)
    changes: dict[str, Any] = {
        "data_dir": top.take("data_dir", v.path),
        "db_url": top.take("db", v.string),
        "log_level": top.take("log_level", v.choice(LogLevel)),
    }
    origins.update({"data_dir": f"{path}: data_dir", "db_url": f"{path}: db",
                    "bitcoind": f"{path}: [chain] bitcoind", "run_as_user": f"{path}: [dns] run_as_user",
                    "blocks_dir": f"{path}: [chain] blocks_dir",
                    "tcp_connections": f"{path}: [limits] tcp_connections"})
    changes |= _dns_table(top.table("dns"))
    changes |= _namespaces_table(top.table("namespaces"))
    changes |= _zonefiles_table(top.table("zonefiles"))
    changes |= _log_table(top.table("log"))
    changes |= _metrics_table(top.table("metrics"))
    chain, web, limits = top.table("chain"), top.table("web"), top.table("limits")
    top.refuse_unknown()
    changes["chain"] = _chain_table(chain, settings.chain)
    changes["web"] = _web_table(web, settings.web)
    changes["limits"] = _limits_table(limits, settings.limits)
    return replace(settings, **given(changes))


def _dns_table(dns: Table) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "listen": dns.take("listen", v.list_of(v.address(DNS_PORT, allow_port_zero=True), allow_empty=False)),
        "upstreams": dns.take("upstreams", v.list_of(v.address(DNS_PORT))),
        "allow": dns.take("allow", v.list_of(v.network)),
        "cache_entries": dns.take("cache_entries", v.integer(minimum=1)),
        "tld_probe_interval": dns.take("tld_probe_interval", v.number(1.0, unit=" of seconds")),
        "run_as_user": dns.take("run_as_user", v.string),
        "doh_canary": dns.take("doh_canary", v.boolean),
        "answer_store": dns.take("answer_store", v.boolean),
        "workers": dns.take("workers", v.count_or_auto(MAX_WORKERS)),
        "compile_processes": dns.take("compile_processes", v.count_or_auto(MAX_COMPILE_PROCESSES)),
    }
    dns.refuse_unknown()
    return changes


def _namespaces_table(namespaces: Table) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "default_mode": namespaces.take("default_mode", v.choice(NamespaceMode)),
        "namespace_modes": namespaces.take("modes", v.table_of(v.namespace_id, v.choice(NamespaceMode))),
        "icann_tlds": namespaces.take("icann_tlds", v.table_of(v.namespace_id, v.boolean)),
    }
    namespaces.refuse_unknown()
    return changes


def _zonefiles_table(zonefiles: Table) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "zonefile_sources": zonefiles.take("sources", v.list_of(zonefile_source)),
        "zonefile_http": zonefiles.take("serve_http", v.address(ZONEFILE_HTTP_PORT, allow_port_zero=True)),
    }
    zonefiles.refuse_unknown()
    return changes


def _log_table(log_table: Table) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "query_log": log_table.take("queries", v.boolean),
        "query_log_lines_per_second": log_table.take("queries_per_second", v.integer(minimum=1)),
    }
    log_table.refuse_unknown()
    return changes


def _metrics_table(metrics: Table) -> dict[str, Any]:
    # [] turns the endpoint off; `status` then reports only what the database says.
    changes = {"metrics_listen": metrics.take("listen", v.list_of(v.address(HTTP_PORT, allow_port_zero=True)))}
    metrics.refuse_unknown()
    return changes


def zonefile_source(value: Any) -> str:
    """A zone-file source spec (dir:PATH, an http(s) URL template, atlas://host:port), checked."""
    from bns_resolver.zonefiles.sources import parse_source_spec

    spec = v.string(value).strip()
    try:
        parse_source_spec(spec)
    except ConfigError as exc:
        raise v.Invalid(str(exc)) from None
    return spec


def _chain_table(chain: Table, base: ChainSettings) -> ChainSettings:
    values: dict[str, Any] = {
        "bitcoind": chain.take("bitcoind", v.url("http", "https")),
        "cookie_file": chain.take("cookie_file", v.path),
        "blocks_dir": chain.take("blocks_dir", v.path),
        "network": chain.take("network", v.choice(Network)),
        "confirmations": chain.take("confirmations", v.integer(minimum=0)),
        "max_lag": chain.take("max_lag", v.integer(minimum=0)),
        "poll_interval": chain.take("poll_interval", v.number(0.0, inclusive=False, unit=" of seconds")),
    }
    overrides = {key: chain.raw.pop(key) for key in list(chain.raw) if key in PROFILE_FIELDS}
    chain.known.extend(PROFILE_FIELDS)
    chain.refuse_unknown()
    profile = ProfileOverrides.from_table(overrides, chain.where)
    values = given(values)
    network = values.get("network", base.network)
    if network is Network.TESTNET and profile.first_block is None:
        raise ConfigError(f"{chain.where}: [chain] network = \"testnet\": testnet has no BNS deployment of "
                          "record; set [chain] first_block")
    return replace(base, profile=profile, **values)


def _web_table(web: Table, base: WebSettings) -> WebSettings:
    seconds = " of seconds"
    values: dict[str, Any] = {
        "enabled": web.take("enabled", v.boolean),
        "listen": web.take("listen", v.list_of(v.address(HTTP_PORT, allow_port_zero=True), allow_empty=False)),
        "address": web.take("address", v.ip_literal),
        "redirect_to_website": web.take("redirect_to_website", v.boolean),
        "profile_mirrors": web.take("profile_mirrors", v.table_of(v.url("http", "https"),
                                                                  v.url("http", "https"))),
        "profile_timeout": web.take("profile_timeout", v.number(0.0, inclusive=False, unit=seconds)),
        "profile_max_bytes": web.take("profile_max_bytes", v.integer(minimum=1)),
        "profile_cache_ttl": web.take("profile_cache_ttl", v.number(0.0, unit=seconds)),
        "profile_concurrency": web.take("profile_concurrency", v.integer(minimum=1)),
    }
    web.refuse_unknown()
    return replace(base, **given(values))


MAX_TTL = 2**31 - 1  # RFC 2181 §8: larger TTLs are read as 0


def _limits_table(limits: Table, base: LimitSettings) -> LimitSettings:
    per_second = v.number(0.0)
    seconds = v.number(0.0, inclusive=False, unit=" of seconds")
    values: dict[str, Any] = {
        "responses_per_second": limits.take("responses_per_second", per_second),
        "slip": limits.take("slip", v.integer(minimum=0)),
        "tcp_connections": limits.take("tcp_connections", v.integer(minimum=1)),
        "tcp_connections_per_client": limits.take("tcp_connections_per_client", v.integer(minimum=1)),
        "unknown_name_fetches_per_second": limits.take("unknown_name_fetches_per_second", per_second),
        "max_cache_ttl": limits.take("max_cache_ttl", v.integer(minimum=0, maximum=MAX_TTL)),
        "serve_stale_for": limits.take("serve_stale_for", v.integer(minimum=0, maximum=MAX_TTL)),
        "upstream_attempt_timeout": limits.take("upstream_attempt_timeout", seconds),
        "upstream_deadline": limits.take("upstream_deadline", seconds),
    }
    limits.refuse_unknown()
    result = replace(base, **given(values))
    total, per_client = result.tcp_connections, result.tcp_connections_per_client
    if total is not None and per_client is not None and per_client > total:
        raise ConfigError(f"{limits.where}: [limits] tcp_connections_per_client: {per_client} is more than "
                          f"tcp_connections ({total})")
    if result.upstream_attempt_timeout > result.upstream_deadline:
        raise ConfigError(f"{limits.where}: [limits] upstream_attempt_timeout: {result.upstream_attempt_timeout:g} s "
                          f"is longer than upstream_deadline ({result.upstream_deadline:g} s)")
    return result
