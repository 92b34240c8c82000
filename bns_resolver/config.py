"""Settings: one typed, validated object built from defaults, a TOML file, the environment and flags.

Precedence, lowest to highest: built-in defaults, the TOML file (`--config`),
environment variables `BNS_RESOLVER_<KEY>` for the top-level keys, command-line flags.
Every value is checked as it is read: an unknown key, a wrong type or an impossible value
is a ConfigError naming the file (or variable, or flag), the key and the reason, before
anything starts.
"""

from __future__ import annotations

import difflib
import enum
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from bns_resolver import config_values as v
from bns_resolver.errors import ConfigError

DEFAULT_LISTEN = ("127.0.0.1", 5354)
# The status endpoint `bns-resolver status` asks: loopback, on a port the kernel picks (the running
# server records it in its data dir), so it works unprivileged and never collides with another instance.
DEFAULT_METRICS_LISTEN = (("127.0.0.1", 0),)
DNS_PORT = 53
HTTP_PORT = 80
ZONEFILE_HTTP_PORT = 6270
T = TypeVar("T")
P = TypeVar("P")


class Network(enum.StrEnum):
    MAINNET = "mainnet"
    TESTNET = "testnet"
    REGTEST = "regtest"


class NamespaceMode(enum.StrEnum):
    BNS_FIRST = "bns-first"
    BNS_ONLY = "bns-only"
    ICANN_FIRST = "icann-first"


class Rules(enum.StrEnum):
    """Which generation of the reference code to mimic (bns/networks.py `NetworkProfile.rules`)."""

    V22 = "v22"
    V0_14_1 = "0.14.1"
    V0_14_0 = "0.14.0"
    V0_14_0_SQLITE = "0.14.0-sqlite"


class LogLevel(enum.StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"

    @classmethod
    def _missing_(cls, value: object) -> LogLevel | None:
        return cls.__members__.get(str(value).upper())


@dataclass(frozen=True)
class ProfileOverrides:
    """[chain] overrides of the network profile's fields (for test chains); None = the profile's own."""

    first_block: int | None = None
    epoch_ends: tuple[int, ...] | None = None
    magic: bytes | None = None
    p2pkh_version: int | None = None
    p2sh_version: int | None = None
    freeze_height: int | None = None
    import_keyring_size: int | None = None
    namespace_reveal_expire: int | None = None
    name_preorder_expire: int | None = None
    namespace_1char_cost: int | None = None
    rules: Rules | None = None

    @classmethod
    def from_table(cls, raw: Mapping[str, Any], where: str = "[chain]") -> ProfileOverrides:
        table = _Table(dict(raw), where, "chain")
        values = {name: table.take(name, parse) for name, parse in _PROFILE_FIELDS.items()}
        table.refuse_unknown()
        return cls(**{k: val for k, val in values.items() if val is not _MISSING})

    def apply_to(self, profile: P) -> P:
        """The network profile (a bns.networks.NetworkProfile) with these overrides."""
        changes: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)
                                   if getattr(self, f.name) is not None and f.name != "epoch_ends"}
        if self.rules is not None:
            changes["rules"] = self.rules.value
        if self.epoch_ends is not None:
            ends = self.epoch_ends
            epochs = profile.epochs  # type: ignore[attr-defined]
            changes["epochs"] = tuple(replace(e, end_block=ends[i] if i < len(ends) else None)
                                      for i, e in enumerate(epochs))
        return replace(profile, **changes)  # type: ignore[type-var]


_BLOCK = v.integer(minimum=0)
_PROFILE_FIELDS: dict[str, Callable[[Any], Any]] = {
    "first_block": _BLOCK,
    "epoch_ends": v.list_of(_BLOCK, allow_empty=False),
    "magic": v.magic,
    "p2pkh_version": v.integer(0, 255),
    "p2sh_version": v.integer(0, 255),
    "freeze_height": _BLOCK,
    "import_keyring_size": v.integer(minimum=1),
    "namespace_reveal_expire": v.integer(minimum=1),
    "name_preorder_expire": v.integer(minimum=1),
    "namespace_1char_cost": v.integer(minimum=0),
    "rules": v.choice(Rules),
}


