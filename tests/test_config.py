"""Settings from defaults, TOML, environment and flags, in that order of precedence; mistakes refused."""

from __future__ import annotations

import os
import re
import resource
from pathlib import Path

import pytest

from bns_resolver.config import (
    ChainSettings,
    LimitSettings,
    LogLevel,
    NamespaceMode,
    Network,
    ProfileOverrides,
    Rules,
    Settings,
    effective_upstreams,
    load_settings,
    parse_hostport,
    system_upstreams,
)
from bns_resolver import descriptors
from bns_resolver.config_render import render_settings
from bns_resolver.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_defaults_are_loopback_only_on_5354(tmp_path: Path) -> None:
    """Out of the box: 127.0.0.1:5354, loopback clients only, SQLite in the data dir."""
    settings = load_settings(env={"XDG_DATA_HOME": str(tmp_path)})
    assert settings.listen == (("127.0.0.1", 5354),)
    assert settings.allow == ("127.0.0.0/8", "::1/128")
    assert settings.database_url == f"sqlite:///{tmp_path / 'bns-resolver' / 'index.sqlite'}"


def test_flags_override_environment_override_file(tmp_path: Path) -> None:
    """TOML < BNS_RESOLVER_* < flags; values come out typed."""
    config = tmp_path / "c.toml"
    config.write_text('db = "sqlite:///file.db"\nlog_level = "debug"\n[dns]\nlisten = ["0.0.0.0:53"]\n'
                      'upstreams = ["9.9.9.9"]\n[namespaces]\nmodes = { id = "icann-first" }\n'
                      '[chain]\nnetwork = "testnet"\nfirst_block = 12\nrules = "0.14.1"\n')
    settings = load_settings(config, env={"BNS_RESOLVER_DB": "sqlite:///env.db"},
                             listen=["[::1]:5300"], data_dir=str(tmp_path))
    assert settings.db_url == "sqlite:///env.db"
    assert settings.listen == (("::1", 5300),)
    assert settings.upstreams == (("9.9.9.9", 53),)
    assert settings.log_level is LogLevel.DEBUG
    assert settings.namespace_modes == {"id": NamespaceMode.ICANN_FIRST}
    assert settings.chain.network is Network.TESTNET
    assert settings.chain.profile == ProfileOverrides(first_block=12, rules=Rules.V0_14_1)


