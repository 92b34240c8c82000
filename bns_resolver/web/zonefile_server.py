"""Serve verified zone files by hash, so one resolver can be another's `http://…/{hash}` source.

    GET /v1/zonefiles/<40-hex hash>   200 raw bytes | 400 bad hash | 404 not held

Only files that passed verify-then-store are in the table, and the content is
addressed by its own hash, so replies are immutable and cacheable forever. A
peer still re-verifies them: it trusts its chain, not us.

The lookup is a primary-key read; it runs on the reactor thread because it is
far cheaper than a thread hop.
"""

from __future__ import annotations

import json
from typing import Any, cast

from sqlalchemy.engine import Engine
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from bns_resolver.zonefiles.store import get_zonefile, is_zonefile_hash

PATH_TEMPLATE = "/v1/zonefiles/{hash}"


class ZoneFileResource(Resource):
    """`/v1/zonefiles/<hash>`: the leaf that answers every hash below it."""

    isLeaf = True

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self._engine = engine

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (Twisted's name)
        segments = [s for s in request.postpath or [] if s]
        zonefile_hash = segments[0].decode("ascii", "replace").lower() if len(segments) == 1 else ""
        if zonefile_hash.endswith(".txt"):
            zonefile_hash = zonefile_hash[: -len(".txt")]
        if not is_zonefile_hash(zonefile_hash):
            return _error(request, 400, "expected /v1/zonefiles/<40 hex digits>")
        content = get_zonefile(self._engine, zonefile_hash)
        if content is None:
            return _error(request, 404, f"zone file {zonefile_hash} is not held here")
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        request.setHeader(b"Cache-Control", b"public, max-age=31536000, immutable")
        request.setHeader(b"ETag", f'"{zonefile_hash}"'.encode("ascii"))
        return content


def _error(request: Request, status: int, message: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json")
    return json.dumps({"error": message}).encode("utf-8")


def zonefile_tree(engine: Engine) -> Resource:
    """A `v1` resource with `zonefiles` below it, to mount with `root.putChild(b"v1", …)`."""
    v1 = Resource()
    v1.putChild(b"zonefiles", cast(Any, ZoneFileResource(engine)))  # IResource via zope, unseen by mypy
    return v1


def make_zonefile_site(engine: Engine) -> Site:
    """A stand-alone site serving only the zone-file endpoint (`reactor.listenTCP(port, site)`)."""
    root = Resource()
    root.putChild(b"v1", cast(Any, zonefile_tree(engine)))
    return Site(root)
