from __future__ import annotations

import json

from sqlalchemy.engine import Engine
from twisted.web.resource import getChildForRequest
from twisted.web.test.requesthelper import DummyRequest

from bns_resolver.hashing import hash160
from bns_resolver.web.zonefile_server import make_zonefile_site
from bns_resolver.zonefiles.store import store_verified

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
