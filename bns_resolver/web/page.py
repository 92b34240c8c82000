"""The name page: plain HTML, no scripts, no external resources, every profile string escaped.

Profile content is attacker-controlled. Text goes through html.escape; a URL becomes
a link only if it is http(s), and images are shown as links, never loaded.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

from bns_resolver.profiles.tokens import ProfileVerdict
from bns_resolver.web.names import NameFacts

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
MAX_ITEMS = 20  # profile lists shown; the rest would only make the page long

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "h1{margin-bottom:.2rem}.ok{color:#0a6b2d;font-weight:600}.bad{color:#a4161a;font-weight:600}"
    "table{border-collapse:collapse}td{padding:.15rem .6rem .15rem 0;vertical-align:top}"
    "code,pre{font-size:.85rem;overflow-wrap:anywhere;white-space:pre-wrap}pre{background:#f4f4f4;padding:.6rem}"
)


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def safe_url(value: Any) -> str | None:
    """value if it is an http(s) URL a link may point to, else None."""
    if not isinstance(value, str) or len(value) > 2048:
        return None
    parts = urlsplit(value.strip())
    return value.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def link(url: Any, text: Any = None) -> str:
    target = safe_url(url)
    label = e(text if text is not None else url)
    return f'<a href="{e(target)}" rel="nofollow noopener noreferrer">{label}</a>' if target else label


def name_page(facts: NameFacts, verdict: ProfileVerdict | None) -> str:
    body = [f"<h1>{e(facts.name)}</h1>", _binding(facts), _profile(facts, verdict), _records(facts)]
    return _document(facts.name, "".join(body))


def error_page(host: str, status: int, reason: str) -> str:
    title = {404: "Not a BNS name", 403: "Not allowed"}.get(status, "Cannot be verified now")
    return _document(host, f"<h1>{e(host)}</h1><p class=bad>{e(title)}</p><p>{e(reason)}</p>")


def _document(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><title>{e(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}<hr><p><small>Served by bns-resolver's web gateway from "
            f"a locally verified BNS index.</small></p></body></html>")


def _binding(facts: NameFacts) -> str:
    source = facts.provenance
    if source.get("source") == "chain":
        origin = (f"{e(source.get('network'))} chain at block {e(source.get('height'))}, "
                  f"consensus hash <code>{e(source.get('consensus_hash'))}</code>")
    else:
        origin = (f"the BNS v1 final-state export (block {e(source.get('height'))}), chainstate.txt SHA-256 "
                  f"<code>{e(source.get('chainstate_sha256') or 'unknown')}</code>")
    if facts.value_hash:
        zonefile = (f"<code>{e(facts.value_hash)}</code> <span class=ok id=zonefile-verified>✓ verified</span>: "
                    f"the zone file's hash160 equals the value hash the chain binds to the name")
    else:
        zonefile = "none (registered without a zone file)"
    rows = [("Kind", e(facts.kind)), ("Owner", f"<code id=owner>{e(facts.owner)}</code>"),
            ("Binding from", origin), ("Zone file", zonefile)]
    return "<table>" + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _profile(facts: NameFacts, verdict: ProfileVerdict | None) -> str:
    if verdict is None:
        return "<h2>Profile</h2><p id=profile-status>The zone file names no profile.</p>"
    if verdict.verified:
        status = f"<p id=profile-status class=ok>✓ Profile verified: {e(verdict.reason)}.</p>"
    else:
        status = f"<p id=profile-status class=bad>✗ Profile not verified: {e(verdict.reason)}.</p>"
        if verdict.claim:
            status += "<p>Shown below as the storage served it; nothing proves the owner wrote it.</p>"
    where = f"<p>From {link(facts.profile_url)}</p>" if facts.profile_url else ""
    return "<h2>Profile</h2>" + status + where + (_claim(verdict.claim) if verdict.claim else "")


def _claim(claim: dict[str, Any]) -> str:
    rows = []
    if isinstance(claim.get("name"), str):
        rows.append(("Name", f"<span id=profile-name>{e(claim['name'])}</span>"))
    if isinstance(claim.get("description"), str):
        rows.append(("About", e(claim["description"])))
    for key, label, url_key in (("image", "Image", "contentUrl"), ("website", "Website", "url")):
        items = [link(i.get(url_key), i.get("name") or i.get(url_key)) for i in _items(claim, key)]
        if items:
            rows.append((label, "<br>".join(items)))
    accounts = [_account(a) for a in _items(claim, "account")]
    if accounts:
        rows.append(("Accounts", "<br>".join(accounts)))
    return "<table id=profile>" + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _items(claim: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = claim.get(key)
    return [item for item in value if isinstance(item, dict)][:MAX_ITEMS] if isinstance(value, list) else []


def _account(account: dict[str, Any]) -> str:
    text = f"{e(account.get('service'))}: {e(account.get('identifier'))}"
    proof = safe_url(account.get("proofUrl"))
    return text + (f" ({link(proof, 'proof')})" if proof else "")


def _records(facts: NameFacts) -> str:
    if not facts.records:
        return ""
    return "<h2>Zone file records</h2><pre id=records>" + e("\n".join(facts.records)) + "</pre>"


def website_of(verdict: ProfileVerdict | None) -> str | None:
    """The first http(s) website a verified profile names, for the optional redirect."""
    if verdict is None or not verdict.verified or not verdict.claim:
        return None
    for item in _items(verdict.claim, "website"):
        url = safe_url(item.get("url"))
        if url:
            return url
    return None
