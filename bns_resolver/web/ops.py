"""The operations endpoint: GET /metrics, /healthz and /status.json.

Served on the web gateway's listeners (any Host) and on its own `[metrics] listen`
addresses, which by default are one loopback port the kernel picks: the running
server writes where it is into its data dir, and `bns-resolver status` asks there.
The DNS allow-list applies, as it does to every HTTP answer.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from bns_resolver.dns.access import AccessList
from bns_resolver.web.metrics import MetricsSource, render_metrics

OPS_PATHS = (b"/metrics", b"/healthz", b"/status.json")


def ops_response(request: Request, source: MetricsSource) -> bytes | None:
    """The answer for an operations path, or None when the path is not one."""
    path = request.path
    if path == b"/healthz":
        not_ready = source.not_ready()
        return _json(request, _health(not_ready, source.index_height()), 503 if not_ready else 200)
    if path == b"/metrics":
        request.setHeader(b"Content-Type", b"text/plain; version=0.0.4; charset=utf-8")
        return render_metrics(source).encode("utf-8")
    if path == b"/status.json" and source.server_status is not None:
        return _json(request, source.server_status(), 200)
    return None


def _health(not_ready: str | None, height: int | None) -> dict[str, Any]:
    # The height lets a monitor tell "ready but behind" (bitcoind away, the index keeps serving
    # what it verified) from "ready and current" without a second request.
    return {"ready": not not_ready, "reason": not_ready, "height": height}


def _json(request: Request, body: dict[str, Any], code: int) -> bytes:
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Cache-Control", b"no-cache")
    request.setResponseCode(code)
    return json.dumps(body, sort_keys=True).encode("utf-8")


class OpsEndpoint(Resource):
    """The operations paths alone (for `[metrics] listen`); anything else is 404."""

    isLeaf = True

    def __init__(self, source: MetricsSource, access: AccessList) -> None:
        super().__init__()
        self._source = source
        self._access = access

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 - Twisted's name
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        if not self._access.allows(request.getClientAddress().host):
            return _json(request, {"error": "this client is not in the resolver's allow-list ([dns] allow)"}, 403)
        answer = ops_response(request, self._source)
        if answer is None:
            return _json(request, {"error": "not found", "paths": [p.decode() for p in OPS_PATHS]}, 404)
        return answer


class _QuietSite(Site):
    def log(self, request: Any) -> None:
        """No access log: Prometheus scrapes every few seconds."""


def make_ops_site(source: MetricsSource, access: AccessList) -> Site:
    site = _QuietSite(OpsEndpoint(source, access))
    site.noisy = False
    site.displayTracebacks = False
    return site
