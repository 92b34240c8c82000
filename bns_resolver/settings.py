"""The settings every part of bns-resolver reads: one typed, frozen Settings object and its parts.

Built by config.py from defaults, a TOML file, the environment and flags; values are checked as
they are read, so a Settings object always holds usable values.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from bns_resolver import config_values as v
from bns_resolver.config_table import Table, checked, given
from bns_resolver.errors import ConfigError

DEFAULT_LISTEN = ("127.0.0.1", 5354)
# The status endpoint `bns-resolver status` asks: loopback, on a port the kernel picks (the running
# server records it in its data dir), so it works unprivileged and never collides with another instance.
DEFAULT_METRICS_LISTEN = (("127.0.0.1", 0),)
DNS_PORT = 53
HTTP_PORT = 80
ZONEFILE_HTTP_PORT = 6270
WORKERS_AUTO = "auto"  # [dns] workers: one DNS process per CPU this process may run on
MAX_WORKERS = 256  # far past any core count we serve on; a typo like 1000 is refused, not forked
MAX_COMPILE_PROCESSES = 64
AUTO_COMPILE_PROCESSES = 4  # "auto": one per usable CPU, at most this many (more buys little: one writer)
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
        table = Table(dict(raw), where, "chain")
        values = {name: table.take(name, parse) for name, parse in PROFILE_FIELDS.items()}
        table.refuse_unknown()
        return cls(**given(values))

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
PROFILE_FIELDS: dict[str, Callable[[Any], Any]] = {
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
            object.__setattr__(self, "network", checked("[chain] network", v.choice(Network), self.network))
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
    workers: int | str = 1  # DNS processes sharing the listen sockets (SO_REUSEPORT); or WORKERS_AUTO
    compile_processes: int | str = WORKERS_AUTO  # processes building a full compile's subdomain entries
    query_log: bool = False  # [log] queries: one line per query (dns/querylog.py)
    query_log_lines_per_second: int = 1000  # past this, query lines are counted, not written
    metrics_listen: tuple[tuple[str, int], ...] = DEFAULT_METRICS_LISTEN  # /metrics, /healthz, /status.json
    limits: LimitSettings = field(default_factory=LimitSettings)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'index.sqlite'}"

    @property
    def dns_processes(self) -> int:
        """How many processes answer DNS: `serve` itself and workers - 1 DNS-only workers."""
        if isinstance(self.workers, int):
            return self.workers
        return usable_cpus()

    @property
    def store_compile_processes(self) -> int:
        """How many processes build subdomain entries when the answer store is compiled whole."""
        if isinstance(self.compile_processes, int):
            return self.compile_processes
        return min(usable_cpus(), AUTO_COMPILE_PROCESSES)


def usable_cpus() -> int:
    """CPUs this process may run on (a container's or taskset's share, not the whole machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bns-resolver"


def parse_hostport(text: str, *, default_port: int) -> tuple[str, int]:
    """'1.2.3.4', '1.2.3.4:53', '[::1]:5354', '::1' → (host, port); ConfigError if not."""
    return checked(f"bad address {text!r}", v.address(default_port, allow_port_zero=True), text)
