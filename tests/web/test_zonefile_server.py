from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from twisted.web.resource import getChildForRequest
from twisted.web.test.requesthelper import DummyRequest

from bns_resolver.hashing import hash160
from bns_resolver.index.schema import names
from bns_resolver.web.zonefile_server import PATH_TEMPLATE, make_zonefile_site
from bns_resolver.zonefiles.fetcher import fetch_round
from bns_resolver.zonefiles.sources import HttpSource
from bns_resolver.zonefiles.store import get_zonefile, store_verified
from tests.support.zonefile_data import REPO_ROOT

CONTENT = b'$ORIGIN muneeb.id\n$TTL 3600\n_http._tcp IN URI 10 1 "https://blockstack.s3.amazonaws.com/muneeb.id"\n'
HASH = "b100a68235244b012854a95f9114695679002af9"  # docs vector, verified


def _get(engine: Engine, path: str) -> tuple[int, bytes, DummyRequest]:
    site = make_zonefile_site(engine)
    request = DummyRequest([segment.encode() for segment in path.lstrip("/").split("/")])
    request.method = b"GET"
    resource = getChildForRequest(site.resource, request)
    body = resource.render(request)
    return request.responseCode or 200, body, request


def test_serves_stored_zonefile_bytes(engine: Engine) -> None:
    """A held zone file is returned byte for byte, with its hash as ETag."""
    assert hash160(CONTENT).hex() == HASH
    store_verified(engine, HASH, CONTENT, "test")
    status, body, request = _get(engine, f"/v1/zonefiles/{HASH}")
    assert (status, body) == (200, CONTENT)
    assert request.responseHeaders.getRawHeaders(b"etag") == [f'"{HASH}"'.encode()]


def test_accepts_upper_case_and_txt_suffix(engine: Engine) -> None:
    """Upper-case hex and a `.txt` suffix (Atlas file names) resolve to the same file."""
    store_verified(engine, HASH, CONTENT, "test")
    assert _get(engine, f"/v1/zonefiles/{HASH.upper()}.txt")[:2] == (200, CONTENT)


def test_unknown_hash_is_404(engine: Engine) -> None:
    """A well-formed hash we do not hold is 404 with a JSON error."""
    status, body, _ = _get(engine, f"/v1/zonefiles/{'0' * 40}")
    assert status == 404 and "not held" in json.loads(body)["error"]


def test_bad_hash_is_400(engine: Engine) -> None:
    """Anything but 40 hex digits (or extra path segments) is 400."""
    for path in ("/v1/zonefiles/xyz", f"/v1/zonefiles/{HASH}/extra", "/v1/zonefiles/"):
        status, body, _ = _get(engine, path)
        assert status == 400 and "40 hex" in json.loads(body)["error"], path


_SERVE = """
import sys
from sqlalchemy import create_engine
from twisted.internet import reactor
from bns_resolver.web.zonefile_server import make_zonefile_site
listening = reactor.listenTCP(0, make_zonefile_site(create_engine(sys.argv[1])), interface="127.0.0.1")
print(listening.getHost().port, flush=True)
reactor.run()
"""


def test_one_resolver_feeds_another_over_http(engine: Engine, tmp_path: Path) -> None:
    """A real Twisted server process serves our files; a second index fetches and verifies them through HttpSource."""
    from tests.support.zonefile_data import genesis_zonefiles, sqlite_engine

    files = dict(list(genesis_zonefiles().items())[:20])
    with engine.begin() as conn:
        for zonefile_hash, content in files.items():
            store_verified(conn, zonefile_hash, content, "genesis")
    follower_dir = tmp_path / "follower"
    follower_dir.mkdir()
    follower = sqlite_engine(follower_dir)
    with follower.begin() as conn:
        conn.execute(insert(names), [{"fqn": f"n{i}.id", "namespace_id": "id", "value_hash": h} for i, h in enumerate(files)])
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(engine.url)], stdout=subprocess.PIPE, cwd=REPO_ROOT, text=True
    )
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        report = fetch_round(follower, [HttpSource(f"http://127.0.0.1:{port}{PATH_TEMPLATE}")])
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert sorted(report.stored) == sorted(files) and report.rejected == ()
    assert all(get_zonefile(follower, h) == content for h, content in files.items())