@dataclass(frozen=True)
class ChainSettings:
    bitcoind: str | None = None  # http://user:pass@host:port
    cookie_file: Path | None = None
    blocks_dir: Path | None = None  # bitcoind's local blocks/ (blk*.dat): read blocks there, not over RPC
    network: Network = Network.MAINNET
    confirmations: int | None = None
    max_lag: int = 6  # blocks behind the tip before names get SERVFAIL instead of answers
    poll_interval: float = 30.0
    profile: ProfileOverrides = field(default_factory=ProfileOverrides)

    def __post_init__(self) -> None:
        # Built in code (tests, tools) with plain strings and dicts: hold them to the same rules.
        if not isinstance(self.network, Network):
            object.__setattr__(self, "network", _checked("[chain] network", v.choice(Network), self.network))
        if isinstance(self.profile, Mapping):
            object.__setattr__(self, "profile", ProfileOverrides.from_table(self.profile))
        if self.network is Network.TESTNET and self.profile.first_block is None:
            raise ConfigError("[chain] network = \"testnet\": testnet has no BNS deployment of record; "
                              "set [chain] first_block")


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
class LimitSettings:
    """[limits]: what keeps one client, or one flood, from taking the whole server (SECURITY.md).

    The defaults equal the DNS layer's own (tests/test_config.py checks they do not drift).
    """

    responses_per_second: float = 1000.0  # UDP responses per client /24 (IPv6 /56); 0: off; loopback exempt
    slip: int = 2  # every slip-th held-back response goes out as a TC=1 "ask over TCP" reply; 0: none
    tcp_connections: int | None = None  # None: from the descriptor limit (dns/server.py default_tcp_limits)
    tcp_connections_per_client: int | None = None
    unknown_name_fetches_per_second: float = 100.0  # upstream fetches per namespace for names BNS lacks; 0: off
    max_cache_ttl: int = 86400  # a forwarded answer is kept at most this long, whatever its TTL
    serve_stale_for: int = 86400  # an expired forwarded answer may still be served this long (RFC 8767); 0: never
    upstream_attempt_timeout: float = 0.8  # seconds before one upstream try is given up and the next one made
    upstream_deadline: float = 2.5  # seconds for a forwarded query in all, its retries included


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    db_url: str | None = None
    listen: tuple[tuple[str, int], ...] = (DEFAULT_LISTEN,)
    upstreams: tuple[tuple[str, int], ...] | None = None  # None: the system's; (): BNS only, no forwarding
    allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    cache_entries: int = 10000
    log_level: LogLevel = LogLevel.INFO
    default_mode: NamespaceMode = NamespaceMode.BNS_FIRST
    namespace_modes: dict[str, NamespaceMode] = field(default_factory=dict)
    icann_tlds: dict[str, bool] = field(default_factory=dict)
    tld_probe_interval: float = 3600.0
    zonefile_sources: tuple[str, ...] = ()
    zonefile_http: tuple[str, int] | None = None  # serve verified zone files over HTTP here
    run_as_user: str | None = None
    chain: ChainSettings = field(default_factory=ChainSettings)
    web: WebSettings = field(default_factory=WebSettings)
    doh_canary: bool = True  # NXDOMAIN for use-application-dns.net: Firefox keeps the system resolver
    answer_store: bool = True  # answer cache misses from the compiled store (data_dir/answers)
    query_log: bool = False  # [log] queries: one line per query (dns/querylog.py)
    query_log_lines_per_second: int = 1000  # past this, query lines are counted, not written
    metrics_listen: tuple[tuple[str, int], ...] = DEFAULT_METRICS_LISTEN  # /metrics, /healthz, /status.json
    limits: LimitSettings = field(default_factory=LimitSettings)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'index.sqlite'}"


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bns-resolver"


def parse_hostport(text: str, *, default_port: int) -> tuple[str, int]:
    """'1.2.3.4', '1.2.3.4:53', '[::1]:5354', '::1' → (host, port); ConfigError if not."""
    return _checked(f"bad address {text!r}", v.address(default_port, allow_port_zero=True), text)


def _checked(where: str, parse: Callable[[Any], T], value: Any) -> T:
    try:
        return parse(value)
    except v.Invalid as exc:
        raise ConfigError(f"{where}: {exc}") from None


