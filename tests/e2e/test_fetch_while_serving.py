"""`serve` fetches missing zone files from a mirror, verifies them, and starts answering without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import dns.edns
import dns.rcode
from sqlalchemy import func, select

from bns_resolver.hashing import hash160_hex
from bns_resolver.index import schema
from bns_resolver.zonefiles.store import store_verified
from tests.support.dns_fixtures import IndexSpec, NameSpec, ServerProcess, free_port, make_index
from tests.support.zonefile_servers import ZonefileHttpMirror

NAMESPACE = "fetchns"
ZONEFILES = {
    f"{label}.{NAMESPACE}": f"$ORIGIN {label}.{NAMESPACE}\n$TTL 300\n@ IN A 192.0.2.{i}\n".encode()
    for i, label in enumerate(("alice", "bob", "carol"), start=1)
}
CONFIG = f"[namespaces]\nicann_tlds = {{ {NAMESPACE} = false }}\n"


def _index(tmp_path: Path):  # type: ignore[no-untyped-def]
    names = [NameSpec(fqn, z, store_zonefile=False) for fqn, z in ZONEFILES.items()]
    return make_index(tmp_path / "data", IndexSpec(names=names, namespaces=(NAMESPACE,)))


def _ede(reply) -> int | None:  # type: ignore[no-untyped-def]
    codes = [o.code for o in reply.options if o.otype == dns.edns.EDE]
    return codes[0] if codes else None


def test_missing_zone_files_arrive_and_names_resolve(tmp_path: Path) -> None:
    """SERVFAIL (EDE 22) while the mirror holds back, then verified answers once it serves."""
    _index(tmp_path)
    files = {hash160_hex(z): z for z in ZONEFILES.values()}
    with ZonefileHttpMirror(files, mode="slow") as mirror:
        server = ServerProcess(tmp_path / "data", config=CONFIG,
                               extra=["--zonefile-source", mirror.template()]).start()
        try:
            waiting = server.query(f"alice.{NAMESPACE}", "A", use_edns=0)
            assert waiting.rcode() == dns.rcode.SERVFAIL and _ede(waiting) == 22
            mirror.release.set()
            deadline = time.monotonic() + 20
            reply = waiting
            while reply.rcode() != dns.rcode.NOERROR and time.monotonic() < deadline:
                reply = server.query(f"alice.{NAMESPACE}", "A", use_edns=0)
            assert reply.rcode() == dns.rcode.NOERROR and "192.0.2.1" in reply.answer[0].to_text()
            assert "192.0.2.3" in server.query(f"carol.{NAMESPACE}", "A").answer[0].to_text()
        finally:
            server.stop()


def test_a_lying_mirror_never_gets_a_byte_in(tmp_path: Path) -> None:
    """Files that do not hash to the value hash are rejected: nothing stored, names stay SERVFAIL."""
    engine = _index(tmp_path)
    with ZonefileHttpMirror({}, mode="lying") as mirror:
        server = ServerProcess(tmp_path / "data", config=CONFIG,
                               extra=["--zonefile-source", mirror.template()]).start()
        try:
            deadline = time.monotonic() + 20
            while len(mirror.requests) < len(ZONEFILES) and time.monotonic() < deadline:
                server.query(f"bob.{NAMESPACE}", "A")
            assert len(mirror.requests) >= len(ZONEFILES)
            # The mirror counts a request before the server has read and judged the reply.
            while "served a bad file" not in server.log() and time.monotonic() < deadline + 10:
                time.sleep(0.05)
            reply = server.query(f"bob.{NAMESPACE}", "A", use_edns=0)
            assert reply.rcode() == dns.rcode.SERVFAIL and _ede(reply) == 22
            with engine.connect() as conn:
                assert conn.execute(select(func.count()).select_from(schema.zonefiles)).scalar() == 0
            assert "served a bad file" in server.log()
        finally:
            server.stop()


def test_one_resolver_feeds_another(tmp_path: Path) -> None:
    """A resolver serving its verified zone files over HTTP is a mirror for a second resolver."""
    engine = _index(tmp_path)  # the feeding resolver holds the files
    for content in ZONEFILES.values():
        store_verified(engine, hash160_hex(content), content, "test")
    http_port = free_port()
    feeder = ServerProcess(tmp_path / "data", config=CONFIG + f'[zonefiles]\nserve_http = "127.0.0.1:{http_port}"\n')
    feeder.start()
    names = [NameSpec(fqn, z, store_zonefile=False) for fqn, z in ZONEFILES.items()]
    make_index(tmp_path / "second", IndexSpec(names=names, namespaces=(NAMESPACE,)))
    second = ServerProcess(tmp_path / "second", config=CONFIG, extra=[
        "--zonefile-source", f"http://127.0.0.1:{http_port}/v1/zonefiles/{{hash}}"]).start()
    try:
        deadline = time.monotonic() + 20
        reply = second.query(f"bob.{NAMESPACE}", "A")
        while reply.rcode() != dns.rcode.NOERROR and time.monotonic() < deadline:
            reply = second.query(f"bob.{NAMESPACE}", "A")
        assert "192.0.2.2" in reply.answer[0].to_text()
    finally:
        second.stop()
        feeder.stop()
