"""Where zone files come from: a folder, HTTP mirrors, Atlas peers.

Every source hands back raw bytes keyed by the hash it was asked for and
promises nothing about them: a mirror may be stale, a peer may lie. The fetcher
checks each file against the chain's hash before it is stored (store.py).

A source is built from a spec string (the CLI's `--zonefile-source SPEC`):

    dir:/var/lib/zonefiles                 <hash>.txt, <hash>, or Atlas's ab/cd/<hash>.txt
    https://mirror.example/zf/{hash}       URL template; {hash} and/or {name}
    atlas://node.example:6264              BNS v1 Atlas XML-RPC (get_zonefiles)
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
import xmlrpc.client
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bns_resolver.errors import ConfigError, GatewayError
from bns_resolver.zonefiles.store import MAX_ZONEFILE_BYTES, is_zonefile_hash

log = logging.getLogger(__name__)

ATLAS_DEFAULT_PORT = 6264
# blockstackd refuses get_zonefiles calls naming more than 100 hashes.
ATLAS_MAX_HASHES = 100
_USER_AGENT = "bns-resolver zonefile fetcher"


class SourceUnavailable(GatewayError):
    """A zone-file source could not be reached or gave an unusable answer."""


@dataclass(frozen=True)
class ZoneFileWant:
    """A zone file the index references; `name` fills `{name}` URL templates."""

    zonefile_hash: str
    name: str | None = None


class ZoneFileSource(Protocol):
    """One place to ask for zone files.

    `fetch` returns the bytes it found for some of the wanted hashes (absent
    keys: the source does not have them) and raises SourceUnavailable when the
    source itself failed. It is called from worker threads. A source may set
    `by_hash = False` when it cannot address files by hash (its mismatches
    then count as misses, not lies).
    """

    label: str
    batch_size: int

    def fetch(self, wants: Sequence[ZoneFileWant], *, timeout: float) -> dict[str, bytes]: ...


def parse_source_spec(spec: str) -> ZoneFileSource:
    """Build one source from its spec string; ConfigError if it is not understood."""
    spec = spec.strip()
    if spec.startswith("dir:"):
        return DirSource(Path(spec[len("dir:") :]).expanduser())
    if spec.startswith(("http://", "https://")):
        return HttpSource(spec)
    if spec.startswith("atlas://"):
        host, port = _host_port(spec[len("atlas://") :].rstrip("/"), spec)
        return AtlasSource(host, port)
    raise ConfigError(f"zone-file source {spec!r}: expected dir:PATH, http(s)://…{{hash}}… or atlas://HOST:PORT")


def build_sources(specs: Sequence[str]) -> list[ZoneFileSource]:
    """Sources in the order given; the fetcher tries them in this order."""
    return [parse_source_spec(spec) for spec in specs]


def _host_port(hostport: str, spec: str) -> tuple[str, int]:
    host, sep, port_text = hostport.rpartition(":")
    if not sep:
        host, port_text = hostport, str(ATLAS_DEFAULT_PORT)
    host = host.strip("[]")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"zone-file source {spec!r}: expected atlas://HOST:PORT")
    return host, int(port_text)


class DirSource:
    """A local folder: a flat `<hash>.txt` dump or Atlas's `ab/cd/<hash>.txt` tree."""

    batch_size = 256

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise ConfigError(f"zone-file source dir:{root}: not a directory")
        self.root = root
        self.label = f"dir:{root}"

    def fetch(self, wants: Sequence[ZoneFileWant], *, timeout: float) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for want in wants:
            content = self._read(want.zonefile_hash)
            if content is not None:
                found[want.zonefile_hash] = content
        return found

    def _read(self, zonefile_hash: str) -> bytes | None:
        # The hash becomes a path: accept nothing but 40 hex digits.
        if not is_zonefile_hash(zonefile_hash):
            return None
        nested = self.root / zonefile_hash[0:2] / zonefile_hash[2:4]
        for folder in (self.root, nested):
            for filename in (f"{zonefile_hash}.txt", zonefile_hash):
                path = folder / filename
                try:
                    with path.open("rb") as handle:
                        return handle.read(MAX_ZONEFILE_BYTES + 1)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise SourceUnavailable(f"{self.label}: cannot read {path}: {exc}") from exc
        return None


