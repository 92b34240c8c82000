"""The `bns-resolver` command: serve, import-snapshot, lookup, status."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from bns_resolver import __version__
from bns_resolver.config import Settings, load_settings
from bns_resolver.errors import ConfigError, GatewayError

log = logging.getLogger("bns_resolver")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bns-resolver", description="DNS gateway for BNS v1 names")
    parser.add_argument("--version", action="version", version=f"bns-resolver {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = _command(commands, "serve", "answer DNS: BNS names from the index, everything else upstream")
    serve.add_argument("--listen", action="append", metavar="ADDR:PORT", help="repeatable; default 127.0.0.1:5354")
    serve.add_argument("--upstream", action="append", metavar="ADDR[:PORT]", help="repeatable; default: system")
    serve.add_argument("--allow", action="append", metavar="CIDR", help="client networks allowed (repeatable)")
    serve.add_argument("--zonefile-source", action="append", metavar="SPEC", help="dir:PATH, URL template, ...")
    serve.add_argument("--web-listen", action="append", metavar="ADDR[:PORT]",
                       help="web gateway address (repeatable); default port 80 of each --listen address")
    imp = _command(commands, "import-snapshot", "load the BNS v1 final-state export into the index")
    imp.add_argument("source", nargs="?", help="export folder or export-data.tar.gz (default: embedded)")
    sync = _command(commands, "sync", "build the index from Bitcoin through bitcoind, once to the tip")
    sync.add_argument("--bitcoind", metavar="URL", help="e.g. http://user:pass@127.0.0.1:8332")
    sync.add_argument("--network", choices=("mainnet", "testnet", "regtest"))
    sync.add_argument("--zonefile-source", action="append", metavar="SPEC", help="dir:PATH, URL template, ...")
    look = _command(commands, "lookup", "show a name's record and zone file, and whether it verifies")
    look.add_argument("name")
    integrate = _command(commands, "integrate", "print a split-DNS snippet for unbound, dnsmasq, resolved or pihole")
    integrate.add_argument("tool", choices=("unbound", "dnsmasq", "resolved", "pihole"))
    integrate.add_argument("--listen", action="append", metavar="ADDR:PORT", help="bns-resolver's DNS address")
    integrate.add_argument("--upstream", action="append", metavar="ADDR[:PORT]",
                           help="resolver asked whether each namespace is an ICANN TLD; default: system")
    status = _command(commands, "status", "show what the index holds")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _command(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help_text, description=help_text)
    sub.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file")
    sub.add_argument("--data-dir", metavar="DIR", help="where the index lives (created if missing)")
    sub.add_argument("--db", metavar="URL", help="SQLAlchemy URL; overrides the SQLite file in --data-dir")
    sub.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR")
    return sub


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config, **_flags(args))
        _setup_logging(settings.log_level)
        return int(COMMANDS[args.command](settings, args) or 0)
    except GatewayError as exc:
        print(f"bns-resolver: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = ("data_dir", "db", "listen", "upstream", "allow", "log_level", "zonefile_source", "bitcoind",
             "network", "web_listen")
    return {name: getattr(args, name, None) for name in names}


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    from twisted.internet import reactor
    from twisted.internet.error import CannotListenError
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    from bns_resolver.service import (
        GatewayService,
        drop_privileges,
        ensure_embedded_snapshot,
        open_data,
    )

    globalLogBeginner.beginLoggingTo([STDLibLogObserver()], redirectStandardIO=False)
    engine = open_data(settings)
    ensure_embedded_snapshot(engine, settings)
    service = GatewayService(settings, reactor, engine)
    try:
        service.start()
    except CannotListenError as exc:
        raise ConfigError(f"cannot listen on {exc.interface or '*'}:{exc.port}: {exc.socketError}") from None
    drop_privileges(settings.run_as_user, settings.data_dir)
    # Twisted stops the reactor on SIGINT and SIGTERM; stop listening cleanly first.
    reactor.addSystemEventTrigger("before", "shutdown", service.stop)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    log.info("stopped")
    return 0


def cmd_import_snapshot(settings: Settings, args: argparse.Namespace) -> int:
    from bns_resolver.index.snapshot import EMBEDDED_DIR, ExportFiles, import_export
    from bns_resolver.service import open_data

    source = Path(args.source) if args.source else EMBEDDED_DIR
    report = import_export(open_data(settings), ExportFiles.open(source))
    print(f"imported {source}: {report.summary()}")
    for line in report.rejected:
        print(f"  rejected: {line}")
    return 0


def cmd_sync(settings: Settings, _args: argparse.Namespace) -> int:
    from bns_resolver.chainsync import ChainSync, ProgressReporter
    from bns_resolver.service import open_data, subdomain_first_block

    engine = open_data(settings)
    chain_sync = ChainSync(engine, settings.chain)
    reporter = ProgressReporter(chain_sync.virtualchain.target_height())
    chain_sync.on_block = reporter
    try:
        result = chain_sync.sync()
    finally:
        reporter.close()
    print(f"synced {result.processed} blocks; index at block {result.last_block}"
          + ("; BNS v1 froze here, nothing later can change it" if result.reached_end else ""))
    if settings.zonefile_sources:
        print(fetch_zonefiles(engine, settings.zonefile_sources))
    print(index_subdomains(engine, subdomain_first_block(chain_sync)))
    return 0


def index_subdomains(engine: Any, first_block: int) -> str:
    from bns_resolver.index.sync_state import mark_changed
    from bns_resolver.zonefiles.subdomain_index import process_all_subdomains

    report = process_all_subdomains(engine, first_block=first_block)
    mark_changed(engine)
    return f"subdomains: {report.accepted} accepted, {report.rejected} rejected, {len(report.changed)} changed"


def fetch_zonefiles(engine: Any, specs: tuple[str, ...]) -> str:
    from bns_resolver.zonefiles.fetcher import ZoneFileFetcher
    from bns_resolver.zonefiles.sources import build_sources

    report = ZoneFileFetcher(engine, build_sources(specs)).run_round()
    return (f"zone files: {len(report.stored)} fetched and verified, {len(report.rejected)} rejected, "
            f"{len(report.still_missing)} still missing")


def cmd_lookup(settings: Settings, args: argparse.Namespace) -> int:
    from bns_resolver.lookup_report import describe_name
    from bns_resolver.service import open_data

    text, found = describe_name(open_data(settings), args.name.lower().rstrip("."))
    print(text)
    return 0 if found else 1


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from bns_resolver.lookup_report import index_status
    from bns_resolver.service import open_data

    status = index_status(open_data(settings), settings)
    if args.json:
        print(json.dumps(status, sort_keys=True))
    else:
        for key, value in status.items():
            print(f"{key:>16}: {value}")
    return 0


def cmd_integrate(settings: Settings, args: argparse.Namespace) -> int:
    from bns_resolver.index.lookup import IndexReader
    from bns_resolver.config import system_upstreams
    from bns_resolver.integrate import gather, render, upstream_tld_probe
    from bns_resolver.service import ensure_embedded_snapshot, open_data

    engine = open_data(settings)
    ensure_embedded_snapshot(engine, settings)
    probe = upstream_tld_probe(settings.upstreams or system_upstreams(settings.listen))
    print(render(args.tool, gather(IndexReader(engine), settings, probe)), end="")
    return 0


COMMANDS = {
    "serve": cmd_serve,
    "import-snapshot": cmd_import_snapshot,
    "sync": cmd_sync,
    "lookup": cmd_lookup,
    "status": cmd_status,
    "integrate": cmd_integrate,
}

if __name__ == "__main__":
    sys.exit(main())
