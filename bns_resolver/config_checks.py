"""Checks of the settings as a whole, and against this machine: database driver, data dir, bitcoind's
block files, the file-descriptor limit. Each failure is one ConfigError naming where the value came from."""

from __future__ import annotations

import os
from pathlib import Path

from bns_resolver import config_values as v
from bns_resolver import descriptors
from bns_resolver.config_table import checked
from bns_resolver.errors import ConfigError
from bns_resolver.settings import Settings

def check_whole(settings: Settings, origins: dict[str, str], check_environment: bool) -> None:
    """`origins` names where each checked value came from; `check_environment` adds this machine's checks."""
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
            checked(origins["run_as_user"], v.user, settings.run_as_user)
        _check_descriptors(settings.limits.tcp_connections, origins["tcp_connections"])


def _check_descriptors(tcp_connections: int | None, where: str) -> None:
    """A configured TCP cap must fit the process's descriptor share (descriptors.py)."""
    soft = descriptors.soft_limit()
    if tcp_connections is None or soft is None:
        return
    most = descriptors.share(soft)
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
