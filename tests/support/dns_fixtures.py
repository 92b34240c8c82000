"""Test fixtures for the DNS gateway: custom indexes, a real server process, free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
from sqlalchemy import Engine, insert

from bns_resolver.hashing import hash160_hex
from bns_resolver.index import schema
from bns_resolver.index.db import open_index
from bns_resolver.index.sync_state import bump_generation, write_sync_state

ID_NAMESPACE = {
    "namespace_id": "id", "version": 1, "lifetime": 52595, "coeff": 250, "base": 4,
    "buckets": "6,5,4,3,2,1,0,0,0,0,0,0,0,0,0,0", "nonalpha_discount": 4, "no_vowel_discount": 4,
    "address": None, "ready": True,
}


@dataclass
class NameSpec:
    fqn: str
    zonefile: bytes | None = None
    value_hash: str | None = None  # default: hash160 of zonefile
    revoked: bool = False
    expire_block: int | None = None
    store_zonefile: bool = True


@dataclass
class IndexSpec:
    names: list[NameSpec] = field(default_factory=list)
    namespaces: tuple[str, ...] = ("id",)
    subdomains: list[tuple[str, bytes]] = field(default_factory=list)  # (fqn, zone file)
    height: int = 665750


def write_index(engine: Engine, spec: IndexSpec) -> None:
    with engine.begin() as conn:
        conn.execute(insert(schema.namespaces), [dict(ID_NAMESPACE, namespace_id=ns) for ns in spec.namespaces])
        for name in spec.names:
            _insert_name(conn, name)
        for fqn, zonefile in spec.subdomains:
            zonefile_hash = hash160_hex(zonefile)
            conn.execute(insert(schema.subdomains).values(
                fqn=fqn, domain=fqn.split(".", 1)[1], owner_address="1Test", sequence=0,
                zonefile_hash=zonefile_hash))
            _store_zonefile(conn, zonefile_hash, zonefile)
        write_sync_state(conn, {"source": "snapshot", "network": "mainnet", "height": str(spec.height)})
        bump_generation(conn)


def _insert_name(conn, name: NameSpec) -> None:  # type: ignore[no-untyped-def]
    value_hash = name.value_hash
    if value_hash is None and name.zonefile is not None:
        value_hash = hash160_hex(name.zonefile)
    conn.execute(insert(schema.names).values(
        fqn=name.fqn, namespace_id=name.fqn.rsplit(".", 1)[1], owner_address="1Test",
        value_hash=value_hash, revoked=name.revoked, expire_block=name.expire_block))
    if name.zonefile is not None and name.store_zonefile and value_hash:
        _store_zonefile(conn, value_hash, name.zonefile)


def _store_zonefile(conn, zonefile_hash: str, content: bytes) -> None:  # type: ignore[no-untyped-def]
    existing = conn.execute(schema.zonefiles.select().where(schema.zonefiles.c.zonefile_hash == zonefile_hash))
    if existing.first() is None:
        conn.execute(insert(schema.zonefiles).values(
            zonefile_hash=zonefile_hash, content=content, source="test", fetched_at=time.time()))


def make_index(data_dir: Path, spec: IndexSpec) -> Engine:
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_index(f"sqlite:///{data_dir / 'index.sqlite'}")
    write_index(engine, spec)
    return engine


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            udp.close()
            tcp.close()
    raise RuntimeError("no free port")


class PortTaken(RuntimeError):
    """The port picked for a server was taken by someone else before the server bound it."""


class ServerProcess:
    """`bns-resolver serve` as a real child process on a loopback port."""

    def __init__(self, data_dir: Path, *, upstreams: Iterable[str] = (), extra: Iterable[str] = (),
                 config: str | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        args = [sys.executable, "-m", "bns_resolver.cli", "serve", "--data-dir", str(data_dir),
                "--listen", f"127.0.0.1:{self.port}", "--log-level", "INFO"]
        for upstream in upstreams:
            args += ["--upstream", upstream]
        if config:
            data_dir.mkdir(parents=True, exist_ok=True)
            path = data_dir / "test-config.toml"
            path.write_text(config)
            args += ["--config", str(path)]
        if not list(upstreams):
            args += ["--upstream", "127.0.0.1:9"]  # discard port: nothing answers
        if "--web-listen" not in extra and (config is None or "[web]" not in config):
            # A free port of our own: port 80 is shared by every server of the test run.
            args += ["--web-listen", "127.0.0.1:0"]
        self.args = args + list(extra)
        self.log_path = data_dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> ServerProcess:
        for _ in range(3):
            try:
                return self._start_once(timeout)
            except PortTaken:
                # free_port() only found a port free a moment ago: another test's process took it since.
                listen = self.args.index(f"127.0.0.1:{self.port}")
                self.port = free_port()
                self.args[listen] = f"127.0.0.1:{self.port}"
        return self._start_once(timeout)

    def _start_once(self, timeout: float) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - the child writes to it until stop()
        self.process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=dict(os.environ, PYTHONUNBUFFERED="1"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                if f"cannot listen on 127.0.0.1:{self.port}: [Errno 98]" in self.log():
                    raise PortTaken(self.port)
                raise RuntimeError(f"server exited: {self.log()}")
            try:
                self.query("id.", "SOA", timeout=0.3)
                return self
            except (dns.exception.DNSException, ConnectionError, OSError):
                continue
        raise RuntimeError(f"server did not answer within {timeout} s: {self.log()}")

    def web_port(self) -> int:
        """The web gateway's port, as the server logged it at start."""
        import re

        match = re.search(r"web gateway on http://127\.0\.0\.1:(\d+)/", self.log())
        if match is None:
            raise RuntimeError(f"no web gateway in the log: {self.log()}")
        return int(match.group(1))

    def query(self, name: str, rdtype: str, *, tcp: bool = False, timeout: float = 3.0,
              **make_kwargs: object) -> dns.message.Message:
        message = dns.message.make_query(name, rdtype, **make_kwargs)  # type: ignore[arg-type]
        if tcp:
            return dns.query.tcp(message, "127.0.0.1", port=self.port, timeout=timeout)
        return dns.query.udp(message, "127.0.0.1", port=self.port, timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        if self.process is None:
            return None
        self.process.terminate()
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code


def require_tool(name: str) -> str:
    """Path of an external tool; a missing tool skips locally but fails in CI."""
    import pytest

    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed; .ci/run must install it")
        pytest.skip(f"{name} is not installed")
    return path


def rdtype(name: str) -> int:
    return int(dns.rdatatype.from_text(name))


def ask_uri(sock: socket.socket, port: int, owner: str) -> set[str]:
    """URI targets the server at 127.0.0.1:port answers for owner (asserting NOERROR)."""
    query = dns.message.make_query(owner, "URI", use_edns=0, payload=4096)
    sock.sendto(query.to_wire(), ("127.0.0.1", port))
    reply = dns.message.from_wire(sock.recv(65535))
    assert reply.id == query.id and reply.rcode() == dns.rcode.NOERROR, f"{owner}: {reply}"
    return {rdata.target.decode() for rrset in reply.answer for rdata in rrset}


def bns_only_config(namespaces: Iterable[str]) -> str:
    """A config that treats these namespaces as BNS's alone (no ICANN probe, authoritative answers)."""
    return "[namespaces]\nicann_tlds = {" + ", ".join(f"{ns} = false" for ns in namespaces) + "}\n"