# --- reading a TOML file --------------------------------------------------------------------

class _Missing:
    pass


_MISSING: Any = _Missing()


class _Table:
    """One TOML table being read: known keys are taken and parsed, anything left over is refused."""

    def __init__(self, raw: Any, where: str, name: str = "") -> None:
        self.where, self.name = where, name
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: {self.key('')}: must be a table, got {v.kind(raw)} {raw!r}")
        self.raw: dict[str, Any] = dict(raw)
        self.known: list[str] = []

    def key(self, key: str) -> str:
        return f"[{self.name}] {key}".strip() if self.name else key

    def take(self, key: str, parse: Callable[[Any], T]) -> T:
        self.known.append(key)
        if key not in self.raw:
            return _MISSING  # type: ignore[no-any-return,unused-ignore]  # strict mode only
        return _checked(f"{self.where}: {self.key(key)}", parse, self.raw.pop(key))

    def table(self, key: str) -> _Table:
        self.known.append(key)
        return _Table(self.raw.pop(key, {}), self.where, key if not self.name else f"{self.name}.{key}")

    def refuse_unknown(self) -> None:
        for key in self.raw:
            near = difflib.get_close_matches(key, self.known, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"known keys: {', '.join(self.known)}"
            raise ConfigError(f"{self.where}: {self.key(key)}: unknown key ({hint})")


def load_settings(config_file: Path | None = None, env: Mapping[str, str] | None = None, *,
                  check_environment: bool = True, **flags: Any) -> Settings:
    """The effective settings. `check_environment` also checks this machine: data dir, DB driver."""
    env = os.environ if env is None else env
    settings = Settings(data_dir=default_data_dir(env))
    origins = {"data_dir": "data_dir (default)", "db_url": "db", "bitcoind": "[chain] bitcoind",
               "run_as_user": "[dns] run_as_user",
               "blocks_dir": "[chain] blocks_dir", "tcp_connections": "[limits] tcp_connections"}
    if config_file is not None:
        settings = _from_file(settings, config_file, origins)
    settings = _from_env(settings, env, origins)
    settings = _from_flags(settings, flags, origins)
    _check_whole(settings, origins, check_environment)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _from_file(settings: Settings, path: Path, origins: dict[str, str]) -> Settings:
    top = _Table(_read_toml(path), str(path))
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
    return replace(settings, **{k: val for k, val in changes.items() if val is not _MISSING})


def _dns_table(dns: _Table) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "listen": dns.take("listen", v.list_of(v.address(DNS_PORT, allow_port_zero=True), allow_empty=False)),
        "upstreams": dns.take("upstreams", v.list_of(v.address(DNS_PORT))),
        "allow": dns.take("allow", v.list_of(v.network)),
        "cache_entries": dns.take("cache_entries", v.integer(minimum=1)),
        "tld_probe_interval": dns.take("tld_probe_interval", v.number(1.0, unit=" of seconds")),
        "run_as_user": dns.take("run_as_user", v.string),
        "doh_canary": dns.take("doh_canary", v.boolean),
        "answer_store": dns.take("answer_store", v.boolean),
    }
    dns.refuse_unknown()
    return changes


def _namespaces_table(namespaces: _Table) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "default_mode": namespaces.take("default_mode", v.choice(NamespaceMode)),
        "namespace_modes": namespaces.take("modes", v.table_of(v.namespace_id, v.choice(NamespaceMode))),
        "icann_tlds": namespaces.take("icann_tlds", v.table_of(v.namespace_id, v.boolean)),
    }
    namespaces.refuse_unknown()
    return changes


def _zonefiles_table(zonefiles: _Table) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "zonefile_sources": zonefiles.take("sources", v.list_of(_zonefile_source)),
        "zonefile_http": zonefiles.take("serve_http", v.address(ZONEFILE_HTTP_PORT, allow_port_zero=True)),
    }
    zonefiles.refuse_unknown()
    return changes


def _log_table(log_table: _Table) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "query_log": log_table.take("queries", v.boolean),
        "query_log_lines_per_second": log_table.take("queries_per_second", v.integer(minimum=1)),
    }
    log_table.refuse_unknown()
    return changes


