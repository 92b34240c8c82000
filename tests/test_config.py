"""Settings from defaults, TOML, environment and flags, in that order of precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from bns_resolver.config import load_settings, parse_hostport, system_upstreams
from bns_resolver.errors import ConfigError


def test_defaults_are_loopback_only_on_5354(tmp_path: Path) -> None:
    """Out of the box: 127.0.0.1:5354, loopback clients only, SQLite in the data dir."""
    settings = load_settings(env={"XDG_DATA_HOME": str(tmp_path)})
    assert settings.listen == (("127.0.0.1", 5354),)
    assert settings.allow == ("127.0.0.0/8", "::1/128")
    assert settings.database_url == f"sqlite:///{tmp_path / 'bns-resolver' / 'index.sqlite'}"


def test_flags_override_environment_override_file(tmp_path: Path) -> None:
    """TOML < BNS_RESOLVER_* < flags."""
    config = tmp_path / "c.toml"
    config.write_text('db = "sqlite:///file.db"\nlog_level = "debug"\n[dns]\nlisten = ["0.0.0.0:53"]\n'
                      'upstreams = ["9.9.9.9"]\n[chain]\nnetwork = "testnet"\nfirst_block = 12\n')
    settings = load_settings(config, env={"BNS_RESOLVER_DB": "sqlite:///env.db"},
                             listen=["[::1]:5300"], data_dir=str(tmp_path))
    assert settings.db_url == "sqlite:///env.db"
    assert settings.listen == (("::1", 5300),)
    assert settings.upstreams == (("9.9.9.9", 53),)
    assert settings.log_level == "DEBUG"
    assert settings.chain.network == "testnet" and settings.chain.profile == {"first_block": 12}


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    """Broken TOML and bad ports name the problem."""
    config = tmp_path / "c.toml"
    config.write_text("[dns\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config, env={})
    with pytest.raises(ConfigError, match="port must be a number"):
        parse_hostport("1.2.3.4:dns", default_port=53)


def test_system_upstreams_exclude_ourselves(tmp_path: Path) -> None:
    """Never forward to our own listening address."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\nnameserver 192.0.2.53\n# comment\n")
    assert system_upstreams((("127.0.0.1", 53),), resolv) == (("192.0.2.53", 53),)
    assert system_upstreams((("127.0.0.1", 5354),), resolv) == (("127.0.0.1", 53), ("192.0.2.53", 53))
