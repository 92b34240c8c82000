"""Settings: one typed object built from defaults, a TOML file, the environment and flags.

Precedence, lowest to highest: built-in defaults, the TOML file (`--config`),
environment variables `BNS_RESOLVER_<KEY>` for the top-level keys, command-line flags.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bns_resolver.errors import ConfigError

DEFAULT_LISTEN = ("127.0.0.1", 5354)
DNS_PORT = 53
HTTP_PORT = 80


@dataclass(frozen=True)
class ChainSettings:
    bitcoind: str | None = None  # http://user:pass@host:port
    cookie_file: str | None = None
    network: str = "mainnet"
    confirmations: int | None = None
    max_lag: int = 6  # blocks behind the tip before names get SERVFAIL instead of answers
    poll_interval: float = 30.0
    profile: dict[str, Any] = field(default_factory=dict)  # [chain] overrides of the network profile


@dataclass(frozen=True)
class WebSettings:
    """[web]: the gateway that makes address-less BNS names browsable (verified profile pages)."""

    enabled: bool = True
    listen: tuple[tuple[str, int], ...] | None = None  # None: port 80 on each DNS listen address
    address: str | None = None  # the A/AAAA handed out; None: the address the query arrived on
    redirect_to_website: bool = False  # 302 to the verified profile's website instead of a link
    profile_mirrors: dict[str, str] = field(default_factory=dict)  # URL prefix -> replacement prefix
    profile_timeout: float = 5.0  # seconds for one profile fetch
    profile_max_bytes: int = 512 * 1024
    profile_cache_ttl: float = 600.0  # seconds a fetched profile (and its verdict) is reused
    profile_concurrency: int = 8  # profile fetches in flight at once


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    db_url: str | None = None
    listen: tuple[tuple[str, int], ...] = (DEFAULT_LISTEN,)
    upstreams: tuple[tuple[str, int], ...] | None = None  # None: the system's resolvers
    allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    cache_entries: int = 10000
    log_level: str = "INFO"
    default_mode: str = "bns-first"
    namespace_modes: dict[str, str] = field(default_factory=dict)
    icann_tlds: dict[str, bool] = field(default_factory=dict)
    tld_probe_interval: float = 3600.0
    zonefile_sources: tuple[str, ...] = ()
    zonefile_http: str | None = None  # ADDR:PORT to serve verified zone files over HTTP
    run_as_user: str | None = None
    chain: ChainSettings = field(default_factory=ChainSettings)
    web: WebSettings = field(default_factory=WebSettings)
    doh_canary: bool = True  # NXDOMAIN for use-application-dns.net: Firefox keeps the system resolver

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'index.sqlite'}"


def default_data_dir(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bns-resolver"


def parse_hostport(text: str, *, default_port: int) -> tuple[str, int]:
    """'1.2.3.4', '1.2.3.4:53', '[::1]:5354', '::1' → (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    try:
        return host, int(port) if port else default_port
    except ValueError:
        raise ConfigError(f"bad address {text!r}: the port must be a number") from None


def load_settings(config_file: Path | None = None, env: dict[str, str] | None = None,
                  **flags: Any) -> Settings:
    env = dict(os.environ) if env is None else env
    raw: dict[str, Any] = _read_toml(config_file) if config_file else {}
    settings = Settings(data_dir=Path(raw.get("data_dir") or default_data_dir(env)))
    settings = _apply_table(settings, raw)
    settings = _apply_env(settings, env)
    return _apply_flags(settings, flags)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _apply_table(settings: Settings, raw: dict[str, Any]) -> Settings:
    dns = raw.get("dns", {})
    namespaces = raw.get("namespaces", {})
    zonefiles = raw.get("zonefiles", {})
    chain = raw.get("chain", {})
    web = raw.get("web", {})
    changes: dict[str, Any] = {}
    if "db" in raw:
        changes["db_url"] = raw["db"]
    if "log_level" in raw:
        changes["log_level"] = str(raw["log_level"]).upper()
    if "listen" in dns:
        changes["listen"] = tuple(parse_hostport(a, default_port=DNS_PORT) for a in dns["listen"])
    if "upstreams" in dns:
        changes["upstreams"] = tuple(parse_hostport(a, default_port=DNS_PORT) for a in dns["upstreams"])
    for key in ("allow",):
        if key in dns:
            changes[key] = tuple(dns[key])
    for key in ("cache_entries", "run_as_user", "tld_probe_interval", "doh_canary"):
        if key in dns:
            changes[key] = dns[key]
    if "default_mode" in namespaces:
        changes["default_mode"] = namespaces["default_mode"]
    if "modes" in namespaces:
        changes["namespace_modes"] = dict(namespaces["modes"])
    if "icann_tlds" in namespaces:
        changes["icann_tlds"] = {str(k): bool(v) for k, v in namespaces["icann_tlds"].items()}
    if "sources" in zonefiles:
        changes["zonefile_sources"] = tuple(zonefiles["sources"])
    if "serve_http" in zonefiles:
        changes["zonefile_http"] = zonefiles["serve_http"]
    if chain:
        changes["chain"] = _chain_settings(chain)
    if web:
        changes["web"] = _web_settings(web)
    return replace(settings, **changes)


def _web_settings(web: dict[str, Any]) -> WebSettings:
    values = dict(web)
    if "listen" in values:
        values["listen"] = tuple(parse_hostport(a, default_port=HTTP_PORT) for a in values["listen"])
    if "profile_mirrors" in values:
        values["profile_mirrors"] = {str(k): str(v) for k, v in values["profile_mirrors"].items()}
    return WebSettings(**values)


def _chain_settings(chain: dict[str, Any]) -> ChainSettings:
    known = {"bitcoind", "cookie_file", "network", "confirmations", "max_lag", "poll_interval"}
    values = {k: v for k, v in chain.items() if k in known}
    profile = {k: v for k, v in chain.items() if k not in known}
    return ChainSettings(profile=profile, **values)


def _apply_env(settings: Settings, env: dict[str, str]) -> Settings:
    changes: dict[str, Any] = {}
    if env.get("BNS_RESOLVER_DATA_DIR"):
        changes["data_dir"] = Path(env["BNS_RESOLVER_DATA_DIR"])
    if env.get("BNS_RESOLVER_DB"):
        changes["db_url"] = env["BNS_RESOLVER_DB"]
    if env.get("BNS_RESOLVER_LOG_LEVEL"):
        changes["log_level"] = env["BNS_RESOLVER_LOG_LEVEL"].upper()
    if env.get("BNS_RESOLVER_BITCOIND"):
        changes["chain"] = replace(changes.get("chain", settings.chain), bitcoind=env["BNS_RESOLVER_BITCOIND"])
    return replace(settings, **changes)


def _apply_flags(settings: Settings, flags: dict[str, Any]) -> Settings:
    changes: dict[str, Any] = {}
    if flags.get("data_dir"):
        changes["data_dir"] = Path(flags["data_dir"])
    if flags.get("db"):
        changes["db_url"] = flags["db"]
    if flags.get("listen"):
        changes["listen"] = tuple(parse_hostport(a, default_port=DNS_PORT) for a in flags["listen"])
    if flags.get("upstream"):
        changes["upstreams"] = tuple(parse_hostport(a, default_port=DNS_PORT) for a in flags["upstream"])
    if flags.get("allow"):
        changes["allow"] = tuple(flags["allow"])
    if flags.get("log_level"):
        changes["log_level"] = flags["log_level"].upper()
    if flags.get("zonefile_source"):
        changes["zonefile_sources"] = tuple(flags["zonefile_source"])
    if flags.get("web_listen"):
        web_listen = tuple(parse_hostport(a, default_port=HTTP_PORT) for a in flags["web_listen"])
        changes["web"] = replace(settings.web, listen=web_listen)
    chain_changes = {k: flags[k] for k in ("bitcoind", "network") if flags.get(k)}
    if chain_changes:
        changes["chain"] = replace(settings.chain, **chain_changes)
    return replace(settings, **changes)


def system_upstreams(listen: tuple[tuple[str, int], ...], resolv_conf: Path = Path("/etc/resolv.conf")
                     ) -> tuple[tuple[str, int], ...]:
    """The system's resolvers, minus ourselves (so we never forward to our own socket)."""
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return ()
    servers = [line.split()[1] for line in lines if line.startswith("nameserver") and len(line.split()) > 1]
    ours = {(host, port) for host, port in listen}
    return tuple((s, DNS_PORT) for s in servers if (s, DNS_PORT) not in ours)