def _metrics_table(metrics: _Table) -> dict[str, Any]:
    # [] turns the endpoint off; `status` then reports only what the database says.
    changes = {"metrics_listen": metrics.take("listen", v.list_of(v.address(HTTP_PORT, allow_port_zero=True)))}
    metrics.refuse_unknown()
    return changes


def _zonefile_source(value: Any) -> str:
    from bns_resolver.zonefiles.sources import parse_source_spec

    spec = v.string(value).strip()
    try:
        parse_source_spec(spec)
    except ConfigError as exc:
        raise v.Invalid(str(exc)) from None
    return spec


def _chain_table(chain: _Table, base: ChainSettings) -> ChainSettings:
    values: dict[str, Any] = {
        "bitcoind": chain.take("bitcoind", v.url("http", "https")),
        "cookie_file": chain.take("cookie_file", v.path),
        "blocks_dir": chain.take("blocks_dir", v.path),
        "network": chain.take("network", v.choice(Network)),
        "confirmations": chain.take("confirmations", v.integer(minimum=0)),
        "max_lag": chain.take("max_lag", v.integer(minimum=0)),
        "poll_interval": chain.take("poll_interval", v.number(0.0, inclusive=False, unit=" of seconds")),
    }
    overrides = {key: chain.raw.pop(key) for key in list(chain.raw) if key in _PROFILE_FIELDS}
    chain.known.extend(_PROFILE_FIELDS)
    chain.refuse_unknown()
    profile = ProfileOverrides.from_table(overrides, chain.where)
    values = {k: val for k, val in values.items() if val is not _MISSING}
    network = values.get("network", base.network)
    if network is Network.TESTNET and profile.first_block is None:
        raise ConfigError(f"{chain.where}: [chain] network = \"testnet\": testnet has no BNS deployment of "
                          "record; set [chain] first_block")
    return replace(base, profile=profile, **values)


def _web_table(web: _Table, base: WebSettings) -> WebSettings:
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
    return replace(base, **{k: val for k, val in values.items() if val is not _MISSING})


MAX_TTL = 2**31 - 1  # RFC 2181 §8: larger TTLs are read as 0


def _limits_table(limits: _Table, base: LimitSettings) -> LimitSettings:
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
    result = replace(base, **{k: val for k, val in values.items() if val is not _MISSING})
    total, per_client = result.tcp_connections, result.tcp_connections_per_client
    if total is not None and per_client is not None and per_client > total:
        raise ConfigError(f"{limits.where}: [limits] tcp_connections_per_client: {per_client} is more than "
                          f"tcp_connections ({total})")
    if result.upstream_attempt_timeout > result.upstream_deadline:
        raise ConfigError(f"{limits.where}: [limits] upstream_attempt_timeout: {result.upstream_attempt_timeout:g} s "
                          f"is longer than upstream_deadline ({result.upstream_deadline:g} s)")
    return result


# --- environment and flags --------------------------------------------------------------------

ENV_VARIABLES = ("BNS_RESOLVER_DATA_DIR", "BNS_RESOLVER_DB", "BNS_RESOLVER_LOG_LEVEL", "BNS_RESOLVER_BITCOIND",
                 "BNS_RESOLVER_WEB_ADDRESS")


def _from_env(settings: Settings, env: Mapping[str, str], origins: dict[str, str]) -> Settings:
    for name in env:
        if name.startswith("BNS_RESOLVER_") and name not in ENV_VARIABLES:
            near = difflib.get_close_matches(name, ENV_VARIABLES, n=1)
            hint = f"did you mean {near[0]}?" if near else f"known: {', '.join(ENV_VARIABLES)}"
            raise ConfigError(f"environment {name}: unknown variable ({hint})")

    def read(name: str, parse: Callable[[Any], T]) -> T | None:
        value = env.get(name)
        return _checked(f"environment {name}", parse, value) if value else None

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
    return None if value is None else _checked(f"--{name.replace('_', '-')} {value!r}", parse, value)