def test_profile_overrides_reach_the_network_profile() -> None:
    """Typed [chain] overrides land on the NetworkProfile the engine reads."""
    from bns_resolver.chainsync import build_profile

    chain = ChainSettings(network="regtest", profile={"rules": "0.14.1", "import_keyring_size": 5,  # type: ignore[arg-type]
                                                      "epoch_ends": [300], "magic": "x1"})
    profile = build_profile(chain)
    assert (profile.rules, profile.import_keyring_size, profile.magic) == ("0.14.1", 5, b"x1")
    assert profile.epochs[0].end_block == 300 and profile.epochs[1].end_block is None
    assert profile.first_block == 256 and profile.name == "regtest"


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    """Broken TOML and bad ports name the problem."""
    config = tmp_path / "c.toml"
    config.write_text("[dns\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config, env={})
    with pytest.raises(ConfigError, match="port must be a number"):
        parse_hostport("1.2.3.4:dns", default_port=53)


# (TOML, the key the message must name, words of the reason). Every case from issue 9's "Why".
BROKEN_FILES = [
    ('[dns]\nlisen = ["127.0.0.1:53"]', "[dns] lisen", "unknown key (did you mean 'listen'?)"),
    ('[namespaces]\nmode = { id = "bns-only" }', "[namespaces] mode", "unknown key"),
    ('[zonefiles]\nsource = ["dir:/tmp"]', "[zonefiles] source", "unknown key"),
    ("[web2]\nenabled = true", "web2", "unknown key"),
    ('log_level = "LOUD"', "log_level", "must be one of DEBUG, INFO, WARNING, ERROR"),
    ("[dns]\ncache_entries = 0", "[dns] cache_entries", "at least 1"),
    ('[dns]\ncache_entries = "lots"', "[dns] cache_entries", "must be an integer"),
    ("[dns]\ncache_entries = true", "[dns] cache_entries", "must be an integer"),
    ("[dns]\ntld_probe_interval = 0", "[dns] tld_probe_interval", "at least 1"),
    ('[dns]\nupstreams = ["nohost.invalid"]', "[dns] upstreams", "not an IP address"),
    ('[dns]\nupstreams = ["1.2.3.4:99999"]', "[dns] upstreams", "1-65535"),
    ('[dns]\nlisten = [""]', "[dns] listen", "must not be empty"),
    ("[dns]\nlisten = []", "[dns] listen", "must not be empty"),
    ('[dns]\nlisten = ["[::1]53"]', "[dns] listen", "not ADDR[:PORT]"),
    ('[dns]\nallow = ["10.0.0.0/33"]', "[dns] allow", "CIDR"),
    ("dns = 5", "[dns]", "must be a table"),
    ('[dns]\nrun_as_user = "nosuchuser"', "[dns] run_as_user", "no such user"),
    ('[dns]\ndoh_canary = "no"', "[dns] doh_canary", "true or false"),
    ("[dns]\nworkers = 0", "[dns] workers", 'must be at least 1, got 0 (or "auto")'),
    ("[dns]\nworkers = -2", "[dns] workers", "must be at least 1"),
    ("[dns]\nworkers = 1000", "[dns] workers", "must be at most 256"),
    ('[dns]\nworkers = "many"', "[dns] workers", 'must be an integer or "auto", got \'many\''),
    ("[dns]\nworkers = 2.5", "[dns] workers", "must be an integer"),
    ("[dns]\nworkers = true", "[dns] workers", "must be an integer"),
    ("[dns]\ncompile_processes = 0", "[dns] compile_processes", 'must be at least 1, got 0 (or "auto")'),
    ("[dns]\ncompile_processes = 65", "[dns] compile_processes", "must be at most 64"),
    ('[dns]\ncompile_processes = "all"', "[dns] compile_processes", 'must be an integer or "auto"'),
    ('[namespaces]\nicann_tlds = ["id"]', "[namespaces] icann_tlds", "must be a table"),
    ('[namespaces]\nicann_tlds = { id = "yes" }', "[namespaces] icann_tlds", "id: must be true or false"),
    ('[namespaces]\ndefault_mode = "bns-last"', "[namespaces] default_mode", "bns-first, bns-only, icann-first"),
    ('[namespaces]\nmodes = { id = "loud" }', "[namespaces] modes", "id: must be one of"),
    ('[zonefiles]\nsources = ["ftp://mirror/{hash}"]', "[zonefiles] sources", "expected dir:PATH"),
    ('[zonefiles]\nserve_http = "localhost:6270"', "[zonefiles] serve_http", "not an IP address"),
    ('[chain]\nnetwork = "signet"', "[chain] network", "mainnet, testnet, regtest"),
    ('[chain]\nnetwork = "testnet"', "[chain] network", "set [chain] first_block"),
    ("[chain]\nfirst_blok = 1", "[chain] first_blok", "did you mean 'first_block'"),
    ('[chain]\nmagic = "abc"', "[chain] magic", "exactly 2 ASCII characters"),
    ('[chain]\nrules = "v23"', "[chain] rules", "v22, 0.14.1"),
    ("[chain]\np2pkh_version = 256", "[chain] p2pkh_version", "at most 255"),
    ("[chain]\nepoch_ends = 5", "[chain] epoch_ends", "must be a list"),
    ('[chain]\nbitcoind = "localhost:8332"', "[chain] bitcoind", "not a http or https URL"),
    ('[chain]\nbitcoind = "http://127.0.0.1:8332"', "[chain] bitcoind", "no user:password"),
    ("[chain]\npoll_interval = 0", "[chain] poll_interval", "more than 0"),
    ("[chain]\nmax_lag = -1", "[chain] max_lag", "at least 0"),
    ('[web]\nenabled = "yes"', "[web] enabled", "true or false"),
    ('[web]\nlisten = ["0.0.0.0:99999"]', "[web] listen", "-65535, got 99999"),
    ('[web]\naddress = "gateway.lan"', "[web] address", "not an IP address"),
    ("[web]\nredirect_to_website = 1", "[web] redirect_to_website", "true or false"),
    ('[web]\nprofile_mirrors = { "https://gaia.blockstack.org/hub/" = "ftp://cache/" }',
     "[web] profile_mirrors", "not a http or https URL"),
    ("[web]\nprofile_timeout = 0", "[web] profile_timeout", "more than 0"),
    ("[web]\nprofile_max_bytes = 0", "[web] profile_max_bytes", "at least 1"),
    ("[web]\nprofile_cache_ttl = -1", "[web] profile_cache_ttl", "at least 0"),
    ("[web]\nprofile_concurrency = 0", "[web] profile_concurrency", "at least 1"),
    ('[log]\nqueries = "yes"', "[log] queries", "true or false"),
    ("[log]\nqueries_per_second = 0", "[log] queries_per_second", "at least 1"),
    ("[log]\nquery = true", "[log] query", "did you mean 'queries'"),
    ('[metrics]\nlisten = "127.0.0.1:9153"', "[metrics] listen", "must be a list"),
    ('[metrics]\nlisten = ["localhost:9153"]', "[metrics] listen", "not an IP address"),
    ("[limits]\nresponses_per_second = -1", "[limits] responses_per_second", "at least 0"),
    ("[limits]\nslip = 1.5", "[limits] slip", "must be an integer"),
    ("[limits]\ntcp_connections = 0", "[limits] tcp_connections", "at least 1"),
    ("[limits]\ntcp_connections = 4\ntcp_connections_per_client = 8", "[limits] tcp_connections_per_client",
     "is more than tcp_connections (4)"),
    ("[limits]\nmax_cache_ttl = 2147483648", "[limits] max_cache_ttl", "at most 2147483647"),
    ("[limits]\nserve_stale_for = -5", "[limits] serve_stale_for", "at least 0"),
    ("[limits]\nupstream_deadline = 0", "[limits] upstream_deadline", "more than 0 of seconds"),
    ("[limits]\nupstream_attempt_timeout = 3.0", "[limits] upstream_attempt_timeout",
     "longer than upstream_deadline (2.5 s)"),
    ("[limits]\nrate = 10", "[limits] rate", "unknown key"),
    ('db = "not a url"', "db", "not a database URL"),
    ('db = "postgresql+nosuchdriver://u@h/db"', "db", "unknown database kind"),
    ('db = "mysql+pymysql://u@h/db"', "db", "driver pymysql is not installed"),
]


@pytest.mark.parametrize(("text", "key", "reason"), BROKEN_FILES, ids=[case[1] + ":" + case[2][:20]
                                                                          for case in BROKEN_FILES])
def test_broken_key_is_one_line_naming_file_and_key(tmp_path: Path, text: str, key: str, reason: str) -> None:
    """Each mistake fails at load: `FILE: KEY: reason`, one line."""
    config = tmp_path / "c.toml"
    config.write_text(text + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={}, data_dir=str(tmp_path / "data"))
    message = str(caught.value)
    assert message.startswith(f"{config}: "), message
    assert key in message and reason in message and "\n" not in message, message


BROKEN_FLAGS = [
    ({"upstream": ["nohost.invalid"]}, "--upstream 'nohost.invalid'", "not an IP address"),
    ({"upstream": ["1.2.3.4:99999"]}, "--upstream '1.2.3.4:99999'", "1-65535"),
    ({"listen": [""]}, "--listen ''", "must not be empty"),
    ({"allow": ["10.0.0.0/33"]}, "--allow '10.0.0.0/33'", "CIDR"),
    ({"log_level": "LOUD"}, "--log-level 'LOUD'", "must be one of"),
    ({"network": "signet"}, "--network 'signet'", "must be one of"),
    ({"network": "testnet"}, "--network testnet", "set [chain] first_block"),
    ({"web_listen": ["gw:80"]}, "--web-listen 'gw:80'", "not an IP address"),
    ({"bitcoind": "127.0.0.1:8332"}, "--bitcoind '127.0.0.1:8332'", "not a http or https URL"),
    ({"db": "nonsense"}, "--db 'nonsense'", "not a database URL"),
    ({"zonefile_source": ["gopher://x"]}, "--zonefile-source 'gopher://x'", "expected dir:PATH"),
]


@pytest.mark.parametrize(("flags", "prefix", "reason"), BROKEN_FLAGS, ids=[c[1] for c in BROKEN_FLAGS])
def test_broken_flag_names_the_flag(tmp_path: Path, flags: dict[str, object], prefix: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={}, data_dir=str(tmp_path), **flags)
    assert str(caught.value).startswith(prefix) and reason in str(caught.value), str(caught.value)


def test_broken_environment_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^environment BNS_RESOLVER_LOG_LEVEL: must be one of"):
        load_settings(env={"BNS_RESOLVER_LOG_LEVEL": "LOUD"}, data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"^environment BNS_RESOLVER_WEB_ADDRESS: 'gw' is not an IP address"):
        load_settings(env={"BNS_RESOLVER_WEB_ADDRESS": "gw"}, data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"^environment BNS_RESOLVER_DATADIR: unknown variable \(did you mean "
                                          r"BNS_RESOLVER_DATA_DIR\?\)"):
        load_settings(env={"BNS_RESOLVER_DATADIR": "/srv"}, data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"^environment BNS_RESOLVER_NATIVE='off': expected 0 \(the C extension"):
        load_settings(env={"BNS_RESOLVER_NATIVE": "off"}, data_dir=str(tmp_path))
    load_settings(env={"BNS_RESOLVER_NATIVE": "0"}, data_dir=str(tmp_path))  # known, and well-formed


def test_data_dir_must_be_a_usable_directory(tmp_path: Path) -> None:
    """A file where the data dir should be, or below it, is refused at load."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"^--data-dir '.*file': .*file exists and is not a directory"):
        load_settings(env={}, data_dir=str(blocker))
    with pytest.raises(ConfigError, match="is not a directory"):
        load_settings(env={}, data_dir=str(blocker / "below"))
    assert load_settings(env={}, data_dir=str(tmp_path / "new" / "dir")).data_dir == tmp_path / "new" / "dir"


def test_read_only_data_dir_is_refused(tmp_path: Path) -> None:
    """A data dir this user cannot write (or create) is refused before anything starts."""
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o555)
    if os.access(read_only, os.W_OK):  # root: use a directory not even root may write
        read_only = Path("/proc/1")
        if os.access(read_only, os.W_OK):
            pytest.skip("no read-only directory available")
    with pytest.raises(ConfigError, match=r"^--data-dir .*: .* is not writable by this user"):
        load_settings(env={}, data_dir=str(read_only / "index"))


def test_env_and_home_are_expanded(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('data_dir = "~/bns"\n[chain]\ncookie_file = "~/.bitcoin/.cookie"\n'
                      'bitcoind = "http://127.0.0.1:8332"\n')
    settings = load_settings(config, env={}, check_environment=False)
    assert settings.data_dir == Path.home() / "bns"
    assert settings.chain.cookie_file == Path.home() / ".bitcoin" / ".cookie"


def test_rendered_settings_load_back_the_same(tmp_path: Path) -> None:
    """`config check` prints TOML that is itself a valid config with the same effect."""
    config = tmp_path / "c.toml"
    config.write_text('[dns]\nlisten = ["[::1]:5354", "127.0.0.1:53"]\nupstreams = []\n'
                      '[namespaces]\nicann_tlds = { podcast = false }\n[zonefiles]\nserve_http = "127.0.0.1"\n'
                      '[chain]\nnetwork = "regtest"\nmagic = "id"\nepoch_ends = [300, 400]\n'
                      '[web]\nprofile_mirrors = { "https://gaia.blockstack.org/hub/" = "http://127.0.0.1:9/" }\n'
                      '[log]\nqueries = true\nqueries_per_second = 50\n[metrics]\nlisten = ["[::1]:9153"]\n'
                      '[limits]\nresponses_per_second = 20.5\ntcp_connections = 40\nserve_stale_for = 0\n')
    first = load_settings(config, env={}, data_dir=str(tmp_path))
    rendered = tmp_path / "rendered.toml"
    rendered.write_text(render_settings(first))
    again = load_settings(rendered, env={})
    assert again == replace_db(first, again.db_url)


def test_compile_processes_auto_and_set(tmp_path: Path) -> None:
    """[dns] compile_processes: "auto" (one per usable CPU, at most 4) unless set; rendered for workers."""
    import os

    config = tmp_path / "c.toml"
    default = load_settings(None, env={}, data_dir=str(tmp_path))
    assert default.store_compile_processes == min(len(os.sched_getaffinity(0)), 4)
    config.write_text("[dns]\ncompile_processes = 1\n")
    settings = load_settings(config, env={}, data_dir=str(tmp_path))
    assert settings.store_compile_processes == 1
    rendered = tmp_path / "rendered.toml"
    rendered.write_text(render_settings(settings))
    assert load_settings(rendered, env={}).compile_processes == 1


def test_workers_count_auto_and_default(tmp_path: Path) -> None:
    """[dns] workers: 1 (one process) unless set; "auto" is one DNS process per usable CPU."""
    import os

    config = tmp_path / "c.toml"
    assert load_settings(None, env={}, data_dir=str(tmp_path)).dns_processes == 1
    config.write_text("[dns]\nworkers = 3\n")
    assert load_settings(config, env={}, data_dir=str(tmp_path)).dns_processes == 3
    config.write_text('[dns]\nworkers = "AUTO"\n')
    settings = load_settings(config, env={}, data_dir=str(tmp_path))
    assert settings.workers == "auto" and settings.dns_processes == len(os.sched_getaffinity(0))
    rendered = tmp_path / "rendered.toml"
    rendered.write_text(render_settings(settings))
    assert 'workers = "auto"' in rendered.read_text()
    assert load_settings(rendered, env={}).workers == "auto"


def test_settings_handed_over_as_text_load_the_same(tmp_path: Path) -> None:
    """What serve hands its DNS workers: its effective settings, rendered, loaded without a file."""
    config = tmp_path / "c.toml"
    config.write_text('[dns]\nworkers = 2\nupstreams = ["192.0.2.53"]\n[log]\nqueries = true\n'
                      '[limits]\nresponses_per_second = 7.0\n')
    first = load_settings(config, env={}, data_dir=str(tmp_path), listen=["127.0.0.1:0"])
    again = load_settings(None, env={}, config_text=render_settings(first))
    assert again == replace_db(first, again.db_url)
    with pytest.raises(ConfigError, match="settings handed over by serve is not valid TOML"):
        load_settings(None, env={}, config_text="[dns")


def test_limit_defaults_are_the_dns_layers_own() -> None:
    """[limits] defaults equal what the DNS classes use when given nothing, so the two cannot drift apart."""
    from bns_resolver.dns.cache import MAX_POSITIVE_TTL, STALE_FOR
    from bns_resolver.dns.forwarder import Forwarder
    from bns_resolver.dns.routing import UNKNOWN_NAME_FETCH_RATE
    from bns_resolver.dns.ratelimit import DEFAULT_RATE, DEFAULT_SLIP
    from bns_resolver.dns.server import default_tcp_limits

    limits = LimitSettings()
    forwarder = Forwarder([])
    assert (limits.responses_per_second, limits.slip) == (DEFAULT_RATE, DEFAULT_SLIP)
    assert (limits.max_cache_ttl, limits.serve_stale_for) == (MAX_POSITIVE_TTL, STALE_FOR)
    assert limits.unknown_name_fetches_per_second == UNKNOWN_NAME_FETCH_RATE
    assert (limits.upstream_attempt_timeout, limits.upstream_deadline) == (forwarder.attempt_timeout,
                                                                            forwarder.deadline)
    assert limits.tcp_connections is None and limits.tcp_connections_per_client is None  # from the rlimit
    assert default_tcp_limits()[0] <= (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - descriptors.RESERVE) // 2


def test_tcp_connections_past_the_descriptor_limit_are_refused(tmp_path: Path) -> None:
    """More TCP connections than this process has descriptors for fails at load, naming the limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        pytest.skip("no descriptor limit")
    most = (soft - descriptors.RESERVE) // 2
    config = _write(tmp_path / "c.toml", f"[limits]\ntcp_connections = {most + 1}\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(config))}: \[limits\] tcp_connections: {most + 1} "
                                          rf"connections need more file descriptors .* at most {most}, or raise"):
        load_settings(config, env={}, data_dir=str(tmp_path / "data"))
    _write(config, f"[limits]\ntcp_connections = {most}\n")
    assert load_settings(config, env={}, data_dir=str(tmp_path / "data")).limits.tcp_connections == most


def replace_db(settings: Settings, db_url: str | None) -> Settings:
    from dataclasses import replace

    return replace(settings, db_url=db_url)


def test_example_config_loads(tmp_path: Path) -> None:
    """deploy/config.example.toml is valid, also with every commented `key = value` switched on."""
    example = (REPO / "deploy" / "config.example.toml").read_text()
    assert load_settings(_write(tmp_path / "a.toml", example), env={}, check_environment=False)
    enabled = "\n".join(line[2:] if line.startswith("# ") and " = " in line and not line.startswith("#  ")
                        else line for line in example.splitlines())
    settings = load_settings(_write(tmp_path / "b.toml", enabled), env={}, check_environment=False)
    assert settings.chain.bitcoind and settings.zonefile_http


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_system_upstreams_exclude_ourselves(tmp_path: Path) -> None:
    """Never forward to our own listening address (also not via a wildcard listen address)."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\nnameserver 192.0.2.53\n# comment\n")
    assert system_upstreams((("127.0.0.1", 53),), resolv) == (("192.0.2.53", 53),)
    assert system_upstreams((("0.0.0.0", 53),), resolv) == (("192.0.2.53", 53),)
    assert system_upstreams((("127.0.0.1", 5354),), resolv) == (("127.0.0.1", 53), ("192.0.2.53", 53))


def test_no_usable_upstream_refuses_with_what_to_pass(tmp_path: Path) -> None:
    """resolv.conf naming only ourselves, or an upstream that is our own socket: say --upstream."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    alone = Settings(data_dir=tmp_path, listen=(("127.0.0.1", 53),))
    with pytest.raises(ConfigError, match=r"no upstream resolver .* pass --upstream"):
        effective_upstreams(alone, resolv)
    looping = Settings(data_dir=tmp_path, listen=(("0.0.0.0", 5354),), upstreams=(("127.0.0.1", 5354),))
    with pytest.raises(ConfigError, match=r"own listen address: forwarding to it would loop"):
        effective_upstreams(looping, resolv)
    bns_only = Settings(data_dir=tmp_path, listen=(("127.0.0.1", 53),), upstreams=())
    assert effective_upstreams(bns_only, resolv) == ()
