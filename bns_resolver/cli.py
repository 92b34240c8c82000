"""The `bns-resolver` command: serve, import-snapshot, sync, lookup, status, integrate, config check."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bns_resolver import __version__
from bns_resolver.config import Settings, default_data_dir, load_settings
from bns_resolver.errors import ConfigError, GatewayError, IndexDamagedError
from bns_resolver.workers import WORKER_COMMAND

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from twisted.internet.error import CannotListenError

log = logging.getLogger("bns_resolver")
# The final BNS v1 state, as published for the Stacks 2.0 migration (what stacks-blockchain-api imports).
EXPORT_URL = "https://storage.googleapis.com/blockstack-v1-migration-data/export-data.tar.gz"


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
    serve.add_argument("--query-log", action="store_true", default=None,
                       help="log one line per query (client, name, type, rcode, EDE, source, µs)")
    serve.add_argument("--metrics-listen", action="append", metavar="ADDR[:PORT]",
                       help="/metrics, /healthz and /status.json here (repeatable); default 127.0.0.1, any free port")
    imp = _command(commands, "import-snapshot", "load the BNS v1 final-state export into the index")
    imp.add_argument("source", nargs="?",
                     help="export folder, export-data.tar.gz or its http(s) URL (default: the embedded export)")
    imp.add_argument("--sha256", metavar="HEX", help="the tarball's pinned SHA-256, checked before anything is "
                     "loaded (without it a URL's chainstate.txt and name_zonefiles.txt must be the production ones)")
    sync = _command(commands, "sync", "build the index from Bitcoin through bitcoind, once to the tip")
    sync.add_argument("--bitcoind", metavar="URL", help="e.g. http://user:pass@127.0.0.1:8332")
    sync.add_argument("--network", choices=("mainnet", "testnet", "regtest"))
    sync.add_argument("--bitcoind-blocks-dir", metavar="PATH",
                      help="bitcoind's local blocks/ folder: read blk*.dat there instead of fetching blocks over RPC")
    sync.add_argument("--zonefile-source", action="append", metavar="SPEC", help="dir:PATH, URL template, ...")
    compile_command = _command(commands, "compile",
                               "rebuild the compiled answer store from the index (serve does it when stale)")
    compile_command.add_argument("--processes", type=_positive_int, metavar="N",
                                 help="processes building subdomain entries (default: [dns] compile_processes, "
                                      "one per core, at most 4)")
    look = _command(commands, "lookup", "show a name's record and zone file, and whether it verifies")
    look.add_argument("name")
    integrate = _command(commands, "integrate", "print a split-DNS snippet for unbound, dnsmasq, resolved or pihole")
    integrate.add_argument("tool", choices=("unbound", "dnsmasq", "resolved", "pihole"))
    integrate.add_argument("--listen", action="append", metavar="ADDR:PORT", help="bns-resolver's DNS address")
    integrate.add_argument("--upstream", action="append", metavar="ADDR[:PORT]",
                           help="resolver asked whether each namespace is an ICANN TLD; default: system")
    status = _command(commands, "status", "show the running server (if any) and what the index holds")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    config = commands.add_parser("config", help="check a configuration file",
                                 description="check a configuration file")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate FILE and print the effective settings",
                                       description="validate FILE and print the effective settings (file, "
                                                   "then BNS_RESOLVER_* environment) as TOML")
    check.add_argument("config", type=Path, metavar="FILE", help="TOML configuration file")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _command(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
    sub.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file")
    sub.add_argument("--data-dir", metavar="DIR", help="where the index lives (created if missing)")
    sub.add_argument("--db", metavar="URL", help="SQLAlchemy URL; overrides the SQLite file in --data-dir")
    sub.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR")
    return sub


# sysexits.h EX_DATAERR: no restart can fix a damaged index file, so supervisors are told to stop
# trying (deploy/systemd: RestartPreventExitStatus) instead of looping on it.
EXIT_DAMAGED_INDEX = 65


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [WORKER_COMMAND]:
        return _guarded(cmd_dns_worker)  # hidden: only `serve` starts it, with its brief on stdin
    args = build_parser().parse_args(argv)

    def run() -> int:
        if args.command == "config":
            return cmd_config_check(args)
        settings = load_settings(args.config, **_flags(args))
        several = args.command == "serve" and settings.dns_processes > 1
        _setup_logging(settings.log_level, tag="[serve %(process)d] " if several else "")
        return int(COMMANDS[args.command](settings, args) or 0)

    return _guarded(run)


def _guarded(run: Callable[[], int]) -> int:
    """A command's errors as one line on stderr and an exit status."""
    try:
        return run()
    except IndexDamagedError as exc:
        print(f"bns-resolver: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_DAMAGED_INDEX
    except GatewayError as exc:
        print(f"bns-resolver: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left early (`| head`, `| grep -q`): nothing to report. Point stdout at
        # /dev/null so the interpreter's final flush does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _one_line(message: str) -> str:
    """Driver errors span lines (and end in a link to SQLAlchemy's error pages): keep one line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return " ".join(line for line in lines if not line.startswith("(Background on this error"))


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = ("data_dir", "db", "listen", "upstream", "allow", "log_level", "zonefile_source", "bitcoind",
             "network", "bitcoind_blocks_dir", "web_listen", "query_log", "metrics_listen")
    return {name: getattr(args, name, None) for name in names}


def _setup_logging(level: str, tag: str = "") -> None:
    """`tag` tells processes apart when several write one log (serve and its DNS workers)."""
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if level != "DEBUG":
        # Twisted logs every UDP port it opens and closes ("_Attempt starting on N", "(UDP Port N
        # Closed)"): two lines per forwarded query. Our own lines say what matters.
        logging.getLogger("twisted").setLevel(logging.WARNING)


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate a config file and print the effective settings; problems on this machine are warnings."""
    from bns_resolver.config_render import render_settings

    settings = load_settings(args.config, check_environment=False)
    print(render_settings(settings), end="")
    try:
        load_settings(args.config)
    except ConfigError as exc:
        print(f"bns-resolver: warning: on this machine: {exc}", file=sys.stderr)
    return 0


def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    from twisted.internet import reactor as global_reactor
    from twisted.internet.error import CannotListenError
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    from bns_resolver.loop_probe import probe_forwarding_loop
    from bns_resolver.service import (
        GatewayService,
        drop_privileges,
        ensure_embedded_snapshot,
        open_data,
    )

    reactor: Any = global_reactor  # its stubs do not show the interfaces it provides
    observers: list[Any] = [STDLibLogObserver()]  # an ILogObserver by zope declaration only
    globalLogBeginner.beginLoggingTo(observers, redirectStandardIO=False)
    engine = open_data(settings)
    ensure_embedded_snapshot(engine, settings)
    service = GatewayService(settings, reactor, engine)
    try:
        service.start()
    except CannotListenError as exc:
        raise ConfigError(_cannot_listen(exc)) from None
    drop_privileges(settings.run_as_user, settings.data_dir)
    # Twisted stops the reactor on SIGINT and SIGTERM; stop listening (and the workers) cleanly first.
    reactor.addSystemEventTrigger("before", "shutdown", service.stop)
    service.start_workers()
    refused: list[str] = []
    probe_forwarding_loop(service.gateway).addCallback(_stop_on_loop, reactor, refused)
    reactor.run()
    log.info("stopped")
    if refused:
        raise ConfigError(refused[0])
    return 0


def cmd_dns_worker() -> int:
    """One DNS worker of `serve` (dns_worker.py): its brief on stdin, its sockets inherited."""
    from twisted.internet import reactor as global_reactor
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    from bns_resolver.dns_worker import DnsWorker, watch_parent
    from bns_resolver.index.db import open_index
    from bns_resolver.service import become_user
    from bns_resolver.workers import WorkerBrief

    brief = WorkerBrief.read(sys.stdin.buffer)
    settings = load_settings(None, config_text=brief.settings_toml)
    _setup_logging(settings.log_level, tag=f"[worker {brief.number} %(process)d] ")
    if os.getppid() != brief.parent_pid:
        return 0  # serve ended before this worker got going
    reactor: Any = global_reactor
    observers: list[Any] = [STDLibLogObserver()]
    globalLogBeginner.beginLoggingTo(observers, redirectStandardIO=False)
    become_user(settings.run_as_user)
    worker = DnsWorker(settings, reactor, open_index(settings.database_url), brief)
    worker.start()
    watch_parent(reactor, sys.stdin.fileno())
    reactor.addSystemEventTrigger("before", "shutdown", worker.stop)
    reactor.run()
    return 0


def _stop_on_loop(problem: str | None, reactor: Any, refused: list[str]) -> None:
    if problem is not None:
        log.error("%s", problem)
        refused.append(problem)
        reactor.stop()


def _cannot_listen(exc: CannotListenError) -> str:
    where = f"{exc.interface or '*'}:{exc.port}"
    if getattr(exc.socketError, "errno", None) != errno.EACCES:
        return f"cannot listen on {where}: {exc.socketError}"
    return (f"cannot listen on {where}: permission denied (ports below 1024 need CAP_NET_BIND_SERVICE). "
            "Either run the systemd unit in deploy/systemd (AmbientCapabilities=CAP_NET_BIND_SERVICE), or "
            "start it with only that capability: sudo setpriv --reuid=$(id -u) --regid=$(id -g) --init-groups "
            "--inh-caps=+net_bind_service --ambient-caps=+net_bind_service $(command -v bns-resolver) serve ..., "
            "or listen on 5354 behind dnsmasq/unbound (deploy/README.md)")


def cmd_import_snapshot(settings: Settings, args: argparse.Namespace) -> int:
    from bns_resolver.index.download import check_file_digest, download_export
    from bns_resolver.index.snapshot import EMBEDDED_DIR, PRODUCTION_DIGESTS, ExportFiles, import_export
    from bns_resolver.service import open_data

    pinned: dict[str, str] | None = None
    if _is_url(args.source):
        source = download_export(args.source, settings.data_dir, sha256=args.sha256)
        # Without a digest for the whole tarball, the files the production export is known by must match.
        pinned = None if args.sha256 else PRODUCTION_DIGESTS
    else:
        source = Path(args.source) if args.source else EMBEDDED_DIR
        if args.sha256:
            if not source.is_file():
                raise GatewayError(f"--sha256 checks a tarball, and {source} is not a file")
            check_file_digest(source, args.sha256, str(source))
    files = ExportFiles.open(source)
    engine = open_data(settings)
    report = import_export(engine, files, pinned=pinned, progress=True)
    print(f"imported {source}: {report.summary()}")
    for line in report.rejected:
        print(f"  rejected: {line}")
    return 0


def _is_url(source: str | None) -> bool:
    return bool(source) and str(source).startswith(("http://", "https://"))


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


def index_subdomains(engine: Engine, first_block: int) -> str:
    from bns_resolver.index.sync_state import mark_changed
    from bns_resolver.zonefiles.subdomain_index import process_all_subdomains

    report = process_all_subdomains(engine, first_block=first_block)
    mark_changed(engine)
    return f"subdomains: {report.accepted} accepted, {report.rejected} rejected, {len(report.changed)} changed"


def fetch_zonefiles(engine: Engine, specs: tuple[str, ...]) -> str:
    from bns_resolver.zonefiles.fetcher import ZoneFileFetcher
    from bns_resolver.zonefiles.sources import build_sources

    report = ZoneFileFetcher(engine, build_sources(specs)).run_round()
    return (f"zone files: {len(report.stored)} fetched and verified, {len(report.rejected)} rejected, "
            f"{len(report.still_missing)} still missing")


def cmd_compile(settings: Settings, args: argparse.Namespace) -> int:
    from bns_resolver.answers.compile import compile_store
    from bns_resolver.answers.store import store_root
    from bns_resolver.index.lookup import IndexReader
    from bns_resolver.service import ensure_embedded_snapshot, open_data

    engine = open_data(settings)
    ensure_embedded_snapshot(engine, settings)  # as serve would: it then finds the store current
    processes = args.processes or settings.store_compile_processes
    path, report = compile_store(IndexReader(engine), store_root(settings.data_dir), processes=processes)
    print(f"compiled {path}: {report.summary()}")
    return 0


def cmd_lookup(settings: Settings, args: argparse.Namespace) -> int:
    from bns_resolver.index.lookup import IndexReader
    from bns_resolver.lookup_report import describe_name
    from bns_resolver.service import open_data

    engine = open_data(settings)
    reader = IndexReader(engine)
    if reader.is_empty():
        print(_empty_index_hint(settings), file=sys.stderr)
        return 1
    text, found = describe_name(engine, args.name.lower().rstrip("."))
    print(text)
    if not found:
        source = reader.sync_state().get("source", "unknown")
        print(f"  {reader.counts().names} names are loaded (source: {source}). The embedded snapshot holds only "
              f"12 names; the full BNS v1 export (about 2.2 million names): "
              f"bns-resolver import-snapshot {EXPORT_URL}{_data_dir_flag(settings)} (or a downloaded "
              "export-data.tar.gz or folder), or build the index from Bitcoin: bns-resolver sync --bitcoind URL")
    return 0 if found else 1


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from bns_resolver.lookup_report import index_status, running_server_lines, running_server_status
    from bns_resolver.service import open_data

    server = running_server_status(settings.data_dir)
    status = index_status(open_data(settings), settings)
    if args.json:
        print(json.dumps(status | {"server": server}, sort_keys=True))
        return 0
    for line in running_server_lines(server):
        print(line)
    for key, value in status.items():
        print(f"{key:>16}: {value}")
    if status["source"] == "empty":
        print(_empty_index_hint(settings), file=sys.stderr)
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


def _data_dir_flag(settings: Settings) -> str:
    return "" if settings.data_dir == default_data_dir() else f" --data-dir {settings.data_dir}"


def _empty_index_hint(settings: Settings) -> str:
    flag = _data_dir_flag(settings)
    return (f"The index at {settings.database_url} is empty. Load the embedded snapshot (12 names): "
            f"bns-resolver import-snapshot{flag}; or the full BNS v1 export: bns-resolver import-snapshot "
            f"{EXPORT_URL}{flag}; or build it from Bitcoin: bns-resolver sync --bitcoind URL{flag}. "
            "(bns-resolver serve loads the embedded snapshot by itself when no bitcoind is configured.)")


COMMANDS = {
    "serve": cmd_serve,
    "import-snapshot": cmd_import_snapshot,
    "sync": cmd_sync,
    "compile": cmd_compile,
    "lookup": cmd_lookup,
    "status": cmd_status,
    "integrate": cmd_integrate,
}

if __name__ == "__main__":
    sys.exit(main())
