"""The web gateway: one verified page per BNS name, chosen by the Host header.

    GET /                         (Host: <name> or www.<name>) the name page
    GET /.well-known/bns/<name>.json  the same facts as JSON, on any Host
    GET /healthz, /metrics, /status.json   the operations endpoint (web/ops.py)

Clients outside the DNS allow-list get 403: the gateway is no more open than the resolver.

404 for names BNS does not know, 503 with the reason for names that cannot be
verified now; a verified name whose profile cannot be fetched is still a 200 page
that says why. The page is rendered once the profile has been judged, so the
response never shows an unchecked profile as verified.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from bns_resolver.dns.access import AccessList
from bns_resolver.dns.authority import BnsAuthority
from bns_resolver.profiles.judge import ProfileJudge
from bns_resolver.profiles.tokens import ProfileVerdict
from bns_resolver.web.names import NameDirectory, NameFacts, NameUnavailable
from bns_resolver.web.metrics import MetricsSource
from bns_resolver.web.ops import OPS_PATHS, ops_response
from bns_resolver.web.page import CONTENT_SECURITY_POLICY, error_page, name_page, website_of

log = logging.getLogger(__name__)

WELL_KNOWN_PREFIX = b"/.well-known/bns/"
PAGE_CACHE_SECONDS = 60.0  # a rendered page is reused this long at most (and never past an index change)
PAGE_CACHE_ENTRIES = 1024


class NameGateway(Resource):
    isLeaf = True

    def __init__(self, directory: NameDirectory, judge: ProfileJudge, authority: BnsAuthority, *,
                 access: AccessList, metrics: MetricsSource | None = None, redirect_to_website: bool = False,
                 page_cache_seconds: float = PAGE_CACHE_SECONDS) -> None:
        super().__init__()
        # host -> (index refresh count, deadline, page): repeat views skip the lookups and rendering.
        self._pages: dict[str, tuple[int, float, bytes]] = {}
        self._page_seconds = page_cache_seconds
        self._directory = directory
        self._judge = judge
        self._authority = authority
        self._access = access
        self._metrics = metrics
        self._redirect = redirect_to_website

    def render_GET(self, request: Request) -> bytes | int:  # noqa: N802 - Twisted's name
        _security_headers(request)
        if not self._access.allows(request.getClientAddress().host):
            request.setResponseCode(403)
            return _html(request, error_page("", 403, "this client is not in the resolver's allow-list"))
        path = request.path
        if path.startswith(WELL_KNOWN_PREFIX) and path.endswith(b".json"):
            name = path[len(WELL_KNOWN_PREFIX):-len(b".json")].decode("utf-8", "replace")
            return self._with_profile(request, name, self._json)
        if path in OPS_PATHS:
            answer = ops_response(request, self._metrics or self._health_only())
            if answer is not None:
                return answer
        host = (request.getRequestHostname() or b"").decode("ascii", "replace")
        if path != b"/":
            request.setResponseCode(404)
            return _html(request, error_page(host, 404, "the gateway serves one page per name, at /"))
        cached = self._cached_page(host)
        if cached is not None:
            return _html_bytes(request, cached)
        return self._with_profile(request, host, self._html_page)

    def _health_only(self) -> MetricsSource:
        """Without the service's metrics (a bare gateway), /healthz still tells readiness."""
        return MetricsSource(dns_stats=dict, cache_sizes=dict, index_height=lambda: self._authority.height,
                             not_ready=self._authority.not_ready, profile_stats=dict)

    def _cached_page(self, host: str) -> bytes | None:
        entry = self._pages.get(host)
        if entry is None or entry[0] != self._authority.refreshes or entry[1] < time.monotonic():
            return None
        if self._authority.not_ready():
            return None  # the index fell behind since: the page must say so (503)
        return entry[2]

    def _remember_page(self, host: str, page: bytes) -> None:
        if len(self._pages) >= PAGE_CACHE_ENTRIES:
            self._pages.clear()
        self._pages[host] = (self._authority.refreshes, time.monotonic() + self._page_seconds, page)

    def _with_profile(self, request: Request, name: str, render: Any) -> bytes | int:
        try:
            facts = self._directory.facts(name)
        except NameUnavailable as exc:
            return render(request, name, None, None, exc)
        deferred = self._judge.judge(facts.profile_url, facts.owner)
        deferred.addCallback(lambda verdict: _finish(request, render(request, name, facts, verdict, None)))
        deferred.addErrback(_internal_error, request)
        return NOT_DONE_YET

    def _html_page(self, request: Request, host: str, facts: NameFacts | None, verdict: ProfileVerdict | None,
                   problem: NameUnavailable | None) -> bytes:
        if problem is not None or facts is None:
            assert problem is not None
            request.setResponseCode(problem.status)
            return _html(request, error_page(host, problem.status, problem.reason))
        website = website_of(verdict) if self._redirect else None
        if website is not None:
            request.redirect(website.encode("utf-8"))
            return b""
        page = name_page(facts, verdict).encode("utf-8")
        self._remember_page(host, page)
        return _html_bytes(request, page)

    def _json(self, request: Request, name: str, facts: NameFacts | None, verdict: ProfileVerdict | None,
              problem: NameUnavailable | None) -> bytes:
        request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
        if problem is not None or facts is None:
            assert problem is not None
            request.setResponseCode(problem.status)
            body: dict[str, Any] = {"name": name, "verified": False, "error": problem.reason,
                                    "ede": problem.ede_code, "profile": None}
        else:
            body = facts.as_json() | {"profile": verdict.as_json() if verdict is not None else None}
        return json.dumps(body, indent=1).encode("utf-8")


def _security_headers(request: Request) -> None:
    request.setHeader(b"Content-Security-Policy", CONTENT_SECURITY_POLICY.encode("ascii"))
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    request.setHeader(b"Referrer-Policy", b"no-referrer")
    request.setHeader(b"Cache-Control", b"no-cache")


def _html(request: Request, page: str) -> bytes:
    return _html_bytes(request, page.encode("utf-8"))


def _html_bytes(request: Request, page: bytes) -> bytes:
    request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
    return page


def _finish(request: Request, body: bytes) -> None:
    if request.finished or request._disconnected:  # the client went away while the profile loaded
        return
    request.write(body)
    request.finish()


def _internal_error(failure: Any, request: Request) -> None:
    log.error("web gateway failed to render a page: %s", failure.getTraceback())
    if not request.finished and not request._disconnected:
        request.setResponseCode(500)
        request.write(b"internal error")
        request.finish()


class _QuietSite(Site):
    def log(self, request: http.Request) -> None:
        """No access log: one line per page view would drown the resolver's own log."""


def make_gateway_site(directory: NameDirectory, judge: ProfileJudge, authority: BnsAuthority, *,
                      access: AccessList, metrics: MetricsSource | None = None, redirect_to_website: bool = False,
                      page_cache_seconds: float = PAGE_CACHE_SECONDS) -> Site:
    site = _QuietSite(NameGateway(directory, judge, authority, access=access, metrics=metrics,
                                  redirect_to_website=redirect_to_website, page_cache_seconds=page_cache_seconds))
    site.noisy = False
    site.displayTracebacks = False
    return site