class HttpSource:
    """An HTTP(S) mirror addressed by a URL template with `{hash}` and/or `{name}`.

    One keep-alive connection serves a whole batch. 404/410 mean "not here";
    other statuses and network errors make the source unavailable. A JSON body
    `{"zonefile": "..."}` (the Stacks/blockstack REST shape) is unwrapped; the
    hash check downstream decides whether either form is the real file.
    """

    batch_size = 32

    def __init__(self, template: str) -> None:
        if "{hash}" not in template and "{name}" not in template:
            raise ConfigError(f"zone-file source {template!r}: URL template needs {{hash}} or {{name}}")
        parts = urllib.parse.urlsplit(template.replace("{hash}", "h").replace("{name}", "n"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"zone-file source {template!r}: not an http(s) URL")
        self.template = template
        self.label = template
        # A name-only URL serves the name's *current* file: a mismatch for an
        # older hash is staleness, not a lie (the fetcher scores it as a miss).
        self.by_hash = "{hash}" in template
        self._scheme = parts.scheme
        self._netloc = parts.netloc

    def url_for(self, want: ZoneFileWant) -> str | None:
        if "{name}" in self.template and not want.name:
            return None
        url = self.template.replace("{hash}", want.zonefile_hash)
        return url.replace("{name}", urllib.parse.quote(want.name or "", safe=""))

    def fetch(self, wants: Sequence[ZoneFileWant], *, timeout: float) -> dict[str, bytes]:
        conn = self._connect(timeout)
        found: dict[str, bytes] = {}
        try:
            for want in wants:
                url = self.url_for(want)
                if url is None:
                    continue
                content = self._get(conn, url, timeout)
                if content is not None:
                    found[want.zonefile_hash] = content
        except (OSError, http.client.HTTPException) as exc:
            raise SourceUnavailable(f"{self.label}: {exc.__class__.__name__}: {exc}") from exc
        finally:
            conn.close()
        return found

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._netloc, timeout=timeout)
        return http.client.HTTPConnection(self._netloc, timeout=timeout)

    def _get(self, conn: http.client.HTTPConnection, url: str, timeout: float) -> bytes | None:
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path or "/", headers={"User-Agent": _USER_AGENT})
        response = conn.getresponse()
        body = response.read(MAX_ZONEFILE_BYTES * 4 + 1)  # room for a JSON wrapper
        if response.will_close or not response.isclosed():
            conn.close()  # unread remainder or server closing: the next request reconnects
        if response.status in (404, 410):
            return None
        if response.status in (301, 302, 303, 307, 308):
            return _get_following_redirects(url, timeout)
        if response.status != 200:
            raise SourceUnavailable(f"{self.label}: HTTP {response.status} for {url}")
        return _unwrap_json(body, response.getheader("Content-Type", ""))


def _get_following_redirects(url: str, timeout: float) -> bytes | None:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only)
            body = response.read(MAX_ZONEFILE_BYTES * 4 + 1)
            return _unwrap_json(body, response.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            return None
        raise SourceUnavailable(f"HTTP {exc.code} for {url}") from exc


def _unwrap_json(body: bytes, content_type: str) -> bytes:
    if "json" not in content_type.lower():
        return body
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if isinstance(document, dict) and isinstance(document.get("zonefile"), str):
        return document["zonefile"].encode("utf-8")
    return body


class AtlasSource:
    """A BNS v1 Atlas node, asked over XML-RPC with `get_zonefiles([hash, …])`.

    blockstackd answers with a JSON text (`{"status": true, "zonefiles":
    {hash: base64}}`) inside the XML-RPC string; old nodes returned the dict
    itself, so both are accepted.
    """

    batch_size = ATLAS_MAX_HASHES

    def __init__(self, host: str, port: int = ATLAS_DEFAULT_PORT) -> None:
        self.host = host
        self.port = port
        self.label = f"atlas://{host}:{port}"

    def fetch(self, wants: Sequence[ZoneFileWant], *, timeout: float) -> dict[str, bytes]:
        hashes = [want.zonefile_hash for want in wants][:ATLAS_MAX_HASHES]
        host = f"[{self.host}]" if ":" in self.host else self.host
        proxy = xmlrpc.client.ServerProxy(
            f"http://{host}:{self.port}/RPC2", transport=_TimeoutTransport(timeout), allow_none=True
        )
        try:
            reply = proxy.get_zonefiles(hashes)
        except (OSError, xmlrpc.client.Error, http.client.HTTPException) as exc:
            raise SourceUnavailable(f"{self.label}: {exc.__class__.__name__}: {exc}") from exc
        return self._decode_reply(reply, set(hashes))

    def _decode_reply(self, reply: object, asked: set[str]) -> dict[str, bytes]:
        if isinstance(reply, str):
            try:
                reply = json.loads(reply)
            except ValueError as exc:
                raise SourceUnavailable(f"{self.label}: get_zonefiles reply is not JSON") from exc
        if not isinstance(reply, dict) or "error" in reply or not isinstance(reply.get("zonefiles"), dict):
            detail = reply.get("error") if isinstance(reply, dict) else type(reply).__name__
            raise SourceUnavailable(f"{self.label}: get_zonefiles failed: {detail}")
        found: dict[str, bytes] = {}
        for zonefile_hash, encoded in reply["zonefiles"].items():
            if zonefile_hash in asked and isinstance(encoded, str):
                found[zonefile_hash] = _b64_or_raw(encoded)
        return found


def _b64_or_raw(encoded: str) -> bytes:
    # Undecodable base64 is passed on as-is so that the hash check rejects it
    # and the peer is scored down, like any other bad file.
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return encoded.encode("utf-8", "replace")


class _TimeoutTransport(xmlrpc.client.Transport):
    """Per-call timeout, and a cap on the reply so a hostile peer cannot flood memory."""

    # 100 files of 40,960 bytes in base64 plus XML/JSON framing stays well under this.
    MAX_REPLY_BYTES = 8 * 1024 * 1024
    accept_gzip_encoding = False  # parse_response below reads the raw body

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host: str) -> http.client.HTTPConnection:  # type: ignore[override]
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn

    def parse_response(self, response: http.client.HTTPResponse) -> Any:  # type: ignore[override,unused-ignore]
        parser, unmarshaller = self.getparser()
        received = 0
        while chunk := response.read(65536):
            received += len(chunk)
            if received > self.MAX_REPLY_BYTES:
                raise SourceUnavailable(f"XML-RPC reply over {self.MAX_REPLY_BYTES} bytes")
            parser.feed(chunk)
        parser.close()
        return unmarshaller.close()


__all__ = [
    "AtlasSource",
    "DirSource",
    "HttpSource",
    "SourceUnavailable",
    "ZoneFileSource",
    "ZoneFileWant",
    "build_sources",
    "parse_source_spec",
]