def _flags(flags: Mapping[str, Any], name: str, parse: Callable[[Any], T]) -> tuple[T, ...] | None:
    """A repeatable flag's values (a list), each parsed; None when the flag was not given."""
    values = flags.get(name)
    if values is None:
        return None
    return tuple(_checked(f"--{name.replace('_', '-')} {value!r}", parse, value) for value in values)


def _from_flags(settings: Settings, flags: Mapping[str, Any], origins: dict[str, str]) -> Settings:
    changes: dict[str, Any] = {
        "data_dir": _flag(flags, "data_dir", v.path),
        "db_url": _flag(flags, "db", v.string),
        "listen": _flags(flags, "listen", v.address(DNS_PORT, allow_port_zero=True)),
        "upstreams": _flags(flags, "upstream", v.address(DNS_PORT)),
        "allow": _flags(flags, "allow", v.network),
        "log_level": _flag(flags, "log_level", v.choice(LogLevel)),
        "zonefile_sources": _flags(flags, "zonefile_source", _zonefile_source),
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


# --- the whole, and this machine --------------------------------------------------------------

def _check_whole(settings: Settings, origins: dict[str, str], check_environment: bool) -> None:
    _check_db_url(settings.db_url, origins["db_url"], check_environment)
    chain = settings.chain
    if chain.bitcoind and "@" not in chain.bitcoind.split("//", 1)[-1] and chain.cookie_file is None:
        raise ConfigError(f"{origins['bitcoind']}: the URL has no user:password and [chain] cookie_file is not "
                          "set; bitcoind's RPC needs one of them")
    if check_environment:
        _check_data_dir(settings.data_dir, origins["data_dir"])
        if chain.blocks_dir is not None:
            _check_blocks_dir(chain.blocks_dir, origins["blocks_dir"])
        if settings.run_as_user is not None:
            _checked(origins["run_as_user"], v.user, settings.run_as_user)
        _check_descriptors(settings.limits.tcp_connections, origins["tcp_connections"])


DESCRIPTOR_RESERVE = 64  # the index, zone files, logs and listening sockets


def _check_descriptors(tcp_connections: int | None, where: str) -> None:
    """Each TCP client may need an upstream socket too: two descriptors per connection, plus a reserve."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if tcp_connections is None or soft == resource.RLIM_INFINITY:
        return
    most = (soft - DESCRIPTOR_RESERVE) // 2
    if tcp_connections > most:
        raise ConfigError(f"{where}: {tcp_connections} connections need more file descriptors than this process "
                          f"may open (limit {soft}): at most {max(most, 0)}, or raise the limit "
                          "(systemd LimitNOFILE=, ulimit -n)")


def _check_db_url(db_url: str | None, where: str, import_driver: bool) -> None:
    if db_url is None:
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    example = "e.g. sqlite:////var/lib/bns-resolver/index.sqlite or postgresql+psycopg2://user@host/db"
    try:
        url = make_url(db_url)
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(f"{where}: unknown database kind {url.drivername!r} ({example})") from None
    except ArgumentError:
        raise ConfigError(f"{where}: not a database URL ({example})") from None
    if not import_driver:
        return
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        hint = "pip install 'bns-resolver[postgres]'" if url.get_backend_name() == "postgresql" else "install it"
        raise ConfigError(f"{where}: the database driver {exc.name or url.drivername} is not installed: "
                          f"{hint}") from None


def _check_data_dir(data_dir: Path, where: str) -> None:
    existing = data_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{where}: {existing} exists and is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == data_dir:
            raise ConfigError(f"{where}: {data_dir} is not writable by this user")
        raise ConfigError(f"{where}: {data_dir} cannot be created: {existing} is not writable by this user")


def _check_blocks_dir(blocks_dir: Path, where: str) -> None:
    if not blocks_dir.is_dir():
        raise ConfigError(f"{where}: {blocks_dir} is not a directory (bitcoind's blocks/ folder, holding blk*.dat)")
    if not any(blocks_dir.glob("blk*.dat")):
        # The usual slip: bitcoind's data directory instead of its blocks/ folder.
        hint = f"; did you mean {blocks_dir / 'blocks'}?" if any(blocks_dir.glob("blocks/blk*.dat")) else ""
        raise ConfigError(f"{where}: {blocks_dir} holds no blk*.dat files{hint}")


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
